"""The bridge end to end: the real server on loopback, the real ``wyoming`` client, the emulator."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest
from wyoming.audio import AudioStop
from wyoming.client import AsyncTcpClient

from tests.kit.bridge import (
    API_KEY,
    Answer,
    bridge_port,
    bridge_settings,
    describe,
    read_answer,
    running_bridge,
    start_request,
    transcribe,
)
from tests.kit.speech_data import load_speech, with_silence
from tests.kit.wer import wer
from wyoming_lightning.core.languages import LIGHTNING_LANGUAGES, PULSE_LANGUAGES
from wyoming_lightning.emulator import EmulatorServer, create_recognizer
from wyoming_lightning.emulator.tones import encode, encode_phrase, silence

PHRASE = "one two three"


def urls(emu: EmulatorServer) -> dict[str, str]:
    return {"lightning": emu.lightning_url, "pulse": emu.pulse_url, "live": emu.live_url}


async def test_describe_never_waits_on_the_cloud() -> None:
    # Nothing listens at this address: describe must still answer.
    settings = bridge_settings("ws://127.0.0.1:9/api/v1/lightning/get_text")
    async with running_bridge(settings) as server:
        info = await describe(bridge_port(server))
    (program,) = info.asr
    assert program.installed and program.attribution.name == "Smallest.ai"
    assert program.version and program.supports_transcript_streaming
    (model,) = program.models
    assert model.installed and model.languages == list(LIGHTNING_LANGUAGES)


async def test_describe_lists_pulse_languages_for_a_pulse_url() -> None:
    settings = bridge_settings("wss://api.smallest.ai/waves/v1/pulse/get_text")
    async with running_bridge(settings) as server:
        info = await describe(bridge_port(server))
    assert info.asr[0].models[0].languages == list(PULSE_LANGUAGES)
    assert info.asr[0].models[0].name == "pulse"


@pytest.mark.parametrize("dialect", ["lightning", "pulse", "live"])
@pytest.mark.parametrize("vad", ["off", "webrtc"])
async def test_home_assistant_request(emulator: EmulatorServer, dialect: str, vad: str) -> None:
    pcm = silence(400) + encode_phrase(PHRASE) + silence(1500) + encode_phrase("four five")
    pcm += silence(800)
    async with running_bridge(bridge_settings(urls(emulator)[dialect], vad=vad)) as server:
        answer = await transcribe(bridge_port(server), pcm)
    assert answer.transcript == "one two three four five"
    assert answer.of("transcript")[0].data.get("language") == "en"
    assert answer.closed, "Home Assistant opens one connection per request: we close it"
    types = answer.types
    assert types[0] == "transcript-start" and types[-2:] == ["transcript", "transcript-stop"]
    chunks = "".join(e.data["text"] for e in answer.of("transcript-chunk"))
    assert chunks == answer.transcript, "the streamed chunks add up to the transcript"
    sessions = emulator.sessions
    assert sessions and all(s.params.get("sample_rate") == "16000" for s in sessions)
    if dialect == "lightning":
        assert all(s.text_frames_received[-1] == '{"type": "end"}' for s in sessions)
    else:
        assert len(sessions) == 1
        assert sessions[0].text_frames_received[-1] == '{"type": "close_stream"}'


async def test_audio_goes_up_in_frames_of_about_100_ms(emulator: EmulatorServer) -> None:
    pcm = encode_phrase("six seven eight nine")
    async with running_bridge(bridge_settings(emulator.pulse_url)) as server:
        answer = await transcribe(bridge_port(server), pcm, chunk_ms=10)
    assert answer.transcript == "six seven eight nine"
    (session,) = emulator.sessions
    sizes = session.binary_frame_sizes
    assert session.audio_bytes_received == len(pcm)
    assert max(sizes) == 3200 and len(sizes) <= len(pcm) // 3200 + 1


def _shape(rate: int, width: int, channels: int) -> bytes:
    """Re-encode tone audio into another PCM shape, as a client with that hardware would send."""
    samples = np.frombuffer(encode(PHRASE.split(), rate=rate), dtype="<i2").astype(np.float64)
    samples /= 32768.0
    inter = np.repeat(samples[:, None], channels, axis=1)
    inter[:, 1:] *= 0.5  # the other channels quieter: a real downmix, not a copy
    if width == 1:
        return ((inter * 127) + 128).astype(np.uint8).tobytes()
    if width == 2:
        return (inter * 32767).astype("<i2").tobytes()
    if width == 3:
        ints = (inter * 8388607).astype("<i4").reshape(-1)
        return b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
    return (inter * 2147483647).astype("<i4").tobytes()


@pytest.mark.parametrize(
    ("rate", "width", "channels"),
    [(8000, 1, 1), (22050, 2, 2), (44100, 3, 1), (48000, 4, 6), (32000, 2, 8), (11025, 2, 4)],
)
async def test_odd_audio_shapes_are_converted(
    emulator: EmulatorServer, rate: int, width: int, channels: int
) -> None:
    pcm = _shape(rate, width, channels)
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        answer = await transcribe(
            bridge_port(server), pcm, rate=rate, width=width, channels=channels, chunk_ms=20
        )
    assert answer.transcript == PHRASE


@pytest.mark.parametrize(
    ("rate", "width", "channels"), [(4000, 2, 1), (96000, 2, 1), (16000, 8, 1), (16000, 2, 12)]
)
async def test_unsupported_audio_shapes_get_a_clear_error(
    emulator: EmulatorServer, rate: int, width: int, channels: int
) -> None:
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        answer = await transcribe(
            bridge_port(server), bytes(960), rate=rate, width=width, channels=channels
        )
    error = answer.error
    assert error is not None and error.data["code"] == "bad_audio"
    assert "supported" in error.data["text"]
    assert answer.closed
    assert emulator.sessions == []


async def test_unsupported_language_is_a_clear_error(emulator: EmulatorServer) -> None:
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        answer = await transcribe(bridge_port(server), encode_phrase(PHRASE), language="tlh")
    assert answer.error is not None and answer.error.data["code"] == "language"
    assert "tlh" in answer.error.data["text"]
    assert answer.transcript is None and answer.closed
    assert emulator.sessions == []


async def test_language_reaches_the_service(emulator: EmulatorServer) -> None:
    async with running_bridge(bridge_settings(emulator.pulse_url)) as server:
        answer = await transcribe(bridge_port(server), encode_phrase(PHRASE), language="de-DE")
    assert answer.transcript == PHRASE
    assert answer.of("transcript")[0].data["language"] == "de"
    assert emulator.sessions[0].params["language"] == "de"


async def test_the_session_opens_while_audio_still_flows(emulator: EmulatorServer) -> None:
    """The handshake overlaps speech: the service has audio before the client says audio-stop."""
    async with running_bridge(bridge_settings(emulator.pulse_url)) as server:
        pcm = encode_phrase(PHRASE)
        client = await start_request(bridge_port(server), pcm)
        await emulator.wait_for_audio(len(pcm) // 2)
        assert emulator.sessions[0].text_frames_received == []
        await client.write_event(AudioStop().event())
        answer = await read_answer(client, until=("transcript",))
        await client.disconnect()
    assert answer.transcript == PHRASE


async def test_ping_and_unknown_events(emulator: EmulatorServer) -> None:
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        client = AsyncTcpClient("127.0.0.1", bridge_port(server))
        await client.connect()
        from wyoming.event import Event

        await client.write_event(Event("something-new", {"x": 1}))
        await client.write_event(Event("ping", {"text": "hi"}))
        pong = await client.read_event()
        await client.disconnect()
    assert pong is not None and pong.type == "pong" and pong.data.get("text") == "hi"


async def test_two_requests_at_once(emulator: EmulatorServer) -> None:
    async with running_bridge(bridge_settings(emulator.pulse_url)) as server:
        port = bridge_port(server)
        first, second = await asyncio.gather(
            transcribe(port, encode_phrase("one two")), transcribe(port, encode_phrase("nine"))
        )
    assert (first.transcript, second.transcript) == ("one two", "nine")


@pytest.mark.slow
async def test_real_speech_through_whisper(whisper_emulator: EmulatorServer) -> None:
    """Spoken commands, with silence around them, through the gate and Whisper: WER bound."""
    samples = load_speech()
    pairs: list[tuple[str, str]] = []
    # Whisper on two shared cores is far slower than the service: give it room.
    settings = bridge_settings(
        whisper_emulator.pulse_url, vad="silero", final_timeout_s=60.0, response_timeout_s=120.0
    )
    async with running_bridge(settings) as server:
        for sample in samples:
            answer: Answer = await transcribe(
                bridge_port(server), with_silence(sample.pcm, 1.0, 1.0)
            )
            assert answer.transcript is not None, answer.events
            pairs.append((sample.text, answer.transcript))
    # The same recognizer on each whole clean file, no bridge, no gate: the bridge may not lose
    # words that the recognizer itself would have got.
    recognizer = create_recognizer("whisper")
    direct = [
        (s.text, " ".join(w.text for w in recognizer.transcribe(s.pcm, "en"))) for s in samples
    ]
    score, baseline = wer(pairs), wer(direct)
    print(json.dumps({"wer": score, "direct_wer": baseline, "pairs": pairs}, indent=1))
    assert score <= baseline + 0.03, (pairs, direct)
    assert score <= 0.2, pairs


def test_api_key_is_not_in_the_settings_repr() -> None:
    settings = bridge_settings("ws://127.0.0.1:9/api/v1/lightning/get_text")
    assert API_KEY not in repr(settings) and API_KEY not in str(settings)
