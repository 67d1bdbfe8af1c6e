"""Runs one accepted session over a websockets connection.

This is the thin I/O layer around :class:`SessionCore`: it moves frames between the socket
and the core, applies the server's finalize delay, runs slow recognizers off the event loop,
and acts out the session's faults.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame, Opcode

from .config import DECODABLE_ENCODINGS, Dialect
from .faults import Fault, SessionFaults, error_frame, garbage_frame
from .params import SessionParams
from .recognizers import Recognizer
from .records import SessionRecord
from .session import Reply, SessionCore, error_message

_T = TypeVar("_T")


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
        finalize_delay_ms: int,
        silence_dbfs: float,
        on_change: Callable[[], None],
    ) -> None:
        self._connection = connection
        self._on_change = on_change
        self._record = record
        self._params = params
        self._faults = faults
        self._recognizer = recognizer
        self._pulse = dialect is Dialect.PULSE
        self._finalize_delay = finalize_delay_ms / 1000.0
        self._garbage = False
        self._core = SessionCore(
            session_id=record.session_id,
            dialect=dialect,
            params=params,
            recognizer=recognizer,
            eou_timeout_ms=eou_timeout_ms,
            silence_dbfs=silence_dbfs,
        )

    async def run(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            await self._run()

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
                reply = await self._call(self._core.feed_audio, frame)
            else:
                self._record.text_frames_received.append(frame)
                self._on_change()
                if stall:
                    continue
                reply = await self._call(self._core.feed_text, frame)
                if reply.end_of_session and terminal is not None:
                    await self._fail(terminal)
                    return
                if reply.end_of_session and garbage_fault:
                    self._garbage = True
            await self._answer(reply)
            if reply.end_of_session:
                await self._connection.close(1000)
                return

    async def _answer(self, reply: Reply) -> None:
        if reply.answers_control and self._finalize_delay > 0:
            await self._pause(self._finalize_delay)
        for message in self._faults.decorate(reply.messages, pulse=self._pulse):
            await self._send(message)

    async def _call(self, method: Callable[[_T], Reply], arg: _T) -> Reply:
        if not self._recognizer.blocking:
            return method(arg)
        return await asyncio.get_running_loop().run_in_executor(None, method, arg)

    async def _pause(self, seconds: float) -> None:
        """Sleep like a busy server, but stop at once if the client goes away."""
        try:
            async with asyncio.timeout(seconds):
                await self._connection.wait_closed()
        except TimeoutError:
            pass

    async def _fail(self, fault: Fault) -> None:
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


def _hang_pings(connection: ServerConnection) -> None:
    """A hung service answers nothing, WebSocket pings included (the library would pong)."""
    protocol = connection.protocol
    send_frame = protocol.send_frame

    def send_all_but_pongs(frame: Frame) -> None:
        if frame.opcode is not Opcode.PONG:
            send_frame(frame)

    protocol.send_frame = send_all_but_pongs  # type: ignore[method-assign]
