"""benchmarks/cached_recognizer.py: each distinct audio recognized once, interims only when
asked for and kept apart from finals, and the words kept across runs in the cache file."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from benchmarks.cached_recognizer import CachedRecognizer
from wyoming_lightning.emulator.recognizers import ToneRecognizer, Word
from wyoming_lightning.emulator.tones import encode


class CountingTones(ToneRecognizer):
    """The real tone reader, counting the calls that reach it."""

    def __init__(self) -> None:
        self.calls: list[tuple[bool, bool]] = []

    def transcribe(
        self,
        pcm16k_mono_s16: bytes,
        language: str,
        *,
        word_times: bool = False,
        interim: bool = False,
        keywords: Sequence[tuple[str, float]] = (),
    ) -> list[Word]:
        self.calls.append((word_times, interim))
        return super().transcribe(pcm16k_mono_s16, language, word_times=word_times)


def test_the_same_audio_is_recognized_once() -> None:
    inner = CountingTones()
    cached = CachedRecognizer(inner)
    audio = encode(["four", "five"])
    first = cached.transcribe(audio, "en", word_times=True)
    again = cached.transcribe(audio, "en", word_times=True)
    assert [w.text for w in first] == ["four", "five"]
    assert again == first
    assert inner.calls == [(True, False)]
    cached.transcribe(audio, "en")  # without word times: another entry
    cached.transcribe(encode(["six"]), "en", word_times=True)  # other audio
    assert len(inner.calls) == 3


def test_interims_are_skipped_unless_asked_for_and_kept_apart() -> None:
    inner = CountingTones()
    audio = encode(["seven"])
    assert CachedRecognizer(inner).transcribe(audio, "en", interim=True) == []
    assert inner.calls == []
    reading = CachedRecognizer(inner, interims=True)
    assert [w.text for w in reading.transcribe(audio, "en", interim=True)] == ["seven"]
    reading.transcribe(audio, "en")
    assert inner.calls == [(False, True), (False, False)]


def test_the_cache_file_carries_words_to_the_next_run(tmp_path: Path) -> None:
    path = tmp_path / "words.json"
    audio = encode(["eight", "nine"])
    first_run = CachedRecognizer(CountingTones(), path=path)
    words = first_run.transcribe(audio, "en", word_times=True)
    first_run.save()
    inner = CountingTones()
    assert CachedRecognizer(inner, path=path).transcribe(audio, "en", word_times=True) == words
    assert inner.calls == []
