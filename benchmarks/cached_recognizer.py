"""The emulator's recognizer with its words remembered by audio, for benchmarks that replay the
same speech many times (`noise`, `pause`, `pause_set`).

A benchmark sweeps a rule over the same recordings, and the bridge sends the same utterance
audio under many settings: Whisper on a 2-core machine takes most of a run unless each distinct
audio is recognized once. Interims are skipped unless asked for (the bridge only logs them, and
Whisper on every interim would cost most of the run); a rule that reads interims asks for them,
and they are remembered apart from finals. With a path, the words are kept in a JSON file across
runs (``--cache``), so a rerun that changes only the gate recognizes only the audio that changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

from wyoming_lightning.emulator.recognizers import Recognizer, Word

SAVE_EVERY = 50
"""New entries between two writes of the cache file (a run cut short keeps most of its work)."""


class CachedRecognizer:
    """A :class:`~wyoming_lightning.emulator.recognizers.Recognizer` that asks ``inner`` once
    per distinct audio (and per word-times / interim flag)."""

    def __init__(self, inner: Recognizer, *, interims: bool = False, path: Path | None = None):
        self._inner = inner
        self._interims = interims
        self._path = path
        self._words: dict[str, list[list[str | float]]] = {}
        if path is not None and path.exists():
            self._words = json.loads(path.read_text(encoding="utf-8"))
        self._new = 0
        self.blocking = inner.blocking
        self.interim_interval_ms = inner.interim_interval_ms

    def warm_up(self) -> None:
        self._inner.warm_up()

    def transcribe(
        self,
        pcm16k_mono_s16: bytes,
        language: str,
        *,
        word_times: bool = False,
        interim: bool = False,
        keywords: Sequence[tuple[str, float]] = (),  # the Recognizer protocol's; unused here
    ) -> list[Word]:
        if interim and not self._interims:
            return []
        key = (
            hashlib.sha1(pcm16k_mono_s16).hexdigest()
            + ("/t" if word_times else "")
            + ("/i" if interim else "")
        )
        if key not in self._words:
            words = self._inner.transcribe(
                pcm16k_mono_s16, language, word_times=word_times, interim=interim
            )
            self._words[key] = [[w.text, w.start, w.end, w.confidence] for w in words]
            self._new += 1
            if self._new % SAVE_EVERY == 0:
                self.save()
        return [Word(str(t), float(a), float(b), float(c)) for t, a, b, c in self._words[key]]

    def save(self) -> None:
        """Write the cache file (when there is one and something new to keep)."""
        if self._path is not None and self._new:
            self._path.write_text(json.dumps(self._words), encoding="utf-8")
