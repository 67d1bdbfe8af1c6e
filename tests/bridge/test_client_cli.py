"""``wyoming-lightning-client``: files and the microphone, against the real server and emulator.

The microphone is exercised three ways, none needing hardware: the end-of-speech decision on the
recorded speech set (the seam: any iterator of blocks stands in for the device); the whole
command with recorded blocks injected as the microphone; and, when PulseAudio is installed,
the real ``sounddevice`` path reading a virtual PulseAudio microphone fed from a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import socket
import struct
import subprocess
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest
from wyoming.event import Event, async_read_event, async_write_event

from tests.kit.bridge import bridge_port, bridge_settings, running_bridge
from tests.kit.paths import ROOT
from tests.kit.process import run_module
from tests.kit.speech_data import load_speech, with_silence
from wyoming_lightning.core.audio import PcmFormat
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.emulator.tones import encode_phrase, silence
from wyoming_lightning.settings.config import Secret
from wyoming_lightning.transcribe_cli.__main__ import amain
from wyoming_lightning.transcribe_cli.mic import (
    EndOfSpeech,
    Microphone,
    MicStream,
    default_gate,
    sounddevice_microphone,
    until_end_of_speech,
)
from wyoming_lightning.transcribe_cli.status import (
    EXIT_EMPTY,
    EXIT_LOCAL,
    EXIT_OK,
    EXIT_SERVER,
    ClientError,
)
from wyoming_lightning.transcribe_cli.wav import blocks_of, read_wav

PHRASE = "one two three"
MONO16 = PcmFormat(16000, 2, 1)


def write_wav(path: Path, pcm: bytes, rate: int = 16000, width: int = 2, channels: int = 1) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(channels)
        out.setsampwidth(width)
        out.setframerate(rate)
        out.writeframes(pcm)
    return path


def tone_audio() -> bytes:
    return silence(300) + encode_phrase(PHRASE) + silence(900)


async def run_client(*argv: str, **kwargs: object) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = await amain(list(argv), stdout=out, stderr=err, **kwargs)  # type: ignore[arg-type]
    return code, out.getvalue(), err.getvalue()


# ------------------------------------------------------------------------------- files


async def test_file_end_to_end_as_a_process(emulator: EmulatorServer, tmp_path: Path) -> None:
    """The console command: final text alone on stdout, progress on stderr, exit 0."""
    pcm = tone_audio()
    seconds = len(pcm) / 32000
    wav = write_wav(tmp_path / "x.wav", pcm)
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        ran = await run_module(
            "wyoming_lightning.transcribe_cli",
            str(wav),
            "--uri",
            f"tcp://127.0.0.1:{bridge_port(server)}",
            "--language",
            "en-US",
        )
    assert ran.code == EXIT_OK, ran.stderr
    assert ran.stdout == PHRASE + "\n"
    log = ran.stderr
    assert f"x.wav: {seconds:.2f} s, 16000 Hz, 16-bit, 1 channel(s)" in log
    assert f"sent {seconds:.2f} s of audio" in log
    assert "transcript (en) after" in log
    assert emulator.sessions[-1].params["language"] == "en"


async def test_partials_go_to_stderr(emulator: EmulatorServer, tmp_path: Path) -> None:
    pcm = silence(300) + encode_phrase("four five") + silence(1500) + encode_phrase("six")
    wav = write_wav(tmp_path / "x.wav", pcm + silence(900))
    async with running_bridge(bridge_settings(emulator.pulse_url)) as server:
        code, out, err = await run_client(
            str(wav), "--uri", f"tcp://127.0.0.1:{server.sockets[0][1]}"
        )
    assert code == EXIT_OK
    assert out == "four five six\n"
    partials = [line.removeprefix("partial: ") for line in err.splitlines() if "partial:" in line]
    assert partials, err
    assert "".join(partials).split() == ["four", "five", "six"]


async def test_native_format_is_sent_unchanged(tmp_path: Path) -> None:
    """Against any Wyoming server: a 48 kHz stereo 24-bit file goes out as exactly that."""
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, size=48000 * 6 // 2, dtype=np.uint8).tobytes()  # 0.5 s
    wav = write_wav(tmp_path / "hi.wav", frames, rate=48000, width=3, channels=2)
    received: list[tuple[str, dict[str, object], bytes]] = []

    async def fake_asr(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (event := await async_read_event(reader)) is not None:
            received.append((event.type, dict(event.data), event.payload or b""))
            if event.type == "audio-stop":
                await async_write_event(
                    Event("transcript", {"text": "fake words", "language": "xx"}), writer
                )
                break
        writer.close()

    server = await asyncio.start_server(fake_asr, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        code, out, _err = await run_client(
            str(wav), "--uri", f"tcp://127.0.0.1:{port}", "--chunk-ms", "20"
        )
    finally:
        server.close()
        await server.wait_closed()
    assert code == EXIT_OK and out == "fake words\n"
    types = [t for t, _, _ in received]
    assert types[0] == "transcribe" and types[1] == "audio-start" and types[-1] == "audio-stop"
    assert received[1][1] == {"rate": 48000, "width": 3, "channels": 2} | {
        k: v for k, v in received[1][1].items() if k == "timestamp"
    }
    chunks = [(data, payload) for t, data, payload in received if t == "audio-chunk"]
    assert b"".join(p for _, p in chunks) == frames
    assert all(len(p) == 48000 * 6 * 20 // 1000 for _, p in chunks[:-1])
    assert all((d["rate"], d["width"], d["channels"]) == (48000, 3, 2) for d, _ in chunks)


async def test_a_resampled_file_is_still_understood(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """44.1 kHz stereo in, the server converts: the words survive the round trip."""
    import soxr

    mono = np.frombuffer(tone_audio(), dtype="<i2").astype(np.float32) / 32768
    high = soxr.resample(mono, 16000, 44100)
    stereo = np.repeat((high * 32767).astype("<i2"), 2).tobytes()
    wav = write_wav(tmp_path / "cd.wav", stereo, rate=44100, channels=2)
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        code, out, err = await run_client(
            str(wav), "--uri", f"tcp://127.0.0.1:{bridge_port(server)}"
        )
    assert code == EXIT_OK, err
    assert out == PHRASE + "\n"


async def test_realtime_pacing_gives_the_same_answer(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    wav = write_wav(tmp_path / "x.wav", silence(100) + encode_phrase("nine") + silence(900))
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        code, out, _ = await run_client(
            str(wav), "--realtime", "--uri", f"tcp://127.0.0.1:{bridge_port(server)}"
        )
    assert (code, out) == (EXIT_OK, "nine\n")


# ------------------------------------------------------------------------------- errors


async def test_server_error_exits_1_with_its_text(emulator: EmulatorServer, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "x.wav", tone_audio())
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        code, out, err = await run_client(
            str(wav), "--language", "xx", "--uri", f"tcp://127.0.0.1:{bridge_port(server)}"
        )
    assert code == EXIT_SERVER
    assert out == ""
    assert "server error [language]: language 'xx' is not offered by the service" in err
    assert "Traceback" not in err


async def test_empty_transcript_exits_3_and_says_so(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """Tones are not speech to silero: the server answers empty text, and the client must not
    exit 0 with nothing said (the five-minute walkthrough without --vad webrtc)."""
    wav = write_wav(tmp_path / "x.wav", tone_audio())
    async with running_bridge(bridge_settings(emulator.lightning_url, vad="silero")) as server:
        code, out, err = await run_client(
            str(wav), "-q", "--uri", f"tcp://127.0.0.1:{bridge_port(server)}"
        )
    assert (code, out) == (EXIT_EMPTY, "")
    assert err == (
        "wyoming-lightning-client: no text recognized: the server answered with an empty "
        "transcript (a server that gates audio with a voice-activity detector heard no speech)\n"
    )
    # Lightning opens its session with the first chunk (unbilled): no audio may reach it.
    heard = [s.audio_bytes_received for s in emulator.sessions]
    assert not any(heard), "silero let tones through: the test proves nothing"


async def test_rejected_key_is_an_auth_error(emulator: EmulatorServer, tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "x.wav", tone_audio())
    settings = bridge_settings(emulator.lightning_url, api_key=Secret("wrong-key"))
    async with running_bridge(settings) as server:
        code, out, err = await run_client(
            str(wav), "--uri", f"tcp://127.0.0.1:{bridge_port(server)}"
        )
    assert code == EXIT_SERVER and out == ""
    assert "server error [auth]" in err


async def test_connection_refused_is_one_line(tmp_path: Path) -> None:
    wav = write_wav(tmp_path / "x.wav", tone_audio())
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        code, out, err = await run_client(str(wav), "-q", "--uri", f"tcp://127.0.0.1:{port}")
    assert code == EXIT_LOCAL and out == ""
    expected = f"cannot connect to tcp://127.0.0.1:{port}: connection refused"
    assert err == f"wyoming-lightning-client: {expected}\n"


def riff_wave(fmt: bytes, data: bytes, before_data: bytes = b"") -> bytes:
    """A WAV file built by hand, for the formats Python's ``wave`` module cannot write."""
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + before_data
    body += b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


