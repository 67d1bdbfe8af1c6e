"""The segmenter alone: the audio of a request in, utterance boundaries and the end of the turn
out, with no session, no clock and no service in sight.

Speech is the emulator's tone phrases and digital silence, gated by the real webrtc engine:
deterministic to the byte, so each test can say exactly which segments a stretch of audio
gives. (The request machine carrying these segments out is tests/core/test_request.py.)
"""

from __future__ import annotations

import pytest

from wyoming_lightning.core.audio import PcmFormat
from wyoming_lightning.core.fsm import IllegalTransition
from wyoming_lightning.core.segmenter import (
    FRAME_BYTES,
    Cue,
    EndOfTurn,
    Segment,
    Segmenter,
    SegmenterConfig,
    SegmenterState,
    SpeechMark,
    UtteranceAudio,
    UtteranceStart,
)
from wyoming_lightning.core.vad.engines import create_engine
from wyoming_lightning.core.vad.gate import GateConfig, VadGate
from wyoming_lightning.emulator.tones import encode_phrase, silence

HA_FORMAT = PcmFormat(16000, 2, 1)
CHUNK = 320  # 10 ms


def segmenter(**kw: object) -> Segmenter:
    config = SegmenterConfig(**kw)  # type: ignore[arg-type]
    seg = Segmenter(config, VadGate(create_engine("webrtc"), GateConfig()))
    assert seg.set_format(HA_FORMAT) is None
    return seg


def state(seg: Segmenter) -> SegmenterState:
    return seg.state  # read through a call: mypy would narrow the attribute between reads


def feed(seg: Segmenter, pcm: bytes, chunk: int = CHUNK) -> list[Segment]:
    out: list[Segment] = []
    for i in range(0, len(pcm), chunk):
        out += seg.feed(pcm[i : i + chunk])
    return out


def utterances(segments: list[Segment]) -> list[bytes]:
    """The audio of each utterance, as the request machine would assemble it."""
    found: list[bytearray] = []
    for segment in segments:
        if isinstance(segment, UtteranceStart):
            found.append(bytearray(segment.replay))
        elif isinstance(segment, UtteranceAudio):
            found[-1] += segment.data
    return [bytes(u) for u in found]


def kinds(segments: list[Segment]) -> list[str]:
    """Segment kinds in order, runs of audio and marks collapsed: the boundaries only."""
    out: list[str] = []
    for segment in segments:
        name = type(segment).__name__
        if name in ("UtteranceAudio", "SpeechMark"):
            continue
        out.append(name)
    return out


def test_a_pause_ends_the_utterance_before_the_gate_closes_and_stop_ends_the_next() -> None:
    seg = segmenter()
    out = feed(seg, silence(300) + encode_phrase("one two") + silence(280))
    assert kinds(out) == ["UtteranceStart", "UtteranceEnd"], "settled ~200 ms into the pause"
    assert seg.gate.is_open and state(seg) is SegmenterState.HELD_CLOSED
    out += feed(seg, silence(100) + encode_phrase("three"))
    out += seg.finish()
    assert kinds(out) == ["UtteranceStart", "UtteranceEnd"] * 2
    assert state(seg) is SegmenterState.STOPPED
    first, second = utterances(out)
    assert encode_phrase("one two") in first and encode_phrase("three") in second
    assert len(first) + len(second) == seg.gate.audio_out_ms * 32, "every byte the gate let out"
    assert seg.sent_s == pytest.approx((len(first) + len(second)) / 32000)


def test_audio_goes_out_in_whole_frames_but_the_last_of_an_utterance() -> None:
    seg = segmenter()
    out = feed(seg, silence(300) + encode_phrase("one two three") + silence(300), chunk=137 * 2)
    out += seg.finish()
    sizes = [len(s.data) for s in out if isinstance(s, UtteranceAudio)]
    assert sizes and all(size == FRAME_BYTES for size in sizes[:-1])
    assert 0 < sizes[-1] <= FRAME_BYTES


def test_the_speech_mark_follows_the_speech_and_not_the_pause() -> None:
    seg = segmenter()
    out = feed(seg, silence(300) + encode_phrase("one two") + silence(280))
    marks = [s.length for s in out if isinstance(s, SpeechMark)]
    (audio,) = utterances(out)
    assert marks == sorted(marks) and len(set(marks)) == len(marks), "only when it moved"
    assert 0 < marks[-1] < len(audio), "the pause after the last mark is not speech"


def test_a_pause_past_its_tail_is_held_and_speech_resuming_keeps_it_in_the_utterance() -> None:
    seg = segmenter(finalize_after_ms=300, pause_tail_ms=100)
    head = silence(300) + encode_phrase("one two")
    out = feed(seg, head + silence(250))
    assert state(seg) is SegmenterState.HOLDING and "UtteranceEnd" not in kinds(out)
    sent = sum(len(s.data) for s in out if isinstance(s, UtteranceAudio))
    out += feed(seg, encode_phrase("three") + silence(100))
    assert state(seg) is SegmenterState.OPEN, "speech resumed before the rule"
    (audio,) = utterances(out)
    assert encode_phrase("one two") + silence(250) + encode_phrase("three") in audio
    assert len(audio) > sent, "the held pause went on with the speech"
    out += feed(seg, silence(1200))
    assert kinds(out) == ["UtteranceStart", "UtteranceEnd"]
    assert state(seg) is SegmenterState.QUIET, "the gate closed: what was held was dropped"
    assert seg.dropped_bytes > 0


