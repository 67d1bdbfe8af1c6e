"""A client's bytes handed to its handler as they arrive, and the read side's time limits.

Every audio chunk of a Home Assistant stream (100 a second) arrives on its own. Read through a
``StreamReader``, each arrival cost a future, a task wake-up, a coroutine's resumption and a
timeout's enter and exit before the handler saw a byte: at 100 streams that was a fifth of the
bridge's CPU. :class:`ClientProtocol` gives the bytes straight from the event loop's callback
to a :class:`Sink` (the handler, which decodes and handles them at once); the limits a task
used to await (the first event, the idle client, the event begun and not finished) are one
timer per connection (:class:`ReadTimer`). The ``StreamWriter`` stays for writing, and the
``StreamReader`` for what is read after the request (the linger) and by the short paths that
read one event (a refused client).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable, Callable
from typing import Protocol, cast

HELD_BYTES = 64 * 1024
"""Bytes kept for a handler that has not attached yet (the first loop turn after the accept);
past this the socket is not read until it does."""


class Sink(Protocol):
    """Where a connection's bytes go while a handler reads them itself."""

    def received(self, data: bytes) -> None:
        """Bytes from the client, in order; called from the event loop, must not raise."""

    def ended(self, error: Exception | None) -> None:
        """The client sent EOF (``None``) or the connection failed; nothing more will come."""


class ReadCadence:
    """One timer for every connection whose reading waits for more of its audio.

    A Home Assistant stream sends a chunk every 10 ms, and each arrival read on its own costs a
    wake-up of the event loop, a ``recv`` and a pass through the handler: with webrtc, more
    CPU than listening to the audio (issue 27, ``docs/profile.md``). Where no decision the
    user waits for can fall meanwhile (``RequestMachine.audio_may_wait_ms``, the client's
    habits), a connection stops reading after an arrival and reads again at this cadence's
    next tick, finding several chunks in its socket. One timer for all of them: a timer per
    connection per arrival would cost what the wait saves. (Waiting a whole period each
    time, for the second of two ticks half a period apart, read 7 chunks at once instead of
    5 and saved no more: ``python -m benchmarks.cost_ab``.)
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, period_s: float) -> None:
        self.period_s = period_s
        """The longest a waiting connection waits (on average half of it)."""
        self._loop = loop
        self._waiting: list[ClientProtocol] = []
        self._tick: asyncio.TimerHandle | None = None

    def wait(self, protocol: ClientProtocol) -> None:
        """``protocol`` reads again at the next tick (it has paused its reading itself)."""
        self._waiting.append(protocol)
        if self._tick is None:
            self._tick = self._loop.call_later(self.period_s, self._read_again)

    def _read_again(self) -> None:
        self._tick = None
        waiting, self._waiting = self._waiting, []
        for protocol in waiting:
            protocol.waited()

    def close(self) -> None:
        """Every waiting connection reads again now; the timer is gone."""
        if self._tick is not None:
            self._tick.cancel()
        self._read_again()


class ClientProtocol(asyncio.StreamReaderProtocol):
    """A ``StreamReaderProtocol`` whose bytes go to an attached :class:`Sink` instead.

    Until a sink is attached (or :meth:`to_reader` is called) the bytes are held, so that none
    is lost between the accept and the handler's first turn; once the sink is detached they go
    to the ``StreamReader`` as usual. While a sink reads, the socket is not read while writes to
    the client are paused (its buffer above the high-water mark) and at most ``send_timeout_s``
    each time: a client that reads nothing gets no more served, as the stream handler's
    ``drain`` after each batch did.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        connected: Callable[
            [ClientProtocol, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]
        ]
        | None = None,
        *,
        send_timeout_s: float = 10.0,
        cadence: ReadCadence | None = None,
    ) -> None:
        callback: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]] | None
        callback = None
        if connected is not None:
            callback = lambda r, w: connected(self, r, w)  # noqa: E731
        super().__init__(reader, callback)
        self.reader = reader
        """Kept here: the base class holds its reader weakly once connected."""
        self._sink: Sink | None = None
        self._held: bytearray | None = bytearray()
        """Bytes for a sink not attached yet; None once they go to the sink or the reader."""
        self._end: tuple[Exception | None] | None = None
        """How the connection ended while bytes were held (EOF: ``(None,)``), to pass on."""
        self._lost = False
        self._told_end = False
        """A sink hears of the end once (EOF, then the connection's close, is one end)."""
        self._reading_paused = False
        self._writing_paused = False
        self._send_timeout_s = send_timeout_s
        self._resume: asyncio.TimerHandle | None = None
        self._socket: asyncio.ReadTransport | None = None
        self._cadence = cadence
        self._waiting = False
        """Reading paused until the cadence's next tick (:meth:`wait_for_more`)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._socket = cast(asyncio.ReadTransport, transport)  # a socket's or a pipe's
        super().connection_made(transport)

    # ------------------------------------------------------------------ who gets the bytes

    def attach(self, sink: Sink) -> None:
        """Bytes go to ``sink`` from now on, those held first (at once, before this returns)."""
        self._sink = sink
        held, self._held = self._held, None
        if held:
            sink.received(bytes(held))
        if self._sink is sink:  # (the sink may have let go of the bytes already)
            self._resume_reading()
            end, self._end = self._end, None
            if end is not None:
                if not self._lost:
                    super().eof_received()  # the reader's EOF too, for when the sink lets go
                self._tell_end(sink, end[0])

    def to_reader(self) -> None:
        """Bytes go to the ``StreamReader`` from now on (those held first)."""
        self._sink = None
        held, self._held = self._held, None
        end, self._end = self._end, None
        if not self._lost:  # (a lost connection's reader has had its end already)
            if held:
                super().data_received(bytes(held))
            if end is not None:
                super().eof_received()
        self._resume_reading()

    def data_received(self, data: bytes) -> None:
        sink = self._sink
        if sink is not None:
            sink.received(data)
            if self._writing_paused and self._sink is not None:
                self._hold_back()  # still not reading its answers: one batch per wait
        elif self._held is not None:
            self._held += data
            if len(self._held) > HELD_BYTES:
                self._pause_reading()
        else:
            super().data_received(data)

    def eof_received(self) -> bool | None:
        if self._sink is None and self._held is not None:
            self._end = (None,)
            return True  # half-open, as the base class: the answer can still be written
        keep_open = super().eof_received()
        if self._sink is not None:
            self._tell_end(self._sink, None)
        return keep_open

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_resume()
        if self._sink is None and self._held is not None:
            self._end = (exc,)
            self._lost = True
        super().connection_lost(exc)
        if self._sink is not None:
            self._tell_end(self._sink, exc)

    def _tell_end(self, sink: Sink, error: Exception | None) -> None:
        if not self._told_end:
            self._told_end = True
            sink.ended(error)

    # ------------------------------------------------------------------ read cadence

    def wait_for_more(self) -> bool:
        """Read nothing more until the cadence's next tick (then what came meanwhile arrives
        at once); whether it now waits. Only while a sink reads and nothing else holds the
        reading back; without a cadence, nothing changes."""
        cadence = self._cadence
        if cadence is None or self._sink is None or self._reading_paused:
            return False
        self._pause_reading()
        if self._reading_paused:
            self._waiting = True
            cadence.wait(self)
        return self._waiting

    def waited(self) -> None:
        """The cadence's tick: read again, unless writes to the client hold the reading back
        meanwhile (flow control resumes it then)."""
        if self._waiting:
            self._waiting = False
            if not self._writing_paused and self._resume is None:
                self._resume_reading()

    # ------------------------------------------------------------------ flow control

    def pause_writing(self) -> None:
        super().pause_writing()
        self._writing_paused = True
        if self._sink is not None:
            self._hold_back()

    def resume_writing(self) -> None:
        super().resume_writing()
        self._writing_paused = False
        self._resume_reading()

    def _hold_back(self) -> None:
        """The client reads nothing of what it is sent: read no more from it for
        ``send_timeout_s``, then one arrival, and so on (its answers cannot pile up)."""
        self._pause_reading()
        self._cancel_resume()
        loop = asyncio.get_running_loop()
        self._resume = loop.call_later(self._send_timeout_s, self._resume_reading)

    def _pause_reading(self) -> None:
        socket = self._socket
        if not self._reading_paused and socket is not None and not socket.is_closing():
            socket.pause_reading()
            self._reading_paused = True

    def _resume_reading(self) -> None:
        self._waiting = False
        self._cancel_resume()
        socket = self._socket
        if self._reading_paused and socket is not None:
            self._reading_paused = False
            if not socket.is_closing():
                socket.resume_reading()

    def _cancel_resume(self) -> None:
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None


class Expiry(enum.Enum):
    """Which of the read side's limits ran out."""

    FIRST = "first"
    """No whole event within the first ``event_s``: a scanner, or a client that dribbles."""
    INCOMPLETE = "incomplete"
    """An event begun and not finished within ``event_s``."""
    IDLE = "idle"
    """No event for ``idle_s``."""


