"""Reading a client's audio late while someone speaks moves no decision (issue 27).

The server reads a stream's chunks a few at a time (``--read-batch-ms``) only while
``RequestMachine.audio_may_wait_ms`` (the segmenter's ``undecided_ms``) says that no rule can act
on the audio still to come: audio read late then reaches the segmenter late, and a decision
made on it (settling an utterance at a pause, holding a pause back, ending the turn) would be
made late. Here the server's own segmenter and gate, as ``Services`` builds them, hear real
recordings chunk by chunk as Home Assistant streams them; after every chunk, the room the
segmenter gives must hold no decision (an utterance settled, the turn ended: what the user's
wait hangs on): none in the next ``undecided_ms`` of audio. The rule
sets that allow it are tried (audio-stop from the client, the server's endpointing on its
silence timer, each VAD), and the room must be wide enough, often enough, to be worth reading
late; the turn rule, which reads the audio clock when words arrive, gives none.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest

from tests.kit import human_speech as hs
from wyoming_lightning.core.audio import PcmFormat
from wyoming_lightning.core.segmenter import EndOfTurn, Segmenter, UtteranceEnd
from wyoming_lightning.services import Services
from wyoming_lightning.settings.config import load_settings

CHUNK = 320  # 10 ms, as the cost table's Home Assistant streams
CHUNK_MS = 10
TRAIL_S = 1.5
BATCH_MS = load_settings([], {"SMALLEST_API_KEY": "k"}).read_batch_ms
DECISIONS = (UtteranceEnd, EndOfTurn)
"""What the user's wait hangs on: an utterance settled (its final), the turn ended. Holding a
pause back, an onset or speech resuming are carried out on the same audio read late, only
later: none of them is waited for."""


@dataclass
class Trace:
    room_ms: list[float]
    """``undecided_ms`` after each chunk."""
    decided: list[bool]
    """Whether feeding each chunk decided something."""
    paused: list[bool]
    """Whether each chunk ended within a pause."""


def trace(argv: list[str], pcm: bytes) -> Trace:
    """The server's segmenter (``Services.request_config``, ``new_gate``) over ``pcm`` as Home
    Assistant streams it: a short lead, 10 ms chunks, then silence until its stop."""
    services = Services(load_settings(argv, {"SMALLEST_API_KEY": "k"}))
    segmenter = Segmenter(services.request_config(None, "en"), services.new_gate())
    assert segmenter.set_format(PcmFormat(16000, 2, 1)) is None
    stream = hs.lead(pcm, hs.HA_LEAD_S) + bytes(2 * round(TRAIL_S * 16000))
    out = Trace([], [], [])
    for at in range(0, len(stream) - CHUNK + 1, CHUNK):
        segments = segmenter.feed(stream[at : at + CHUNK])
        out.decided.append(any(isinstance(s, DECISIONS) for s in segments))
        out.room_ms.append(segmenter.undecided_ms)
        out.paused.append(bool(segmenter.pause_ms))
    return out


SETUPS = {
    "audio-stop, silero": [],
    "audio-stop, webrtc": ["--vad", "webrtc"],
    "audio-stop, finalize at 300 ms": ["--finalize-after-ms", "300"],
    "endpointing, timer, silero": ["--endpointing", "--no-turn-intents"],
    "endpointing, timer, webrtc": ["--endpointing", "--no-turn-intents", "--vad", "webrtc"],
}


@pytest.mark.parametrize("argv", SETUPS.values(), ids=SETUPS.keys())
def test_no_decision_falls_in_the_audio_that_may_be_read_late(argv: list[str]) -> None:
    clips = [c for c in hs.load_human_speech() if not c.is_long]
    late_chunks = late_in_pauses = decisions = 0
    total = 0
    for clip in clips:
        t = trace(argv, clip.pcm)
        total += len(t.decided)
        decisions += sum(t.decided)
        for i, room in enumerate(t.room_ms):
            if room >= BATCH_MS:
                late_chunks += 1
                late_in_pauses += t.paused[i]
            # The chunks that may be read late after chunk i (those less than ``room`` ms
            # later; the one at ``room`` is read as it comes): none may decide anything.
            ahead = len(t.decided) if math.isinf(room) else i + math.ceil(room / CHUNK_MS)
            inside = [j for j in range(i + 1, min(ahead, len(t.decided))) if t.decided[j]]
            assert not inside, (
                f"{clip.name}: after chunk {i} the segmenter gave {room:g} ms of room, "
                f"but chunk {inside[0]} ({(inside[0] - i) * CHUNK_MS} ms later) decided"
            )
    assert decisions >= len(clips), "every clip is settled at a pause at least once"
    # Worth it: the speech and the lead of a command are most of what Home Assistant sends
    # before its stop (the trailing silence is read as it comes).
    assert late_chunks >= total // 3, f"only {late_chunks} of {total} chunks may be read late"
    assert late_in_pauses > len(clips), "pauses, before their rules act, are read late too"


def test_a_rule_shorter_than_a_batch_leaves_no_room() -> None:
    """A pause rule set shorter than the VAD's lag plus a batch: the audio is read as it comes,
    as before (the server never reads late into a decision)."""
    clip = next(c for c in hs.load_human_speech() if not c.is_long)
    t = trace(["--finalize-after-ms", "120", "--hangover-ms", "120"], clip.pcm)
    assert max(t.room_ms) < BATCH_MS


def test_the_turn_rule_reads_every_chunk_as_it_comes() -> None:
    """The turn rule reads the audio clock when the service's words arrive (how long a final
    took, where the words' speech ends): read late, the audio would move those readings."""
    clip = next(c for c in hs.load_human_speech() if not c.is_long)
    t = trace(["--endpointing"], clip.pcm)
    assert any(t.decided), "the command was settled"
    assert max(t.room_ms) == 0.0
