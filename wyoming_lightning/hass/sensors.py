"""Which sensor states to publish to Home Assistant, and when; free of I/O.

Four sensors carry today's spending (the usage table's day, local time): audio minutes sent
(what is billed), estimated cost, requests and errors. A state is published when it changes
and again every :data:`REFRESH_S` (Home Assistant forgets states that no integration owns when
it restarts, and a new day must show as zero even when nobody speaks). A failed publish is
retried with a doubling back-off, from :data:`FIRST_RETRY_S` up to :data:`MAX_RETRY_S`; the
adapter logs the first failure of a run of failures and the recovery, not every attempt.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from wyoming_lightning.ops.quota import DayUsage

ENTITY_PREFIX = "sensor.wyoming_lightning_"
REFRESH_S = 300.0
FIRST_RETRY_S = 5.0
MAX_RETRY_S = 300.0


@dataclass(frozen=True)
class SensorState:
    entity_id: str
    state: str
    attributes: dict[str, Any]


def sensor_states(
    today: DayUsage, *, daily_limit_min: float | None, price_per_min: float
) -> list[SensorState]:
    """Today's usage as Home Assistant states, with the attributes a dashboard card needs."""
    common: dict[str, Any] = {"day": today.day}
    minutes = dict(
        common,
        friendly_name="Wyoming Lightning audio sent today",
        unit_of_measurement="min",
        device_class="duration",
        state_class="total_increasing",
        icon="mdi:microphone-message",
        received_min=round(today.received_s / 60, 2),
    )
    if daily_limit_min is not None:
        minutes["daily_limit_min"] = daily_limit_min
    return [
        SensorState(f"{ENTITY_PREFIX}audio_minutes_today", f"{today.sent_s / 60:.2f}", minutes),
        SensorState(
            f"{ENTITY_PREFIX}estimated_cost_today",
            f"{today.cost_usd:.4f}",
            dict(
                common,
                friendly_name="Wyoming Lightning estimated cost today",
                unit_of_measurement="USD",
                device_class="monetary",
                state_class="total",
                icon="mdi:cash",
                price_per_min=price_per_min,
            ),
        ),
        SensorState(
            f"{ENTITY_PREFIX}requests_today",
            str(today.requests),
            dict(
                common,
                friendly_name="Wyoming Lightning requests today",
                unit_of_measurement="requests",
                state_class="total_increasing",
                icon="mdi:counter",
            ),
        ),
        SensorState(
            f"{ENTITY_PREFIX}errors_today",
            str(sum(today.errors.values())),
            dict(
                common,
                friendly_name="Wyoming Lightning errors today",
                unit_of_measurement="errors",
                state_class="total_increasing",
                icon="mdi:alert-circle-outline",
                codes=dict(sorted(today.errors.items())),
            ),
        ),
    ]


class Link(enum.Enum):
    UNKNOWN = "unknown"
    """Nothing published yet."""
    UP = "up"
    DOWN = "down"
    """The last publish failed: retrying with back-off."""


class Outcome(enum.Enum):
    QUIET = "quiet"
    FIRST_FAILURE = "first_failure"
    """Log it: the link just went down (later failures of the same run are not logged)."""
    RECOVERED = "recovered"
    """Log it: the link is back after failures."""


@dataclass(frozen=True)
class Batch:
    """What to post now; ``full`` when it is every sensor (a refresh), not just the changed."""

    states: list[SensorState]
    full: bool


class SensorPlan:
    """Remembers what Home Assistant was last told; says what is due at a given moment."""

    def __init__(self) -> None:
        self.link = Link.UNKNOWN
        self._sent: dict[str, SensorState] = {}
        self._refreshed_at: float | None = None
        self._retry_at: float | None = None
        self._backoff_s = FIRST_RETRY_S

    def due(self, states: list[SensorState], now: float) -> Batch:
        """None while backing off; all on a refresh (or after a failure); else the changed."""
        if self._retry_at is not None and now < self._retry_at:
            return Batch([], full=False)
        if (
            self._refreshed_at is None
            or now - self._refreshed_at >= REFRESH_S
            or self.link is Link.DOWN
        ):
            return Batch(list(states), full=True)
        return Batch([s for s in states if self._sent.get(s.entity_id) != s], full=False)

    def next_wake(self, now: float) -> float:
        """Seconds until :meth:`due` may say something without a new request."""
        if self._retry_at is not None:
            return max(0.0, self._retry_at - now)
        if self._refreshed_at is None:
            return 0.0
        return max(0.0, self._refreshed_at + REFRESH_S - now)

    def sent(self, batch: Batch, now: float) -> Outcome:
        for state in batch.states:
            self._sent[state.entity_id] = state
        if batch.full:
            self._refreshed_at = now
        was_down = self.link is Link.DOWN
        self.link = Link.UP
        self._retry_at = None
        self._backoff_s = FIRST_RETRY_S
        return Outcome.RECOVERED if was_down else Outcome.QUIET

    def failed(self, now: float) -> Outcome:
        first = self.link is not Link.DOWN
        self.link = Link.DOWN
        self._retry_at = now + self._backoff_s
        self._backoff_s = min(self._backoff_s * 2, MAX_RETRY_S)
        return Outcome.FIRST_FAILURE if first else Outcome.QUIET
