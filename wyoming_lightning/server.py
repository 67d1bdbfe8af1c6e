"""Listening: TCP, Unix socket or stdio; a connection limit; a graceful stop on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit

from wyoming.error import Error as ErrorEvent

from .handler import ClientHandler
from .heap import release_free_memory
from .services import Services
from .wire import MAX_HEADER_BYTES, encode_event

_LOGGER = logging.getLogger(__name__)
GRACE_S = 10.0


class WyomingServer:
    """Accepts clients and hands each to a :class:`ClientHandler`; stops politely."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._active: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self._stopping = asyncio.Event()

    @property
    def active_connections(self) -> int:
        return len(self._active)

    @property
    def sockets(self) -> list[tuple[str, int]]:
        if self._server is None:
            return []
        return [s.getsockname()[:2] for s in self._server.sockets if s.family.name != "AF_UNIX"]

    async def start(self) -> None:
        uri = self.services.settings.uri
        parts = urlsplit(uri)
        if parts.scheme == "tcp":
            host = parts.hostname or "0.0.0.0"
            port = parts.port if parts.port is not None else 10300
            self._server = await asyncio.start_server(
                self._accept, host, port, limit=MAX_HEADER_BYTES
            )
        elif parts.scheme == "unix":
            path = Path(parts.netloc + parts.path)
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            self._server = await asyncio.start_unix_server(
                self._accept, str(path), limit=MAX_HEADER_BYTES
            )
        elif parts.scheme != "stdio":
            raise ValueError(f"--uri must be tcp://, unix:// or stdio://, not {uri!r}")

    async def serve(self) -> None:
        """Until :meth:`stop`; then let running requests finish, within a grace period."""
        if self.services.settings.uri.startswith("stdio"):
            await self._serve_stdio()
            return
        await self._stopping.wait()
        if self._server is not None:
            self._server.close()
        if self._active:
            _LOGGER.info("stopping: waiting for %d request(s) to finish", len(self._active))
            _done, pending = await asyncio.wait(set(self._active), timeout=GRACE_S)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=2)
        if self._server is not None:
            await self._server.wait_closed()

    async def wait_idle(self) -> None:
        """Until every connection that is open now has ended."""
        if self._active:
            await asyncio.wait(set(self._active))

    def stop(self) -> None:
        self._stopping.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        limit = self.services.settings.max_connections
        if self._stopping.is_set() or len(self._active) >= limit:
            _LOGGER.warning(
                "refusing a client: %d connections open (limit %d)", len(self._active), limit
            )
            text = "server busy: too many connections, try again shortly"
            with contextlib.suppress(Exception):
                writer.write(encode_event(ErrorEvent(text=text, code="busy").event()))
                async with asyncio.timeout(1):
                    await writer.drain()
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        self._active.add(task)
        try:
            await ClientHandler(reader, writer, self.services).run()
        except Exception:
            _LOGGER.exception("a client handler failed; the server keeps serving")
        finally:
            self._active.discard(task)
            if not self._active:
                release_free_memory()  # idle: collect and trim what a burst freed (heap.py)

    async def _serve_stdio(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_HEADER_BYTES)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.streams.FlowControlMixin(), os.fdopen(sys.stdout.fileno(), "wb", 0)
        )
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        await ClientHandler(reader, writer, self.services).run()
