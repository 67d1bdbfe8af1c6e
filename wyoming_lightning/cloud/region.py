"""``--region auto``: the nearer of the vendor's two hosts, by measured round trip.

``api.smallest.ai`` is in Mumbai and ``api.us.smallest.ai`` in Oregon; the vendor puts a
cross-region round trip at 160-400 ms, paid on every handshake and on the wait for every final.
Another vendor page says routing to the nearest cluster is automatic, so nothing is assumed:
the bridge measures. Each host is timed a few times (a TCP connect, TLS for ``wss``, and one
HTTP request to the documented ``/waves/v1/health``, answered without a key: the key never goes
into a probe) at start and every :data:`REMEASURE_S`, and a request goes to the host with the
lower median, within the language rules: zh, yue, ja, ko and multi-asian only on the US host,
ta, te, kn, ml and multi-south-indic only on the default host. Until a host has been measured,
or when no host answered, the default host is used.

:class:`RegionChoice` is the rule, free of I/O (samples in, a URL out, on an injected clock);
:class:`RegionProber` does the timing on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from wyoming_lightning.core.languages import DEFAULT_HOST_ONLY_LANGUAGES, US_ONLY_LANGUAGES
from wyoming_lightning.core.protocol import DEFAULT_HOST, US_HOST

_LOGGER = logging.getLogger(__name__)

SAMPLES = 3
"""Probes per host per measurement; the median is kept (one slow connect is not a verdict)."""
REMEASURE_S = 600.0
"""Routes change slowly; every 10 minutes costs each host three tiny HTTP requests."""
PROBE_TIMEOUT_S = 5.0
HEALTH_PATH = "/waves/v1/health"
REGIONS = ("default", "us")
"""The fixed names of the two hosts, for logs and metric labels."""
PLACES = {"default": "Mumbai", "us": "Oregon"}


def swap_host(url: str, host: str) -> str:
    """``url`` with its host replaced (port and path kept)."""
    parts = urlsplit(url)
    netloc = host if parts.port is None else f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def vendor_candidates(service_url: str) -> dict[str, str]:
    """The default and US hosts' URLs for the vendor's service URL (same path and query)."""
    return {"default": swap_host(service_url, DEFAULT_HOST), "us": swap_host(service_url, US_HOST)}


@dataclass
class RegionChoice:
    """The rule: which host serves a language now, from the round trips measured so far."""

    candidates: dict[str, str]
    """Region name ("default", "us") -> service URL on that host."""
    clock: Callable[[], float] = time.monotonic
    rtt_s: dict[str, float] = field(default_factory=dict)
    """Median round trip of the last measurement of each region that answered."""
    measured_at: float | None = None

    def record(self, samples: Mapping[str, Sequence[float | None]]) -> None:
        """A measurement: per region, the round trips (``None``: that probe failed)."""
        for region, values in samples.items():
            good = [v for v in values if v is not None]
            if good:
                self.rtt_s[region] = statistics.median(good)
            else:
                self.rtt_s.pop(region, None)  # unreachable now: not a candidate
        self.measured_at = self.clock()

    @property
    def nearest(self) -> str:
        """The region with the lowest round trip; the default when nothing is known."""
        if not self.rtt_s:
            return "default"
        return min(self.rtt_s, key=lambda r: (self.rtt_s[r], r != "default"))

    def region_for(self, language: str) -> str:
        if language in US_ONLY_LANGUAGES:
            return "us"
        if language in DEFAULT_HOST_ONLY_LANGUAGES:
            return "default"
        return self.nearest

    def url_for(self, language: str) -> str:
        return self.candidates[self.region_for(language)]

    def due(self) -> bool:
        """Is a new measurement due?"""
        at = self.measured_at
        return at is None or self.clock() - at >= REMEASURE_S

    def describe(self) -> str:
        """One log line: every host's round trip and the choice."""
        parts = [
            f"{region} {urlsplit(self.candidates[region]).hostname} ({PLACES[region]}) "
            + (f"{self.rtt_s[region] * 1000:.0f} ms" if region in self.rtt_s else "unreachable")
            for region in REGIONS
        ]
        chosen = self.nearest
        host = urlsplit(self.candidates[chosen]).hostname
        return f"region auto: {host} chosen; measured {', '.join(parts)}"


async def probe_once(url: str, timeout_s: float = PROBE_TIMEOUT_S) -> float | None:
    """Seconds from connecting to the status line of ``GET /waves/v1/health``, or None."""
    parts = urlsplit(url)
    secure = parts.scheme in ("wss", "https")
    host = parts.hostname or ""
    port = parts.port or (443 if secure else 80)
    context = ssl.create_default_context() if secure else None
    started = time.perf_counter()
    writer: asyncio.StreamWriter | None = None
    try:
        async with asyncio.timeout(timeout_s):
            reader, writer = await asyncio.open_connection(
                host, port, ssl=context, server_hostname=host if secure else None
            )
            request = f"GET {HEALTH_PATH} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
            writer.write(request.encode("ascii"))
            await writer.drain()
            line = await reader.readline()
        if not line.startswith(b"HTTP/"):
            return None
        return time.perf_counter() - started
    except (OSError, TimeoutError, ssl.SSLError, UnicodeError):
        return None
    finally:
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()


class RegionProber:
    """Times the hosts at start and every :data:`REMEASURE_S`, for a :class:`RegionChoice`."""

    def __init__(
        self,
        choice: RegionChoice,
        on_measured: Callable[[RegionChoice], None] = lambda _: None,
        samples: int = SAMPLES,
    ) -> None:
        self.choice = choice
        self._on_measured = on_measured
        self._samples = samples
        self._task: asyncio.Task[None] | None = None

    async def measure(self) -> None:
        """Time every host ``samples`` times, one probe after another (not in parallel: two
        probes at once would share the uplink and time each other)."""
        found: dict[str, list[float | None]] = {}
        for region, url in self.choice.candidates.items():
            found[region] = [await probe_once(url) for _ in range(self._samples)]
        before = self.choice.nearest if self.choice.measured_at is not None else None
        self.choice.record(found)
        self._on_measured(self.choice)
        line = self.choice.describe()
        if before != self.choice.nearest:
            _LOGGER.info(line)
        else:
            _LOGGER.debug(line)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            if self.choice.due():
                await self.measure()
            await asyncio.sleep(REMEASURE_S / 10)  # a timer, not synchronisation

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
