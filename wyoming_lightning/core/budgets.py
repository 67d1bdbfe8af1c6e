"""How often and how long one request waits for the service: its retry budget and the bound
on the wait after ``audio-stop``. Free of I/O and of clocks: the request machine (request.py)
passes the time in, so each rule is plain arithmetic, tested through the machine on a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from wyoming_lightning.core.errors import ErrorCode
from wyoming_lightning.core.protocol import Failure

if TYPE_CHECKING:
    from wyoming_lightning.core.request import RequestConfig

BACKOFF_INITIAL_S = 0.5
"""The first retry's delay; each further retry doubles it, up to :data:`BACKOFF_MAX_S`."""
BACKOFF_MAX_S = 30.0
MAX_STALL_RETRIES = 1
"""Stalled sessions replaced per request; the next stall gives up."""
FINAL_TIMEOUT_PER_AUDIO_S = 1.0
"""Extra wait after audio-stop per second of audio still without its final."""


def quiet_s(config: RequestConfig) -> float:
    """How long a service that answered a turn must say nothing more before the turn is
    taken as complete: the stall timeout, or twice the longest the service has ever taken
    to answer a finalize (a loaded service is given the time it has shown it needs), at
    most ``final_timeout_s``."""
    slowest = 2 * config.habits.answer_delay_s
    return min(config.final_timeout_s, max(config.stall_timeout_s, slowest))


@dataclass
class RetryBudget:
    """Reconnections left to one request. One outage is one retry, however many of the
    request's sessions it takes down and whenever each failure is noticed."""

    max_retries: int
    retries: int = 0
    stall_retries: int = 0
    reconnected_below: int = 0
    """Sessions numbered below this were open before the last reconnection: when one of them
    fails later, it is the same outage, already paid for by that retry."""

    def retry_delay(self, conn: int, failure: Failure) -> float | None:
        """Session ``conn`` failed: the backoff before reconnecting, or ``None`` (give up)."""
        same_outage = conn < self.reconnected_below
        if not failure.retryable or not (same_outage or self.retries < self.max_retries):
            return None
        attempts = self.retries - 1 if same_outage else self.retries
        delay: float = min(BACKOFF_MAX_S, BACKOFF_INITIAL_S * 2.0**attempts)
        if failure.retry_after is not None:
            delay = max(delay, min(failure.retry_after, BACKOFF_MAX_S))
        if not same_outage:
            self.retries += 1
        return delay

    def stall_retryable(self, conn: int, reconnecting: bool) -> bool:
        """Session ``conn`` stalled: is replacing it still within the budget? A stall during an
        outage already being retried joins that retry."""
        joins = reconnecting or conn < self.reconnected_below
        retry = joins or self.stall_retries < MAX_STALL_RETRIES
        if retry and not joins:
            self.stall_retries += 1
        return retry

    def reconnected(self, next_conn: int) -> None:
        """The sessions opened from now on are numbered ``next_conn`` and above."""
        self.reconnected_below = next_conn


@dataclass
class AnswerDeadline:
    """The wait after ``audio-stop`` (see request.py, "Liveness"): ``final_timeout_s`` plus
    :data:`FINAL_TIMEOUT_PER_AUDIO_S` per second of audio owed a final, counted again from each
    final that settles an utterance, never past ``response_timeout_s`` after ``audio-stop``."""

    final_timeout_s: float
    response_timeout_s: float
    stopped_at: float = 0.0
    wait: float = 0.0
    """Seconds from audio-stop to the current due time."""
    last_final_at: float | None = None
    """When a service final last settled an utterance."""

    def start(self, now: float, owed_s: float, *, local: bool) -> float:
        """``audio-stop`` at ``now`` with ``owed_s`` of audio unsettled: the first wait (the
        local recognizer, running, gets the ceiling)."""
        wait = self.final_timeout_s + FINAL_TIMEOUT_PER_AUDIO_S * owed_s
        if local:
            wait = self.response_timeout_s
        self.wait = min(self.response_timeout_s, wait)
        self.stopped_at = now
        return self.wait

    def final_came(self, now: float) -> None:
        self.last_final_at = now

    def rest(self, now: float, owed_s: float) -> float:
        """How much longer to wait for a service whose finals are still coming, or <= 0.

        A final proves that the service works through the owed audio, so the audio still owed
        gets a full wait of its own (a per-final deadline fixed at audio-stop would drop a final
        that is on its way). No later than the first bound when no final came after audio-stop.
        """
        since = max(self.stopped_at, self.last_final_at or self.stopped_at)
        due = since + self.final_timeout_s + FINAL_TIMEOUT_PER_AUDIO_S * owed_s
        ceiling = self.stopped_at + self.response_timeout_s
        return min(due, ceiling) - now

    def extend(self, now: float, rest: float) -> None:
        self.wait = now + rest - self.stopped_at

    def overdue(self, owed_s: float) -> Failure:
        """The wait ran out with ``owed_s`` of audio still without a final: not retried."""
        return Failure(
            ErrorCode.TIMEOUT,
            f"the service did not finish within {self.wait:g} s of audio-stop "
            f"({owed_s:.1f} s of audio still without a final)",
            False,
        )
