"""How ``python -m benchmarks noise`` scores a row: the straight reference hears every final,
Whisper's loops are told apart from the reference's own repetitions, and an interval says
whether a row's figure is resolved."""

from __future__ import annotations

from collections import Counter

from benchmarks.noise import Case, Result, interval, longest_repeat, loops
from benchmarks.pause import straight
from tests.kit import human_speech as hs
from tests.kit import noisy_speech as ns
from wyoming_lightning.emulator.recognizers import ToneRecognizer
from wyoming_lightning.emulator.tones import encode_phrase, silence

WORDS = "montreal forced a liner word another word here's some more word word word word word"


def test_straight_hears_the_finals_the_session_sends_while_the_audio_flows() -> None:
    # Like Pulse, the emulator settles an utterance by itself after 800 ms of silence; a
    # stream that ends in silence then finishes with an empty final. Straight once kept only
    # that one, and read whole commands as nothing.
    pcm = silence(300) + encode_phrase("one two three") + silence(1200)
    assert straight(pcm, ToneRecognizer()) == "one two three"
    pcm += encode_phrase("four five") + silence(1200)
    assert straight(pcm, ToneRecognizer()) == "one two three four five"


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