async def test_float_wav_is_refused_with_advice(tmp_path: Path) -> None:
    path = tmp_path / "float.wav"
    data = np.zeros(1600, dtype="<f4").tobytes()
    fmt = struct.pack("<HHIIHH", 3, 1, 16000, 64000, 4, 32)
    path.write_bytes(riff_wave(fmt, data))
    code, out, err = await run_client(str(path))
    assert code == EXIT_LOCAL and out == ""
    assert "only PCM WAV files" in err and "sox" in err


def test_extensible_and_8_bit_wavs_are_read(tmp_path: Path) -> None:
    """WAVE_FORMAT_EXTENSIBLE (Python 3.11's wave module refuses it) and unsigned 8-bit."""
    pcm = bytes(range(6)) * 100  # 24-bit stereo: 100 frames of 6 bytes
    fmt = struct.pack("<HHIIHH", 0xFFFE, 2, 22050, 22050 * 6, 6, 24)
    pcm_guid = struct.pack("<H", 1) + b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"
    fmt += struct.pack("<HHI", 22, 24, 3) + pcm_guid
    path = tmp_path / "ext.wav"
    odd_chunk = b"LIST" + struct.pack("<I", 3) + b"abc\x00"  # an odd-sized chunk, padded
    path.write_bytes(riff_wave(fmt, pcm, before_data=odd_chunk))
    audio = read_wav(path)
    assert audio.fmt == PcmFormat(22050, 3, 2)
    assert audio.pcm == pcm

    eight = write_wav(tmp_path / "u8.wav", bytes([0, 128, 255]), width=1)
    audio = read_wav(eight)
    assert audio.fmt == PcmFormat(16000, 2, 1)
    assert np.frombuffer(audio.pcm, dtype="<i2").tolist() == [-32768, 0, 127 * 256]


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        asyncio.run(amain([]))
    assert exit_info.value.code == 2
    assert "give a WAV file or --mic" in capsys.readouterr().err


