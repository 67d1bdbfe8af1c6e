"""The WebSocket adapter: one service session, reported to its owner through callbacks.

It decides nothing. It opens the socket (with a timeout), sends what it is given in order (each
send with a timeout), pings when asked, parses what arrives with :func:`~.protocol.parse_message`,
and reports open, messages, progress (a send completed: the write buffer drains; a pong came),
close and failure. The request state machine makes every decision, liveness included.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from wyoming_lightning.core.errors import ErrorCode
from wyoming_lightning.core.protocol import (
    Failure,
    ServiceMessage,
    auth_headers,
    classify_http_status,
    parse_message,
)
from wyoming_lightning.settings.cli import cannot_reach, host_of

_LOGGER = logging.getLogger(__name__)
MAX_MESSAGE_BYTES = 1 << 20


@dataclass(frozen=True)
class Timeouts:
    """Bounds on every wait that involves the network."""

    connect_s: float = 5.0
    send_s: float = 5.0
    close_s: float = 2.0
    ping_interval_s: float | None = 5.0


@dataclass(frozen=True)
class Callbacks:
    """Where a session reports; all are called on the event loop, never after ``close()``."""

    opened: Callable[[], None]
    message: Callable[[ServiceMessage], None]
    closed: Callable[[int | None, str], None]
    failed: Callable[[Failure], None]
    progress: Callable[[], None] = lambda: None
    """The service took an audio frame off the wire, or answered a ping."""


_CLOSE = object()
_PING = object()


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date: the caller's own backoff applies


class ServiceSession:
    """One WebSocket to the service. Create, ``start()``, ``send()``, ``close()``."""

    def __init__(self, url: str, api_key: str, timeouts: Timeouts, callbacks: Callbacks) -> None:
        self._url = url
        self._headers = auth_headers(api_key)
        self._timeouts = timeouts
        self._callbacks = callbacks
        self._queue: asyncio.Queue[bytes | str | object] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._is_open = False
        self.audio_bytes_sent = 0
        """Audio queued on this socket so far: where the next frame starts in the service's
        stream (its word times count from the socket's first frame, across turns)."""

    @property
    def url(self) -> str:
        return self._url

    @property
    def usable(self) -> bool:
        """Open, and neither closed, failed nor being closed: it could carry another turn."""
        return self._is_open and not self._closing

    def rebind(self, callbacks: Callbacks) -> None:
        """Report to a new owner from now on (a warm socket moving between request and pool)."""
        self._callbacks = callbacks

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def send(self, data: bytes | str) -> None:
        """Queue a frame; the audio path never waits on the network."""
        if not self._closing:
            if isinstance(data, bytes):
                self.audio_bytes_sent += len(data)
            self._queue.put_nowait(data)

    def probe(self) -> None:
        """Ping the service after what is queued; the pong is reported as progress."""
        if not self._closing:
            self._queue.put_nowait(_PING)

    def close(self) -> None:
        """Send what is queued, then close politely; silence every callback from now on."""
        if self._closing:
            return
        self._closing = True
        self._queue.put_nowait(_CLOSE)

    async def wait_closed(self) -> None:
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _report(self, callback: Callable[[], None]) -> None:
        if not self._closing:
            callback()

    def _opened(self) -> None:
        self._is_open = True
        self._callbacks.opened()

    def _lost(self) -> None:
        self._is_open = False

    async def _run(self) -> None:
        try:
            ws = await self._open()
        except asyncio.CancelledError:
            raise
        if ws is None:
            return
        try:
            if self._closing and self._queue.empty():
                return
            self._report(self._opened)
            receiver = asyncio.create_task(self._receive(ws))
            try:
                await self._send_loop(ws)
            finally:
                receiver.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await receiver
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self._timeouts.close_s):
                    await ws.close()
            ws.transport.abort()

    async def _open(self) -> ClientConnection | None:
        failure: Failure
        try:
            async with asyncio.timeout(self._timeouts.connect_s):
                return await connect(
                    self._url,
                    additional_headers=self._headers,
                    open_timeout=None,
                    ping_interval=self._timeouts.ping_interval_s,
                    ping_timeout=self._timeouts.ping_interval_s,
                    close_timeout=self._timeouts.close_s,
                    max_size=MAX_MESSAGE_BYTES,
                    compression=None,
                    proxy=None,
                )
        except InvalidStatus as err:
            response = err.response
            failure = classify_http_status(
                response.status_code, _retry_after(response.headers.get("Retry-After"))
            )
        except TimeoutError:
            failure = Failure(
                ErrorCode.TIMEOUT,
                f"cannot reach {host_of(self._url)}: no connection within "
                f"{self._timeouts.connect_s:g} s",
                True,
            )
        except InvalidURI:
            failure = Failure(ErrorCode.UPSTREAM, "the service URL is not a WebSocket URL", False)
        except InvalidHandshake:
            # Not the exception's text: it could quote the request, and with it the key.
            failure = Failure(
                ErrorCode.UPSTREAM,
                f"{host_of(self._url)} did not answer as a WebSocket service",
                True,
            )
        except (OSError, EOFError) as err:
            failure = Failure(ErrorCode.UPSTREAM, cannot_reach(self._url, err), True)
        self._report(lambda: self._callbacks.failed(failure))
        return None

    async def _send_loop(self, ws: ClientConnection) -> None:
        sent_audio = False
        while True:
            if sent_audio and self._queue.empty():
                # Progress once the frames queued together are all sent, not after each.
                sent_audio = False
                self._report(self._callbacks.progress)
            item = await self._queue.get()
            if item is _CLOSE:
                return
            try:
                if item is _PING:
                    async with asyncio.timeout(self._timeouts.send_s):
                        pong = await ws.ping()
                    asyncio.ensure_future(pong).add_done_callback(self._ponged)
                    continue
                assert isinstance(item, bytes | str)
                if ws.paused or ws.transport.is_closing():
                    # Only a send into a full buffer (or a closing socket) can wait: the
                    # timer is set for those, not for the hundred a second that cannot.
                    async with asyncio.timeout(self._timeouts.send_s):
                        await ws.send(item)
                else:
                    await ws.send(item)
                sent_audio = sent_audio or isinstance(item, bytes)
            except TimeoutError:
                seconds = self._timeouts.send_s
                failure = Failure(ErrorCode.TIMEOUT, f"a send took over {seconds:g} s", True)
                self._lost()
                if not self._closing:
                    self._callbacks.failed(failure)
                return
            except ConnectionClosed:
                # The receiver reports the close with its code; wait for close() from above.
                await self._drain_until_close()
                return

    def _ponged(self, pong: asyncio.Future[float]) -> None:
        if not pong.cancelled() and pong.exception() is None:
            self._report(self._callbacks.progress)

    async def _drain_until_close(self) -> None:
        while await self._queue.get() is not _CLOSE:
            pass

    async def _receive(self, ws: ClientConnection) -> None:
        try:
            async for frame in ws:
                if self._closing:
                    break
                self._callbacks.message(parse_message(frame))
        except ConnectionClosed:
            pass
        self._lost()
        code = ws.close_code
        reason = ws.close_reason or ""
        self._report(lambda: self._callbacks.closed(code, reason))
        self._queue.put_nowait(_CLOSE)  # nothing more can be sent: let the send loop end
