"""Listening sockets for TCP: ``::`` means both IPv4 and IPv6, as users expect it to; and
where the server's extra ports (the page, the metrics) listen.

Python's ``asyncio.start_server("::", ...)`` takes the system's default for IPV6_V6ONLY, and
on many systems (and in Docker) that leaves IPv4 clients unable to connect. A socket made here
for ``::`` accepts both families; IPv4 clients then appear as ``::ffff:a.b.c.d``, which the
allow-list reads as the IPv4 address it is (:func:`~wyoming_lightning.ops.access.parse_address`).
"""

from __future__ import annotations

import socket

BACKLOG = 100


def tcp_listener(host: str, port: int) -> socket.socket | None:
    """A dual-stack listening socket for ``::``; ``None`` for any other host (asyncio binds it
    as given) or where the system has no dual stack."""
    if host != "::" or not socket.has_dualstack_ipv6():
        return None
    return socket.create_server(
        (host, port), family=socket.AF_INET6, backlog=BACKLOG, dualstack_ipv6=True
    )
