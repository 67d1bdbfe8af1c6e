"""The acoustic end-of-turn model (smart_turn.py) and the segmenter's use of it.

The model's own verdicts are read on the pause set's recordings when the ``smart-turn`` extra
is installed; the segmenter's rule (when it asks, how often, what it does with the answer) is
tested with a plain function in the model's place, as the turn judge is (test_turn_end.py).
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from tests.core.test_segmenter import feed
from tests.core.test_turn_end import digits, judged_segmenter
from tests.kit import pause_set as ps
from wyoming_lightning.core import smart_turn
from wyoming_lightning.core.segmenter import ACOUSTIC_MAX_RUNS, EndOfTurn, Segmenter
from wyoming_lightning.emulator.tones import encode_phrase, silence

RATE = 16000


def ended_after_ms(seg: Segmenter, pause_ms: int) -> int | None:
    """Feed silence 10 ms at a time: how much had gone in when the turn ended, or None."""
    for fed in range(10, pause_ms + 1, 10):
        if any(isinstance(s, EndOfTurn) for s in seg.feed(silence(10))):
            return fed
    return None


class Model:
    """Stands for smart-turn: a fixed answer, and what it was asked."""

    def __init__(self, probability: float) -> None:
        self.probability = probability
        self.asked: list[int] = []

    def __call__(self, pcm: bytes) -> float:
        self.asked.append(len(pcm))
        return self.probability


def test_words_no_template_decides_wait_when_they_sound_unfinished() -> None:
    done, going = Model(0.9), Model(0.1)
    timer = judged_segmenter(turn_judge=digits, turn_acoustic=done)
    waits = judged_segmenter(turn_judge=digits, turn_acoustic=going)
    for seg in (timer, waits):
        feed(seg, silence(300) + encode_phrase("four five") + silence(300))
        seg.heard("four five", final=True)  # no template: UNKNOWN, and it covers the speech
    timer_end = ended_after_ms(timer, 3000)
    waits_end = ended_after_ms(waits, 3000)
    assert timer_end is not None and waits_end is not None
    assert timer_end + 300 < 800, "sounds done: the 700 ms timer, as without the model"
    assert waits_end + 300 >= 1500, "sounds unfinished: the backstop"
    assert len(done.asked) == len(going.asked) == 1, "once per pause"


def test_the_model_is_not_asked_when_the_words_decide() -> None:
    model = Model(0.1)
    seg = judged_segmenter(turn_judge=digits, turn_acoustic=model)
    feed(seg, silence(300) + encode_phrase("one two three") + silence(300))
    assert any(isinstance(s, EndOfTurn) for s in seg.heard("one two three", final=True))
    assert model.asked == []


def test_the_model_runs_a_bounded_number_of_times_per_request() -> None:
    model = Model(0.1)
    seg = judged_segmenter(turn_judge=digits, turn_acoustic=model, turn_unfinished_ms=100_000)
    for _ in range(ACOUSTIC_MAX_RUNS + 3):
        feed(seg, encode_phrase("four") + silence(400))
        seg.heard("four", final=True)
    assert len(model.asked) == ACOUSTIC_MAX_RUNS
    assert seg.acoustic_runs == ACOUSTIC_MAX_RUNS


def test_without_the_extra_there_is_no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    smart_turn.load_acoustic.cache_clear()
    monkeypatch.setitem(sys.modules, "pipecat", None)  # not installed
    try:
        assert smart_turn.weights_path() is None
        assert smart_turn.load_acoustic() is None
    finally:
        smart_turn.load_acoustic.cache_clear()


def test_the_features_are_whisper_log_mel_as_pipecat_computes_them() -> None:
    """Our numpy features against pipecat's own, on the same audio: the model reads what it
    was trained on."""
    pytest.importorskip("pipecat")
    from pipecat.audio.turn.smart_turn._whisper_features import (
        compute_whisper_log_mel_features,
    )

    pcm = ps.spliced_clips()[0].pcm[: 3 * RATE * 2]
    audio = np.frombuffer(pcm, "<i2").astype(np.float32) / 32768.0
    reference = compute_whisper_log_mel_features(np.pad(audio, (8 * RATE - audio.size, 0)))
    ours = smart_turn.features(pcm)
    assert ours.shape == reference.shape == (80, 800)
    assert np.abs(ours - reference).max() < 1e-4


def test_a_hesitation_sounds_unfinished_and_a_command_done() -> None:
    """The shipped weights on the pause set's recordings (espeak-ng): "set a timer for, uh"
    then 200 ms of silence is unfinished; "turn off the bedroom fan" is done."""
    model = smart_turn.load_acoustic()
    if model is None:
        pytest.skip("the smart-turn extra is not installed")
    lead, tail = silence(300), silence(200)
    hesitation = ps._read(ps.PAUSES_DIR / "uh_timer_0.wav")
    first, last = (ps._read(ps.PAUSES_DIR / f"bedroom_fan_{i}.wav") for i in (0, 1))
    assert model(lead + hesitation + tail) < 0.5
    assert model(lead + first + silence(200) + last + tail) > 0.5


def test_the_setting_brings_the_model_with_endpointing_and_the_judge() -> None:
    pytest.importorskip("hassil")
    if smart_turn.load_acoustic() is None:
        pytest.skip("the smart-turn extra is not installed")
    from wyoming_lightning.services import Services
    from wyoming_lightning.settings.config import load_settings

    env = {"SMALLEST_API_KEY": "k"}

    def acoustic(*flags: str) -> object:
        return Services(load_settings(list(flags), env)).request_config(None, "en").turn_acoustic

    assert acoustic("--endpointing", "--smart-turn") is smart_turn.load_acoustic()
    assert acoustic("--endpointing") is None, "off by default"
    assert acoustic("--endpointing", "--smart-turn", "--no-turn-intents") is None
    assert acoustic("--smart-turn") is None, "the client ends the turn: nothing to judge"
