"""The pauses a gate drops inside dictation, sent after all (issue 26: long recordings).

Past ``dictation_after_s`` an utterance stays open over the speaker's pauses, but the gate
still closes at each one after its hangover and reopens with a pre-roll: the recognizer used to
get the pause cut to hangover + pre-roll, and Whisper read 15-30 s recordings so shortened
worse than whole. The gate now reports the rest of the pause (``SpeechStart.gap``) and the
segmenter sends it inside dictation, within the billing bound; a command's pauses stay out.

Real recordings through silero on the audio clock: the same bytes give the same segments on
every run.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.kit import human_speech as hs
from tests.kit import noisy_speech as ns
from wyoming_lightning import services
from wyoming_lightning.core.audio import PcmFormat
from wyoming_lightning.core.segmenter import (
    Segment,
    Segmenter,
    SegmenterConfig,
    UtteranceAudio,
    UtteranceStart,
)
from wyoming_lightning.core.vad.engines import create_engine
from wyoming_lightning.core.vad.events import SpeechAudio, SpeechStart
from wyoming_lightning.core.vad.gate import GateConfig, VadGate
from wyoming_lightning.settings.config import VAD_LAG_MS, Settings

DEFAULTS = Settings()
CHUNK = 640  # 20 ms, as Home Assistant's satellites send it
DICTATED = "mfa_cold_corpus"  # 22 s, pauses of about a second after its first 8 s
COMMAND = "mfa_crossword"  # 11 s, a pause over the hangover before "let's go"


def gate_config(**overrides: object) -> GateConfig:
    """The server's gate (services.gate_config), with ``overrides``."""
    return replace(services.gate_config(DEFAULTS), **overrides)  # type: ignore[arg-type]


def stream_of(name: str, condition: ns.Condition = ns.CLEAN) -> tuple[bytes, float]:
    clip = {c.name: c for c in hs.load_human_speech()}[name]
    return ns.noisy_stream(clip, condition, 0.0), clip.seconds


def segment(stream: bytes, **overrides: object) -> tuple[Segmenter, list[bytes]]:
    """The server's segmenter and gate (silero) over ``stream``; each utterance's audio."""
    settings: dict[str, object] = {
        "finalize_after_ms": DEFAULTS.finalize_after_ms,
        "vad_lag_ms": VAD_LAG_MS["silero"],
        "pause_tail_ms": DEFAULTS.pause_tail_ms,
        "dictation_after_s": DEFAULTS.dictation_after_s,
    }
    config = SegmenterConfig(**{**settings, **overrides})  # type: ignore[arg-type]
    seg = Segmenter(config, VadGate(create_engine("silero"), gate_config()))
    assert seg.set_format(PcmFormat(16000, 2, 1)) is None
    out: list[Segment] = []
    for at in range(0, len(stream), CHUNK):
        out += seg.feed(stream[at : at + CHUNK])
    out += seg.finish()
    audio: list[bytearray] = []
    for item in out:
        if isinstance(item, UtteranceStart):
            audio.append(bytearray(item.replay))
        elif isinstance(item, UtteranceAudio):
            audio[-1] += item.data
    return seg, [bytes(a) for a in audio]


def gate_events(stream: bytes, **overrides: object) -> list[SpeechStart | SpeechAudio]:
    gate = VadGate(create_engine("silero"), gate_config(**overrides))
    events = []
    for at in range(0, len(stream), CHUNK):
        events += gate.process(stream[at : at + CHUNK])
    events += gate.flush()
    return [e for e in events if isinstance(e, SpeechStart | SpeechAudio)]


def test_the_gate_reports_the_whole_pause_it_dropped() -> None:
    stream, _ = stream_of(DICTATED)
    events = gate_events(stream)
    starts = [e for e in events if isinstance(e, SpeechStart)]
    assert len(starts) >= 3, "the recording's pauses close the gate"
    assert starts[0].gap == b"", "no segment before the first: nothing to report"
    assert any(s.gap for s in starts[1:])
    # Each segment's gap, pre-roll and audio in order are the stream from the first segment's
    # start to the last one's end, byte for byte: nothing lost, nothing repeated.
    joined = b"".join(
        (e.gap + e.pre_roll) if isinstance(e, SpeechStart) else e.data for e in events
    )
    first = 2 * starts[0].start_sample
    assert joined == stream[first : first + len(joined)]


def test_a_pause_longer_than_gap_max_is_not_reported() -> None:
    stream, _ = stream_of(DICTATED)
    starts = [e for e in gate_events(stream, gap_max_ms=0) if isinstance(e, SpeechStart)]
    assert [s.gap for s in starts] == [b""] * len(starts)


def test_dictation_sends_its_pauses_whole_within_the_bound() -> None:
    stream, seconds = stream_of(DICTATED)
    seg, utterances = segment(stream)
    last = utterances[-1]
    assert len(last) > 8 * 32000, "the dictated part is one utterance"
    # One stretch of the stream, its pauses in it (before: cut to hangover + pre-roll).
    assert stream.find(last) >= 0
    assert seg.kept_pause_bytes > 0
    assert seg.sent_s == pytest.approx(sum(len(u) for u in utterances) / 32000, abs=1e-6)
    assert seg.sent_s <= 1.3 * seconds + 0.5


def test_without_dictation_a_pause_the_gate_dropped_stays_out() -> None:
    stream, _ = stream_of(COMMAND, ns.Condition("fan", 20))
    seg, utterances = segment(stream, dictation_after_s=None, rejoin=False)
    assert len(utterances) >= 2, "the pause splits the command"
    assert seg.kept_pause_bytes == 0
    assert all(stream.find(u) >= 0 for u in utterances)
