"""The VAD gate's logic, driven by a scripted engine on synthetic audio.

The scripted engine calls a frame speech when its samples are loud, so each test
writes the speech/silence pattern it needs directly into the audio. Silence is
a small ramp rather than zeros, so that any lost, repeated or reordered sample
shows up in the content checks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pytest

from wyoming_lightning.core.vad import (
    GateConfig,
    GateEvent,
    SpeechAudio,
    SpeechEnd,
    SpeechStart,
    VadGate,
)

FRAME = 480  # samples per decision of the scripted engine (30 ms)
FRAME_MS = 30
LOUD = 8000


@dataclass
class ScriptedEngine:
    """Speech probability = mean |sample| / LOUD, capped at 1; records what it saw."""

    frame_samples: int = FRAME
    frames_seen: int = 0
    resets: int = 0
    sizes: set[int] = field(default_factory=set)

    def speech_probability(self, frame: bytes) -> float:
        self.frames_seen += 1
        self.sizes.add(len(frame))
        level = float(np.mean(np.abs(np.frombuffer(frame, dtype="<i2").astype(np.float64))))
        return min(1.0, level / LOUD)

    def reset(self) -> None:
        self.resets += 1


def pattern(*parts: tuple[str, float], frame: int = FRAME) -> bytes:
    """Audio from (kind, frames) parts: "s" = speech, "-" = silence, or a probability 0..1.

    Each frame holds a constant |amplitude| with alternating sign, plus a sample
    counter in the low bits, so every sample of the stream is distinguishable.
    """
    levels: list[float] = []
    for kind, count in parts:
        level = {"s": 1.0, "-": 0.0}.get(kind)
        levels += [float(kind) if level is None else level] * int(count)
    amplitude = np.repeat(np.array(levels) * LOUD, frame)
    counter = np.arange(amplitude.size) % 61  # < 0.01 of LOUD: never changes a decision
    sign = np.where(np.arange(amplitude.size) % 2 == 0, 1, -1)
    return (sign * (amplitude + counter)).astype("<i2").tobytes()


def run(gate: VadGate, pcm: bytes, chunk: int = 320) -> list[GateEvent]:
    events: list[GateEvent] = []
    for offset in range(0, len(pcm), chunk):
        events += gate.process(pcm[offset : offset + chunk])
    return events + gate.flush()


@dataclass
class Segment:
    start_sample: int
    pre_roll: bytes
    audio: bytes
    end: str | None

    @property
    def pcm(self) -> bytes:
        return self.pre_roll + self.audio


def segments(events: list[GateEvent]) -> list[Segment]:
    """Group events, checking their order is well formed."""
    result: list[Segment] = []
    current: Segment | None = None
    for event in events:
        if isinstance(event, SpeechStart):
            assert current is None, "SpeechStart inside a segment"
            current = Segment(event.start_sample, event.pre_roll, b"", None)
        elif isinstance(event, SpeechAudio):
            assert current is not None, "SpeechAudio outside a segment"
            current.audio += event.data
        else:
            assert current is not None, "SpeechEnd outside a segment"
            current.end = event.reason
            result.append(current)
            current = None
    assert current is None, "segment left open"
    return result


def gate(**config: float) -> VadGate:
    return VadGate(ScriptedEngine(), GateConfig(**config))  # type: ignore[arg-type]


# -- segments and their content -------------------------------------------------------


def test_one_segment_with_pre_roll_and_hangover() -> None:
    pcm = pattern(("-", 30), ("s", 20), ("-", 40))
    g = gate()
    (segment,) = segments(run(g, pcm))
    speech_start = 30 * FRAME
    assert segment.start_sample == speech_start - 300 * 16
    assert segment.pre_roll == pcm[2 * segment.start_sample : 2 * speech_start]
    assert len(segment.pre_roll) == 300 * 32
    hangover_frames = -(-500 // FRAME_MS)  # ceil: 17 frames
    end_sample = (30 + 20 + hangover_frames) * FRAME
    assert segment.pcm == pcm[2 * segment.start_sample : 2 * end_sample]
    assert segment.end == "silence"
    assert g.segments == 1
    assert g.audio_in_ms == pytest.approx(90 * FRAME_MS)
    assert g.audio_out_ms == pytest.approx(300 + (20 + hangover_frames) * FRAME_MS)
    assert g.speech_ms == pytest.approx(20 * FRAME_MS)
    assert not g.is_open


def test_pre_roll_is_shorter_when_speech_starts_early() -> None:
    pcm = pattern(("-", 3), ("s", 10), ("-", 30))
    (segment,) = segments(run(gate(), pcm))
    assert segment.start_sample == 0
    assert segment.pre_roll == pcm[: 2 * 3 * FRAME]


def test_speech_from_the_first_frame_has_empty_pre_roll() -> None:
    pcm = pattern(("s", 10), ("-", 30))
    (segment,) = segments(run(gate(), pcm))
    assert segment.pre_roll == b""
    assert segment.pcm == pcm[: len(segment.pcm)]


def test_pause_shorter_than_hangover_stays_in_one_segment() -> None:
    pcm = pattern(("-", 20), ("s", 10), ("-", 15), ("s", 10), ("-", 30))
    (segment,) = segments(run(gate(), pcm))
    start = 2 * segment.start_sample
    assert segment.pcm == pcm[start : start + len(segment.pcm)]
    assert len(segment.pcm) > 2 * (35 * FRAME)


def test_long_pause_gives_separate_contiguous_segments() -> None:
    pcm = pattern(("-", 20), ("s", 10), ("-", 60), ("s", 10), ("-", 30))
    first, second = segments(run(gate(), pcm))
    for segment in (first, second):
        start = 2 * segment.start_sample
        assert segment.pcm == pcm[start : start + len(segment.pcm)]
        assert segment.end == "silence"
    assert first.start_sample + len(first.pcm) // 2 <= second.start_sample  # nothing sent twice
    assert second.start_sample == (20 + 10 + 60) * FRAME - 300 * 16


def test_pre_roll_never_reaches_into_the_previous_segment() -> None:
    hangover_frames = 17
    pcm = pattern(("-", 10), ("s", 10), ("-", hangover_frames + 2), ("s", 10), ("-", 30))
    first, second = segments(run(gate(), pcm))
    assert second.start_sample == first.start_sample + len(first.pcm) // 2
    assert len(second.pre_roll) == 2 * 2 * FRAME


def test_silence_only_opens_nothing() -> None:
    g = gate()
    assert run(g, pattern(("-", 200))) == []
    assert g.audio_out_ms == 0
    assert g.silence_ms is None
    assert g.speech_ms == 0


# -- onset rules ----------------------------------------------------------------------


def test_clicks_shorter_than_min_speech_are_ignored() -> None:
    pcm = pattern(("-", 10), ("s", 2), ("-", 20), ("s", 1), ("-", 20), ("s", 2), ("-", 20))
    g = gate()
    assert run(g, pcm) == []
    assert g.speech_ms == pytest.approx(5 * FRAME_MS)
    assert g.silence_ms is None


def test_min_speech_counts_frames_within_the_onset_window() -> None:
    # 2 speech frames, 3 silent, 1 speech: 3 speech frames within 6 frames (180 ms <= 240 ms).
    pcm = pattern(("-", 20), ("s", 2), ("-", 3), ("s", 1), ("-", 30))
    (segment,) = segments(run(gate(), pcm))
    assert segment.start_sample == 20 * FRAME - 300 * 16  # speech began at the first burst
    # The same bursts spread wider than the window do not open the gate.
    assert run(gate(), pattern(("-", 20), ("s", 2), ("-", 7), ("s", 1), ("-", 30))) == []


def test_min_speech_zero_opens_on_the_first_speech_frame() -> None:
    events = run(gate(min_speech_ms=0, onset_window_ms=0), pattern(("-", 20), ("s", 1), ("-", 30)))
    assert len(segments(events)) == 1


def test_hysteresis_keeps_speech_above_the_off_threshold() -> None:
    # 0.4 is below the 0.5 on-threshold but above the 0.35 off-threshold.
    g = gate()
    assert run(g, pattern(("-", 10), ("0.4", 30), ("-", 20))) == []
    held = run(gate(), pattern(("-", 10), ("s", 5), ("0.4", 30), ("-", 20)))
    (segment,) = segments(held)
    assert len(segment.audio) >= 2 * (5 + 30) * FRAME
    released = run(gate(off_threshold=0.45), pattern(("-", 10), ("s", 5), ("0.4", 30), ("-", 20)))
    (short,) = segments(released)
    assert len(short.audio) < len(segment.audio)


# -- the onset look-back ---------------------------------------------------------------------


def noisy(*parts: tuple[str, int], noise: float = 1500.0) -> bytes:
    """``voiced`` over a steady noise in the speech band (a fan): "s" the 300 Hz tone plus
    the noise, "-" the noise alone, its level the same throughout."""
    rng = np.random.default_rng(11)
    frames = sum(count for _, count in parts)
    t = np.arange(frames * FRAME) / 16000
    bed = noise * np.sin(2 * np.pi * 1000 * t) + rng.normal(0, noise / 4, t.size)
    tone = np.concatenate(
        [np.full(count * FRAME, 8000.0 if kind == "s" else 0.0) for kind, count in parts]
    )
    return (bed + tone * np.sin(2 * np.pi * 300 * t)).astype("<i2").tobytes()


def test_pre_roll_reaches_back_to_where_the_level_rose_when_the_engine_fires_late() -> None:
    # The engine doubts the first 15 frames (450 ms) of the word, as silero does a soft onset
    # in noise: a fixed 300 ms pre-roll would start 150 ms into the word.
    pcm = voiced(("-", 40), ("s", 30), ("-", 40))
    doubted = range(40, 55)
    (late,) = segments(run(doubting_gate(doubted, lookback_above_floor_db=None), pcm))
    assert late.start_sample == 45 * FRAME, "without the look-back the onset is cut"
    (whole,) = segments(run(doubting_gate(doubted, lookback_above_floor_db=6.0), pcm))
    assert whole.start_sample == 40 * FRAME - 300 * 16, "300 ms before the word's real onset"
    assert whole.pcm == pcm[2 * whole.start_sample : 2 * whole.start_sample + len(whole.pcm)]


def test_no_look_back_over_digital_silence() -> None:
    # Digital silence, then a room's tone, then the word the engine notices late: the tone
    # stands far above a floor of zeros, but it is no onset.
    room = voiced(("-", 30))
    pcm = bytes(len(room)) + voiced(("s", 30), ("-", 40))
    (segment,) = segments(run(doubting_gate(range(30, 45), lookback_above_floor_db=6.0), pcm))
    assert segment.start_sample == 45 * FRAME - 300 * 16


def test_the_look_back_is_bounded() -> None:
    pcm = voiced(("-", 60), ("s", 50), ("-", 40))
    config = {"lookback_above_floor_db": 6.0, "lookback_max_ms": 600}
    (segment,) = segments(run(doubting_gate(range(60, 90), **config), pcm))  # 900 ms late
    assert len(segment.pre_roll) == 2 * 16 * (300 + 600)
    config["lookback_max_ms"] = 0
    (fixed,) = segments(run(doubting_gate(range(60, 90), **config), pcm))
    assert len(fixed.pre_roll) == 2 * 16 * 300


def test_steady_noise_before_the_speech_is_no_onset() -> None:
    # A fan runs before the word: it sits on the noise floor, so the look-back stops at the
    # word and the pre-roll stays 300 ms of fan, however loud the fan.
    pcm = noisy(("-", 60), ("s", 30), ("-", 40))
    (segment,) = segments(run(doubting_gate(range(0), lookback_above_floor_db=6.0), pcm))
    assert len(segment.pre_roll) == 2 * 16 * 300
    assert segment.start_sample == 60 * FRAME - 300 * 16


def test_clean_speech_keeps_the_fixed_pre_roll_with_the_look_back_on() -> None:
    pcm = voiced(("-", 40), ("s", 30), ("-", 40))
    (segment,) = segments(run(doubting_gate(range(0), lookback_above_floor_db=6.0), pcm))
    assert segment.start_sample == 40 * FRAME - 300 * 16


# -- max_utterance --------------------------------------------------------------------


def test_max_utterance_force_closes_and_waits_for_real_silence() -> None:
    pcm = pattern(("-", 10), ("s", 200), ("-", 30), ("s", 10), ("-", 30))
    g = gate(max_utterance_s=3.0)
    first, second = segments(run(g, pcm))
    assert first.end == "max_utterance"
    assert len(first.pcm) == 2 * 3 * 16000  # 3.0 s is a whole number of 30 ms frames
    start = 2 * first.start_sample
    assert first.pcm == pcm[start : start + len(first.pcm)]
    # The speech that continued after the cut did not reopen the gate; the later phrase did.
    assert second.start_sample >= (10 + 200) * FRAME
    assert second.end == "silence"


def test_max_utterance_gate_reopens_only_after_hangover_of_silence() -> None:
    # Speech, a pause shorter than the hangover, more speech: still "the same" TV.
    pcm = pattern(("-", 10), ("s", 120), ("-", 10), ("s", 60), ("-", 30))
    (only,) = segments(run(gate(max_utterance_s=3.0), pcm))
    assert only.end == "max_utterance"


# -- flush ----------------------------------------------------------------------------


def test_flush_closes_an_open_segment_with_the_buffered_tail() -> None:
    pcm = pattern(("-", 10), ("s", 20))[:-100]  # ends mid-frame
    g = gate()
    events = run(g, pcm)
    (segment,) = segments(events)
    assert segment.end == "flush"
    assert segment.pcm == pcm[2 * segment.start_sample :]
    assert g.audio_out_ms == pytest.approx(len(segment.pcm) / 32)


def test_flush_when_closed_sends_nothing() -> None:
    g = gate()
    events = run(g, pattern(("-", 10), ("s", 20), ("-", 40))[:-100])
    assert [type(e) for e in events].count(SpeechEnd) == 1
    assert g.flush() == []


# -- chunking -------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_any_chunking_gives_identical_events(seed: int) -> None:
    pcm = pattern(("-", 20), ("s", 10), ("-", 12), ("s", 3), ("-", 40), ("s", 30), ("0.4", 5))
    g = gate()
    one_shot = g.process(pcm) + g.flush()
    rng = random.Random(seed)
    g = gate()
    chunked: list[GateEvent] = []
    offset = 0
    while offset < len(pcm):
        size = rng.choice([0, 1, 2, 3, 319, 320, 321, 960, 4000])
        chunked += g.process(pcm[offset : offset + size])
        offset += size
    chunked += g.flush()
    assert chunked == one_shot
    assert len(segments(one_shot)) == 2


def test_engine_always_gets_whole_frames() -> None:
    engine = ScriptedEngine(frame_samples=512)
    g = VadGate(engine, GateConfig())
    run(g, pattern(("-", 10), ("s", 10), frame=512)[:-3], chunk=77)
    assert engine.sizes == {1024}
    assert engine.frames_seen == 19


# -- statistics -----------------------------------------------------------------------


def test_silence_ms_counts_from_the_last_speech_frame_of_a_segment() -> None:
    g = gate()
    g.process(pattern(("-", 10), ("s", 5)))
    assert g.is_open
    assert g.silence_ms == 0
    g.process(pattern(("-", 4)))
    assert g.silence_ms == pytest.approx(4 * FRAME_MS)
    g.process(pattern(("-", 30)))  # the segment closes, the count goes on
    assert not g.is_open
    assert g.silence_ms == pytest.approx(34 * FRAME_MS)
    g.process(pattern(("s", 1)))  # a click does not count as speech for endpointing
    assert g.silence_ms == pytest.approx(35 * FRAME_MS)


def test_speech_end_ms_is_where_the_last_speech_frame_ended_on_the_audio_clock() -> None:
    g = gate()
    assert g.speech_end_ms is None
    g.process(pattern(("-", 10), ("s", 5)))
    assert g.speech_end_ms == pytest.approx(15 * FRAME_MS)
    # Half a frame more: not judged yet, but the audio clock has moved on past the speech.
    g.process(pattern(("-", 1))[:FRAME])
    assert g.speech_end_ms == pytest.approx(15 * FRAME_MS)
    assert g.audio_in_ms - g.speech_end_ms == pytest.approx(FRAME_MS / 2)
    g.process(pattern(("-", 30)))  # the segment closes; the end stays where speech ended
    assert not g.is_open
    assert g.speech_end_ms == pytest.approx(15 * FRAME_MS)
    g.process(pattern(("s", 1)))  # a click opens no segment and does not move it
    assert g.speech_end_ms == pytest.approx(15 * FRAME_MS)


def test_reset_starts_a_new_stream() -> None:
    engine = ScriptedEngine()
    g = VadGate(engine, GateConfig())
    first = run(g, pattern(("-", 10), ("s", 10), ("-", 30)))
    g.reset()
    assert engine.resets == 1
    assert (g.segments, g.audio_in_ms, g.silence_ms) == (0, 0, None)
    assert run(g, pattern(("-", 10), ("s", 10), ("-", 30))) == first


# -- VAD off --------------------------------------------------------------------------


def test_vad_off_passes_everything_as_one_segment() -> None:
    g = VadGate(None)
    chunks = [b"\x01\x00" * 160, b"", b"\x00\x00" * 7, b"\x05\x00" * 3]
    events: list[GateEvent] = []
    for chunk in chunks:
        events += g.process(chunk)
    events += g.flush()
    assert events[0] == SpeechStart(b"", 0)
    (segment,) = segments(events)
    assert segment.pcm == b"".join(chunks)
    assert segment.end == "flush"
    assert events[1].data is chunks[0]  # type: ignore[union-attr]
    assert g.audio_out_ms == g.audio_in_ms == pytest.approx(170 / 16)
    assert g.segments == 1
    assert g.silence_ms is None
    assert VadGate(None).flush() == []


# -- configuration --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"pre_roll_ms": -1}, "pre_roll_ms"),
        ({"hangover_ms": -1}, "hangover_ms"),
        ({"min_speech_ms": -5}, "min_speech_ms"),
        ({"min_speech_ms": 300}, "onset_window_ms"),
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": 0.5, "off_threshold": 0.6}, "off_threshold"),
        ({"max_utterance_s": 0}, "max_utterance_s"),
        ({"sustain_above_floor_db": -1.0}, "sustain_above_floor_db"),
        ({"sustain_below_peak_db": -1.0}, "sustain_below_peak_db"),
        ({"lookback_above_floor_db": -1.0}, "lookback_above_floor_db"),
        ({"lookback_max_ms": -1}, "lookback_max_ms"),
    ],
)
def test_bad_config_is_rejected(config: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        VadGate(ScriptedEngine(), GateConfig(**config))  # type: ignore[arg-type]


def test_events_are_frozen() -> None:
    event = SpeechEnd("silence")
    with pytest.raises(AttributeError):
        event.reason = "flush"  # type: ignore[misc]


# -- loud audio the engine doubts -------------------------------------------------------


@dataclass
class DoubtingEngine:
    """The scripted engine, except that it scores the frames listed in ``doubted`` zero:
    as silero scores a falsetto or laughed word."""

    doubted: range
    frame_samples: int = FRAME
    index: int = 0

    def speech_probability(self, frame: bytes) -> float:
        index, self.index = self.index, self.index + 1
        if index in self.doubted:
            return 0.0
        level = float(np.mean(np.abs(np.frombuffer(frame, dtype="<i2").astype(np.float64))))
        return min(1.0, level / LOUD)

    def reset(self) -> None:
        self.index = 0


def doubting_gate(doubted: range, **config: float | None) -> VadGate:
    return VadGate(DoubtingEngine(doubted), GateConfig(**config))  # type: ignore[arg-type]


def voiced(*parts: tuple[str, int]) -> bytes:
    """Like ``pattern`` but in the speech band, where the gate measures level: "s" is a
    300 Hz tone the scripted engine scores 0.64, "-" a faint noise (about -60 dBFS)."""
    rng = np.random.default_rng(7)
    out: list[npt.NDArray[np.float64]] = []
    for kind, count in parts:
        n = count * FRAME
        if kind == "s":
            out.append(8000 * np.sin(2 * np.pi * 300 * np.arange(n) / 16000))
        else:
            out.append(rng.normal(0, 30, n))
    return np.concatenate(out).astype("<i2").tobytes()


def end_ms(segment: Segment) -> float:
    return (segment.start_sample + len(segment.pcm) // 2) / 16


def test_loud_frames_the_engine_doubts_keep_the_segment_open() -> None:
    # 0.9 s of loud audio scored 0 between two words: longer than the 0.5 s hangover.
    pcm = voiced(("-", 20), ("s", 10), ("s", 30), ("s", 10), ("-", 30))
    doubted = range(30, 60)
    (one,) = segments(run(doubting_gate(doubted), pcm))
    assert one.pcm == pcm[2 * one.start_sample : 2 * one.start_sample + len(one.pcm)]
    assert one.start_sample <= 20 * FRAME and end_ms(one) >= 70 * FRAME_MS
    cut = segments(run(doubting_gate(doubted, sustain_above_floor_db=None), pcm))
    assert len(cut) == 2, "without the level rule the engine's doubt splits the command"


def test_loud_doubted_audio_is_no_pause_for_a_bounded_time() -> None:
    """It is speech for the pause rule too (``silence_ms``), but only ``sustain_max_ms`` of it
    after the engine's last speech frame: then the pause counts from there."""
    g = doubting_gate(range(30, 1000), sustain_max_ms=600, hangover_ms=2000)
    pcm = voiced(("-", 20), ("s", 10), ("s", 20))
    for offset in range(0, len(pcm), 2 * FRAME):
        g.process(pcm[offset : offset + 2 * FRAME])
    assert g.is_open and g.silence_ms == 0
    later = voiced(("s", 20))
    for offset in range(0, len(later), 2 * FRAME):
        g.process(later[offset : offset + 2 * FRAME])
    assert g.is_open and g.silence_ms == pytest.approx(40 * FRAME_MS - 600, abs=FRAME_MS)


def test_doubted_loud_audio_sustains_a_segment_for_a_bounded_time() -> None:
    # 3 s of loud audio the engine doubts after a word (music, a TV): not sent for ever.
    pcm = voiced(("-", 20), ("s", 10), ("s", 100), ("-", 40))
    (one,) = segments(run(doubting_gate(range(30, 130), sustain_max_ms=600), pcm))
    assert 600 <= end_ms(one) - 30 * FRAME_MS <= 600 + 500 + FRAME_MS, "sustain + hangover"


def test_loud_audio_alone_never_opens_a_segment() -> None:
    pcm = voiced(("-", 20), ("s", 40), ("-", 30))
    assert run(doubting_gate(range(0, 1000)), pcm) == []
