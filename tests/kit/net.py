"""Ports for servers that a test or benchmark starts as a separate process.

In-process servers bind port 0 and read back the port they got; a subprocess told a port on
its command line needs one chosen beforehand, and the kernel chooses it here."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def silent_listener() -> AsyncIterator[int]:
    """A port on 127.0.0.1 that accepts connections and never says a word (a Home Assistant
    that hangs): its number while the context lasts; every connection is closed at the end."""
    held: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()
