"""The last requests the server answered, kept in memory for the web page; free of I/O.

The usage table on disk holds totals per day, never single requests: what a user wants to see
after "it did not understand me" is the last few requests one by one (who asked, in which
language, how much audio came and went, how long the answer took, how it ended). A bounded
ring holds them: memory stays flat however long the server runs, and nothing of it is ever
written anywhere. The words are kept only when the owner turns ``--web-show-text`` on: a
transcript can be private, and the page may be open to the whole home network.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

RECENT_REQUESTS = 50
"""How many requests the page can list; older ones fall off the end."""
MAX_TEXT_CHARS = 500
"""A transcript on the page is cut here: a 30 s dictation must not bloat every status poll."""


@dataclass(frozen=True)
class RequestRecord:
    """One finished request as the page lists it."""

    at: dt.datetime
    """Wall-clock time (local) when it ended."""
    client: str
    """The client's address as the guard counts it (``local`` for a Unix socket)."""
    language: str | None
    received_s: float
    sent_s: float
    wait_s: float | None
    """From the client's ``audio-stop`` to the answer; ``None`` when there was no stop."""
    outcome: str
    """``transcript``, ``error`` or ``abandoned`` (the metrics' label)."""
    code: str
    """The error code, empty for a transcript."""
    fallback: str | None
    text: str | None
    """The transcript, only with ``--web-show-text``."""

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["at"] = self.at.isoformat(timespec="seconds")
        return out


@dataclass(frozen=True)
class LastError:
    """The most recent request that ended in an error: what the page's state box shows."""

    at: dt.datetime
    code: str
    text: str

    def as_json(self) -> dict[str, str]:
        return {"at": self.at.isoformat(timespec="seconds"), "code": self.code, "text": self.text}


class RecentRequests:
    """A ring of the last :data:`RECENT_REQUESTS` requests and the last error."""

    def __init__(self, *, keep_text: bool, capacity: int = RECENT_REQUESTS) -> None:
        self.keep_text = keep_text
        self._ring: deque[RequestRecord] = deque(maxlen=capacity)
        self.last_error: LastError | None = None

    def add(self, record: RequestRecord, error_text: str = "") -> None:
        """One request is over. The text is dropped here unless the owner asked for it."""
        text = record.text
        if not self.keep_text or text is None:
            text = None
        elif len(text) > MAX_TEXT_CHARS:
            text = text[: MAX_TEXT_CHARS - 1] + "…"
        if text != record.text:
            record = RequestRecord(**{**asdict(record), "text": text})
        self._ring.append(record)
        if record.outcome == "error":
            self.last_error = LastError(record.at, record.code, error_text or record.code)

    def newest_first(self) -> list[RequestRecord]:
        return list(reversed(self._ring))

    def __len__(self) -> int:
        return len(self._ring)
