"""The bridge against today's Pulse, including the ways the live service differs from its spec.

The vendor's own probe saw no ``from_finalize`` on the answer to a ``finalize``, and the spec's
examples carry the text only in ``transcription``. The emulator can behave either way; the
bridge must return the exact words with one service session per request and no replay.
"""

from __future__ import annotations

import pytest

from tests.kit.bridge import API_KEY, bridge_port, bridge_settings, running_bridge, transcribe
from tests.kit.speech_data import concat_with_pause, load_speech, with_silence
from tests.kit.wer import normalise_words
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer
from wyoming_lightning.emulator.tones import encode_phrase, silence

# The same short answer said twice is two turns, not a duplicate.
TURNS = ("one two three", "nine", "nine", "four five")


def turns_pcm() -> bytes:
    pcm = silence(400)
    for phrase in TURNS:
        pcm += encode_phrase(phrase) + silence(1200)
    return pcm


@pytest.mark.parametrize(
    ("from_finalize", "text_field"),
    [(False, "alternate"), (False, "both"), (True, "transcription"), (False, "transcription")],
)
async def test_exact_text_one_session_no_replay(from_finalize: bool, text_field: str) -> None:
    config = EmulatorConfig(
        api_key=API_KEY, recognizer="tones", from_finalize=from_finalize, text_field=text_field
    )
    pcm = turns_pcm()
    async with (
        EmulatorServer(config, host="127.0.0.1", port=0) as emu,
        running_bridge(bridge_settings(emu.live_url, vad="webrtc")) as server,
    ):
        answer = await transcribe(bridge_port(server), pcm)
        await emu.wait_idle(10)
    assert answer.error is None, answer.events
    assert answer.transcript == " ".join(TURNS)
    chunks = [e.data["text"] for e in answer.of("transcript-chunk")]
    assert chunks == [TURNS[0], *(" " + t for t in TURNS[1:])], "each turn settled once, in order"
    (record,) = emu.sessions  # one service session for the request: nothing was retried
    # A finalize per pause; the last turn may be ended by close_stream instead, when the
    # audio-stop came before the handshake finished.
    frames = record.text_frames_received
    assert frames[-1] == '{"type": "close_stream"}'
    assert frames[:-1] == ['{"type": "finalize"}'] * len(frames[:-1])
    assert len(frames) - 1 in (len(TURNS) - 1, len(TURNS))
    assert record.audio_bytes_received <= len(pcm), "no audio was sent twice"
    finals = record.finals
    texts = [m.get("transcript", m.get("transcription")) for m in finals]
    assert [t for t in texts if t] == list(TURNS)
    if not from_finalize:
        assert all("from_finalize" not in m for m in record.messages_sent)
    if text_field == "alternate":
        shapes = {("transcript" in m, "transcription" in m) for m in finals}
        assert shapes == {(True, False), (False, True)}, "both single-field shapes were sent"
    assert record.params["endpointing"] == "false"
    assert record.params["finalize_on_words"] == "false", "the bridge ends turns itself"
    assert record.params["eou_timeout_ms"] == "10000", "no server final inside a turn"
    assert record.params["word_timestamps"] == "true"
    assert record.params["external_session_id"].startswith("wyoming-lightning-")


async def test_every_request_has_its_own_usage_tag(emulator: EmulatorServer) -> None:
    async with running_bridge(bridge_settings(emulator.live_url)) as server:
        for _ in range(2):
            answer = await transcribe(bridge_port(server), encode_phrase("six") + silence(300))
            assert answer.transcript == "six"
    tags = [s.params["external_session_id"] for s in emulator.sessions]
    assert len(set(tags)) == 2


async def test_the_live_url_as_the_vendor_prints_it_gets_the_model_added(
    emulator: EmulatorServer,
) -> None:
    url = emulator.base_url + "/waves/v1/stt/live"
    async with running_bridge(bridge_settings(url)) as server:
        answer = await transcribe(bridge_port(server), encode_phrase("seven") + silence(300))
    assert answer.transcript == "seven", answer.events
    assert [s.handshake_status for s in emulator.sessions] == [101]
    assert emulator.sessions[0].params["model"] == "pulse"


async def test_a_language_the_us_region_lacks_is_a_clear_error() -> None:
    config = EmulatorConfig(api_key=API_KEY, recognizer="tones", region="us")
    async with (
        EmulatorServer(config, host="127.0.0.1", port=0) as emu,
        running_bridge(bridge_settings(emu.live_url)) as server,
    ):
        answer = await transcribe(bridge_port(server), encode_phrase("one"), language="ta")
    assert answer.error is not None and answer.error.data["code"] == "language"
    assert len(emu.sessions) == 1, "a language error is not retried"


@pytest.mark.slow
async def test_real_speech_from_a_service_that_never_flags_and_sends_transcription_only() -> None:
    """Two spoken commands with a pause: Whisper behind the live service's two habits."""
    config = EmulatorConfig(
        api_key=API_KEY, recognizer="whisper", from_finalize=False, text_field="transcription"
    )
    samples = {s.name: s for s in load_speech()}
    first, second = samples["turn_on_kitchen_lights"], samples["lock_front_door"]
    pcm = with_silence(concat_with_pause(first.pcm, second.pcm, 1.5), 1.0, 1.0)
    async with EmulatorServer(config, host="127.0.0.1", port=0) as emu:
        # Whisper on two shared cores is far slower than the service: give it room.
        settings = bridge_settings(
            emu.live_url, vad="silero", final_timeout_s=60.0, response_timeout_s=120.0
        )
        async with running_bridge(settings) as server:
            answer = await transcribe(bridge_port(server), pcm)
        await emu.wait_idle(10)
    assert answer.error is None, answer.events
    assert normalise_words(answer.transcript or "") == normalise_words(
        f"{first.text} {second.text}"
    )
    (record,) = emu.sessions
    assert record.text_frames_received.count('{"type": "finalize"}') >= 1
    assert all("transcript" not in m and "from_finalize" not in m for m in record.finals)
