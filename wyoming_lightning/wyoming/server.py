"""Listening: TCP, Unix socket or stdio; a connection limit; a graceful stop on SIGTERM.

The stop is bounded so that it fits inside the stop timeouts of Docker and the Home Assistant
Supervisor (10 s each, then SIGKILL): running requests get ``--drain-timeout`` seconds to
finish, then each still running is answered ``error`` (code ``unavailable``) and its connection
closed within CUT_GRACE_S, so that no client is left with a connection that just vanishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import sys
from pathlib import Path

from wyoming.error import Error as ErrorEvent
from wyoming.info import Describe
from wyoming.ping import Ping, Pong

from wyoming_lightning.core.errors import ErrorCode
from wyoming_lightning.ops.guard import Peer, Refusal
from wyoming_lightning.ops.heap import release_free_memory
from wyoming_lightning.ops.listen import tcp_listener
from wyoming_lightning.services import Services
from wyoming_lightning.settings.cli import parse_uri
from wyoming_lightning.wyoming.handler import LINGER_MAX_S, LINGER_QUIET_S, ClientHandler
from wyoming_lightning.wyoming.reading import ClientProtocol, ReadCadence
from wyoming_lightning.wyoming.wire import MAX_HEADER_BYTES, WireError, encode_event, read_event

_LOGGER = logging.getLogger(__name__)
#: After the drain: time for a cut request's ``error`` to be written and its connection closed
#: (then the task is cancelled). Drain + this + process exit must stay under 10 s.
CUT_GRACE_S = 1.0
STOPPING_TEXT = "the server is stopping; try again"
REFUSED_AT_ONCE = 8
"""Connections from clients outside ``--allow`` kept open at once (each for one ``describe`` or
``ping`` within ``--header-timeout``); more are closed unanswered. They take no slot of
``--max-connections``: a refused client cannot keep an allowed one out."""


class ListenError(Exception):
    """The server cannot take the address it was given; the message says why in words."""


def claim_socket_path(path: Path) -> None:
    """Make way for a Unix socket at ``path``: remove a stale socket (nobody accepts on it),
    refuse a live one and anything that is not a socket (a typo must not delete a file)."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    except OSError as err:
        raise ListenError(f"cannot inspect {path}: {err.strerror}") from None
    if not stat.S_ISSOCK(mode):
        raise ListenError(f"{path} exists and is not a socket; not replacing it")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)
        try:
            probe.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            path.unlink(missing_ok=True)  # left behind by a server that is gone
            return
        except OSError as err:
            raise ListenError(f"cannot check whether {path} is in use: {err.strerror}") from None
    raise ListenError(f"another server is listening on {path}")


def check_stdio() -> None:
    """stdio:// reads and writes through the event loop's pipe transports, which take pipes,
    sockets and terminals only: a regular file is refused here in words (asyncio raised from
    deep inside the loop, and uvloop aborted the process)."""
    for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout)):
        try:
            mode = os.fstat(stream.fileno()).st_mode
        except (OSError, ValueError, AttributeError):
            raise ListenError(f"there is no {name}") from None
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode)):
            raise ListenError(f"{name} must be a pipe, a socket or a terminal, not a file")