# ------------------------------------------------------------------------------- microphone


@pytest.mark.parametrize("sample", load_speech(), ids=lambda s: s.name)
async def test_recording_stops_at_the_end_of_real_speech(sample: object) -> None:
    """Recorded commands stand in for the microphone: recording ends after the speaker stops,
    never cutting speech, long before the trailing silence would run out."""
    from tests.kit.speech_data import SpeechSample

    assert isinstance(sample, SpeechSample)
    lead_s, trail_s = 1.0, 5.0
    pcm = with_silence(sample.pcm, lead_s, trail_s)
    endpoint = EndOfSpeech(MONO16, default_gate("silero", 0.7), max_seconds=15)
    sent = b"".join([b async for b in until_end_of_speech(blocks_of(pcm, MONO16, 30), endpoint)])
    assert endpoint.reason == "end of speech"
    assert pcm.startswith(sent)
    heard = len(sent) / 32000
    # The whole command and then a pause (0.7 s after the last frame silero calls speech; a
    # quiet final consonant may end a little before the file does), and no more than that.
    assert heard >= lead_s + sample.seconds + 0.5, "speech cut, or stopped without a pause"
    assert heard <= lead_s + sample.seconds + 1.5, "did not stop at the end of speech"


async def test_silence_before_speech_does_not_end_recording() -> None:
    endpoint = EndOfSpeech(MONO16, default_gate("silero", 0.7), max_seconds=3)
    sent = [b async for b in until_end_of_speech(blocks_of(silence(10_000), MONO16, 30), endpoint)]
    assert endpoint.reason == "time limit, no speech heard"
    assert sum(map(len, sent)) == 3 * 32000


async def test_time_limit_cuts_endless_speech() -> None:
    speech = b"".join(s.pcm for s in load_speech())  # ~17 s with no pause long enough
    endpoint = EndOfSpeech(MONO16, default_gate("webrtc", 2.0), max_seconds=4)
    sent = [b async for b in until_end_of_speech(blocks_of(speech, MONO16, 30), endpoint)]
    assert endpoint.reason == "time limit" and endpoint.heard_speech
    assert 4 * 32000 <= sum(map(len, sent)) < 4 * 32000 + 960