def test_past_the_dictation_point_a_pause_no_longer_splits() -> None:
    seg = segmenter(dictation_after_s=2.0)
    out = feed(seg, silence(300) + encode_phrase("one two") + silence(350))
    assert kinds(out) == ["UtteranceStart", "UtteranceEnd"]
    out += feed(seg, encode_phrase("one two three four five six") + silence(1200))
    out += feed(seg, encode_phrase("three") + silence(100))
    out += seg.finish()
    assert kinds(out) == ["UtteranceStart", "UtteranceEnd"] * 2, "one utterance past the point"


def test_speech_resuming_after_a_split_re_sends_the_command_from_its_start() -> None:
    seg = segmenter(re_recognize=True)
    out = feed(seg, silence(300) + encode_phrase("one two") + silence(350))
    (first,) = utterances(out)
    out += feed(seg, encode_phrase("three") + silence(100))
    out += seg.finish()
    starts = [s for s in out if isinstance(s, UtteranceStart)]
    assert starts[0] == UtteranceStart()
    assert starts[1].replay == first and starts[1].replaces == 1
    assert seg.replayed_bytes == len(first)
    assert "re-sent after pauses" in seg.summary()


def test_the_length_cap_cuts_and_what_follows_starts_afresh() -> None:
    seg = segmenter(max_utterance_s=1.0, re_recognize=True)
    out = feed(seg, silence(300) + encode_phrase("one two three four five six seven"))
    out += seg.finish()
    audio = utterances(out)
    assert len(audio) >= 2 and len(audio[0]) == 32000, "cut at exactly the cap"
    starts = [s for s in out if isinstance(s, UtteranceStart)]
    assert starts[1].replay == b"", "a forced cut re-sends nothing"


def test_endpointing_ends_the_turn_after_the_silence_once_someone_spoke() -> None:
    seg = segmenter(endpoint_silence_ms=700, no_speech_timeout_s=8.0)
    out = feed(seg, silence(900) + encode_phrase("one two"))
    assert not [s for s in out if isinstance(s, EndOfTurn)], "a pause before speech ends nothing"
    out = feed(seg, silence(1000))
    ends = [s for s in out if isinstance(s, EndOfTurn)]
    assert ends and "end of command detected" in ends[0].reason
    assert "UtteranceEnd" in kinds(out[: out.index(ends[0])]), "the pause settled it first"


def test_no_speech_ends_the_turn_with_no_utterance() -> None:
    seg = segmenter(endpoint_silence_ms=700, no_speech_timeout_s=2.0)
    assert feed(seg, silence(1990)) == []
    (end,) = feed(seg, silence(10))
    assert end == EndOfTurn("no speech in 2 s of audio; answering empty")
    assert seg.utterances == 0


def test_the_command_cap_ends_the_turn_at_its_length() -> None:
    seg = segmenter(max_command_s=2.0)
    pcm = encode_phrase("one two three four five six seven eight nine zero")
    ends = [
        i
        for i in range(0, len(pcm), CHUNK)
        if any(isinstance(s, EndOfTurn) for s in seg.feed(pcm[i : i + CHUNK]))
    ]
    assert ends[0] == 2 * 32000 - CHUNK, "at the chunk that reaches 2 s"


def test_any_format_is_converted_before_the_gate() -> None:
    seg = Segmenter(SegmenterConfig(), VadGate(create_engine("webrtc"), GateConfig()))
    assert seg.set_format(PcmFormat(48000, 2, 2)) is None
    mono = silence(300) + encode_phrase("one two") + silence(300)
    stereo_48k = b"".join(mono[i : i + 2] * 6 for i in range(0, len(mono), 2))
    out = feed(seg, stereo_48k, chunk=1920)
    out += seg.finish()
    assert kinds(out) == ["UtteranceStart", "UtteranceEnd"]
    assert seg.received_s == 0.0, "counted by count(), not by feed()"
    seg.count(stereo_48k, None)
    assert seg.received_s == pytest.approx(len(mono) / 32000)


def test_a_format_the_converter_cannot_take_is_a_reason_and_nothing_changes() -> None:
    seg = Segmenter(SegmenterConfig(), VadGate(None, GateConfig()))
    reason = seg.set_format(PcmFormat(16000, 2, 99))
    assert reason is not None and "channel count 99" in reason
    assert state(seg) is SegmenterState.IDLE and seg.format is None


def test_a_move_off_the_table_is_a_bug_said_as_one() -> None:
    seg = segmenter()
    with pytest.raises(IllegalTransition, match="QUIET --resumed-->"):
        seg._move(Cue.RESUMED)