class WyomingServer:
    """Accepts clients and hands each to a :class:`ClientHandler`; stops politely."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self._active: dict[asyncio.Task[None], ClientHandler] = {}
        self._server: asyncio.Server | None = None
        self._stopping = asyncio.Event()
        self._refused_open = 0
        self._unix_socket: tuple[Path, int] | None = None
        self._cadence: ReadCadence | None = None
        """The connections' read cadence while someone speaks (``--read-batch-ms``), made with
        the first connection (it needs the running loop)."""
        """The socket file this server made, and its inode, to remove on the way out."""

    @property
    def active_connections(self) -> int:
        return len(self._active)

    @property
    def sockets(self) -> list[tuple[str, int]]:
        if self._server is None:
            return []
        return [s.getsockname()[:2] for s in self._server.sockets if s.family.name != "AF_UNIX"]

    async def start(self) -> None:
        """Listen; raise :class:`ListenError` (or OSError from the system) when it cannot."""
        try:
            where = parse_uri(self.services.settings.uri, ("tcp", "unix", "stdio"), server=True)
        except ValueError as err:
            raise ListenError(str(err)) from None
        await self.services.guard.start()  # operations: the metrics endpoint
        await self.services.start_probes()  # --region auto (issue 21): time both hosts
        loop = asyncio.get_running_loop()
        if where.scheme == "tcp":
            host = where.host or "0.0.0.0"
            sock = tcp_listener(host, where.port or 0)  # "::": IPv4 and IPv6
            if sock is not None:
                self._server = await loop.create_server(self._protocol, sock=sock)
            else:
                self._server = await loop.create_server(self._protocol, host, where.port)
        elif where.scheme == "unix":
            path = Path(where.path)
            claim_socket_path(path)
            self._server = await loop.create_unix_server(self._protocol, str(path))
            self._unix_socket = (path, path.lstat().st_ino)
        elif where.scheme == "stdio":
            check_stdio()

    async def serve(self) -> None:
        """Until :meth:`stop`; then let running requests finish, within a grace period."""
        try:
            await self._serve()
        finally:
            await self.services.warm.close()  # warm Pulse sockets (issue 14): close_stream
            await self.services.stop_probes()  # --region auto (issue 21)
            self.services.guard.close()  # operations: flush usage, stop metrics

    async def _serve(self) -> None:
        if self.services.settings.uri.startswith("stdio"):
            await self._serve_stdio()
            return
        await self._stopping.wait()
        if self._server is not None:
            self._server.close()
        if self._active:
            drain = self.services.settings.drain_timeout_s
            _LOGGER.info(
                "stopping: waiting for %d request(s) to finish (at most %g s)",
                len(self._active),
                drain,
            )
            _done, pending = await asyncio.wait(set(self._active), timeout=drain)
            if pending:
                _LOGGER.warning(
                    "stopping: %d request(s) still running after %g s are answered with an error",
                    len(pending),
                    drain,
                )
                for task in pending:
                    handler = self._active.get(task)
                    if handler is not None:
                        handler.cut(STOPPING_TEXT)
                _done, pending = await asyncio.wait(pending, timeout=CUT_GRACE_S)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=CUT_GRACE_S / 2)
        if self._server is not None:
            await self._server.wait_closed()
        if self._cadence is not None:
            self._cadence.close()
        self._remove_socket_file()

    def _remove_socket_file(self) -> None:
        """Only the file this server made: another server may have replaced it since."""
        if self._unix_socket is None:
            return
        path, inode = self._unix_socket
        self._unix_socket = None
        with contextlib.suppress(FileNotFoundError):
            if path.lstat().st_ino == inode:
                path.unlink()

    async def wait_idle(self) -> None:
        """Until every connection that is open now has ended."""
        if self._active:
            await asyncio.wait(set(self._active))

    def stop(self) -> None:
        self._stopping.set()

    def _protocol(self) -> ClientProtocol:
        """A new connection's protocol: its bytes go to its handler as they arrive."""
        reader = asyncio.StreamReader(limit=MAX_HEADER_BYTES)
        settings = self.services.settings
        if self._cadence is None and settings.read_batch_ms > 0:
            loop = asyncio.get_running_loop()
            self._cadence = ReadCadence(loop, settings.read_batch_ms / 1000)
        return ClientProtocol(
            reader, self._accept, send_timeout_s=settings.send_timeout_s, cadence=self._cadence
        )

    async def _accept(
        self, protocol: ClientProtocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = Peer.of(writer)
        forbidden = self.services.guard.admit_connection(peer)  # operations: --allow
        if forbidden is not None:
            protocol.to_reader()
            await self._serve_refused(reader, writer, peer, forbidden)
            return
        limit = self.services.settings.max_connections
        if self._stopping.is_set() or len(self._active) >= limit:
            self.services.guard.refused_busy(len(self._active), limit)  # operations
            protocol.to_reader()
            text = "server busy: too many connections, try again shortly"
            with contextlib.suppress(Exception):
                writer.write(encode_event(ErrorEvent(text=text, code=ErrorCode.BUSY.value).event()))
                async with asyncio.timeout(1):
                    await writer.drain()
            writer.close()
            return
        task = asyncio.current_task()
        assert task is not None
        handler = ClientHandler(protocol, writer, self.services)
        self._active[task] = handler
        try:
            with self.services.guard.connection():  # operations: open-connection gauge
                await handler.run()
        except Exception:
            _LOGGER.exception("a client handler failed; the server keeps serving")
        finally:
            self._active.pop(task, None)
            if not self._active:
                release_free_memory()  # idle: collect and trim what a burst freed (heap.py)

    async def _serve_refused(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: Peer,
        refusal: Refusal,
    ) -> None:
        """A client outside ``--allow``: one free ``describe`` or ``ping`` answered, anything
        else refused, then closed; never held in a slot, never kept waiting."""
        if self._refused_open >= REFUSED_AT_ONCE:
            writer.close()
            return
        self._refused_open += 1
        try:
            timeout = self.services.settings.header_timeout_s
            with contextlib.suppress(TimeoutError, WireError, ConnectionError, OSError):
                async with asyncio.timeout(timeout):
                    event = await read_event(reader)
                    if event is None:
                        return
                    if Describe.is_type(event.type):
                        writer.write(encode_event(self.services.info.event()))
                    elif Ping.is_type(event.type):
                        writer.write(encode_event(Pong(text=Ping.from_event(event).text).event()))
                    else:
                        self.services.guard.refused(peer)
                        error = ErrorEvent(text=refusal.text, code=refusal.code.value)
                        writer.write(encode_event(error.event()))
                    await writer.drain()
                    if writer.can_write_eof():
                        writer.write_eof()
                # Read what the client still sends (Home Assistant uploads its audio before it
                # reads), as a request's error lingers: closing with unread input would reset
                # the connection and could destroy the answer. Bounded as the handler's is.
                async with asyncio.timeout(LINGER_MAX_S):
                    while True:
                        async with asyncio.timeout(LINGER_QUIET_S):
                            if not await reader.read(1 << 16):
                                break
        finally:
            self._refused_open -= 1
            writer.close()

    async def _serve_stdio(self) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=MAX_HEADER_BYTES)
        send_timeout_s = self.services.settings.send_timeout_s
        protocol = ClientProtocol(reader, send_timeout_s=send_timeout_s)
        await loop.connect_read_pipe(lambda: protocol, sys.stdin)
        transport, out = await loop.connect_write_pipe(
            lambda: asyncio.streams.FlowControlMixin(), os.fdopen(sys.stdout.fileno(), "wb", 0)
        )
        writer = asyncio.StreamWriter(transport, out, reader, loop)
        await ClientHandler(protocol, writer, self.services).run()
