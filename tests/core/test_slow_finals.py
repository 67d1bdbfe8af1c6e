"""Issue 10, "nothing said is lost when the service is slow": the wait after audio-stop.

Found on real speech (tests/bridge/test_human_speech.py, condition ``slow``: every final held
8 s while interims stream): the emulator recognises one finalize after the other, so on a
loaded machine each final lands several seconds after the one before, and the last of a clip
cut into four utterances came after ``audio-stop + final_timeout_s + 1 s per owed second``.
The wait was fixed at audio-stop, so the request ended in ``timeout`` ("1.0 s of audio still
without a final") while that final was on its way. The finals before it prove the service is
working through the owed audio: the wait now runs again from each of them, up to the ceiling.
"""

from __future__ import annotations

import pytest

from tests.core.test_request import PULSE, Driver, final, machine
from wyoming_lightning.core import actions as act
from wyoming_lightning.core.errors import ErrorCode
from wyoming_lightning.core.protocol import Result
from wyoming_lightning.core.request import ANSWER_TIMER
from wyoming_lightning.emulator.tones import encode_phrase, silence

WORDS = ("one two", "three four", "five six", "seven eight", "nine one")


def _paused_speech(phrases: tuple[str, ...]) -> bytes:
    """Phrases with pauses the gate splits at: one utterance (one finalize) each."""
    pcm = silence(1000)
    for phrase in phrases:
        pcm += encode_phrase(phrase) + silence(1500)
    return pcm


def _slow_service(d: Driver, phrases: tuple[str, ...], every_s: float) -> None:
    """After audio-stop, one final every ``every_s`` in order, an interim of the held final
    every 0.5 s in between (as the ``slow`` fault sends), until the request is over."""
    for phrase in phrases:
        for _ in range(round(every_s / 0.5)):
            if d.machine.done:
                return
            d.advance(0.5)
            d.message(1, Result(phrase, is_final=False))
        if d.machine.done:
            return
        d.message(1, final(phrase, from_finalize=True))


def _speak(phrases: tuple[str, ...], **config: object) -> tuple[Driver, float]:
    d = machine(PULSE, vad="webrtc", **config)
    d.start()
    d.open()
    d.audio(_paused_speech(phrases))
    d.stop()
    assert d.sent_text(1) == ["finalize"] * len(phrases), "each pause settles its utterance"
    assert d.transcript() is None
    return d, d.clock.now


def test_a_service_settling_final_after_final_is_waited_for_past_the_first_bound() -> None:
    phrases = WORDS[:3]
    d, stopped = _speak(phrases)
    first_bound = d.timers[ANSWER_TIMER] - stopped
    every_s = 6.0
    assert every_s * len(phrases) > first_bound, "the last final lands past the first bound"
    _slow_service(d, phrases, every_s)
    assert not d.of(act.Error)
    assert d.transcript() == act.Transcript("one two three four five six", "en")
    assert d.connects() == [1], "one session, no replay"
    (answered_at,) = d.time_of(act.Transcript)
    assert answered_at == pytest.approx(stopped + every_s * len(phrases))


def test_the_ceiling_still_ends_a_service_that_settles_too_slowly() -> None:
    d, stopped = _speak(WORDS, response_timeout_s=30.0)
    _slow_service(d, WORDS, 9.0)  # finals at 9, 18, 27 s; the fourth would be at 36 s
    (error,) = d.of(act.Error)
    assert error.code is ErrorCode.TIMEOUT
    assert "did not finish within 30 s of audio-stop" in error.text
    (failed_at,) = d.time_of(act.Error)
    assert failed_at == pytest.approx(stopped + 30.0)
    assert [a.text for a in d.of(act.TranscriptChunk)] == ["one two", " three four", " five six"]


def test_no_final_after_audio_stop_still_ends_at_the_first_bound() -> None:
    """Alive (interims) but settling nothing: the progress that extends the wait is a final."""
    phrases = WORDS[:2]
    d, stopped = _speak(phrases)
    first_bound = d.timers[ANSWER_TIMER] - stopped
    while not d.machine.done:
        d.advance(0.5)
        d.message(1, Result("one two", is_final=False))
    (failed_at,) = d.time_of(act.Error)
    assert failed_at == pytest.approx(stopped + first_bound)
