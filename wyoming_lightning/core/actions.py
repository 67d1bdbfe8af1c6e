"""What the request state machine asks its adapters to do.

The machine in :mod:`wyoming_lightning.core.request` never touches a socket, a clock or a thread; it
returns these plain values and the adapters (:mod:`wyoming_lightning.wyoming.handler`) carry them
out. Tests can therefore read a request's whole behaviour as a list of actions.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

from wyoming_lightning.core.errors import ErrorCode


@dataclass(frozen=True)
class Connect:
    """Open a WebSocket session to ``url``; report back as connection ``conn``."""

    conn: int
    url: str


@dataclass(frozen=True)
class SendAudio:
    """Send one binary frame of 16 kHz mono s16 audio on ``conn``."""

    conn: int
    data: bytes


@dataclass(frozen=True)
class SendText:
    """Send one control text frame (``end``, ``finalize``, ``close_stream``) on ``conn``."""

    conn: int
    text: str


@dataclass(frozen=True)
class Disconnect:
    """Close ``conn``; anything it reports afterwards is ignored."""

    conn: int
    reusable: bool = False
    """Every final it owed is in: the adapter may keep the socket warm for another request."""


@dataclass(frozen=True)
class Probe:
    """Ask ``conn`` for a sign of life (a WebSocket ping); report the pong as progress."""

    conn: int


class TimerKind(enum.Enum):
    """What a timer is for; see the liveness rules in :mod:`wyoming_lightning.core.request`."""

    RETRY = "retry"
    """Reconnect after the backoff (one per request)."""
    ANSWER = "answer"
    """The bound on the wait after ``audio-stop`` (one per request)."""
    STALL = "stall"
    """A session that owes a final has shown no progress for a while (one per session)."""
    PROBE = "probe"
    """Time to ping a session that owes a final (one per session)."""


@dataclass(frozen=True)
class TimerId:
    """Names one timer: its kind, and the session it watches for per-session kinds."""

    kind: TimerKind
    conn: int | None = None

    def __str__(self) -> str:
        return self.kind.value if self.conn is None else f"{self.kind.value}:{self.conn}"


@dataclass(frozen=True)
class StartTimer:
    """Feed ``TimerFired(timer)`` after ``delay`` seconds, replacing a pending namesake."""

    timer: TimerId
    delay: float


@dataclass(frozen=True)
class CancelTimer:
    """Forget ``timer`` if it is still pending."""

    timer: TimerId


class Timers:
    """The timers one request has pending: asked for and cancelled through ``emit``, so that
    a timer that fired after it was cancelled or replaced is told apart (:meth:`fired`)."""

    def __init__(self, emit: Callable[[Action], None]) -> None:
        self._emit = emit
        self._pending: set[TimerId] = set()

    def start(self, timer: TimerId, delay: float) -> None:
        self._pending.add(timer)
        self._emit(StartTimer(timer, delay))

    def cancel(self, timer: TimerId) -> None:
        if timer in self._pending:
            self._pending.discard(timer)
            self._emit(CancelTimer(timer))

    def fired(self, timer: TimerId) -> bool:
        """``timer`` ran out: was it still pending (else it is stale and means nothing)?"""
        if timer not in self._pending:
            return False
        self._pending.discard(timer)
        return True

    def cancel_all(self) -> None:
        for timer in sorted(self._pending, key=str):
            self._emit(CancelTimer(timer))
        self._pending.clear()


@dataclass(frozen=True)
class TranscriptStart:
    """Wyoming ``transcript-start`` (streaming clients)."""

    language: str | None


@dataclass(frozen=True)
class TranscriptChunk:
    """Wyoming ``transcript-chunk``: settled text, appended to what came before."""

    text: str


@dataclass(frozen=True)
class Transcript:
    """Wyoming ``transcript``: the whole answer."""

    text: str
    language: str | None


@dataclass(frozen=True)
class TranscriptStop:
    """Wyoming ``transcript-stop`` (streaming clients)."""


@dataclass(frozen=True)
class Error:
    """Wyoming ``error`` with a stable code; the request is over."""

    code: ErrorCode
    text: str


@dataclass(frozen=True)
class TranscribeLocally:
    """Run the offline recognizer on ``audio`` (16 kHz mono s16); answer with ``LocalResult``."""

    audio: bytes
    language: str


@dataclass(frozen=True)
class Log:
    """A line for the user's log; the machine decides what is worth saying."""

    level: int
    message: str

    @staticmethod
    def info(message: str) -> Log:
        return Log(logging.INFO, message)

    @staticmethod
    def debug(message: str) -> Log:
        return Log(logging.DEBUG, message)

    @staticmethod
    def warning(message: str) -> Log:
        return Log(logging.WARNING, message)


@dataclass(frozen=True)
class Finish:
    """The request is answered: close the client's connection."""


Action = (
    Connect
    | SendAudio
    | SendText
    | Disconnect
    | Probe
    | StartTimer
    | CancelTimer
    | TranscriptStart
    | TranscriptChunk
    | Transcript
    | TranscriptStop
    | Error
    | TranscribeLocally
    | Log
    | Finish
)
