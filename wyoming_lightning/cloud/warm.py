"""The warm-socket adapter: idle :class:`~.client.ServiceSession` objects on the event loop.

:class:`~.pool.PoolPolicy` decides; this carries it out: it owns each idle socket's callbacks
(a message while idle is shown to the policy, a close or failure drops the socket), sends the
keepalives, closes retired sockets with ``close_stream``, and keeps one timer for the policy's
next deadline. A request borrows a socket with :meth:`WarmSessions.borrow` and hands it back
with :meth:`WarmSessions.give_back`; from borrow to give-back the socket reports to the request.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Sequence

from wyoming_lightning.cloud.client import Callbacks, ServiceSession
from wyoming_lightning.core.protocol import KEEPALIVE_MESSAGE, Pong, ServiceMessage
from wyoming_lightning.core.warm_pool import Keepalive, PoolPolicy, Retire
from wyoming_lightning.ops.metrics import Metrics

_LOGGER = logging.getLogger(__name__)
CLOSE_STREAM = json.dumps({"type": "close_stream"})


class WarmSessions:
    """Idle Pulse sockets between requests, keyed by their URL."""

    def __init__(
        self,
        policy: PoolPolicy[ServiceSession],
        metrics: Metrics | None = None,
    ) -> None:
        self.policy = policy
        self._metrics = metrics
        self._timer: asyncio.TimerHandle | None = None
        self._closing: set[ServiceSession] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def with_timeout(
        cls,
        idle_timeout_s: float,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> WarmSessions:
        return cls(PoolPolicy(idle_timeout_s, clock), metrics)

    @property
    def enabled(self) -> bool:
        return self.policy.enabled

    def borrow(self, url: str) -> ServiceSession | None:
        """A warm socket for ``url``, now the caller's to rebind, or None: connect anew."""
        if not self.enabled:
            return None
        session, retired = self.policy.lend(url)
        self._carry_out(retired)
        while session is not None and not session.usable:
            self._retire(session, "it closed")
            session, retired = self.policy.lend(url)
            self._carry_out(retired)
        if session is not None and self._metrics is not None:
            self._metrics.warm_reuses.inc()
        self._schedule()
        return session

    def give_back(self, session: ServiceSession) -> None:
        """The request is done with ``session`` and found it clean (every final in, nothing
        owed: the request machine's ``Disconnect(reusable=True)``); kept if still usable."""
        session.rebind(self._idle_callbacks(session))
        self._carry_out(self.policy.give_back(session, session.url, clean=session.usable))

    async def close(self) -> None:
        """Close every idle socket (the server is stopping) and wait, briefly, for them."""
        self._carry_out(self.policy.drain())
        waits = [s.wait_closed() for s in self._closing]
        if waits:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(3):
                    await asyncio.gather(*waits, return_exceptions=True)

    def _idle_callbacks(self, session: ServiceSession) -> Callbacks:
        def message(msg: ServiceMessage) -> None:
            self._carry_out(self.policy.heard(session, alive=isinstance(msg, Pong)))

        def alive() -> None:  # the answer to a WebSocket ping (no audio is sent while idle)
            self._carry_out(self.policy.heard(session, alive=True))

        def lost(*_: object) -> None:
            self._carry_out(self.policy.lost(session))

        return Callbacks(
            opened=lambda: None, message=message, closed=lost, failed=lost, progress=alive
        )

    def _carry_out(
        self, actions: Sequence[Keepalive[ServiceSession] | Retire[ServiceSession]]
    ) -> None:
        for action in actions:
            if isinstance(action, Keepalive):
                action.socket.send(KEEPALIVE_MESSAGE)
                action.socket.probe()
            else:
                self._retire(action.socket, action.reason.value)
        if self._metrics is not None:
            self._metrics.idle_sessions.set(self.policy.idle_count)
        self._schedule()

    def _retire(self, session: ServiceSession, why: str) -> None:
        _LOGGER.debug("closing a warm service session: %s", why)
        if session.usable:
            session.send(CLOSE_STREAM)
        session.close()
        self._closing.add(session)
        with contextlib.suppress(RuntimeError):  # no loop: nothing was ever started
            task = asyncio.get_running_loop().create_task(self._forget(session))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _forget(self, session: ServiceSession) -> None:
        await session.wait_closed()
        self._closing.discard(session)

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due = self.policy.next_due()
        if due is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        delay = max(0.0, due - self.policy.clock())
        self._timer = loop.call_later(delay, self._tick)

    def _tick(self) -> None:
        self._timer = None
        self._carry_out(self.policy.due())
