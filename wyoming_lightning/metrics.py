"""Prometheus metrics: what the server did, with label values from small fixed sets only.

Every process has its own registry (tests run several servers in one process). No label ever
holds a client address, a transcript or anything else a client chooses: ``outcome`` is
``transcript``, ``error`` or ``abandoned`` (the client left first), ``code`` an error code of
the server's own, ``reason`` one of a few words.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

_LOGGER = logging.getLogger(__name__)
PREFIX = "wyoming_lightning"
REFUSAL_REASONS = ("forbidden", "busy", "per_client", "quota")
FALLBACK_REASONS = ("failure", "quota")
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
        for reason in REFUSAL_REASONS:
            self.refused.labels(reason=reason)
        for reason in FALLBACK_REASONS:
            self.fallbacks.labels(reason=reason)
        self.requests.labels(outcome="transcript", code="")

    def serve(self, port: int, host: str = "0.0.0.0") -> int:
        """Start the HTTP endpoint (``/metrics``) in a thread; return the port it listens on."""
        server: Any
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._http = server
        bound: int = server.server_port
        return bound

    def close(self) -> None:
        server = getattr(self, "_http", None)
        if server is not None:
            server.shutdown()
            server.server_close()
            self._http = None
