"""A Wyoming client for a URI the user gave: what the health check, the status page's microphone
test and the client tool share, so that ``unix://relative/path`` means the same to all three."""

from __future__ import annotations

from wyoming.client import AsyncClient, AsyncTcpClient, AsyncUnixClient

from wyoming_lightning.settings.cli import parse_uri


def wyoming_client(uri: str) -> AsyncClient:
    """A client for a checked ``tcp://`` or ``unix://`` URI (``unix://relative/path`` too,
    which ``AsyncClient.from_uri`` reads as an empty path)."""
    where = parse_uri(uri)
    if where.scheme == "unix":
        return AsyncUnixClient(where.path)
    assert where.port is not None
    return AsyncTcpClient(where.host, where.port)
