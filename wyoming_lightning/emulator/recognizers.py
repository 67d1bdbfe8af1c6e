"""The speech recognizers the emulator can put behind the protocol.

The protocol logic only needs "words with times for this audio"; keeping that behind a small
interface lets protocol tests use exact, free tone words and demos use real speech (Whisper).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from wyoming_lightning.emulator import tones


@dataclass(frozen=True)
class Word:
    """A recognized word; times in seconds from the start of the audio given to ``transcribe``."""

    text: str
    start: float
    end: float
    confidence: float


class Recognizer(Protocol):
    """Turns 16 kHz mono s16le audio into words."""

    @property
    def blocking(self) -> bool:
        """True when ``transcribe`` is slow enough that it must run off the event loop."""
        ...

    @property
    def interim_interval_ms(self) -> int:
        """Audio that must arrive before the next interim result is worth computing."""
        ...

    def warm_up(self) -> None:
        """Load whatever is slow to load, so the first session does not pay for it."""
        ...

    def transcribe(
        self,
        pcm16k_mono_s16: bytes,
        language: str,
        *,
        word_times: bool = False,
        interim: bool = False,
        keywords: Sequence[tuple[str, float]] = (),
    ) -> list[Word]:
        """Words of the audio; ``word_times=False`` lets a recognizer skip precise timing.

        ``interim=True`` marks a call whose answer is optional: a busy recognizer may raise
        :class:`RecognizerBusy` rather than make a final of another session wait behind it.
        ``keywords`` are the session's ``keywords`` (word, intensifier): words to favour.
        """
        ...


class RecognizerUnavailable(RuntimeError):
    """The chosen recognizer cannot run here (a missing package or model)."""


class RecognizerBusy(RuntimeError):
    """Every worker is taken: an interim is skipped (the next one will catch up)."""


class ToneRecognizer:
    """Reads the tone words of :mod:`.tones`: exact, deterministic and nearly free."""

    blocking = False
    interim_interval_ms = 100
    decode = staticmethod(tones.decode)
    """The tone reader; a subclass may swap in another one that finds the same words."""

    def warm_up(self) -> None:
        return None

    def transcribe(
        self,
        pcm16k_mono_s16: bytes,
        language: str,
        *,
        word_times: bool = False,
        interim: bool = False,
        keywords: Sequence[tuple[str, float]] = (),
    ) -> list[Word]:
        # Tone words are read exactly: there is nothing for a keyword to tip.
        return [Word(t.word, t.start, t.end, t.confidence) for t in self.decode(pcm16k_mono_s16)]


def create_recognizer(name: str, model_dir: str | None = None) -> Recognizer:
    """The recognizer called ``name``; Whisper is imported only when asked for."""
    if name == "tones":
        return ToneRecognizer()
    if name == "whisper":
        from wyoming_lightning.emulator.whisper import WhisperRecognizer

        return WhisperRecognizer(model_dir)
    raise ValueError(f"unknown recognizer {name!r}")