def recorded_microphone(pcm: bytes, fmt: PcmFormat = MONO16, block_ms: int = 30) -> Microphone:
    """A microphone that plays ``pcm``: what the client sees from the device, minus the device."""

    @contextlib.asynccontextmanager
    async def open_mic(device: str | int | None) -> AsyncIterator[MicStream]:
        async def blocks() -> AsyncIterator[bytes]:
            for block in blocks_of(pcm, fmt, block_ms):
                yield block

        yield fmt, blocks()

    return open_mic


async def test_mic_mode_end_to_end(emulator: EmulatorServer) -> None:
    """--mic through the server: stops at the end of speech, so the service never receives the
    trailing silence, and prints the text."""
    pcm = silence(500) + encode_phrase(PHRASE) + silence(6000)
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        code, out, err = await run_client(
            "--mic",
            "--vad",
            "webrtc",
            "--uri",
            f"tcp://127.0.0.1:{bridge_port(server)}",
            microphone=recorded_microphone(pcm),
        )
    assert code == EXIT_OK, err
    assert out == PHRASE + "\n"
    assert "(end of speech)" in err
    received = sum(s.audio_bytes_received for s in emulator.sessions)
    assert 0 < received < len(pcm) - 4 * 32000


@pytest.mark.slow
async def test_mic_real_speech_through_whisper(whisper_emulator: EmulatorServer) -> None:
    """A real spoken command, silero deciding when it ended, Whisper recognizing it."""
    sample = next(s for s in load_speech() if s.name == "what_time")
    pcm = with_silence(sample.pcm, 0.5, 4.0)
    settings = bridge_settings(
        whisper_emulator.lightning_url, final_timeout_s=60.0, response_timeout_s=120.0
    )
    async with running_bridge(settings) as server:
        code, out, err = await run_client(
            "--mic",
            "--uri",
            f"tcp://127.0.0.1:{bridge_port(server)}",
            microphone=recorded_microphone(pcm),
        )
    assert code == EXIT_OK, err
    words = out.lower().replace("?", "").replace(".", "").split()
    assert words == sample.text.split()


async def test_a_missing_input_device_is_one_clear_line() -> None:
    code, out, err = await run_client("--mic", "--device", "no-such-device-xyz", "-q")
    assert code == EXIT_LOCAL and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("wyoming-lightning-client: ")
    assert "no-such-device-xyz" in lines[0] or "PortAudio" in lines[0]


async def test_sounddevice_errors_are_client_errors() -> None:
    with pytest.raises(ClientError) as caught:
        async with sounddevice_microphone("no-such-device-xyz"):
            pass
    assert caught.value.code == EXIT_LOCAL


# ------------------------------------------------------------------------------- PulseAudio


def _portaudio_missing() -> str | None:
    try:
        import sounddevice  # noqa: F401
    except OSError as err:
        return f"PortAudio is not installed ({err}); apt-get install libportaudio2"
    return None


