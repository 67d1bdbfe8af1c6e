"""The emulator's per-session protocol logic, fed directly (no sockets)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wyoming_lightning.emulator.config import Dialect
from wyoming_lightning.emulator.params import SessionParams
from wyoming_lightning.emulator.recognizers import ToneRecognizer
from wyoming_lightning.emulator.session import SessionCore
from wyoming_lightning.emulator.tones import encode_phrase, silence

FINALIZE = json.dumps({"type": "finalize"})
CLOSE_STREAM = json.dumps({"type": "close_stream"})
END = json.dumps({"type": "end"})


def core(dialect: Dialect = Dialect.PULSE, eou_timeout_ms: int = 800, **params: Any) -> SessionCore:
    return SessionCore(
        session_id="s1",
        dialect=dialect,
        params=SessionParams(**params),
        recognizer=ToneRecognizer(),
        eou_timeout_ms=eou_timeout_ms,
    )


def feed(session: SessionCore, pcm: bytes, chunk: int = 4096) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(pcm), chunk):
        out += session.feed_audio(pcm[i : i + chunk]).messages
    return out


def finals(messages: list[dict[str, Any]]) -> list[str]:
    return [m["transcript"] for m in messages if m.get("is_final")]


def test_server_eou_uses_audio_time_not_wall_time() -> None:
    """All the audio arrives in one call; the silence inside it still ends the utterance."""
    session = core()
    pcm = encode_phrase("one two") + silence(900) + encode_phrase("three")
    out = session.feed_audio(pcm).messages
    assert finals(out) == ["one two"]
    final = next(m for m in out if m.get("is_final"))
    assert final["from_finalize"] is False and final["is_last"] is False
    end = session.feed_text(CLOSE_STREAM)
    assert end.end_of_session and end.answers_control
    assert finals(end.messages) == ["three"]
    assert end.messages[-1]["is_last"] is True


def test_silence_shorter_than_the_timeout_does_not_end_the_utterance() -> None:
    session = core()
    out = feed(session, encode_phrase("one") + silence(700) + encode_phrase("two"))
    assert finals(out) == []
    assert finals(session.feed_text(CLOSE_STREAM).messages) == ["one two"]


def test_pulse_eou_timeout_parameter_overrides_the_server_default() -> None:
    session = SessionCore(
        session_id="s1",
        dialect=Dialect.PULSE,
        params=SessionParams(eou_timeout_ms=300),
        recognizer=ToneRecognizer(),
        eou_timeout_ms=800,
    )
    out = feed(session, encode_phrase("one two") + silence(400) + encode_phrase("three"))
    assert finals(out) == ["one two"]  # the 100 ms gaps between words are not utterance ends


def test_finals_are_incremental_and_interims_grow_within_a_segment() -> None:
    session = core()
    pcm = encode_phrase("one two three") + silence(1000) + encode_phrase("four five")
    out = feed(session, pcm) + session.feed_text(CLOSE_STREAM).messages
    assert finals(out) == ["one two three", "four five"]
    interims = [m["transcript"] for m in out if not m.get("is_final")]
    assert interims[0] == "one"
    assert "one two" in interims and "four" in interims
    first_final = next(i for i, m in enumerate(out) if m.get("is_final"))
    assert all(not m["transcript"].startswith("four") for m in out[:first_final])


def test_finalize_settles_the_utterance_and_the_session_goes_on() -> None:
    session = core()
    feed(session, encode_phrase("seven"))
    reply = session.feed_text(FINALIZE)
    assert reply.answers_control and not reply.end_of_session
    assert [(m["transcript"], m["from_finalize"], m["is_last"]) for m in reply.messages] == [
        ("seven", True, False)
    ]
    feed(session, encode_phrase("eight"))
    assert finals(session.feed_text(FINALIZE).messages) == ["eight"]


@pytest.mark.parametrize("audio", [b"", bytes(32000)])
def test_finalize_without_speech_gives_one_empty_final(audio: bytes) -> None:
    session = core()
    feed(session, audio)
    messages = session.feed_text(FINALIZE).messages
    assert messages == [
        {
            "type": "transcription",
            "status": "success",
            "transcription": "",
            "transcript": "",
            "session_id": "s1",
            "is_final": True,
            "is_last": False,
            "language": "en",
            "from_finalize": True,
        }
    ]


def test_end_without_pending_audio_gives_one_empty_last_message() -> None:
    session = core(Dialect.LIGHTNING)
    messages = session.feed_text(END).messages
    assert messages == [
        {"session_id": "s1", "transcript": "", "is_final": True, "is_last": True, "language": "en"}
    ]
    assert session.ended
    assert session.feed_audio(encode_phrase("one")).messages == []


def test_odd_sized_frames_lose_no_sample() -> None:
    session = core()
    out = feed(session, encode_phrase("two nine six"), chunk=333)
    assert finals(out + session.feed_text(CLOSE_STREAM).messages) == ["two nine six"]


def test_long_leading_silence_is_trimmed_but_word_times_stay_absolute() -> None:
    session = core(word_timestamps=True)
    feed(session, silence(10_000) + encode_phrase("four"))
    final = session.feed_text(CLOSE_STREAM).messages[-1]
    assert [w["word"] for w in final["words"]] == ["four"]
    assert final["words"][0]["start"] == pytest.approx(10.0, abs=0.01)
    assert final["words"][0]["end"] == pytest.approx(10.2, abs=0.01)


def test_vad_events_bracket_each_utterance() -> None:
    session = core(vad_events=True)
    out = feed(session, encode_phrase("one") + silence(900) + encode_phrase("two"))
    out += session.feed_text(CLOSE_STREAM).messages
    kinds = [m["type"] if m["type"] != "transcription" else "final" for m in out]
    kinds = [k for k, m in zip(kinds, out, strict=True) if k != "final" or m["is_final"]]
    # The final comes before speech_ended, as in the vendor's sequence diagram.
    assert kinds == [
        "speech_started",
        "final",
        "speech_ended",
        "speech_started",
        "final",
        "speech_ended",
    ]
    started = [m["timestamp"] for m in out if m.get("type") == "speech_started"]
    assert started == [0.0, 1.1]


def test_bad_text_frames_get_an_error_and_change_nothing() -> None:
    session = core()
    feed(session, encode_phrase("five"))
    for text in ["not json", "[1, 2]", '{"kind": "end"}', '{"type": "end"}', '{"type": 3}']:
        reply = session.feed_text(text)
        assert not reply.end_of_session
        assert [m["type"] for m in reply.messages] == ["error"]
        assert reply.messages[0]["status"] == "error" and reply.messages[0]["message"]
    assert finals(session.feed_text(CLOSE_STREAM).messages) == ["five"]


def test_lightning_answers_finalize_with_an_error() -> None:
    session = core(Dialect.LIGHTNING)
    feed(session, encode_phrase("five"))
    reply = session.feed_text(FINALIZE)
    assert reply.messages[0]["type"] == "error" and "end" in reply.messages[0]["message"]
    end = session.feed_text(END).messages
    assert finals(end) == ["five"] and "from_finalize" not in end[0]


def test_full_transcript_and_auto_language() -> None:
    session = core(Dialect.LIGHTNING, language="multi", full_transcript=True)
    feed(session, encode_phrase("one") + silence(900) + encode_phrase("two"))
    last = session.feed_text(END).messages[-1]
    assert last["full_transcript"] == "one two"
    assert last["language"] == "en"


@pytest.mark.parametrize("rate", [8000, 24000, 44100])
def test_other_sample_rates_are_interpreted_at_that_rate(rate: int) -> None:
    session = core(sample_rate=rate, word_timestamps=True)
    pcm = encode_phrase("three", rate) + silence(900, rate) + encode_phrase("one", rate)
    out = feed(session, pcm) + session.feed_text(CLOSE_STREAM).messages
    assert finals(out) == ["three", "one"]
    assert out[-1]["words"][0]["start"] == pytest.approx(1.1, abs=0.01)
