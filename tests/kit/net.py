"""Ports for servers that a test or benchmark starts as a separate process.

In-process servers bind port 0 and read back the port they got; a subprocess told a port on
its command line needs one chosen beforehand, and the kernel chooses it here."""

from __future__ import annotations

import socket


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
