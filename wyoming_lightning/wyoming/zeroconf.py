"""``--zeroconf``: advertise the server as ``_wyoming._tcp.local.`` so Home Assistant finds it.

Home Assistant drops a discovery whose address is ``0.0.0.0`` and connects to the first address
it is given, so the advertisement must carry an address that other machines can reach: the
address the server is bound to when that is a specific one, otherwise the address of the
interface the host uses for the local network. Choosing it is a pure function
(:func:`choose_addresses`) so that it can be tested without a network; finding the host's
addresses (:func:`host_addresses`) only asks the kernel and sends no packet.

A failure to advertise is logged and never stops the server: discovery is a convenience, and the
server stays reachable by host and port.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import ifaddr
from zeroconf import InterfaceChoice, IPVersion, NonUniqueNameException
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from wyoming_lightning import __version__
from wyoming_lightning.info import PROGRAM_NAME
from wyoming_lightning.settings.cli import parse_uri

_LOGGER = logging.getLogger(__name__)

SERVICE_TYPE = "_wyoming._tcp.local."
DEFAULT_NAME = "wyoming-lightning"
MDNS_GROUP_V4 = "224.0.0.251"
"""Asking the kernel for the route to the mDNS group (a UDP ``connect``, which sends nothing)
tells which interface the host would use for discovery traffic: the LAN, not a VPN or a
container bridge, on an ordinary machine."""

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Interfaces = Sequence[str] | InterfaceChoice
"""Where zeroconf announces: every interface, or the listed addresses' interfaces."""


@dataclass(frozen=True)
class HostAddresses:
    """What the host knows about its own addresses, gathered once so choosing stays pure."""

    outbound_v4: str | None = None
    """The source address of the route to the mDNS group, if there is such a route."""
    interfaces: Sequence[Sequence[str]] = field(default_factory=tuple)
    """Per interface, its addresses (IPv4 and IPv6, without scope)."""


def _usable(address: IpAddress) -> bool:
    """An address another machine can connect to: not loopback, link-local, or unspecified."""
    return not (address.is_loopback or address.is_link_local or address.is_unspecified)


def _parse(text: str) -> IpAddress | None:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(text.split("%", 1)[0])
    return None


def choose_addresses(bound: Iterable[str], host: HostAddresses) -> list[str]:
    """The addresses to advertise for a server bound to ``bound`` (as ``server.sockets`` reports).

    A specific bound address is advertised as it is, loopback included (the user chose it). A
    wildcard (``0.0.0.0`` / ``::``) is replaced by the outbound interface's addresses, IPv4
    first because Home Assistant uses the first IPv4 address; IPv6 ones only when the server
    listens on IPv6. Without a route, every usable interface address is offered; with none,
    loopback, so that at least the host itself can discover the server.
    """
    specific: list[IpAddress] = []
    wildcard_v4 = wildcard_v6 = False
    for text in bound:
        address = _parse(text)
        if address is None:
            continue
        if address.is_unspecified:
            if address.version == 4:
                wildcard_v4 = True
            else:
                wildcard_v6 = True
        elif address not in specific:
            specific.append(address)
    if not (wildcard_v4 or wildcard_v6):
        return [str(a) for a in sorted(specific, key=lambda a: a.version)]

    interfaces = [[a for a in map(_parse, iface) if a is not None] for iface in host.interfaces]
    chosen: list[IpAddress] = list(specific)
    outbound = _parse(host.outbound_v4) if host.outbound_v4 else None
    if outbound is not None and _usable(outbound):
        # The outbound interface: its IPv4 address, plus its IPv6 ones if we listen on IPv6.
        same = next((iface for iface in interfaces if outbound in iface), [outbound])
        candidates = [outbound] + [a for a in same if a.version == 6]
    else:
        candidates = [a for iface in interfaces for a in iface]
    for address in candidates:
        wanted = wildcard_v4 if address.version == 4 else wildcard_v6
        if wanted and _usable(address) and address not in chosen:
            chosen.append(address)
    if not any(_usable(a) for a in chosen):
        loopback = ipaddress.ip_address("127.0.0.1" if wildcard_v4 else "::1")
        if loopback not in chosen:
            chosen.append(loopback)
    return [str(a) for a in sorted(chosen, key=lambda a: a.version)]


def _outbound_v4() -> str | None:
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((MDNS_GROUP_V4, 5353))
        address: str = probe.getsockname()[0]
        return address if address != "0.0.0.0" else None
    return None


def host_addresses() -> HostAddresses:
    """Ask the kernel for this host's addresses; sends nothing on the network."""
    interfaces: list[list[str]] = []
    with contextlib.suppress(OSError):
        for adapter in ifaddr.get_adapters():
            addresses = [ip.ip if isinstance(ip.ip, str) else ip.ip[0] for ip in adapter.ips]
            interfaces.append(addresses)
    return HostAddresses(outbound_v4=_outbound_v4(), interfaces=interfaces)


