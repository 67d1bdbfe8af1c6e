"""``wyoming-lightning-client``: transcribe a WAV file or the microphone with any Wyoming server.

It speaks to the server the way Home Assistant does (``transcribe``, ``audio-start``, chunks,
``audio-stop``, then ``transcript``), so it is the quickest way to check a server before adding
it to Home Assistant, and it works with every Wyoming speech-to-text server, not only ours.
Unlike Home Assistant it reads while it writes: partial ``transcript-chunk`` results show up
while audio is still going out, and an ``error`` stops the upload at once.

stdout carries only the final text, so ``text=$(wyoming-lightning-client x.wav)`` works;
progress, partial results and errors go to stderr. Exit status: 0 transcribed, 1 the server
failed (its ``error`` text is shown), 2 a local problem (file, microphone, connection, usage),
3 the server answered with empty text (said on stderr: a script must not take silence for a
transcript, and a person must not be left guessing).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import struct
import sys
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.event import Event

from .audio import AudioConverter, PcmFormat
from .cli import Parser, describe_failure, run_main, uri_type, wyoming_client
from .vad.events import SpeechEnd, SpeechStart
from .vad.gate import GateConfig, VadGate

PROG = "wyoming-lightning-client"
DEFAULT_URI = "tcp://127.0.0.1:10300"
EXIT_OK, EXIT_SERVER, EXIT_LOCAL, EXIT_EMPTY = 0, 1, 2, 3

MIC_RATE = 16000
MIC_BLOCK_MS = 30
DEFAULT_MIC_SECONDS = 15.0
"""Home Assistant's own hard cap on one voice command."""
DEFAULT_END_SILENCE_S = 0.7
"""Home Assistant's default end-of-speech silence."""

_RIFF_PCM = 1
_RIFF_EXTENSIBLE = 0xFFFE
_PCM_SUBFORMAT_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


class ClientError(Exception):
    """A problem worth one line to the user, not a traceback; ``code`` is the exit status."""

    def __init__(self, message: str, code: int = EXIT_LOCAL) -> None:
        super().__init__(message)
        self.code = code


# ------------------------------------------------------------------------------- WAV files


@dataclass(frozen=True)
class WavAudio:
    """A WAV file's PCM in the form it will be sent (its own rate, width and channels)."""

    fmt: PcmFormat
    pcm: bytes

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (self.fmt.rate * self.fmt.frame_bytes)


