"""Settling text from final results that may repeat or overlap.

The service's final segments are incremental, but a ``finalize`` that races the server's own
end-of-utterance can produce the same final twice, and a replay after a dropped connection
produces the finals of the replayed audio again. This module decides which finals count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from .lightning.protocol import Result


def normalise(text: str) -> str:
    """Collapse whitespace so that two spellings of the same final compare equal."""
    return " ".join(text.split())


def join_texts(parts: Iterable[str]) -> str:
    """The session text: stripped segments joined with single spaces, as the service documents."""
    return " ".join(p for p in (normalise(x) for x in parts) if p)


@dataclass
class UtteranceText:
    """The settled finals of one utterance, with duplicates and overlaps dropped."""

    finals: list[str] = field(default_factory=list)
    last_end: float | None = None
    language: str | None = None

    def add(self, result: Result) -> bool:
        """Take a final into account; False when it only repeats what is already here."""
        text = normalise(result.transcript)
        if result.language:
            self.language = result.language
        if not text:
            return False
        end = result.end_time
        if end is not None and self.last_end is not None and end <= self.last_end:
            return False
        if self.finals and self.finals[-1] == text:
            return False
        self.finals.append(text)
        if end is not None:
            self.last_end = end
        return True

    def reset(self) -> None:
        """Forget everything: the audio is about to be replayed and will be recognised afresh."""
        self.finals.clear()
        self.last_end = None

    @property
    def text(self) -> str:
        return join_texts(self.finals)
