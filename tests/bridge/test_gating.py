"""The VAD gate inside the bridge: what reaches the service, early finalization, endpointing."""

from __future__ import annotations

import asyncio

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk

from tests.kit.bridge import (
    bridge_port,
    bridge_settings,
    describe,
    read_answer,
    running_bridge,
    start_request,
    transcribe,
)
from tests.kit.speech_data import (
    concat_with_pause,
    load_speech,
    make_noise,
    mix_noise,
    with_silence,
)
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.emulator.tones import encode_phrase, silence

BYTES_PER_SECOND = 32000


@pytest.mark.parametrize("vad", ["silero", "webrtc"])
@pytest.mark.parametrize("noise", ["silence", "white", "pink", "hum"])
async def test_noise_alone_never_opens_a_session(
    emulator: EmulatorServer, vad: str, noise: str
) -> None:
    pcm = bytes(3 * BYTES_PER_SECOND) if noise == "silence" else make_noise(3.0, -25.0, noise)  # type: ignore[arg-type]
    async with running_bridge(bridge_settings(emulator.pulse_url, vad=vad)) as server:
        answer = await transcribe(bridge_port(server), pcm)
    assert answer.transcript == ""
    assert emulator.sessions == [], "no speech: nothing billed"


@pytest.mark.parametrize("vad", ["silero", "webrtc"])
@pytest.mark.parametrize("snr", [None, 20, 10, 5])
async def test_only_speech_and_padding_is_sent(
    emulator: EmulatorServer, vad: str, snr: int | None
) -> None:
    samples = load_speech()[:4]
    async with running_bridge(bridge_settings(emulator.pulse_url, vad=vad)) as server:
        for i, sample in enumerate(samples):
            pcm = with_silence(sample.pcm, 1.5 + 0.1 * i, 2.0 - 0.1 * i)
            if snr is not None:
                pcm = mix_noise(pcm, snr, "pink", seed=i)
            answer = await transcribe(bridge_port(server), pcm)
            assert answer.transcript is not None
    sent = sum(s.audio_bytes_received for s in emulator.sessions) / BYTES_PER_SECOND
    speech = sum(s.seconds for s in samples)
    assert len(emulator.sessions) == len(samples)
    assert speech <= sent <= 1.3 * speech + 0.5 * len(samples), (sent, speech)


async def test_a_pause_settles_the_first_command_while_the_speaker_goes_on(
    emulator: EmulatorServer,
) -> None:
    """Early finalization: a finalize goes up at the pause, long before audio-stop."""
    pcm = encode_phrase("one two") + silence(1500) + encode_phrase("three") + silence(1000)
    async with running_bridge(bridge_settings(emulator.pulse_url, vad="webrtc")) as server:
        client = await start_request(bridge_port(server), pcm)
        # Before audio-stop, the first utterance's final has streamed back.
        first = await client.read_event()
        second = await client.read_event()
        assert first is not None and first.type == "transcript-start"
        assert second is not None and second.type == "transcript-chunk"
        assert second.data["text"] == "one two"
        from wyoming.audio import AudioStop

        await client.write_event(AudioStop().event())
        answer = await read_answer(client, until=("transcript",))
        await client.disconnect()
    assert answer.transcript == "one two three"
    (session,) = emulator.sessions
    assert session.text_frames_received.count('{"type": "finalize"}') >= 1


async def test_no_early_finalization_sends_one_end(emulator: EmulatorServer) -> None:
    pcm = encode_phrase("one two") + silence(1500) + encode_phrase("three") + silence(1000)
    settings = bridge_settings(emulator.lightning_url, vad="webrtc", early_finalize=False)
    async with running_bridge(settings) as server:
        answer = await transcribe(bridge_port(server), pcm)
    assert answer.transcript == "one two three"
    (session,) = emulator.sessions
    assert session.text_frames_received == ['{"type": "end"}']


async def test_seed_dialect_opens_a_new_session_when_speech_resumes(
    emulator: EmulatorServer,
) -> None:
    pcm = encode_phrase("one two") + silence(1500) + encode_phrase("three") + silence(1000)
    async with running_bridge(bridge_settings(emulator.lightning_url, vad="webrtc")) as server:
        answer = await transcribe(bridge_port(server), pcm)
    assert answer.transcript == "one two three"
    assert [s.transcript for s in emulator.sessions] == ["one two", "three"]


@pytest.mark.slow
async def test_two_spoken_commands_are_joined(whisper_emulator: EmulatorServer) -> None:
    a, b = load_speech()[0], load_speech()[6]
    pcm = with_silence(concat_with_pause(a.pcm, b.pcm, 1.5), 1.0, 1.0)
    settings = bridge_settings(
        whisper_emulator.pulse_url, vad="silero", final_timeout_s=60.0, response_timeout_s=120.0
    )
    async with running_bridge(settings) as server:
        answer = await transcribe(bridge_port(server), pcm)
    text = (answer.transcript or "").lower()
    assert "kitchen" in text and "front door" in text
    assert text.index("kitchen") < text.index("front door")
    (session,) = whisper_emulator.sessions
    assert session.text_frames_received.count('{"type": "finalize"}') >= 1, (
        "the pause settled the first"
    )


@pytest.mark.parametrize(
    ("sensitivity", "pause_ms", "expected"),
    [
        ("default", 900, "five six"),
        ("aggressive", 400, "five six"),
        ("relaxed", 1500, "five six"),
        ("relaxed", 900, "five six seven"),
        ("default", 450, "five six seven"),
    ],
)
async def test_endpointing_answers_without_audio_stop(
    emulator: EmulatorServer, sensitivity: str, pause_ms: int, expected: str
) -> None:
    """A client that never says audio-stop still gets its transcript when the command ends.

    The silence timer alone (``turn_intents`` off): with the turn judge on, a pause whose
    words have not been judged waits for them (tests/core/test_turn_end.py)."""
    settings = bridge_settings(
        emulator.pulse_url, vad="webrtc", endpointing=True, turn_intents=False
    )
    pcm = silence(300) + encode_phrase("five six") + silence(pause_ms) + encode_phrase("seven")
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        info = await describe(port)
        assert info.asr[0].requires_external_vad is False
        client = await start_request(
            port, pcm, Transcribe(language="en", vad_sensitivity=sensitivity)
        )
        # Keep "talking" silence the way a satellite streams, never sending audio-stop.
        reader = asyncio.create_task(read_answer(client, until=("transcript",)))
        for _ in range(300):
            if reader.done():
                break
            try:
                await client.write_event(AudioChunk(16000, 2, 1, bytes(320)).event())
            except (ConnectionError, OSError):
                break
            await asyncio.sleep(0)
        answer = await asyncio.wait_for(reader, 30)
        await client.disconnect()
    # A pause longer than this sensitivity's silence ends the command before "seven".
    assert answer.transcript == expected


async def test_endpointing_is_off_by_default(emulator: EmulatorServer) -> None:
    async with running_bridge(bridge_settings(emulator.pulse_url)) as server:
        info = await describe(bridge_port(server))
    assert info.asr[0].requires_external_vad is True


async def test_home_assistant_is_asked_for_untouched_audio(emulator: EmulatorServer) -> None:
    # benchmarks.ha_audio: Home Assistant's gain and noise processing bought nothing; Pulse
    # prefers untouched audio (as Home Assistant Cloud's engine declares it).
    async with running_bridge(bridge_settings(emulator.pulse_url)) as server:
        info = await describe(bridge_port(server))
    assert info.asr[0].prefers_auto_gain_enabled is False
    assert info.asr[0].prefers_noise_reduction_enabled is False
