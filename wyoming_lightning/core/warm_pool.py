"""Warm service sockets kept between requests: which one a request borrows, and when an idle
one is pinged or retired. Policy only: no socket, no clock of its own.

The vendor's pattern is one socket for many turns (``finalize`` per turn); a socket per turn
costs a handshake (200-800 ms on a real network) on the user's wait, and the standard plan
allows only 25 new sessions a minute. So a socket whose request ended cleanly goes back here,
keyed by its URL (every query option fixes the session: language, keywords, sample rate...),
and the next request with the same key borrows it instead of connecting.

Isolation comes first. A socket comes back only when its request's last ``finalize`` was
answered and nothing is owed (the request machine decides that, the caller says ``clean``);
while idle, anything the service says other than ``pong`` (a late or repeated final, an error)
means it still thinks of an earlier turn, and the socket is retired; so is one that closed,
failed, or showed no sign of life for a whole keepalive interval. A retired socket is never lent
again.

Liveness does not rest on ``pong``: ``keepalive``/``pong`` are in none of the vendor's documents
(only LiveKit's plugin sends them), and a service that ignores ``keepalive`` would otherwise
lose every warm socket at the first missed pong. So each keepalive goes out with a WebSocket
ping (the protocol's own, which every conforming server must answer, RFC 6455 5.5.2), and
either answer keeps the socket (:meth:`PoolPolicy.heard` with ``alive``). The ping costs
nothing; the ``keepalive`` message is kept for a service that wants one. No audio is sent while
idle: pipecat's 100 ms of silence every 10 s would be billed (0.6 s per idle minute, about
$0.00008 at $0.008/min), and nothing documents an idle timeout it would prevent.

:class:`PoolPolicy` is generic over the adapter's socket object (any hashable handle) and reads
an injected clock, so every rule is tested without sockets or waiting.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

KEEPALIVE_S = 5.0
"""Idle sockets are pinged with ``keepalive`` this often (LiveKit's plugin uses 5 s)."""
MAX_IDLE = 8
"""Idle sockets kept at most, all keys together; the oldest goes first. The standard plan
allows 100 concurrent sessions: idle ones count against that."""

T = TypeVar("T", bound=Hashable)


class Retirement(enum.Enum):
    """Why a socket leaves the pool for good (the words go into a debug log line)."""

    IDLE = "idle past --session-idle-timeout"
    SPOKE = "the service sent a result or error while it was idle"
    SILENT = "no answer to its keepalive nor to a WebSocket ping"
    LOST = "the service closed it or it failed"
    FULL = "the pool of idle sockets was full"
    UNCLEAN = "its request did not end with every final in"
    DISABLED = "warm sessions are off"
    SHUTDOWN = "the server is stopping"


@dataclass(frozen=True)
class Keepalive(Generic[T]):
    """Send ``{"type": "keepalive"}`` and a WebSocket ping on ``socket``."""

    socket: T


@dataclass(frozen=True)
class Retire(Generic[T]):
    """Close ``socket`` (``close_stream``, then the close handshake); never lend it again."""

    socket: T
    reason: Retirement


@dataclass
class _Idle(Generic[T]):
    socket: T
    key: str
    since: float
    pinged_at: float
    """When the last keepalive went out, or when the socket came back."""
    pong_owed: bool = False


class PoolPolicy(Generic[T]):
    """The rules for idle sockets; the adapter carries out what its methods return."""

    def __init__(
        self,
        idle_timeout_s: float,
        clock: Callable[[], float],
        *,
        keepalive_s: float = KEEPALIVE_S,
        max_idle: int = MAX_IDLE,
    ) -> None:
        if idle_timeout_s < 0 or keepalive_s <= 0 or max_idle < 0:
            raise ValueError("idle timeout and max idle must be >= 0, keepalive > 0")
        self.idle_timeout_s = idle_timeout_s
        self.keepalive_s = keepalive_s
        self.max_idle = max_idle
        self.clock = clock
        """The injected clock (seconds, monotonic); the adapter's timer reads it too."""
        self._idle: dict[T, _Idle[T]] = {}
        """In the order they came back: the first is the oldest."""

    @property
    def enabled(self) -> bool:
        return self.idle_timeout_s > 0 and self.max_idle > 0

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    def is_idle(self, socket: T) -> bool:
        return socket in self._idle

    def lend(self, key: str) -> tuple[T | None, list[Retire[T]]]:
        """The freshest idle socket for ``key`` (or None), and the sockets found expired."""
        retired = self._expire()
        for socket in reversed(list(self._idle)):
            if self._idle[socket].key == key:
                del self._idle[socket]
                return socket, retired
        return None, retired

    def give_back(self, socket: T, key: str, *, clean: bool) -> list[Retire[T]]:
        """A request is done with ``socket``: keep it idle, or say why not."""
        if not self.enabled:
            return [Retire(socket, Retirement.DISABLED)]
        if not clean:
            return [Retire(socket, Retirement.UNCLEAN)]
        now = self.clock()
        self._idle.pop(socket, None)
        self._idle[socket] = _Idle(socket, key, now, now)
        retired = self._expire()
        while len(self._idle) > self.max_idle:
            oldest = next(iter(self._idle))
            del self._idle[oldest]
            retired.append(Retire(oldest, Retirement.FULL))
        return retired

    def heard(self, socket: T, *, alive: bool) -> list[Retire[T]]:
        """An idle socket gave a sign of life (``alive``: a ``pong``, or the answer to a
        WebSocket ping) or a message: a sign of life keeps it, anything else retires it."""
        entry = self._idle.get(socket)
        if entry is None:
            return []
        if alive:
            entry.pong_owed = False
            return []
        del self._idle[socket]
        return [Retire(socket, Retirement.SPOKE)]

    def lost(self, socket: T) -> list[Retire[T]]:
        """An idle socket closed or failed."""
        if self._idle.pop(socket, None) is None:
            return []
        return [Retire(socket, Retirement.LOST)]

    def due(self) -> list[Keepalive[T] | Retire[T]]:
        """What is due now: expired or silent sockets retired, keepalives for the rest."""
        out: list[Keepalive[T] | Retire[T]] = list(self._expire())
        now = self.clock()
        for socket, entry in list(self._idle.items()):
            if now - entry.pinged_at < self.keepalive_s:
                continue
            if entry.pong_owed:
                del self._idle[socket]
                out.append(Retire(socket, Retirement.SILENT))
                continue
            entry.pinged_at = now
            entry.pong_owed = True
            out.append(Keepalive(socket))
        return out

    def next_due(self) -> float | None:
        """When :meth:`due` next has something to say (clock time), or None when all is quiet."""
        times = [
            min(e.since + self.idle_timeout_s, e.pinged_at + self.keepalive_s)
            for e in self._idle.values()
        ]
        return min(times) if times else None

    def drain(self) -> list[Retire[T]]:
        """Every idle socket, retired: the server is stopping."""
        out = [Retire(s, Retirement.SHUTDOWN) for s in self._idle]
        self._idle.clear()
        return out

    def _expire(self) -> list[Retire[T]]:
        now = self.clock()
        out: list[Retire[T]] = []
        for socket, entry in list(self._idle.items()):
            if now - entry.since >= self.idle_timeout_s:
                del self._idle[socket]
                out.append(Retire(socket, Retirement.IDLE))
        return out