def read_wav(path: Path) -> WavAudio:
    """Any PCM WAV, including WAVE_FORMAT_EXTENSIBLE (which the ``wave`` module of Python 3.11
    rejects); the audio is sent as it is, except that unsigned 8-bit becomes signed 16-bit,
    because Wyoming servers disagree on what an 8-bit sample means."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise ClientError(f"cannot read {path}: {err.strerror or err}") from None
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise ClientError(f"{path} is not a WAV file")
    fmt: tuple[int, int, int, int] | None = None
    pcm: bytes | None = None
    offset = 12
    while offset + 8 <= len(data):
        chunk_id = data[offset : offset + 4]
        (size,) = struct.unpack_from("<I", data, offset + 4)
        body = data[offset + 8 : offset + 8 + size]
        if chunk_id == b"fmt " and len(body) >= 16:
            tag, channels, rate, _byte_rate, _align, bits = struct.unpack_from("<HHIIHH", body)
            if tag == _RIFF_EXTENSIBLE and len(body) >= 40:
                subformat = body[24:40]
                tag = struct.unpack_from("<H", subformat)[0]
                if subformat[2:] != _PCM_SUBFORMAT_TAIL:
                    tag = -1
            fmt = (tag, channels, rate, bits)
        elif chunk_id == b"data":
            pcm = body
        offset += 8 + size + (size & 1)  # chunks are word-aligned
    if fmt is None or pcm is None:
        raise ClientError(f"{path}: a WAV file needs a fmt and a data chunk")
    tag, channels, rate, bits = fmt
    if tag != _RIFF_PCM:
        raise ClientError(
            f"{path}: only PCM WAV files can be sent (this one is not integer PCM); "
            f"convert it first, e.g.: sox {path} -b 16 out.wav"
        )
    if bits % 8 or not 8 <= bits <= 32:
        raise ClientError(f"{path}: {bits}-bit samples are not supported")
    width = bits // 8
    pcm = pcm[: len(pcm) - len(pcm) % (width * channels)]
    if width == 1:
        unsigned = np.frombuffer(pcm, dtype=np.uint8).astype(np.int16)
        pcm = ((unsigned - 128) << 8).astype("<i2").tobytes()
        width = 2
    audio = WavAudio(PcmFormat(rate=rate, width=width, channels=channels), pcm)
    if audio.fmt.channels < 1 or audio.fmt.rate < 1:
        raise ClientError(f"{path}: the WAV header is damaged (rate {rate}, {channels} channels)")
    return audio


def blocks_of(pcm: bytes, fmt: PcmFormat, chunk_ms: int) -> Iterable[bytes]:
    step = max(1, fmt.rate * chunk_ms // 1000) * fmt.frame_bytes
    return (pcm[i : i + step] for i in range(0, len(pcm), step))


async def paced(blocks: Iterable[bytes], fmt: PcmFormat, realtime: bool) -> AsyncIterator[bytes]:
    """Yield blocks at once, or as a live source would: on a clock, never drifting."""
    start = time.monotonic()
    sent = 0.0
    for block in blocks:
        if realtime:
            delay = start + sent - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
        yield block
        sent += len(block) / (fmt.rate * fmt.frame_bytes)


# ------------------------------------------------------------------------------- display


class Progress:
    """Progress on stderr: one live line on a terminal, plain lines in a log or a pipe."""

    def __init__(self, stream: TextIO, enabled: bool = True) -> None:
        self._stream = stream
        self._enabled = enabled
        self._live = enabled and stream.isatty()
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._line = ""
        self.sent_s = 0.0

    def _elapsed(self) -> float:
        return time.monotonic() - self._start

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self._live or (not force and now - self._last_draw < 0.1):
            return
        self._last_draw = now
        status = f"sent {self.sent_s:5.1f} s of audio | {self._elapsed():5.1f} s elapsed"
        if self._line:
            status += f" | {self._line}"
        width = 120
        self._stream.write("\r\x1b[K" + status[:width])
        self._stream.flush()

    def _print(self, text: str) -> None:
        if self._live:
            self._stream.write("\r\x1b[K")
        self._stream.write(text + "\n")
        self._stream.flush()

    def audio(self, seconds: float) -> None:
        self.sent_s += seconds
        self._draw()

    def partial(self, text: str) -> None:
        if not self._enabled or not text:
            return
        if self._live:
            self._line = f"… {text}"
            self._draw(force=True)
        else:
            self._print(f"partial: {text}")

    def note(self, text: str) -> None:
        if self._enabled:
            self._print(text)
            self._draw(force=True)

    def audio_done(self, reason: str = "") -> None:
        why = f" ({reason})" if reason else ""
        self.note(f"sent {self.sent_s:.2f} s of audio in {self._elapsed():.2f} s{why}")

    def finish(self, text: str) -> None:
        if self._enabled:
            self._print(f"{text} after {self._elapsed():.2f} s")


# ------------------------------------------------------------------------------- the exchange


@dataclass
class Outcome:
    """What the server answered."""

    text: str | None = None
    language: str | None = None
    error_text: str | None = None
    error_code: str | None = None
    partials: list[str] = field(default_factory=list)


async def _read_answer(client: AsyncClient, progress: Progress, outcome: Outcome) -> None:
    while True:
        event = await client.read_event()
        if event is None:
            return
        data: dict[str, Any] = event.data or {}
        if event.type == "transcript-chunk":
            text = str(data.get("text") or "")
            outcome.partials.append(text)
            progress.partial(text)
        elif event.type == "transcript":
            outcome.text = str(data.get("text") or "")
            language = data.get("language")
            outcome.language = str(language) if language else None
            return
        elif event.type == "error":
            outcome.error_text = str(data.get("text") or "error")
            code = data.get("code")
            outcome.error_code = str(code) if code else None
            return


def _connect(uri: str) -> AsyncClient:
    try:
        return wyoming_client(uri)
    except ValueError as err:
        raise ClientError(f"bad --uri: {err}") from None


async def transcribe(
    uri: str,
    fmt: PcmFormat,
    blocks: AsyncIterable[bytes],
    *,
    language: str | None,
    progress: Progress,
    timeout_s: float,
    describe_stop: Callable[[], str] = lambda: "",
) -> Outcome:
    """One request: send ``blocks`` while reading the answer; stop sending on an early answer."""
    client = _connect(uri)
    try:
        await client.connect()
    except OSError as err:
        raise ClientError(f"cannot connect to {uri}: {describe_failure(err)}") from None
    outcome = Outcome()
    reader = asyncio.create_task(_read_answer(client, progress, outcome))
    try:
        events: list[Event] = [
            Transcribe(language=language).event(),
            AudioStart(rate=fmt.rate, width=fmt.width, channels=fmt.channels).event(),
        ]
        for event in events:
            await client.write_event(event)
        bytes_per_s = fmt.rate * fmt.frame_bytes
        stopped_early = False
        async for block in blocks:
            if reader.done():
                stopped_early = True
                break
            chunk = AudioChunk(rate=fmt.rate, width=fmt.width, channels=fmt.channels, audio=block)
            await client.write_event(chunk.event())
            progress.audio(len(block) / bytes_per_s)
        if not stopped_early:
            await client.write_event(AudioStop().event())
        early = "the server answered early" if outcome.text or outcome.error_text else "cut off"
        progress.audio_done(early if stopped_early else describe_stop())
    except (ConnectionError, OSError):
        # The server hung up while we were sending; its reason, if any, is in the answer.
        pass
    try:
        async with asyncio.timeout(timeout_s):
            await reader
    except TimeoutError:
        raise ClientError(f"no transcript from {uri} within {timeout_s:g} s", EXIT_SERVER) from None
    except (ConnectionError, OSError) as err:
        raise ClientError(
            f"connection to {uri} lost: {describe_failure(err)}", EXIT_SERVER
        ) from None
    finally:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
        with contextlib.suppress(Exception):
            await client.disconnect()
    return outcome


# ------------------------------------------------------------------------------- microphone


class EndOfSpeech:
    """Decides when a live recording is over: at the first end of speech after speech was
    heard (silence before speaking never ends it), or at the time limit.

    Pure: feed it the blocks as recorded, in any format; it runs the project's VAD gate on a
    16 kHz mono copy, so the same decision is tested with recorded speech and used live.
    """

    def __init__(self, fmt: PcmFormat, gate: VadGate, max_seconds: float | None) -> None:
        self._converter = AudioConverter(fmt)
        self._gate = gate
        self._bytes_per_s = fmt.rate * fmt.frame_bytes
        self._max_bytes = None if max_seconds is None else int(max_seconds * self._bytes_per_s)
        self._seen_bytes = 0
        self.heard_speech = False
        self.reason: str | None = None

    @property
    def seconds(self) -> float:
        return self._seen_bytes / self._bytes_per_s

    def feed(self, block: bytes) -> bool:
        """Take the next block; True when recording should stop after it (see ``reason``)."""
        if self.reason is not None:
            return True
        self._seen_bytes += len(block)
        for event in self._gate.process(self._converter.convert(block)):
            if isinstance(event, SpeechStart):
                self.heard_speech = True
            elif isinstance(event, SpeechEnd) and self.heard_speech:
                self.reason = "end of speech" if event.reason == "silence" else event.reason
        limit = self._max_bytes
        if self.reason is None and limit is not None and self._seen_bytes >= limit:
            self.reason = "time limit" if self.heard_speech else "time limit, no speech heard"
        return self.reason is not None


async def until_end_of_speech(
    blocks: AsyncIterable[bytes] | Iterable[bytes], endpoint: EndOfSpeech
) -> AsyncIterator[bytes]:
    """Pass ``blocks`` through (all of them: the server decides what is speech) until
    ``endpoint`` says the speaker is done. Any iterator works, so recorded speech can stand in
    for the microphone."""
    if isinstance(blocks, AsyncIterable):
        async for block in blocks:
            yield block
            if endpoint.feed(block):
                return
    else:
        for block in blocks:
            yield block
            if endpoint.feed(block):
                return


def default_gate(vad: str, end_silence_s: float) -> VadGate:
    from .vad.engines import create_engine

    config = GateConfig(pre_roll_ms=0, hangover_ms=int(end_silence_s * 1000))
    return VadGate(create_engine(vad), config)


MicStream = tuple[PcmFormat, AsyncIterator[bytes]]
Microphone = Callable[[str | int | None], contextlib.AbstractAsyncContextManager[MicStream]]
"""Opens an input device: the format it records in and its blocks of audio."""


@contextlib.asynccontextmanager
async def sounddevice_microphone(
    device: str | int | None,
) -> AsyncIterator[MicStream]:
    """The local microphone through PortAudio: 16 kHz mono s16, or the device's own rate if it
    refuses 16 kHz (the server converts; the VAD gets a converted copy)."""
    try:
        import sounddevice as sd
    except (ImportError, OSError) as err:
        raise ClientError(
            f"no audio input: {err} (install PortAudio, e.g. apt-get install libportaudio2)"
        ) from None
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes] = asyncio.Queue()

    def callback(data: Any, frames: int, time_info: Any, status: Any) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, bytes(data))

    def open_stream(rate: int) -> Any:
        return sd.RawInputStream(
            samplerate=rate,
            blocksize=rate * MIC_BLOCK_MS // 1000,
            device=device,
            channels=1,
            dtype="int16",
            callback=callback,
        )

    try:
        try:
            stream = open_stream(MIC_RATE)
            rate = MIC_RATE
        except sd.PortAudioError as err:
            if "sample rate" not in str(err).lower():
                raise
            info = sd.query_devices(device, "input")
            rate = int(info["default_samplerate"])
            stream = open_stream(rate)
        stream.start()
    except (sd.PortAudioError, ValueError) as err:
        which = f"device {device!r}" if device is not None else "the default input device"
        raise ClientError(
            f"cannot record from {which}: {err} "
            "(list the devices with: python -m sounddevice; pick one with --device)"
        ) from None

    async def blocks() -> AsyncIterator[bytes]:
        while True:
            yield await queue.get()

    try:
        yield PcmFormat(rate=rate, width=2, channels=1), blocks()
    finally:
        with contextlib.suppress(Exception):
            # abort, not stop: stop waits for capture buffers to drain, which never happens
            # with some ALSA plugins (PulseAudio's), and what is still buffered is not wanted.
            stream.abort()
            stream.close()


# ------------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Transcribe a WAV file, or the microphone, with any Wyoming speech-to-text "
        "server. The text goes to stdout; progress and partial results to stderr.",
    )
    parser.add_argument("file", nargs="?", type=Path, help="PCM WAV file (any rate/width/channels)")
    parser.add_argument(
        "--uri", type=uri_type(), default=DEFAULT_URI, help="server: tcp://HOST:PORT or unix://PATH"
    )
    parser.add_argument("--language", default=None, help="language to ask for, e.g. en or en-US")
    parser.add_argument(
        "--realtime", action="store_true", help="send the file at real-time pace, as a live source"
    )
    parser.add_argument(
        "--chunk-ms", type=int, default=10, help="audio per chunk event (default 10, as HA)"
    )
    parser.add_argument("--mic", action="store_true", help="record from the microphone instead")
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help=f"record at most this long (default {DEFAULT_MIC_SECONDS:g})",
    )
    parser.add_argument("--device", default=None, help="input device name or number (--mic)")
    parser.add_argument(
        "--vad", default="silero", choices=("silero", "webrtc"), help="end-of-speech detector"
    )
    parser.add_argument(
        "--end-silence",
        type=float,
        default=DEFAULT_END_SILENCE_S,
        help=f"seconds of silence that end speech (default {DEFAULT_END_SILENCE_S:g})",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the transcript"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    parser.add_version()
    return parser


async def amain(
    argv: Sequence[str] | None = None,
    *,
    microphone: Microphone = sounddevice_microphone,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """The whole command; ``microphone`` is the seam tests use to play recorded speech."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.mic == (args.file is not None):
        parser.error("give a WAV file or --mic (one of them)")
    if args.chunk_ms <= 0 or args.timeout <= 0 or args.end_silence <= 0:
        parser.error("--chunk-ms, --timeout and --end-silence must be positive")
    progress = Progress(err, enabled=not args.quiet)
    try:
        if args.mic:
            device = int(args.device) if str(args.device).isdigit() else args.device
            seconds = DEFAULT_MIC_SECONDS if args.seconds is None else args.seconds
            async with microphone(device) as (fmt, recording):
                endpoint = EndOfSpeech(fmt, default_gate(args.vad, args.end_silence), seconds)
                progress.note(f"listening ({fmt.rate} Hz); speak now, stop talking to finish")
                outcome = await transcribe(
                    args.uri,
                    fmt,
                    until_end_of_speech(recording, endpoint),
                    language=args.language,
                    progress=progress,
                    timeout_s=args.timeout,
                    describe_stop=lambda: endpoint.reason or "",
                )
        else:
            audio = read_wav(args.file)
            if args.seconds is not None:
                keep = int(args.seconds * audio.fmt.rate) * audio.fmt.frame_bytes
                audio = WavAudio(audio.fmt, audio.pcm[:keep])
            progress.note(
                f"{args.file}: {audio.seconds:.2f} s, {audio.fmt.rate} Hz, "
                f"{audio.fmt.width * 8}-bit, {audio.fmt.channels} channel(s)"
            )
            outcome = await transcribe(
                args.uri,
                audio.fmt,
                paced(blocks_of(audio.pcm, audio.fmt, args.chunk_ms), audio.fmt, args.realtime),
                language=args.language,
                progress=progress,
                timeout_s=args.timeout,
            )
    except ClientError as error:
        print(f"{PROG}: {error}", file=err)
        return error.code
    if outcome.error_text is not None:
        code = f" [{outcome.error_code}]" if outcome.error_code else ""
        print(f"{PROG}: server error{code}: {outcome.error_text}", file=err)
        return EXIT_SERVER
    if outcome.text is None:
        print(f"{PROG}: the server closed the connection without a transcript", file=err)
        return EXIT_SERVER
    if not outcome.text.strip():
        print(
            f"{PROG}: no text recognized: the server answered with an empty transcript "
            "(a server that gates audio with a voice-activity detector heard no speech)",
            file=err,
        )
        return EXIT_EMPTY
    language = f" ({outcome.language})" if outcome.language else ""
    progress.finish(f"transcript{language}")
    print(outcome.text, file=out)
    out.flush()
    return EXIT_OK


def run() -> None:
    run_main(PROG, lambda: asyncio.run(amain()))


if __name__ == "__main__":
    run()