class PulseAudio:
    """A private PulseAudio daemon whose default source plays what is written to a FIFO."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.socket = directory / "native"
        self.fifo = directory / "mic.fifo"
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        script = self.dir / "default.pa"
        script.write_text(
            f"load-module module-native-protocol-unix auth-anonymous=1 socket={self.socket}\n"
            f"load-module module-pipe-source source_name=testmic file={self.fifo} "
            "format=s16le rate=16000 channels=1\n"
            "set-default-source testmic\n"
        )
        env = {**os.environ, "HOME": str(self.dir), "XDG_RUNTIME_DIR": str(self.dir)}
        self.process = await asyncio.create_subprocess_exec(
            "pulseaudio",
            "-n",
            "-F",
            str(script),
            "--daemonize=no",
            "--exit-idle-time=-1",
            "--use-pid-file=no",
            "--log-target=stderr",
            "--log-level=info",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        assert self.process.stderr is not None
        log: list[str] = []
        async with asyncio.timeout(30):
            while b"Daemon startup complete" not in (line := await self.process.stderr.readline()):
                if not line:
                    raise RuntimeError("pulseaudio did not start:\n" + "".join(log))
                log.append(line.decode(errors="replace"))
        # Keep draining its log so it never blocks on a full pipe.
        self._drain = asyncio.create_task(self.process.stderr.read())

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await self.process.wait()

    def play(self, pcm: bytes) -> None:
        """Blocking: the source takes the audio in real time."""
        with contextlib.suppress(BrokenPipeError), open(self.fifo, "wb") as fifo:
            fifo.write(pcm)


@pytest.fixture
async def pulse(tmp_path: Path) -> AsyncIterator[PulseAudio]:
    if shutil.which("pulseaudio") is None:
        pytest.skip("PulseAudio is not installed (apt-get install pulseaudio libasound2-plugins)")
    missing = _portaudio_missing()
    if missing:
        pytest.skip(missing)
    daemon = PulseAudio(tmp_path)
    await daemon.start()
    try:
        yield daemon
    finally:
        await daemon.stop()


async def test_real_microphone_path_through_pulseaudio(
    pulse: PulseAudio, emulator: EmulatorServer
) -> None:
    """sounddevice -> PortAudio -> ALSA's pulse plugin -> a PulseAudio source fed from a file."""
    pcm = silence(300) + encode_phrase(PHRASE) + silence(2500)
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        env = {**os.environ, "PULSE_SERVER": f"unix:{pulse.socket}"}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "wyoming_lightning.transcribe_cli",
            "--mic",
            "--device",
            "pulse",
            "--vad",
            "webrtc",
            "--seconds",
            "20",
            "--uri",
            f"tcp://127.0.0.1:{bridge_port(server)}",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert process.stderr is not None and process.stdout is not None
        log: list[str] = []
        async with asyncio.timeout(60):
            while b"listening" not in (line := await process.stderr.readline()):
                log.append(line.decode())
                if not line:
                    break
            assert process.returncode is None, "".join(log)
            player = asyncio.get_running_loop().run_in_executor(None, pulse.play, pcm)
            out, err = await process.communicate()
            await player
    assert process.returncode == EXIT_OK, "".join(log) + err.decode()
    assert out.decode() == PHRASE + "\n"
    assert "(end of speech)" in err.decode()


async def _client_with_stand_in(
    tmp_path: Path, sounddevice_source: str, *args: str
) -> tuple[int | None, bytes, bytes]:
    """The client run with ``sounddevice`` replaced by a stand-in module on ``PYTHONPATH``."""
    (tmp_path / "sounddevice.py").write_text(sounddevice_source)
    env = {**os.environ, "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    ran = await run_module("wyoming_lightning.transcribe_cli", *args, env=env)
    return ran.code, ran.stdout.encode(), ran.stderr.encode()


async def test_missing_portaudio_is_one_clear_line(tmp_path: Path) -> None:
    """sounddevice raises OSError at import when the PortAudio library is absent; a stand-in
    module that does exactly that shows what the user sees on such a machine."""
    returncode, out, err = await _client_with_stand_in(
        tmp_path, 'raise OSError("PortAudio library not found")\n', "--mic"
    )
    assert returncode == EXIT_LOCAL and out == b""
    assert err.decode() == (
        "wyoming-lightning-client: no audio input: PortAudio library not found "
        "(install PortAudio, e.g. apt-get install libportaudio2)\n"
    )


async def test_mic_without_the_mic_extra_is_one_clear_line(tmp_path: Path) -> None:
    """A server install has no ``sounddevice`` (it is the ``mic`` extra). A stand-in module that
    fails the way an absent one does (ModuleNotFoundError naming it) shows what such a user
    sees: the package to install, in one line, and exit status 2, before any connection."""
    returncode, out, err = await _client_with_stand_in(
        tmp_path,
        "raise ModuleNotFoundError(\"No module named 'sounddevice'\", name='sounddevice')\n",
        "--mic",
        "--uri",
        "tcp://127.0.0.1:9",
    )
    assert returncode == EXIT_LOCAL and out == b""
    assert err.decode() == (
        "wyoming-lightning-client: --mic needs the sounddevice package, which is not installed: "
        "pip install 'wyoming-lightning[mic]'\n"
    )


def test_a_server_install_does_not_pull_in_sounddevice() -> None:
    """sounddevice is the ``mic`` extra (and in ``dev``), not a dependency; nothing but ``--mic``
    imports it, so the server and the client's file path run without it."""
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    project = project["project"]
    assert not any(d.startswith("sounddevice") for d in project["dependencies"])
    assert any(d.startswith("sounddevice") for d in project["optional-dependencies"]["mic"])
    assert "wyoming-lightning[mic]" in project["optional-dependencies"]["dev"]
    code = (
        "import sys, wyoming_lightning.__main__, wyoming_lightning.transcribe_cli.__main__; "
        "print('sounddevice' in sys.modules)"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert shown.stdout == "False\n", shown.stderr
