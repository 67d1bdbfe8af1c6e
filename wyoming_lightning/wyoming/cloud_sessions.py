"""One request's sockets to the service, as the request machine's session actions ask.

The machine names its sessions by number (``conn``) and never sees a socket; the handler used
to keep the sockets beside everything else it does for a client. They are their own idea: which
socket a number means, lending a warm one instead of a handshake, giving a clean one back or
closing it, and at the end closing every socket the request still holds and waiting (bounded)
for them to go. Each socket's callbacks become the machine's events through ``feed``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from wyoming_lightning.cloud.client import Callbacks, ServiceSession, Timeouts
from wyoming_lightning.core import request as rq
from wyoming_lightning.ops.guard import Guard, Occurrence
from wyoming_lightning.services import Services


class CloudSessions:
    """The service sockets of one request, by the machine's session number."""

    def __init__(
        self,
        services: Services,
        guard: Guard,
        feed: Callable[[rq.Event], None],
        debug: Callable[[str], None],
    ) -> None:
        self._services = services
        self._guard = guard
        self._feed = feed
        self._debug = debug
        settings = services.settings
        self.timeouts = Timeouts(
            connect_s=settings.connect_timeout_s, send_s=settings.send_timeout_s
        )
        self._open: dict[int, ServiceSession] = {}
        self._closing: set[ServiceSession] = set()

    def connect(self, conn: int, url: str) -> None:
        """Session ``conn`` on a warm socket for ``url`` if one waits, else a new handshake."""
        callbacks = Callbacks(
            opened=lambda: self._feed(rq.SessionOpened(conn)),
            message=lambda message: self._feed(rq.SessionMessage(conn, message)),
            closed=lambda code, reason: self._feed(rq.SessionClosed(conn, code, reason)),
            failed=lambda failure: self._feed(rq.SessionFailed(conn, failure)),
            progress=lambda: self._feed(rq.SessionProgress(conn)),
        )
        warm = self._services.warm.borrow(url)
        if warm is not None:
            warm.rebind(callbacks)
            self._open[conn] = warm
            self._debug(f"service session {conn}: a warm socket, no handshake")
            self._feed(rq.SessionOpened(conn, warm.audio_bytes_sent))
            return
        key = self._services.settings.api_key.reveal()
        session = ServiceSession(url, key, self.timeouts, callbacks)
        self._open[conn] = session
        self._guard.observe(Occurrence.HANDSHAKE)
        self._debug(f"opening service session {conn}")
        session.start()

    def send(self, conn: int, data: str | bytes) -> None:
        """A text message or audio to session ``conn``, if it is still open."""
        session = self._open.get(conn)
        if session is not None:
            session.send(data)

    def probe(self, conn: int) -> None:
        session = self._open.get(conn)
        if session is not None:
            session.probe()

    def disconnect(self, conn: int, reusable: bool) -> None:
        """Session ``conn`` is done: a reusable socket goes back warm, any other is closed."""
        session = self._open.pop(conn, None)
        if session is None:
            return
        if reusable and self._services.warm.enabled:
            self._services.warm.give_back(session)
        else:
            session.close()
            self._closing.add(session)

    async def close_all(self) -> None:
        """Close every socket the request still holds and wait for all of them to go, within
        the close timeout (a service that never answers the close holds nothing longer)."""
        for session in self._open.values():
            session.close()
            self._closing.add(session)
        self._open.clear()
        waits = [s.wait_closed() for s in self._closing]
        if waits:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.timeouts.close_s + 1):
                    await asyncio.gather(*waits, return_exceptions=True)
