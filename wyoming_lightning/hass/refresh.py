"""When to read the home's names from Home Assistant again, free of I/O.

The names are read once the server starts, again :data:`SETTLE_S` after Home Assistant says a
registry changed (a rename comes as a burst of events: one read for the burst), and every
:data:`REFRESH_S` whatever it says (exposing an entity to Assist fires no event), so a change
is known within a minute. A failed read (Home Assistant unreachable, a refused token, an answer
slower than the adapter waits) is retried with a doubling back-off from :data:`FIRST_RETRY_S`
to :data:`MAX_RETRY_S`; the names last read stay in use meanwhile (none, before the first read
worked). The adapter logs the first failure of a run and the recovery, not every attempt.
"""

from __future__ import annotations

from wyoming_lightning.hass.sensors import Link, Outcome

REFRESH_S = 60.0
SETTLE_S = 1.0
FIRST_RETRY_S = 5.0
MAX_RETRY_S = 300.0


class RefreshPlan:
    """Says when the next read is due, given what happened; reads an injected ``now``."""

    def __init__(self) -> None:
        self.link = Link.UNKNOWN
        self._due_at = 0.0
        self._backoff_s = FIRST_RETRY_S

    def next_wake(self, now: float) -> float:
        """Seconds until the next read is due (0: now)."""
        return max(0.0, self._due_at - now)

    def changed(self, now: float) -> None:
        """Home Assistant said a registry changed: read soon, unless backing off already
        (the retry comes first) or a read is due sooner anyway."""
        if self.link is not Link.DOWN:
            self._due_at = min(self._due_at, now + SETTLE_S)

    def read(self, now: float) -> Outcome:
        """A read worked: the next is a refresh away."""
        was_down = self.link is Link.DOWN
        self.link = Link.UP
        self._due_at = now + REFRESH_S
        self._backoff_s = FIRST_RETRY_S
        return Outcome.RECOVERED if was_down else Outcome.QUIET

    def failed(self, now: float) -> Outcome:
        """A read failed: retry after the back-off, which doubles up to its cap."""
        first = self.link is not Link.DOWN
        self.link = Link.DOWN
        self._due_at = now + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, MAX_RETRY_S)
        return Outcome.FIRST_FAILURE if first else Outcome.QUIET
