"""How ``python -m benchmarks noise`` scores a row: Whisper's loops told apart from the
reference's own repetitions, and an interval that says whether a row's figure is resolved."""

from __future__ import annotations

from collections import Counter

from benchmarks.noise import Case, Result, interval, longest_repeat, loops
from tests.kit import human_speech as hs
from tests.kit import noisy_speech as ns

WORDS = "montreal forced a liner word another word here's some more word word word word word"


def repeat(text: str) -> int:
    return longest_repeat(text.split())


def test_a_phrase_repeated_back_to_back_is_measured_in_words() -> None:
    assert repeat("a b c d") == 0
    assert repeat("the cat the dog") == 0, "a word again is no repetition"
    assert repeat("word word word") == 3
    assert repeat("x i'm sorry i'm sorry i'm sorry y") == 6
    assert repeat("go to the shop go to the shop") == 8


def test_whisper_loops_are_told_from_the_references_own_repetitions() -> None:
    # Heard on the noisy set (babble 20 dB, fan 5 dB): Whisper ran away on one phrase.
    harder = "and make it " + "harder " * 30 + "montreal forced a liner"
    assert loops(harder, "montreal forced a liner here")
    sure = "i'm not sure if it's good " * 4
    assert loops(sure, "alright so this is the sick corpus")
    # The reference says "word" five times over: Whisper saying it six is not a loop.
    assert not loops(WORDS + " word", WORDS)
    assert not loops("please press one to mute or unmute", "please press one to mute")
    assert loops(WORDS + " word" * 20, WORDS)


def _result(clip: hs.HumanClip, words: int, straight: int, bridge: int) -> Result:
    return Result(Case(clip, ns.CLEAN, 0.0), words, straight, bridge, Counter(), 0, 1, 1.0)


def test_the_interval_resamples_recordings_and_widens_with_their_spread() -> None:
    clips = hs.short_clips()[:10]
    steady = [_result(c, 10, 1, 2) for c in clips]  # every recording one error worse
    low, high = interval(steady)
    assert low == high == 10.0
    spread = [_result(c, 10, 1, 1 + (5 if i % 2 else -1)) for i, c in enumerate(clips)]
    low, high = interval(spread)
    assert low < 20.0 < high, "the mean (+20 points) lies inside"
    assert high - low > 10.0, "recordings that disagree give a wide interval"
    # Placements of one recording move together: doubling them does not narrow the interval.
    doubled = spread + [_result(r.case.clip, 10, 1, r.errors_bridge) for r in spread]
    assert interval(doubled) == interval(spread)
