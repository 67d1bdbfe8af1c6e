"""Runs one accepted session over a websockets connection.

This is the thin I/O layer around :class:`SessionCore`: it moves frames between the socket
and the core, runs slow recognizers off the event loop, and acts out the session's faults.
What the session says goes through an :class:`_Outbox` that holds each message until it is
due (the finalize delay, the latency model's settle time and round trip, the ``slow`` fault),
in order, while the session goes on reading: a slow answer never stops the session from
taking audio, just as on the real service.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from wyoming_lightning.emulator.config import DECODABLE_ENCODINGS, Dialect
from wyoming_lightning.emulator.faults import Fault, SessionFaults, error_frame, garbage_frame
from wyoming_lightning.emulator.latency import LatencyModel, remaining_s
from wyoming_lightning.emulator.params import SessionParams
from wyoming_lightning.emulator.recognizers import Recognizer
from wyoming_lightning.emulator.records import SessionRecord
from wyoming_lightning.emulator.session import Reply, SessionCore, error_message

_T = TypeVar("_T")
SLOW_INTERIM_EVERY_S = 0.5
"""The ``slow`` fault's interims while it holds a final back."""


@dataclass
class _Held:
    due: float
    message: dict[str, Any]
    interims: bool


class _Outbox:
    """Sends messages in order, none before its due time; with ``interims`` on a held final,
    repeats its text as an interim every SLOW_INTERIM_EVERY_S while it waits."""

    def __init__(self, send: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self._send = send
        self._loop = asyncio.get_running_loop()
        self._queue: deque[_Held] = deque()
        self._wake = asyncio.Event()
        self._empty = asyncio.Event()
        self._empty.set()
        self._last_due = 0.0
        self._task = self._loop.create_task(self._run())

    def put(self, message: dict[str, Any], delay: float, *, interims: bool = False) -> None:
        due = max(self._loop.time() + delay, self._last_due)
        self._last_due = due
        # Only a final is repeated as interims while held; a speech event just waits its turn.
        self._queue.append(_Held(due, message, interims and bool(message.get("is_final"))))
        self._empty.clear()
        self._wake.set()

    async def drain(self) -> None:
        """Wait until everything put so far is sent (or the socket is gone)."""
        waiter = asyncio.ensure_future(self._empty.wait())
        await asyncio.wait({waiter, self._task}, return_when=asyncio.FIRST_COMPLETED)
        waiter.cancel()

    def cancel(self) -> None:
        self._task.cancel()

    async def _run(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                if not self._queue:
                    self._empty.set()
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                held = self._queue[0]
                while (wait := held.due - self._loop.time()) > 0:
                    if not held.interims:
                        await asyncio.sleep(wait)
                        break
                    await asyncio.sleep(min(wait, SLOW_INTERIM_EVERY_S))
                    if held.due - self._loop.time() > 0:
                        await self._send(_interim_of(held.message))
                self._queue.popleft()
                await self._send(held.message)


def _interim_of(final: dict[str, Any]) -> dict[str, Any]:
    """The held final's text as an interim, in the same fields (``transcript`` and/or
    ``transcription``, as the session's text-field switch made the final)."""
    kept = ("type", "session_id", "transcript", "transcription", "words", "language")
    interim = {k: v for k, v in final.items() if k in kept}
    return {**interim, "is_final": False, "is_last": False}


class SessionConnection:
    """One session's frame loop; returns when the session is over, the socket closed or not."""

    def __init__(
        self,
        connection: ServerConnection,
        record: SessionRecord,
        *,
        dialect: Dialect,
        params: SessionParams,
        faults: SessionFaults,
        recognizer: Recognizer,
        eou_timeout_ms: int,
        words_per_final: int = 10,
        finalize_delay_ms: int,
        silence_dbfs: float,
        on_change: Callable[[], None],
        latency: LatencyModel | None = None,
        rng: random.Random | None = None,
        from_finalize: bool = True,
        text_field: str = "both",
    ) -> None:
        self._connection = connection
        self._on_change = on_change
        self._record = record
        self._params = params
        self._faults = faults
        self._recognizer = recognizer
        self._pulse = dialect is Dialect.PULSE
        self._finalize_delay = finalize_delay_ms / 1000.0
        self._latency = latency or LatencyModel()
        self._rng = rng or random.Random(0)
        self._garbage = False
        self._stale: list[dict[str, Any]] = []
        """``stale-final``: copies of finals held back until the next frame arrives."""
        self._outbox: _Outbox | None = None
        self._core = SessionCore(
            session_id=record.session_id,
            dialect=dialect,
            params=params,
            recognizer=recognizer,
            eou_timeout_ms=eou_timeout_ms,
            words_per_final=words_per_final,
            silence_dbfs=silence_dbfs,
            from_finalize=from_finalize,
            text_field=text_field,
        )
        self._from_finalize = from_finalize

    async def run(self) -> None:
        self._outbox = _Outbox(self._send)
        try:
            with contextlib.suppress(ConnectionClosed):
                await self._run()
        finally:
            self._outbox.cancel()

    async def _run(self) -> None:
        if self._params.encoding not in DECODABLE_ENCODINGS:
            await self._send(
                error_message(
                    f"encoding {self._params.encoding!r} is not supported by the emulator; "
                    "send linear16"
                )
            )
            await self._connection.close(1003, "unsupported encoding")
            return
        terminal = self._faults.terminal
        if terminal is not None and terminal.after_bytes == 0:
            await self._fail(terminal)
            return
        garbage_fault = self._faults.get("invalid-json")
        stall = "stall" in self._faults
        if stall:
            _hang_pings(self._connection)
        while True:
            frame = await self._connection.recv()
            self._release_stale()
            if isinstance(frame, bytes):
                self._record.audio_bytes_received += len(frame)
                self._record.binary_frame_sizes.append(len(frame))
                self._on_change()
                received = self._record.audio_bytes_received
                if terminal is not None and received >= terminal.after_bytes:
                    await self._fail(terminal)
                    return
                if garbage_fault and not self._garbage and received >= garbage_fault.after_bytes:
                    self._garbage = True
                    await self._send_text(garbage_frame(None))
                if stall:
                    continue
                settling_s = compute_s = 0.0
                reply = await self._call(self._core.feed_audio, frame)
            else:
                self._record.text_frames_received.append(frame)
                self._on_change()
                if stall:
                    continue
                if "close-idle" in self._faults and _is_keepalive(frame):
                    await self._connection.close(1001, "going away")
                    return
                if "no-pong" in self._faults and _is_keepalive(frame):
                    continue
                settling_s = self._core.segment_s
                started = asyncio.get_running_loop().time()
                reply = await self._call(self._core.feed_text, frame)
                compute_s = asyncio.get_running_loop().time() - started
                if reply.end_of_session and terminal is not None:
                    await self._fail(terminal)
                    return
                if reply.end_of_session and garbage_fault:
                    self._garbage = True
            self._answer(reply, settling_s, compute_s)
            if reply.end_of_session:
                assert self._outbox is not None
                await self._outbox.drain()
                await self._connection.close(1000)
                return

    def _answer(self, reply: Reply, settling_s: float, compute_s: float) -> None:
        """Queue the reply: a round trip for every message, and for the answer to a finalize
        or end the service's time to settle, then ``slow``.

        The time to settle (the finalize delay plus the latency model's draw) is the service's
        whole time from the control message to its answer, recognition included, as a real
        service's is: the ``compute_s`` already spent recognising is taken off it, so a slow
        recognizer (Whisper) does not add its own time on top of the model's.
        """
        assert self._outbox is not None
        delay = self._latency.rtt_s
        slow = self._faults.get("slow") if reply.answers_control else None
        if reply.answers_control:
            settle = self._finalize_delay + self._latency.settle_s(settling_s, self._rng)
            hold = remaining_s(settle, compute_s)
            self._record.control_holds_s.append(hold)
            delay += hold
            if slow is not None:
                delay += slow.delay_ms / 1000.0
        flag = self._pulse and self._from_finalize
        for message in self._faults.decorate(reply.messages, from_finalize=flag):
            self._outbox.put(message, delay, interims=slow is not None)
            final = message.get("is_final") and not message.get("is_last")
            if final and "stale-final" in self._faults:
                self._stale.append(dict(message))

    def _release_stale(self) -> None:
        """``stale-final``: what was held back goes out now, ahead of this frame's answer."""
        if self._stale and self._outbox is not None:
            for message in self._stale:
                self._outbox.put(message, self._latency.rtt_s)
            self._stale.clear()

    async def _call(self, method: Callable[[_T], Reply], arg: _T) -> Reply:
        if not self._recognizer.blocking:
            return method(arg)
        return await asyncio.get_running_loop().run_in_executor(None, method, arg)

    async def _fail(self, fault: Fault) -> None:
        if self._outbox is not None:
            self._outbox.cancel()  # what was still held back is lost with the session
        if fault.name == "drop":
            # No close frame, no FIN handshake: the client sees 1006, as on a network failure.
            self._connection.transport.abort()
            await self._connection.wait_closed()
        elif fault.name == "close-1008":
            await self._connection.close(1008, "concurrency limit")
        elif fault.name == "close-1011":
            await self._connection.close(1011, "internal error")
        else:
            await self._send(error_frame(fault, self._params.language))
            await self._connection.close(1011, "internal error")

    async def _send(self, message: dict[str, Any]) -> None:
        if self._garbage:
            await self._send_text(garbage_frame(message))
            return
        await self._send_text(json.dumps(message))
        self._record.messages_sent.append(message)
        self._on_change()

    async def _send_text(self, text: str) -> None:
        await self._connection.send(text)
        self._record.frames_sent.append(text)
        self._on_change()


def _is_keepalive(frame: str) -> bool:
    try:
        payload = json.loads(frame)
    except ValueError:
        return False
    return isinstance(payload, dict) and payload.get("type") == "keepalive"


def _hang_pings(connection: ServerConnection) -> None:
    """A hung service answers nothing, WebSocket pings included (the library would pong)."""
    protocol = connection.protocol
    send_frame = protocol.send_frame

    def send_all_but_pongs(frame: Frame) -> None:
        if frame.opcode is not Opcode.PONG:
            send_frame(frame)

    protocol.send_frame = send_all_but_pongs  # type: ignore[method-assign]