class ReadTimer:
    """The read side's limits on one timer per connection, re-armed lazily.

    A timer per arrival (``asyncio.timeout`` around each read) creates, schedules and cancels
    a timer a hundred times a second per audio stream, and the cancelled ones crowd the event
    loop's heap. Here an arrival only records the time; the single timer, when it fires early,
    re-arms itself for the deadline. While a client is quiet it wakes every ``event_s``, so an
    event begun is caught within twice that.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        idle_s: float,
        event_s: float,
        expired: Callable[[Expiry], None],
    ) -> None:
        self._loop = loop
        self._idle_s = idle_s
        self._event_s = event_s
        self._expired = expired
        self._first = True
        self._deadline = loop.time() + event_s
        self._begun_at: float | None = None
        self._handle: asyncio.TimerHandle | None = loop.call_at(self._deadline, self._fire)

    def heard(self, *, events: bool, pending: bool) -> None:
        """An arrival brought whole ``events`` or not, and leaves part of one ``pending`` or not.

        After a whole event the wait for the next one starts afresh; part of an event starts
        its ``event_s`` bound (once: a byte more does not extend it).
        """
        if events:
            self._first = False
            self._deadline = self._loop.time() + self._idle_s
            self._begun_at = None
        if pending and self._begun_at is None and not self._first:
            self._begun_at = self._loop.time()

    def restart(self) -> None:
        """Wait ``idle_s`` more (the client may stay quiet now)."""
        self._deadline = self._loop.time() + self._idle_s
        self._begun_at = None
        self._arm()

    def _arm(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        now = self._loop.time()
        check = now + self._event_s if self._begun_at is None else self._begun_at + self._event_s
        self._handle = self._loop.call_at(min(self._deadline, check), self._fire)

    def _fire(self) -> None:
        self._handle = None
        now = self._loop.time()
        begun = self._begun_at
        late = begun is not None and now >= begun + self._event_s
        if late:
            self._expired(Expiry.INCOMPLETE)
        elif now >= self._deadline:
            self._expired(Expiry.FIRST if self._first else Expiry.IDLE)
        else:
            self._arm()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
