"""Prometheus metrics: what the server did, with label values from small fixed sets only.

Every process has its own registry (tests run several servers in one process). No label ever
holds a client address, a transcript or anything else a client chooses: ``outcome`` is
``transcript``, ``error`` or ``abandoned`` (the client left first), ``code`` an error code of
the server's own, ``reason`` one of a few words.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from wyoming_lightning.ops.listen import tcp_listener

_LOGGER = logging.getLogger(__name__)
PREFIX = "wyoming_lightning"
REFUSAL_REASONS = ("forbidden", "busy", "per_client", "quota")
FALLBACK_REASONS = ("failure", "quota")
CUT_REASONS = ("quota", "length")
MAX_REQUEST_BYTES = 8 * 1024
"""A scrape's request line and headers; more is not a scrape."""
MAX_SCRAPES_AT_ONCE = 512
"""Connections to the endpoint open at once; more are closed unanswered. Each costs a task and
a socket (no thread) for at most the read timeout, so idle connections cannot pile up, and
this bound keeps a flood within the process's file descriptors."""
WAIT_BUCKETS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 15.0, 30.0)


class Metrics:
    """The server's counters, gauges and histogram, in a registry of their own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            f"{PREFIX}_requests",
            "Requests (audio-start to answer) by how they ended and the error code",
            ["outcome", "code"],
            registry=r,
        )
        self.wait = Histogram(
            f"{PREFIX}_response_wait_seconds",
            "Seconds from the client's audio-stop to the transcript or error",
            buckets=WAIT_BUCKETS,
            registry=r,
        )
        self.audio_received = Counter(
            f"{PREFIX}_audio_received_seconds",
            "Seconds of audio received from clients",
            registry=r,
        )
        self.audio_sent = Counter(
            f"{PREFIX}_audio_sent_seconds",
            "Seconds of audio sent to the service (what is billed), replays included",
            registry=r,
        )
        self.sessions = Counter(
            f"{PREFIX}_service_sessions",
            "WebSocket sessions opened to the service",
            registry=r,
        )
        self.service_connections = Counter(
            f"{PREFIX}_service_connections",
            "WebSocket connections (handshakes) opened to the service; a warm socket lent from "
            "the pool is a session but not a new connection",
            registry=r,
        )
        self.warm_reuses = Counter(
            f"{PREFIX}_warm_session_reuses",
            "Service sessions served by a warm socket kept from an earlier request",
            registry=r,
        )
        self.idle_sessions = Gauge(
            f"{PREFIX}_idle_service_sessions",
            "Warm service sockets idle in the pool now",
            registry=r,
        )
        self.retries = Counter(
            f"{PREFIX}_retries",
            "Reconnections to the service after a failure",
            registry=r,
        )
        self.fallbacks = Counter(
            f"{PREFIX}_fallbacks",
            "Requests answered by the local recognizer instead of the service",
            ["reason"],
            registry=r,
        )
        self.region_rtt = Gauge(
            f"{PREFIX}_region_round_trip_seconds",
            "--region auto: the median measured round trip to each vendor host",
            ["region"],
            registry=r,
        )
        self.region_chosen = Gauge(
            f"{PREFIX}_region_chosen",
            "--region auto: 1 for the host requests go to (languages one region serves aside)",
            ["region"],
            registry=r,
        )
        self.connections = Gauge(
            f"{PREFIX}_connections_open",
            "Client connections open now",
            registry=r,
        )
        self.refused = Counter(
            f"{PREFIX}_refused",
            "Connections or requests refused, by reason",
            ["reason"],
            registry=r,
        )
        self.sent_today = Gauge(
            f"{PREFIX}_audio_sent_today_seconds",
            "Seconds of audio sent to the service today (local time), as the limit counts it",
            registry=r,
        )
        self.limit = Gauge(
            f"{PREFIX}_daily_audio_limit_seconds",
            "The --daily-audio-limit in seconds (absent when there is none)",
            registry=r,
        )
        self.cost = Counter(
            f"{PREFIX}_estimated_cost_usd",
            "Estimated spend: audio sent times --price-per-minute",
            registry=r,
        )
        self.store_failures = Counter(
            f"{PREFIX}_usage_store_failures",
            "Times the usage file could not be written or read (counts kept in memory)",
            registry=r,
        )
        self.failures = Counter(
            f"{PREFIX}_handler_failures",
            "Requests the server failed on (a bug): ended with error 'internal', resources freed",
            registry=r,
        )
        self.limit_cuts = Counter(
            f"{PREFIX}_requests_cut",
            "Requests whose audio the server ended: the daily limit reached, or the length cap",
            ["reason"],
            registry=r,
        )
        for reason in CUT_REASONS:
            self.limit_cuts.labels(reason=reason)
        for reason in REFUSAL_REASONS:
            self.refused.labels(reason=reason)
        for reason in FALLBACK_REASONS:
            self.fallbacks.labels(reason=reason)
        self.requests.labels(outcome="transcript", code="")

        self._http: asyncio.Server | None = None
        self._scrapes = 0
        self._admit: Callable[[asyncio.StreamWriter], bool] = lambda _writer: False
        self._timeout = 5.0

    async def serve(
        self, host: str, port: int, admit: Callable[[asyncio.StreamWriter], bool], timeout: float
    ) -> int:
        """Start the HTTP endpoint (``/metrics``) on the event loop; return its port.

        ``admit`` says whether a connection's peer may read the metrics (the ``--allow`` list);
        others are answered 403. A connection must send its request within ``timeout``
        seconds. No thread is started: an idle connection costs one small task until then.
        """
        sock = tcp_listener(host, port)
        if sock is not None:
            self._http = await asyncio.start_server(
                self._scrape, sock=sock, limit=MAX_REQUEST_BYTES
            )
        else:
            self._http = await asyncio.start_server(
                self._scrape, host, port, limit=MAX_REQUEST_BYTES
            )
        bound: int = self._http.sockets[0].getsockname()[1]
        self._admit, self._timeout = admit, timeout
        return bound

    async def _scrape(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._scrapes >= MAX_SCRAPES_AT_ONCE:
            writer.close()
            return
        self._scrapes += 1
        try:
            async with asyncio.timeout(self._timeout):
                await self._answer(reader, writer)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass  # a slow, broken or oversized request: closed unanswered
        finally:
            self._scrapes -= 1
            writer.close()

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")  # at most MAX_REQUEST_BYTES
        if not self._admit(writer):
            writer.write(_response(403, b"forbidden\n"))
            await writer.drain()
            return
        method, _, rest = head.partition(b" ")
        path = rest.split(b" ", 1)[0].split(b"?", 1)[0]
        if method not in (b"GET", b"HEAD"):
            writer.write(_response(405, b"only GET\n"))
        elif path not in (b"/metrics", b"/"):
            writer.write(_response(404, b"not found; the metrics are at /metrics\n"))
        else:
            body = generate_latest(self.registry)
            writer.write(_response(200, body, CONTENT_TYPE_LATEST, head=method == b"HEAD"))
        await writer.drain()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


_REASONS = {200: "OK", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed"}


def _response(
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    *,
    head: bool = False,
) -> bytes:
    """One HTTP/1.1 response that closes the connection."""
    lines = [
        f"HTTP/1.1 {status} {_REASONS[status]}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
        "Connection: close",
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + (b"" if head else body)
