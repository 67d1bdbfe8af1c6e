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
from typing import cast

import pytest

from wyoming_lightning.wyoming.reading import HELD_BYTES, ClientProtocol, ReadCadence

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

    def __init__(self, serve: Serve, cadence: ReadCadence | None = None) -> None:
        super().__init__(asyncio.StreamReader(), serve, cadence=cadence)
        self.eof_seen = asyncio.Event()

    def eof_received(self) -> bool | None:
        keep_open = super().eof_received()
        self.eof_seen.set()
        return keep_open


@contextlib.asynccontextmanager
async def listening(serve: Serve, cadence: ReadCadence | None = None) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: Watched(serve, cadence), "127.0.0.1", 0)
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


# ---------------------------------------------------------------------- the read cadence
# A cadence whose own tick never comes within a test (an hour): ``close()`` is its tick, so
# what a waiting connection does before and after it is seen without waiting on a clock.

NEVER_S = 3600.0


def is_reading(writer: asyncio.StreamWriter) -> bool:
    """Whether the server's socket is read (a TCP transport reads and writes)."""
    return cast(asyncio.Transport, writer.transport).is_reading()


async def wait_after_first(protocol: ClientProtocol, sink: Collected) -> None:
    """As the handler does: the client's first bytes (``one``) read, then wait for more."""
    protocol.attach(sink)
    await sink.until(lambda: bytes(sink.data) == b"one")
    protocol.wait_for_more()


async def test_a_waiting_connection_reads_again_at_the_tick_and_nothing_is_lost() -> None:
    cadence = ReadCadence(asyncio.get_running_loop(), NEVER_S)
    sink = Collected()
    paused: list[bool] = []
    served = asyncio.Event()

    async def serve(
        protocol: ClientProtocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await wait_after_first(protocol, sink)
        paused.append(not is_reading(writer))
        served.set()
        await sink.until(lambda: bool(sink.ends))
        writer.close()

    async with listening(serve, cadence) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"one")
        async with asyncio.timeout(HANG):
            await served.wait()
            writer.write(b"two")
            writer.write(b"three")
            writer.write_eof()
            await writer.drain()
            cadence.close()  # the tick: the socket is read again, the EOF with it
            await sink.until(lambda: bool(sink.ends))
            assert await reader.read() == b""
        writer.close()
    assert paused == [True], "waiting, the socket is not read"
    assert bytes(sink.data) == b"onetwothree"
    assert sink.ends == [None]


async def test_the_tick_does_not_read_a_client_that_reads_none_of_its_answers() -> None:
    """Flow control wins: a client whose answers pile up is not read again by the tick, only
    when it reads them (as without a cadence)."""
    cadence = ReadCadence(asyncio.get_running_loop(), NEVER_S)
    sink = Collected()
    reading: list[bool] = []
    blocked = asyncio.Event()

    async def serve(
        protocol: ClientProtocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await wait_after_first(protocol, sink)
        high = writer.transport.get_write_buffer_limits()[1]
        while writer.transport.get_write_buffer_size() <= high:  # the client reads nothing
            writer.write(bytes(1 << 16))
        cadence.close()  # the tick comes while writes are paused
        reading.append(is_reading(writer))
        blocked.set()
        await writer.drain()  # the client reads: writing, and with it reading, resumes
        reading.append(is_reading(writer))
        await sink.until(lambda: bool(sink.ends))
        writer.close()

    async with listening(serve, cadence) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"one")
        async with asyncio.timeout(HANG):
            await blocked.wait()
            writer.write(b"two")
            writer.write_eof()
            while await reader.read(1 << 20):
                pass
        writer.close()
    assert reading == [False, True]
    assert bytes(sink.data) == b"onetwo"
    assert sink.ends == [None]


async def test_without_a_cadence_nothing_waits() -> None:
    sink = Collected()
    reading: list[bool] = []

    async def serve(
        protocol: ClientProtocol, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        protocol.attach(sink)
        protocol.wait_for_more()
        reading.append(is_reading(writer))
        await sink.until(lambda: bool(sink.ends))
        writer.close()

    async with listening(serve) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"one")
        writer.write_eof()
        async with asyncio.timeout(HANG):
            assert await reader.read() == b""
        writer.close()
    assert reading == [True]
    assert bytes(sink.data) == b"one"
