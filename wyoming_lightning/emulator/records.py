"""What the emulator saw and did in each session, for tests to assert on.

A test of a client cannot see the server side of the wire; these records make it visible:
which URL and parameters arrived, how much audio, which control frames, what was answered,
and how the session ended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from wyoming_lightning.emulator.config import Dialect


class SessionState(StrEnum):
    HANDSHAKE = "handshake"
    REFUSED = "refused"
    OPEN = "open"
    CLOSED = "closed"


@dataclass
class SessionRecord:
    """One handshake attempt and, when it was accepted, the session that followed.

    ``close_code`` is the code of the close frame that started the closing handshake (the
    server's own, or the client's when the client closed first), 1006 when the connection ended
    without any close frame. ``closed_by`` is ``"server"``, ``"client"`` or ``None`` for that
    last case.
    """

    session_id: str
    path: str
    query: list[tuple[str, str]]
    dialect: Dialect | None = None
    handshake_status: int | None = None
    faults: tuple[str, ...] = ()
    state: SessionState = SessionState.HANDSHAKE
    audio_bytes_received: int = 0
    binary_frame_sizes: list[int] = field(default_factory=list)
    text_frames_received: list[str] = field(default_factory=list)
    messages_sent: list[dict[str, Any]] = field(default_factory=list)
    frames_sent: list[str] = field(default_factory=list)
    control_holds_s: list[float] = field(default_factory=list)
    """For each answer to a finalize / end: how long it was held after recognition (the
    settle time less the recognizer's compute time; round trip and faults not included)."""
    close_code: int | None = None
    close_reason: str | None = None
    closed_by: str | None = None

    @property
    def params(self) -> dict[str, str]:
        """Query parameters, last value wins (``query`` keeps repeats)."""
        return dict(self.query)

    @property
    def open(self) -> bool:
        return self.state is SessionState.OPEN

    @property
    def closed(self) -> bool:
        return self.state in (SessionState.CLOSED, SessionState.REFUSED)

    @property
    def finals(self) -> list[dict[str, Any]]:
        return [m for m in self.messages_sent if m.get("is_final")]

    @property
    def transcript(self) -> str:
        """Text of every final sent, joined; duplicates (a ``duplicate-final`` fault) included."""
        parts = (
            str(m.get("transcript") or m.get("transcription") or "").strip() for m in self.finals
        )
        return " ".join(p for p in parts if p)


class ChangeNotifier:
    """Wakes tasks that wait for a condition on the records, so tests never poll or sleep."""

    def __init__(self) -> None:
        self._waiters: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []

    def changed(self) -> None:
        """Call after any record changed: re-checks every pending condition."""
        pending: list[tuple[Callable[[], bool], asyncio.Future[None]]] = []
        for predicate, future in self._waiters:
            if future.done():
                continue
            try:
                met = predicate()
            except Exception as exc:  # the waiter's bug: report it there, not here
                future.set_exception(exc)
                continue
            if met:
                future.set_result(None)
            else:
                pending.append((predicate, future))
        self._waiters = pending

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        if predicate():
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((predicate, future))
        try:
            async with asyncio.timeout(timeout):
                await future
        finally:
            future.cancel()
