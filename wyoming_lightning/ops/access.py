"""Who may spend the key: the ``--allow`` networks and the per-client request limit, free of I/O.

The Wyoming protocol has no authentication, so the only thing the server knows of a client is
its address. These classes decide on that address alone; :mod:`~wyoming_lightning.ops.guard`
carries the decisions out. A client on a Unix socket or on stdio has no address: it is on this
machine, and is always allowed.
"""

from __future__ import annotations

import enum
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from wyoming_lightning.settings.networks import IpNetwork

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: How many refused addresses are remembered, so that each is logged once, not per attempt.
REMEMBERED_REFUSALS = 1024
REFUSAL_LOG_INTERVAL_S = 600.0
"""A refused address still knocking is logged again after this long (once per interval)."""
LOCAL = "local"
"""The key of clients without an address (Unix socket, stdio)."""


class Verdict(enum.Enum):
    ALLOWED = "allowed"
    FORBIDDEN = "forbidden"


def parse_address(host: str | None) -> IpAddress | None:
    """A socket's peer host as an address: IPv4-mapped IPv6 (``::ffff:a.b.c.d``) as IPv4,
    a scoped IPv6 (``fe80::1%eth0``) without its scope; ``None`` for no or no IP address."""
    if not host:
        return None
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class AccessPolicy:
    """The allow-list; empty means everyone, as a Wyoming server has always been."""

    networks: tuple[IpNetwork, ...] = ()

    @property
    def open(self) -> bool:
        return not self.networks

    def decide(self, host: str | None, *, local: bool = False) -> Verdict:
        """``host`` is the peer's address as the socket gives it; ``local`` a Unix/stdio peer."""
        if local or self.open:
            return Verdict.ALLOWED
        address = parse_address(host)
        if address is None:
            return Verdict.FORBIDDEN  # an IP socket without a readable address: not on a list
        for network in self.networks:
            if address.version == network.version and address in network:
                return Verdict.ALLOWED
            mapped = _as_mapped(address, network)
            if mapped is not None and mapped in network:
                return Verdict.ALLOWED
        return Verdict.FORBIDDEN


def _as_mapped(address: IpAddress, network: IpNetwork) -> ipaddress.IPv6Address | None:
    """An IPv4 address in its ``::ffff:`` form, for a list that names IPv4 networks that way."""
    if isinstance(address, ipaddress.IPv4Address) and network.version == 6:
        return ipaddress.IPv6Address("::ffff:" + str(address))
    return None


class OnceEach:
    """Says yes the first time it sees a key (and again once ``interval`` seconds have passed
    since it last said yes to it), else no; remembers at most ``capacity`` keys.

    A refused client that retries every second must not write a log line every second, and
    a scan from many addresses must not grow memory without bound: the oldest key is forgotten
    first (and would then be logged once more). ``clock`` is monotonic seconds (tests pass
    their own).
    """

    def __init__(
        self,
        capacity: int = REMEMBERED_REFUSALS,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._capacity = capacity
        self._interval = interval
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first(self, key: str) -> bool:
        now = self._clock()
        said = self._seen.get(key)
        if said is not None:
            self._seen.move_to_end(key)
            if self._interval is None or now - said < self._interval:
                return False
        self._seen[key] = now
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)
        return True

    def __len__(self) -> int:
        return len(self._seen)


class ClientSlots:
    """Requests running per client address, at most ``limit`` each.

    Home Assistant sends every satellite's speech from its own address, so the limit must
    allow several pipelines at once; what it stops is one client opening requests without end.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._running: dict[str, int] = {}

    def acquire(self, client: str) -> bool:
        count = self._running.get(client, 0)
        if count >= self.limit:
            return False
        self._running[client] = count + 1
        return True

    def release(self, client: str) -> None:
        count = self._running.get(client, 0) - 1
        if count > 0:
            self._running[client] = count
        else:
            self._running.pop(client, None)

    def running(self, client: str) -> int:
        return self._running.get(client, 0)

    def __len__(self) -> int:
        """How many addresses have a request running (entries are dropped at zero)."""
        return len(self._running)
