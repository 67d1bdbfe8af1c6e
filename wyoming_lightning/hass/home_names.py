"""The home's names, read from Home Assistant in the background and kept ready for requests.

A request never waits for Home Assistant: it takes :attr:`Services.home_keywords` as it is when
the request starts (see :meth:`Services.request_config`), and this task alone replaces it. The
choice of names is :mod:`.names`' and the schedule :mod:`.refresh`'s; this module only does the
I/O: one websocket (:mod:`.websocket`), subscribed to the registries' change events, read again
when they fire and every minute. When Home Assistant is unreachable, refuses the token or is
slow, requests go on with the names last read (none, before the first read worked); that is
logged once per outage and shown in metrics (``wyoming_lightning_hass_names_up``).

What a change costs: the keywords are part of the session URL, and warm sockets are kept per
URL, so the first request in each language after a change opens a new session (one handshake);
the sockets kept for the old list are no longer lent and close when idle. A refresh that
changes nothing keeps the same list in the same order, so it costs nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable

from prometheus_client import Counter, Gauge

from wyoming_lightning.core.protocol import Keyword
from wyoming_lightning.hass.connection import HassConnection, HassError
from wyoming_lightning.hass.names import NAME_WEIGHT, home_from_answers, home_keywords
from wyoming_lightning.hass.refresh import RefreshPlan
from wyoming_lightning.hass.sensors import Link, Outcome
from wyoming_lightning.hass.websocket import ANSWER_TIMEOUT_S, HassWebSocket
from wyoming_lightning.ops.metrics import PREFIX
from wyoming_lightning.services import Services
from wyoming_lightning.settings.cli import redact_url

_LOGGER = logging.getLogger(__name__)

REGISTRY_EVENTS = (
    "entity_registry_updated",
    "device_registry_updated",
    "area_registry_updated",
    "floor_registry_updated",
)


class HomeNames:
    """One per server: :meth:`start` after it listens, :meth:`stop` on the way out."""

    def __init__(
        self,
        services: Services,
        connection: HassConnection,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        answer_timeout_s: float = ANSWER_TIMEOUT_S,
    ) -> None:
        self.services = services
        self.connection = connection
        self._answer_timeout_s = answer_timeout_s
        self.plan = RefreshPlan()
        self._monotonic = monotonic
        self._task: asyncio.Task[None] | None = None
        self.reads = 0
        """Reads attempted so far, worked or not (:meth:`next_read` waits on it)."""
        self._progress = asyncio.Condition()
        registry = services.guard.metrics.registry
        self._count = Gauge(
            f"{PREFIX}_hass_names",
            "Home Assistant names sent to the service as keywords (0 while none are known)",
            registry=registry,
        )
        self._up = Gauge(
            f"{PREFIX}_hass_names_up",
            "1 when the last read of Home Assistant's names worked, 0 when it failed",
            registry=registry,
        )
        self._failures = Counter(
            f"{PREFIX}_hass_names_failures",
            "Failed reads of Home Assistant's names (unreachable, refused token, too slow)",
            registry=registry,
        )
        self._changes = Counter(
            f"{PREFIX}_hass_names_changes",
            "Times the list of names changed (each makes the next request per language open a "
            "new session)",
            registry=registry,
        )

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="hass-names")
        _LOGGER.info(
            "reading the names of the entities exposed to Assist, their areas and floors from "
            "%s, to send them as keywords",
            redact_url(self.connection.websocket_url),
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def next_read(self) -> Link:
        """Until the next read has been attempted (for tests and the benchmark); how it went."""
        target = self.reads + 1
        async with self._progress:
            await self._progress.wait_for(lambda: self.reads >= target)
        return self.plan.link

    async def _attempted(self) -> None:
        self.reads += 1
        async with self._progress:
            self._progress.notify_all()

    async def _read(self, ws: HassWebSocket) -> tuple[Keyword, ...]:
        exposed = await ws.call("homeassistant/expose_entity/list")
        states = await ws.call("get_states")
        shown = exposed.get("exposed_entities", {}) if isinstance(exposed, dict) else {}
        ids = sorted(shown) if isinstance(shown, dict) else []
        entries = await ws.call("config/entity_registry/get_entries", entity_ids=ids) if ids else {}
        sift = functools.partial(
            home_from_answers,
            exposed=exposed if isinstance(exposed, dict) else {},
            states=states if isinstance(states, list) else [],
            entries=entries if isinstance(entries, dict) else {},
            devices=await _listed(ws, "config/device_registry/list"),
            areas=await _listed(ws, "config/area_registry/list"),
            floors=await _listed(ws, "config/floor_registry/list"),
        )
        # Off the event loop too: a big home's states take a while to sift.
        return await asyncio.to_thread(lambda: home_keywords(sift()))

    def _use(self, keywords: tuple[Keyword, ...]) -> None:
        old = self.services.home_keywords
        self._count.set(len(keywords))
        if keywords == old:
            return
        self.services.home_keywords = keywords  # read by requests that start from now on
        self._changes.inc()
        devices = sum(1 for k in keywords if k.weight == NAME_WEIGHT)
        _LOGGER.info(
            "%d names from Home Assistant as keywords (%d device names and aliases, %d areas "
            "and floors)%s",
            len(keywords),
            devices,
            len(keywords) - devices,
            "; changed: the next request per language opens a new session" if old else "",
        )
        _LOGGER.debug("home keywords: %s", ", ".join(k.text for k in keywords))

    def _failed(self, err: HassError) -> None:
        self._failures.inc()
        self._up.set(0)
        if self.plan.failed(self._monotonic()) is not Outcome.FIRST_FAILURE:
            _LOGGER.debug("still cannot read the home's names: %s", err)
        else:
            known = len(self.services.home_keywords)
            _LOGGER.warning(
                "cannot read the home's names: %s; serving %s; retrying with back-off "
                "(logged once until it works again)",
                err,
                f"with the {known} names read before" if known else "without them",
            )

    async def _run(self) -> None:
        while True:
            delay = self.plan.next_wake(self._monotonic())
            if delay > 0:
                await asyncio.sleep(delay)
            try:
                async with HassWebSocket(self.connection, timeout_s=self._answer_timeout_s) as ws:
                    for event in REGISTRY_EVENTS:
                        await ws.call("subscribe_events", event_type=event)
                    while True:
                        keywords = await self._read(ws)
                        if self.plan.read(self._monotonic()) is Outcome.RECOVERED:
                            _LOGGER.info("reading the home's names from Home Assistant again")
                        self._up.set(1)
                        self._use(keywords)
                        await self._attempted()
                        await self._until_due(ws)
            except HassError as err:
                self._failed(err)
                await self._attempted()

    async def _until_due(self, ws: HassWebSocket) -> None:
        """Wait for a registry event (then settle) or the refresh, whichever comes first."""
        while (wait := self.plan.next_wake(self._monotonic())) > 0:
            if await ws.wait_event(wait) is not None:
                self.plan.changed(self._monotonic())

    @property
    def link(self) -> Link:
        return self.plan.link


async def _listed(ws: HassWebSocket, kind: str) -> list[dict[str, object]]:
    answer = await ws.call(kind)
    return [item for item in answer if isinstance(item, dict)] if isinstance(answer, list) else []


def start_home_names(services: Services, connection: HassConnection | None) -> HomeNames | None:
    """The names' task, when there is a Home Assistant and ``--hass-names`` is on."""
    if connection is None or not services.settings.hass_names:
        return None
    names = HomeNames(services, connection)
    names.start()
    return names
