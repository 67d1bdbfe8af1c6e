"""The microphone: record through ``sounddevice`` (imported only here, only for ``--mic``) and
stop when the speaker does.

``sounddevice`` is the optional ``mic`` extra (``pip install 'wyoming-lightning[mic]'``), so a
server install does not pull it (nor PortAudio) in; without it ``--mic`` says so in one line.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable
from typing import Any

from wyoming_lightning.core.audio import AudioConverter, PcmFormat
from wyoming_lightning.core.vad.events import SpeechEnd, SpeechStart
from wyoming_lightning.core.vad.gate import GateConfig, VadGate
from wyoming_lightning.transcribe_cli.status import ClientError

MIC_RATE = 16000
MIC_BLOCK_MS = 30
MIC_EXTRA_HINT = "pip install 'wyoming-lightning[mic]'"


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
    from wyoming_lightning.core.vad.engines import create_engine

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
    except ModuleNotFoundError as err:
        if err.name != "sounddevice":
            raise ClientError(f"no audio input: {err}") from None
        raise ClientError(
            f"--mic needs the sounddevice package, which is not installed: {MIC_EXTRA_HINT}"
        ) from None
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
