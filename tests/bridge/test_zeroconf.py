"""``--zeroconf``: what gets advertised, and that a browser on this host really finds it.

Discovery runs for real over multicast DNS, restricted to the loopback interface on both sides
(the server bound to 127.0.0.1 announces there only), so no packet leaves the machine. Finding
the service is done the way Home Assistant does it: browse ``_wyoming._tcp.local.``, resolve the
instance, connect to the address and port it names and send ``describe``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import pytest
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info
from zeroconf import ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

from tests.kit.bridge import bridge_settings, running_bridge
from wyoming_lightning.wyoming.zeroconf import (
    SERVICE_TYPE,
    HostAddresses,
    choose_addresses,
    host_addresses,
    start_advertising,
    zeroconf_interfaces,
)

LAN = HostAddresses(
    outbound_v4="192.168.1.5",
    interfaces=[
        ["127.0.0.1", "::1"],
        ["192.168.1.5", "fe80::1", "2001:db8::5"],
        ["172.17.0.1"],  # a container bridge: not the way to the LAN
    ],
)


# ---------------------------------------------------------------------------- choosing addresses


@pytest.mark.parametrize(
    ("bound", "host", "expected"),
    [
        # Wildcard IPv4: the outbound interface's IPv4 address only, never 0.0.0.0.
        (["0.0.0.0"], LAN, ["192.168.1.5"]),
        # Listening on both families: that interface's global IPv6 address too, IPv4 first.
        (["0.0.0.0", "::"], LAN, ["192.168.1.5", "2001:db8::5"]),
        (["::", "0.0.0.0"], LAN, ["192.168.1.5", "2001:db8::5"]),
        # IPv6 only (asyncio sets IPV6_V6ONLY): no IPv4 address that would refuse connections.
        (["::"], LAN, ["2001:db8::5"]),
        # A specific bound address is what clients must use, loopback included.
        (["192.168.1.5"], LAN, ["192.168.1.5"]),
        (["127.0.0.1"], LAN, ["127.0.0.1"]),
        (["10.1.2.3", "10.1.2.3"], LAN, ["10.1.2.3"]),
        # No route to the mDNS group (no default route): every usable address, no link-local.
        (
            ["0.0.0.0"],
            HostAddresses(None, [["127.0.0.1"], ["10.0.0.2", "169.254.3.4"], ["172.17.0.1"]]),
            ["10.0.0.2", "172.17.0.1"],
        ),
        # Nothing usable at all: loopback, so the host itself can still discover the server.
        (["0.0.0.0"], HostAddresses(None, [["127.0.0.1", "::1"]]), ["127.0.0.1"]),
        (["::"], HostAddresses("127.0.0.1", [["127.0.0.1", "::1"]]), ["::1"]),
        # The outbound address is unusable (a link-local route): fall back to the interfaces.
        (["0.0.0.0"], HostAddresses("169.254.1.1", [["169.254.1.1"], ["10.9.8.7"]]), ["10.9.8.7"]),
    ],
)
def test_choose_addresses(bound: list[str], host: HostAddresses, expected: list[str]) -> None:
    assert choose_addresses(bound, host) == expected


def test_this_hosts_wildcard_addresses_are_real() -> None:
    """Whatever this machine's network, a wildcard bind never advertises an unspecified address."""
    chosen = choose_addresses(["0.0.0.0"], host_addresses())
    assert chosen
    assert "0.0.0.0" not in chosen and "::" not in chosen


def test_announce_only_where_listening() -> None:
    assert zeroconf_interfaces(["127.0.0.1"]) == ["127.0.0.1"]
    assert zeroconf_interfaces(["0.0.0.0"]) != ["0.0.0.0"]
    assert not isinstance(zeroconf_interfaces(["0.0.0.0"]), list)


# ---------------------------------------------------------------------------- discovery for real


