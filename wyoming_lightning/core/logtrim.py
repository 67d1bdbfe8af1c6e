"""Keeping what clients can make the server write small: their strings clipped, repeated
warnings of one kind rate-limited with a count of what was held back.

A client chooses its ``language``, its names and how often it connects; without these bounds
it can fill the disk at wire speed (a 250 KB language echoed into every error line, a warning
per refused connection). :class:`RateLimiter` decides, free of I/O, on a clock the caller
passes in; :class:`LimitedLog` is the thin adapter the server's modules log through.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

CLIP_CHARS = 64
LINES_PER_INTERVAL = 10
INTERVAL_S = 60.0
REMEMBERED_KINDS = 256


def clip(text: object, limit: int = CLIP_CHARS) -> str:
    """``text`` (a client's string, say) at most ``limit`` characters long, the cut marked
    with an ellipsis and the original length, so a log line or an error stays readable."""
    value = str(text)
    if len(value) <= limit:
        return value
    return f"{value[:limit]}… ({len(value)} characters)"


@dataclass
class _Window:
    start: float
    lines: int = 0
    suppressed: int = 0


class RateLimiter:
    """At most ``lines`` lines of each kind per ``interval`` seconds; the others are counted.

    :meth:`admit` answers ``None`` for a line to hold back, or how many lines of its kind were
    held back since the last one let through (to say so in it). Kinds are the caller's small
    fixed words (an error code, ``busy``); at most ``capacity`` are remembered, the least
    recent forgotten first.
    """

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        *,
        lines: int = LINES_PER_INTERVAL,
        interval: float = INTERVAL_S,
        capacity: int = REMEMBERED_KINDS,
    ) -> None:
        self._clock = clock
        self._lines = lines
        self._interval = interval
        self._capacity = capacity
        self._windows: OrderedDict[str, _Window] = OrderedDict()

    def admit(self, kind: str) -> int | None:
        now = self._clock()
        window = self._windows.get(kind)
        if window is None:
            window = self._windows[kind] = _Window(now)
            if len(self._windows) > self._capacity:
                self._windows.popitem(last=False)
        else:
            self._windows.move_to_end(kind)
            if now - window.start >= self._interval:
                window.start, window.lines = now, 0
        if window.lines >= self._lines:
            window.suppressed += 1
            return None
        window.lines += 1
        suppressed, window.suppressed = window.suppressed, 0
        return suppressed


class LimitedLog:
    """A logger whose lines of one kind go through a :class:`RateLimiter`."""

    def __init__(self, logger: logging.Logger, limiter: RateLimiter | None = None) -> None:
        self._logger = logger
        self._limiter = limiter or RateLimiter()

    def log(self, level: int, kind: str, message: str, *args: object, **kwargs: object) -> None:
        if not self._logger.isEnabledFor(level):
            return
        suppressed = self._limiter.admit(kind)
        if suppressed is None:
            return
        if suppressed:
            message += " (%d more like this not logged)"
            args = (*args, suppressed)
        self._logger.log(level, message, *args, **kwargs)  # type: ignore[arg-type]

    def warning(self, kind: str, message: str, *args: object, **kwargs: object) -> None:
        self.log(logging.WARNING, kind, message, *args, **kwargs)

    def error(self, kind: str, message: str, *args: object, **kwargs: object) -> None:
        self.log(logging.ERROR, kind, message, *args, **kwargs)
