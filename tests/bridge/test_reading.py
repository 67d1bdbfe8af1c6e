"""``wyoming/reading.py``: a connection's bytes to its handler as they arrive, none lost.

Real sockets on loopback: a client writes, and the server's side of :class:`ClientProtocol`
hands the bytes to a sink attached later (as a handler attaches on its first turn), or to the
``StreamReader`` (a refused client's one event, the linger). The server's own tests
(``test_hostile.py``, ``test_client_faults.py``) are the spec of the limits on the read side.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from wyoming_lightning.wyoming.reading import HELD_BYTES, ClientProtocol

HANG = 30.0
"""Seconds after which a wait that should have ended is a hang (a failure, not a threshold)."""

Serve = Callable[[ClientProtocol, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Collected:
    """A sink that keeps what it is given."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.ends: list[Exception | None] = []
        self.changed = asyncio.Event()

    def received(self, data: bytes) -> None:
        self.data += data
        self.changed.set()

    def ended(self, error: Exception | None) -> None:
        self.ends.append(error)
        self.changed.set()

    async def until(self, done: Callable[[], bool]) -> None:
        while not done():
            self.changed.clear()
            await self.changed.wait()


class Watched(ClientProtocol):
    """The real protocol, telling the test when the client's EOF has come in."""

    def __init__(self, serve: Serve) -> None:
        super().__init__(asyncio.StreamReader(), serve)
        self.eof_seen = asyncio.Event()

    def eof_received(self) -> bool | None:
        keep_open = super().eof_received()
        self.eof_seen.set()
        return keep_open


@contextlib.asynccontextmanager
async def listening(serve: Serve) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Watched(serve), "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()


@pytest.mark.parametrize(("size", "eof_held"), [(100, True), (4 * HELD_BYTES, False)])
async def test_bytes_and_eof_before_the_sink_attaches_reach_it_in_order(
    size: int, eof_held: bool
) -> None:
    """All held, the EOF too; or more than is held, so reading pauses until the sink comes."""
    sent = (bytes(range(256)) * (size // 256 + 1))[:size]
    client_done = asyncio.Event()
    sink = Collected()
    answered = asyncio.Event()
    rest: list[bytes] = []

    async def serve(
        protocol: ClientProtocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await client_done.wait()  # the client has written everything and shut its side
        if eof_held:
            assert isinstance(protocol, Watched)
            await protocol.eof_seen.wait()  # and the EOF is in, held with the bytes
        protocol.attach(sink)
        await sink.until(lambda: bool(sink.ends))
        protocol.to_reader()  # the linger: it must see the EOF too, not wait for more
        rest.append(await reader.read())
        writer.write(b"answer")  # the connection is half-open: the answer still goes out
        await writer.drain()
        writer.close()
        answered.set()

    async with listening(serve) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(sent)
        writer.write_eof()
        await writer.drain()
        client_done.set()
        async with asyncio.timeout(HANG):
            assert await reader.read() == b"answer"
            await answered.wait()
        writer.close()
    assert bytes(sink.data) == sent
    assert sink.ends == [None]
    assert rest == [b""]


async def test_held_bytes_go_to_the_reader_when_no_sink_takes_them() -> None:
    client_done = asyncio.Event()
    read: list[bytes] = []

    async def serve(
        protocol: ClientProtocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await client_done.wait()
        protocol.to_reader()  # as a refused or busy client is served
        read.append(await reader.readline())
        read.append(await reader.read())  # then EOF
        writer.close()

    async with listening(serve) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b'{"type": "describe"}\nrest')
        writer.write_eof()
        await writer.drain()
        client_done.set()
        async with asyncio.timeout(HANG):
            assert await reader.read() == b""
        writer.close()
    assert read == [b'{"type": "describe"}\n', b"rest"]


async def test_after_the_sink_lets_go_the_reader_gets_the_rest() -> None:
    sink = Collected()
    first_seen = asyncio.Event()
    rest: list[bytes] = []

    async def serve(
        protocol: ClientProtocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        protocol.attach(sink)
        await first_seen.wait()
        protocol.to_reader()  # the request is over: what follows is the linger's
        rest.append(await reader.read())
        writer.close()

    async with listening(serve) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"first")
        await writer.drain()
        async with asyncio.timeout(HANG):
            await sink.until(lambda: bytes(sink.data) == b"first")
            first_seen.set()
            writer.write(b"second")
            writer.write_eof()
            assert await reader.read() == b""
        writer.close()
    assert bytes(sink.data) == b"first"
    assert rest == [b"second"]
    assert sink.ends == []