def zeroconf_interfaces(bound: Iterable[str]) -> Interfaces:
    """Announce only where the server listens: a server bound to one address stays off the
    other networks (bound to loopback, it is visible to this host alone)."""
    hosts = [_parse(text) for text in bound]
    if not hosts or any(h is None or h.is_unspecified for h in hosts):
        return InterfaceChoice.All
    return [str(h) for h in hosts if h is not None]


class Advertisement:
    """One registered ``_wyoming._tcp`` service; :meth:`stop` withdraws it (a goodbye packet)
    so Home Assistant does not keep a stale entry until the record's TTL runs out."""

    def __init__(
        self,
        name: str,
        port: int,
        addresses: Sequence[str],
        interfaces: Interfaces = InterfaceChoice.All,
    ) -> None:
        if not addresses:
            raise ValueError("an advertisement needs at least one address")
        self.port = port
        self.addresses = list(addresses)
        self.interfaces = interfaces
        self.requested_name = name
        self._zeroconf: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None

    @property
    def name(self) -> str:
        """The instance name actually registered (zeroconf renames it if the LAN has it)."""
        if self._info is None:
            return self.requested_name
        return self._info.name.removesuffix("." + SERVICE_TYPE)

    async def start(self) -> None:
        packed = [ipaddress.ip_address(a).packed for a in self.addresses]
        # mDNS itself goes over IPv4 (where Home Assistant listens) unless there is only IPv6;
        # AAAA records for IPv6 addresses are announced either way.
        only_v6 = all(len(p) == 16 for p in packed)
        version = IPVersion.V6Only if only_v6 else None
        label = _instance_label(self.requested_name)
        self._info = AsyncServiceInfo(
            SERVICE_TYPE,
            f"{label}.{SERVICE_TYPE}",
            addresses=packed,
            port=self.port,
            properties={"program": PROGRAM_NAME, "version": __version__},
            server=f"{label}.local.",
        )
        zc = AsyncZeroconf(interfaces=self.interfaces, ip_version=version)
        self._zeroconf = zc
        try:
            # allow_name_change: a second instance on the LAN becomes "name (2)" instead of
            # failing, which is what users of several servers expect.
            # The first await probes for the name; the second, the announcements.
            announced = await zc.async_register_service(self._info, allow_name_change=True)
            await announced
        except BaseException:
            self._zeroconf = None
            await zc.async_close()
            raise

    async def stop(self) -> None:
        zc, self._zeroconf = self._zeroconf, None
        if zc is None:
            return
        try:
            if self._info is not None:
                with contextlib.suppress(Exception):
                    # Await the goodbye broadcast too: closing first would cut it short.
                    goodbye = await zc.async_unregister_service(self._info)
                    await goodbye
        finally:
            await zc.async_close()


def _instance_label(name: str) -> str:
    """A DNS label from the user's name: dots would split the instance name, and labels are
    at most 63 bytes."""
    cleaned = "-".join(name.replace(".", " ").split()) or DEFAULT_NAME
    return cleaned.encode("utf-8")[:63].decode("utf-8", "ignore")


async def start_advertising(
    name: str | None, uri: str, bound: Sequence[tuple[str, int]]
) -> Advertisement | None:
    """Advertise a TCP server if ``--zeroconf`` asked for it; log, never raise, on failure."""
    if name is None:
        return None
    try:
        tcp = parse_uri(uri, ("tcp", "unix", "stdio"), server=True).scheme == "tcp"
    except ValueError:
        tcp = False
    if not tcp or not bound:
        _LOGGER.warning("--zeroconf needs a tcp:// --uri; not advertising %s", uri)
        return None
    hosts = [host for host, _port in bound]
    port = bound[0][1]
    addresses = choose_addresses(hosts, host_addresses())
    advertisement = Advertisement(name, port, addresses, zeroconf_interfaces(hosts))
    try:
        await advertisement.start()
    except (OSError, NonUniqueNameException, ValueError) as err:
        _LOGGER.warning("zeroconf: cannot advertise (%s); the server runs without discovery", err)
        return None
    _LOGGER.info(
        "zeroconf: advertising %r as %s on %s port %d",
        advertisement.name,
        SERVICE_TYPE,
        ", ".join(addresses),
        port,
    )
    if all(ipaddress.ip_address(a).is_loopback for a in addresses):
        _LOGGER.warning(
            "zeroconf: only a loopback address to advertise; other machines cannot use it "
            "(bind --uri to a LAN address or check the network)"
        )
    return advertisement