class Browser:
    """A loopback-only mDNS browser that records what it sees, as Home Assistant's does."""

    def __init__(self, zc: AsyncZeroconf) -> None:
        self.zc = zc
        self.added: asyncio.Queue[str] = asyncio.Queue()
        self.removed: asyncio.Queue[str] = asyncio.Queue()
        self._loop = asyncio.get_running_loop()
        self._browser = AsyncServiceBrowser(zc.zeroconf, SERVICE_TYPE, handlers=[self._on_change])

    def _on_change(
        self, zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Added:
            self.added.put_nowait(name)
        elif state_change is ServiceStateChange.Removed:
            self.removed.put_nowait(name)

    async def wait(self, queue: asyncio.Queue[str], prefix: str) -> str:
        """The first full service name starting with ``prefix`` (other tests may advertise)."""
        async with asyncio.timeout(20):
            while True:
                name = await queue.get()
                if name.startswith(prefix):
                    return name

    async def resolve(self, name: str) -> AsyncServiceInfo:
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        assert await info.async_request(self.zc.zeroconf, 5000), f"cannot resolve {name}"
        return info

    async def close(self) -> None:
        await self._browser.async_cancel()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    zc = AsyncZeroconf(interfaces=["127.0.0.1"])
    found = Browser(zc)
    try:
        yield found
    finally:
        await found.close()
        await zc.async_close()


async def describe(host: str, port: int) -> Info:
    client = AsyncTcpClient(host, port)
    await client.connect()
    try:
        await client.write_event(Describe().event())
        while True:
            event = await client.read_event()
            assert event is not None, "server closed without answering describe"
            if Info.is_type(event.type):
                return Info.from_event(event)
    finally:
        await client.disconnect()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


async def test_discovered_service_is_the_running_server(browser: Browser) -> None:
    """Browse, resolve, connect: the advertised address and port reach the bound server."""
    name = unique("zc-test")
    async with running_bridge(bridge_settings("ws://127.0.0.1:9/")) as server:
        port = server.sockets[0][1]
        advertisement = await start_advertising(name, "tcp://127.0.0.1:0", server.sockets)
        assert advertisement is not None
        try:
            full = await browser.wait(browser.added, name)
            assert full == f"{name}.{SERVICE_TYPE}"
            info = await browser.resolve(full)
            assert info.parsed_addresses() == ["127.0.0.1"]
            assert info.port == port != 0
            assert info.properties[b"program"] == b"lightning"
            answer = await describe(info.parsed_addresses()[0], port)
            assert answer.asr and answer.asr[0].name == "lightning"
        finally:
            await advertisement.stop()
        # Stopping says goodbye: browsers drop the entry at once, not when its TTL expires.
        assert await browser.wait(browser.removed, name) == full


async def test_no_advertising_without_the_flag_or_tcp() -> None:
    assert await start_advertising(None, "tcp://127.0.0.1:10300", [("127.0.0.1", 10300)]) is None
    assert await start_advertising("x", "unix:///tmp/x.sock", []) is None


async def test_command_line_advertises_the_port_actually_bound(browser: Browser) -> None:
    """``wyoming-lightning --zeroconf NAME --uri tcp://127.0.0.1:0``: the kernel picks the port,
    the advertisement carries it, and SIGTERM withdraws the advertisement before exiting."""
    name = unique("zc-cli")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTNING_", "SMALLEST_"))}
    env.update(SMALLEST_API_KEY="not-used-at-start-up", LIGHTNING_VAD="off")
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wyoming_lightning",
        "--uri",
        "tcp://127.0.0.1:0",
        "--zeroconf",
        name,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        full = await browser.wait(browser.added, name)
        info = await browser.resolve(full)
        assert info.parsed_addresses() == ["127.0.0.1"]
        assert info.port not in (None, 0)
        assert info.port is not None
        answer = await describe("127.0.0.1", info.port)
        assert answer.asr[0].installed
        process.send_signal(signal.SIGTERM)
        assert await browser.wait(browser.removed, name) == full
        async with asyncio.timeout(30):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.stderr is not None
    log = (await process.stderr.read()).decode()
    assert f"advertising '{name}'" in log, log
