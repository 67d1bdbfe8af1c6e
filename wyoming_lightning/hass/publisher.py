"""Today's usage to Home Assistant as sensors, in the background (the decisions are
:mod:`.sensors`', the HTTP :mod:`.connection`'s).

A finished request only sets an event (:meth:`SensorPublisher.notify`), so no request ever
waits for Home Assistant; the task posts whatever :class:`~.sensors.SensorPlan` says is due,
wakes again for the refresh or the retry, and logs a failing Home Assistant once per outage.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from wyoming_lightning.hass.connection import HassConnection, HassError
from wyoming_lightning.hass.sensors import Link, Outcome, SensorPlan, sensor_states
from wyoming_lightning.ops.quota import DayUsage
from wyoming_lightning.services import Services

_LOGGER = logging.getLogger(__name__)


class SensorPublisher:
    """One per server; :meth:`start` after the server listens, :meth:`stop` on the way out."""

    def __init__(
        self,
        services: Services,
        connection: HassConnection,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.services = services
        self.connection = connection
        self.plan = SensorPlan()
        self._monotonic = monotonic
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._asked = 1
        """Bumped by every notify (1: the first publish at start): what the published states
        must have caught up with."""
        self._answered = 0
        self._progress = asyncio.Condition()

    def notify(self) -> None:
        """A request finished: publish soon. Never blocks, never fails."""
        self._asked += 1
        self._wake.set()

    def start(self) -> None:
        self.services.guard.listeners.append(self.notify)
        self._task = asyncio.create_task(self._run(), name="hass-sensors")
        _LOGGER.info("publishing today's usage as sensors to %s", self.connection.where)

    async def stop(self) -> None:
        with contextlib.suppress(ValueError):
            self.services.guard.listeners.remove(self.notify)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.connection.close()

    async def caught_up(self) -> None:
        """Until Home Assistant holds the states of every request finished before this call
        (for tests and for a clean stop; it waits through back-off)."""
        target = self._asked
        async with self._progress:
            await self._progress.wait_for(lambda: self._answered >= target)

    def _today(self) -> DayUsage:
        guard = self.services.guard
        day = guard.ledger.today()
        return DayUsage.from_values(day, guard.store.day_values(day))

    async def _run(self) -> None:
        settings = self.services.settings
        while True:
            asked = self._asked
            self._wake.clear()
            now = self._monotonic()
            states = sensor_states(
                self._today(),
                daily_limit_min=settings.daily_audio_limit_min,
                price_per_min=settings.price_per_min,
            )
            batch = self.plan.due(states, now)
            if batch.states:
                try:
                    for state in batch.states:
                        await self.connection.set_state(
                            state.entity_id, state.state, state.attributes
                        )
                except HassError as err:
                    if self.plan.failed(self._monotonic()) is Outcome.FIRST_FAILURE:
                        _LOGGER.warning(
                            "cannot publish the usage sensors: %s; retrying with back-off "
                            "(logged once until it works again)",
                            err,
                        )
                else:
                    if self.plan.sent(batch, self._monotonic()) is Outcome.RECOVERED:
                        _LOGGER.info("usage sensors published to Home Assistant again")
            if self.plan.link is Link.UP:
                async with self._progress:
                    self._answered = max(self._answered, asked)
                    self._progress.notify_all()
            delay = self.plan.next_wake(self._monotonic())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=max(delay, 0.05))


def start_publisher(
    services: Services, connection: HassConnection | None
) -> SensorPublisher | None:
    if connection is None or not services.settings.hass_sensors:
        return None
    publisher = SensorPublisher(services, connection)
    publisher.start()
    return publisher
