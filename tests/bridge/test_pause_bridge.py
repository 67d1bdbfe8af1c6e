"""Re-recognition over loopback: real speech with a pause inside the command.

Two real recordings ("ten of clubs", "seven of clubs", the same speaker) with a pause between
them longer than the pause rule: the bridge (silero gate, today's Pulse URL) finalizes the first
part early, then the speaker goes on. With ``--re-recognize`` the bridge sends the whole command
again on the same session and its second final, not the two parts joined, is the answer;
by default (``--rejoin``) the same, the re-sent command fitting the billing bound; without
either the parts are joined. The emulator's Whisper recognizer does the hearing; the audio
is written at once (the pause rule runs on the audio clock, so the cuts do not depend on pacing).
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.kit.bridge import API_KEY, bridge_port, bridge_settings, running_bridge, transcribe
from tests.kit.human_speech import (
    HA_LEAD_S,
    HA_TRAIL_S,
    as_home_assistant_sends,
    load_human_speech,
)
from tests.kit.speech_data import concat_with_pause
from tests.kit.wer import normalise_words
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer
from wyoming_lightning.emulator.records import SessionRecord
from wyoming_lightning.settings.config import DEFAULT_VAD

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
PAUSE_S = 0.45


REJOIN_PAUSE_S = 1.5
"""A pause the gate closes in: its silence is not sent, so re-sending the first part (1.4 s)
fits the bound, the speech counted from the first speech frame (not its pre-roll). After a
1.0 s pause it no longer does since that count (the segmenter alone: no replay at 1.0 s, one
of 1.36 s at 1.5, 2.0 and 2.5 s); after the 0.45 s pause it never did."""


def command(pause_s: float = PAUSE_S) -> tuple[bytes, bytes]:
    """The whole command as Home Assistant sends it, and its first part alone."""
    clips = {c.name: c for c in load_human_speech()}
    first, second = clips["cmu_cards_001"].pcm, clips["cmu_cards_003"].pcm
    return as_home_assistant_sends(concat_with_pause(first, second, pause_s)), first


async def _run(
    re_recognize: bool, rejoin: bool = False, pause_s: float = PAUSE_S
) -> tuple[str, list[SessionRecord]]:
    pcm, _ = command(pause_s)
    config = EmulatorConfig(api_key=API_KEY, recognizer="whisper")
    async with EmulatorServer(config, host="127.0.0.1", port=0) as emulator:
        # Whisper on shared cores can take seconds per final: the bounds are not under test.
        settings = bridge_settings(
            emulator.live_url,
            vad=DEFAULT_VAD,
            re_recognize=re_recognize,
            rejoin=rejoin,
            final_timeout_s=120.0,
            response_timeout_s=120.0,
            stall_timeout_s=60.0,
        )
        async with running_bridge(settings) as server:
            answer = await transcribe(bridge_port(server), pcm)
        assert answer.error is None, answer.error
        assert answer.transcript is not None
        return answer.transcript, list(emulator.sessions)


def _finals(record: SessionRecord) -> list[str]:
    return [
        str(m.get("transcript", ""))
        for m in record.messages_sent
        if m.get("is_final") and str(m.get("transcript", "")).strip()
    ]


def _controls(record: SessionRecord) -> list[str]:
    return [json.loads(t)["type"] for t in record.text_frames_received]


def test_a_false_split_is_re_recognised_whole_and_replaces_the_first_final() -> None:
    text, records = asyncio.run(_run(re_recognize=True))
    (record,) = records  # one Pulse session settles both turns
    # Each turn is settled by its own control (finalize, or close_stream when audio-stop came
    # before the handshake), the first one before audio-stop: the pause split the command.
    assert _controls(record)[:2] in (["finalize", "finalize"], ["finalize", "close_stream"])
    finals = _finals(record)
    assert len(finals) >= 2, f"one final per turn: {finals}"
    whole = finals[-1]
    assert normalise_words(text) == normalise_words(whole), "the whole command is the answer"
    words = normalise_words(text)
    assert words.count("clubs") == 2, f"both parts once, the first not joined twice: {text!r}"
    assert "ten" in words and "seven" in words, text
    _, first = command()
    assert record.audio_bytes_received > len(first) + len(command()[0]) // 2, "re-sent audio"


def test_by_default_the_split_command_is_rejoined_within_the_bound() -> None:
    text, records = asyncio.run(_run(re_recognize=False, rejoin=True, pause_s=REJOIN_PAUSE_S))
    (record,) = records
    finals = _finals(record)
    assert len(finals) >= 2, f"the pause still split the command: {finals}"
    assert normalise_words(text) == normalise_words(finals[-1]), "the whole command is the answer"
    words = normalise_words(text)
    assert words.count("clubs") == 2 and "ten" in words and "seven" in words, text
    pcm, first = command(REJOIN_PAUSE_S)
    speech_s = len(pcm) / 32000 - HA_LEAD_S - HA_TRAIL_S  # both recordings and their pause
    assert record.audio_bytes_received > len(first), "the first part went twice"
    assert record.audio_bytes_received / 32000 <= 1.3 * speech_s + 0.5


def test_without_re_recognition_the_parts_are_joined() -> None:
    text, records = asyncio.run(_run(re_recognize=False))
    (record,) = records
    finals = _finals(record)
    assert len(finals) >= 2, finals
    assert normalise_words(text) == normalise_words(" ".join(finals))
    assert record.audio_bytes_received < len(command()[0]), "nothing sent twice"
