"""A clock that moves only when a test moves it, for logic that reads the time through an
injected ``clock`` callable (the pool's idle timer, the log limiter, the daily ledger...).

One class for every kind of time: ``FakeClock(0.0)`` stands for ``time.monotonic``,
``FakeClock(datetime(...))`` for the local wall clock.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class FakeClock(Generic[T]):
    """Call it for the time; set or add to :attr:`now` to move it."""

    def __init__(self, now: T) -> None:
        self.now = now

    def __call__(self) -> T:
        return self.now
