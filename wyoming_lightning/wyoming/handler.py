"""The Wyoming adapter: one client connection, its events in, the request machine's actions out.

Decisions live in :class:`~wyoming_lightning.core.request.RequestMachine`; this module reads events
(with :mod:`~wyoming_lightning.wyoming.wire`'s limits), answers ``describe`` and ``ping`` itself,
and carries out actions: service sessions, timers, the local recognizer and events to the client.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

from wyoming.asr import Transcribe, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.asr import Transcript as TranscriptEvent
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error as ErrorEvent
from wyoming.event import Event
from wyoming.info import Describe, SelectProgram
from wyoming.ping import Ping, Pong

from wyoming_lightning.core import actions as act
from wyoming_lightning.core import request as rq
from wyoming_lightning.core.audio import PcmFormat
from wyoming_lightning.core.errors import ErrorCode
from wyoming_lightning.core.languages import LanguageError
from wyoming_lightning.core.logtrim import LimitedLog, clip
from wyoming_lightning.core.request import Phase, RequestMachine
from wyoming_lightning.info import PROGRAM_NAME
from wyoming_lightning.ops.guard import Occurrence, Peer, Ticket
from wyoming_lightning.services import Services
from wyoming_lightning.wyoming.cloud_sessions import CloudSessions
from wyoming_lightning.wyoming.reading import ClientProtocol, Expiry, ReadTimer
from wyoming_lightning.wyoming.wire import Decoder, WireError, encode_event

_LOGGER = logging.getLogger(__name__)
_WARNINGS = LimitedLog(_LOGGER)
"""Errors a client can provoke at will are logged through this: a flood logs a few lines and
a count, not one line per request."""
_IDS = itertools.count(1)
ERROR_TEXT_CHARS = 300
"""The longest ``error`` text sent or logged; a client's own strings in it are clipped shorter."""
LINGER_QUIET_S = 2.0
LINGER_MAX_S = 20.0
#: A connection cut by a stopping server lingers this long at most: the stop is bounded.
LINGER_CUT_S = 0.5


def _format_of(data: dict[str, object]) -> PcmFormat | None:
    rate, width, channels = data.get("rate"), data.get("width"), data.get("channels")
    # JSON gives plain ints; a bool (an int to isinstance) is no rate.
    if type(rate) is not int or type(width) is not int or type(channels) is not int:
        return None
    return PcmFormat(rate=rate, width=width, channels=channels)


class ClientHandler:
    """Serves one connection until its request is answered, it errs, or the client leaves."""

    def __init__(
        self,
        protocol: ClientProtocol,
        writer: asyncio.StreamWriter,
        services: Services,
    ) -> None:
        self._protocol = protocol
        self._reader = protocol.reader
        """For the linger only: while the request runs, the bytes come to :meth:`received`."""
        self._writer = writer
        self._services = services
        self._settings = services.settings
        self._id = next(_IDS)
        self._log = logging.LoggerAdapter(_LOGGER, {})
        self._transcribe: Transcribe | None = None
        self._language: str | None = None
        """The service's code for ``_transcribe``'s language, resolved once when it arrived."""
        self._machine: RequestMachine | None = None
        self._timers: dict[act.TimerId, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._finished = asyncio.Event()
        self._queued: deque[rq.Event] = deque()
        self._feeding = False
        self._cut = False
        self._decoder = Decoder()
        self._arrivals = 0
        self._waits = 0
        """Arrivals of the client's bytes, and the waits for more after one (for --debug)."""
        self._reading: asyncio.Future[None] | None = None
        """Done when the client's events are no longer read (the connection is to end)."""
        self._read_timer: ReadTimer | None = None
        """The client's events from its bytes (the last header and data parsed: audio chunks
        repeat them)."""
        self._format: tuple[dict[str, object], PcmFormat | None] = ({}, None)
        """The last audio format read, and the data it was read from."""
        self._guard = services.guard
        """Operations (limits, usage, metrics), called at its named points only."""
        self._cloud = CloudSessions(services, self._guard, self._feed, self._debug)
        """The request's sockets to the service, by the machine's session number."""
        self._peer = Peer.of(writer)
        self._peer_key = self._peer.key
        """The client's address as limits and habits know it (parsed once: read per arrival)."""
        self._ticket: Ticket | None = None
        """The request's account with the guard, from its admission on."""
        self._crash: BaseException | None = None
        """What broke this connection's handling, if anything did: it is then only cleaned up."""
        self._client_stopped = False
        self._cut_short: str | None = None
        """Why the server ended the request's audio itself (the daily limit, the length cap)."""

    # ------------------------------------------------------------------ life cycle

    async def run(self) -> None:
        reading = asyncio.create_task(self._read_loop())
        finished = asyncio.create_task(self._finished.wait())
        try:
            await asyncio.wait({reading, finished}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            reading.cancel()
            finished.cancel()
            try:
                await reading
            except asyncio.CancelledError:
                pass
            except Exception as err:  # whatever broke, the request ends cleanly
                self._crashed(err)
            await self._cleanup()

    async def _read_loop(self) -> None:
        """The client's events are handled as their bytes arrive (:meth:`received`, from the
        event loop's callback), until the connection is to end."""
        loop = asyncio.get_running_loop()
        self._reading = loop.create_future()
        settings = self._settings
        # A client that connects says something at once (Home Assistant and satellites do):
        # a scanner or a dribbler is closed after --header-timeout, without a linger.
        self._read_timer = ReadTimer(
            loop, settings.idle_timeout_s, settings.header_timeout_s, self._read_expired
        )
        try:
            self._protocol.attach(self)  # what arrived before now is handled at once
            await self._reading
        finally:
            self._stop_reading()

    def _stop_reading(self) -> None:
        """No more events are read: what the client still sends goes to the linger."""
        if self._reading is not None and not self._reading.done():
            self._reading.set_result(None)
        if self._read_timer is not None:
            self._read_timer.close()
        self._protocol.to_reader()

    def received(self, data: bytes) -> None:
        """Bytes from the client (:class:`~wyoming_lightning.wyoming.reading.Sink`): every
        event they complete is handled now, in order."""
        if self._reading is None or self._reading.done():
            return
        decoder = self._decoder
        self._arrivals += 1
        before = self._machine
        heard_s = before.received_s if before is not None else 0.0
        try:
            events = decoder.feed(data)
            for event in events:
                try:
                    self._handle(event)
                except Exception as err:  # one request's failure, not the server's
                    self._crashed(err)
                    self._stop_reading()
                    return
                if self._finished.is_set():
                    self._stop_reading()
                    return
            if decoder.error is not None:
                raise decoder.error
        except WireError as err:
            self._cut = True  # a broken or hostile client: no linger for it
            self._error(ErrorCode.BAD_REQUEST, f"malformed event: {err}")
            self._stop_reading()
            return
        except (ConnectionError, OSError):
            self._feed(rq.ClientGone())
            self._stop_reading()
            return
        if self._read_timer is not None:
            self._read_timer.heard(events=bool(events), pending=decoder.pending)
        machine = self._machine
        if machine is not None:
            arrived_s = machine.received_s - (heard_s if machine is before else 0.0)
            self._wait_for_more(machine, arrived_s)

    def _wait_for_more(self, machine: RequestMachine, arrived_s: float) -> None:
        """Read this client's next chunks together, a cadence tick from now, when reading them
        late cannot move any decision (``RequestMachine.audio_may_wait_ms``), the client sends
        in real time (an arrival of more than two batches' audio is a client sending faster: it
        is read as fast as it sends) and its ``audio-stop`` cannot come meanwhile: it is known
        to stop only in a pause, and no sooner into one than it has before
        (``ops/stop_habits.py``: else its stop could wait in the socket)."""
        batch_ms = self._settings.read_batch_ms
        if (
            batch_ms > 0
            and arrived_s * 1000 < 2 * batch_ms
            and machine.audio_may_wait_ms >= batch_ms
            and self._services.stop_habits.stop_room_ms(self._peer_key, machine.pause_ms)
            >= batch_ms
            and self._protocol.wait_for_more()
        ):
            self._waits += 1

    def ended(self, error: Exception | None) -> None:
        """The client sent EOF or the connection failed (a
        :class:`~wyoming_lightning.wyoming.reading.Sink`'s end)."""
        if self._reading is None or self._reading.done():
            return
        self._feed(rq.ClientGone())
        self._stop_reading()

    def _read_expired(self, expiry: Expiry) -> None:
        """One of the read side's limits ran out (:class:`ReadTimer`)."""
        if self._reading is None or self._reading.done():
            return
        header_s = self._settings.header_timeout_s
        idle = self._settings.idle_timeout_s
        machine = self._machine
        if expiry is Expiry.FIRST:
            self._cut = True
            self._debug(f"closing a connection that sent no whole event in {header_s:g} s")
        elif expiry is Expiry.INCOMPLETE:
            self._cut = True
            self._error(ErrorCode.BAD_REQUEST, f"event not completed within {header_s:g} s")
        elif machine is not None and machine.phase is Phase.SETTLING:
            assert self._read_timer is not None
            self._read_timer.restart()  # after audio-stop the client just waits; the machine
            return  # bounds it
        elif machine is not None and not machine.done:
            self._error(ErrorCode.TIMEOUT, f"no event from the client for {idle:g} s")
        else:
            self._debug(f"closing a connection idle for {idle:g} s")
        self._stop_reading()

    def _crashed(self, err: BaseException) -> None:
        """Something failed inside the server while it served this connection: answer
        ``error``, count it and log it once with its cause; :meth:`_cleanup` frees the rest."""
        if self._crash is not None:
            return
        self._crash = err
        self._queued.clear()
        self._guard.observe(Occurrence.CRASH)
        _WARNINGS.error(
            "crash",
            "client %d: the server failed on this request (%s: %s); it is ended and its "
            "resources freed",
            self._id,
            type(err).__name__,
            clip(err),
            exc_info=err,
        )
        text = "the server failed on this request"
        self._write(ErrorEvent(text=text, code=ErrorCode.INTERNAL.value).event())
        if self._ticket is not None:
            self._ticket.observe(act.Error(ErrorCode.INTERNAL, text))
        self._cut = True
        self._finished.set()

    async def _cleanup(self) -> None:
        if self._machine is not None and self._machine.ended_itself and not self._client_stopped:
            # The server ended the command (HA 2026.11 sends no audio-stop): in a pause.
            self._services.stop_habits.ended(self._peer_key, None)
        self._feed(rq.ClientGone())
        self._debug(
            f"read in {self._arrivals} arrival(s), {self._waits} after waiting for more "
            f"(--read-batch-ms {self._settings.read_batch_ms})"
        )
        if self._machine is not None:
            # No client audio can come now: the VAD engine goes back before the client sees EOF.
            self._services.release_gate(self._machine.gate)
        if self._ticket is not None:
            self._ticket.close()  # counted once, whatever happened
        await self._drain()
        with contextlib.suppress(OSError, RuntimeError):
            if self._writer.can_write_eof() and not self._writer.is_closing():
                self._writer.write_eof()  # the answer is complete: the client sees EOF
        for handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()
        await self._cloud.close_all()
        await self._linger()
        self._writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(1):
                await self._writer.wait_closed()

    async def _linger(self) -> None:
        """Read and drop what the client still sends, until it closes, pauses, or time is up.

        Closing a socket with unread input makes the kernel send a reset, and a reset can
        destroy the answer before the client reads it. Home Assistant writes all its audio
        (up to 15 s of it) before reading, so an early ``error`` must outlast that upload.
        A client that goes quiet for LINGER_QUIET_S has read its answer or never will.
        """
        with contextlib.suppress(TimeoutError, ConnectionError, OSError, ValueError):
            async with asyncio.timeout(LINGER_CUT_S if self._cut else LINGER_MAX_S):
                while not self._reader.at_eof():
                    async with asyncio.timeout(LINGER_QUIET_S):
                        if not await self._reader.read(1 << 16):
                            return

    async def _drain(self) -> None:
        transport = self._writer.transport
        if not transport.get_write_buffer_size() and not transport.is_closing():
            return  # nothing buffered: drain() would return at once (and the timer is costly)
        with contextlib.suppress(ConnectionError, OSError, TimeoutError):
            async with asyncio.timeout(self._settings.send_timeout_s):
                await self._writer.drain()

    # ------------------------------------------------------------------ client events

    def _handle(self, event: Event) -> None:
        if AudioChunk.is_type(event.type):  # nearly every event: tested first
            if self._cut_short is None:  # past a cut, the rest of the client's audio is dropped
                self._on_audio_chunk(event)
        elif Describe.is_type(event.type):
            self._write(self._services.info.event())
        elif Ping.is_type(event.type):
            self._write(Pong(text=Ping.from_event(event).text).event())
        elif Transcribe.is_type(event.type):
            self._on_transcribe(event)
        elif SelectProgram.is_type(event.type):
            # Wyoming 1.10: a client picks one of the programs in ``info``; we have one.
            name = event.data.get("name")
            if name != PROGRAM_NAME:
                self._error(
                    ErrorCode.BAD_REQUEST,
                    f"unknown program {clip(name)!r}; this server has: {PROGRAM_NAME}",
                )
        elif AudioStart.is_type(event.type):
            self._on_audio_start(event)
        elif AudioStop.is_type(event.type):
            if self._ticket is not None:
                self._ticket.observe(Occurrence.AUDIO_STOPPED)
            machine = self._machine
            if machine is not None and not self._client_stopped and not machine.ended_itself:
                # Where the client stops: how far into a pause (0: while the VAD still hears
                # speech; None: before any).
                self._services.stop_habits.ended(self._peer_key, machine.pause_ms)
            self._client_stopped = True
            if self._cut_short is None:
                self._feed_request(rq.StopAudio())
        else:
            self._debug(f"ignored event {event.type!r}")

    def _on_transcribe(self, event: Event) -> None:
        if self._machine is not None:  # the request has begun: the machine says what it means
            self._feed(rq.TranscribeAgain())
            return
        try:
            transcribe = Transcribe.from_event(event)
            language = self._services.resolve_language(transcribe.language)
        except LanguageError as err:
            self._error(ErrorCode.LANGUAGE, str(err))
            return
        except (TypeError, ValueError, AttributeError):
            self._error(ErrorCode.BAD_REQUEST, "malformed transcribe event")
            return
        self._transcribe, self._language = transcribe, language

    def _on_audio_start(self, event: Event) -> None:
        fmt = _format_of(event.data)
        if fmt is None:
            self._error(ErrorCode.BAD_AUDIO, "audio-start needs integer rate, width and channels")
            return
        if self._machine is None:
            # The per-client and daily limits; past the limit, local or 'quota'.
            self._ticket = self._guard.open_request(self._peer)
            if self._ticket.refusal is not None:
                self._error(self._ticket.refusal.code, self._ticket.refusal.text)
                return
            if self._ticket.quota_local:
                self._log.info("client %d: daily audio limit reached; answering locally", self._id)
            machine = self._request(local_only=self._ticket.quota_local)
            self._ticket.follow(machine)
            language = machine.config.session.language
            self._debug(
                f"request: {fmt.rate} Hz, {fmt.width * 8}-bit, {fmt.channels} ch, {language}"
            )
        self._feed_request(rq.StartAudio(fmt))  # a second one: the machine's error

    def _on_audio_chunk(self, event: Event) -> None:
        data = event.data
        last_data, fmt = self._format
        if data != last_data:  # a stream repeats its format: read it again only when it changes
            fmt = _format_of(data)
            self._format = (data, fmt)
        self._feed_request(rq.AudioIn(event.payload or b"", fmt))
        machine = self._machine
        cap = self._settings.max_request_s
        if machine is not None and machine.received_s >= cap and self._cut_short is None:
            if self._ticket is not None:
                self._ticket.observe(Occurrence.LENGTH_CUT)
            self._cut_audio(f"the request reached the length cap of {cap:g} s of audio")

    def _cut_audio(self, why: str) -> None:
        """End the request's audio here, as if the client had sent ``audio-stop``: what was
        recognised is answered; what the client still sends is dropped."""
        if self._cut_short is not None or self._client_stopped:
            return
        self._cut_short = why
        self._log.info("client %d: %s; answering with what was recognised", self._id, why)
        self._feed(rq.StopAudio())

    def _request(self, *, local_only: bool = False) -> RequestMachine:
        """This connection's request machine, built at the first audio event of any kind.

        Built even for an event out of order, so that the machine, which owns the order
        rules, is the one to answer it.
        """
        if self._machine is None:
            language = self._language
            if language is None:  # no transcribe before audio: the default language
                language = self._services.resolve_language(None)
            config = self._services.request_config(self._transcribe, language)
            if local_only:
                config = dataclasses.replace(config, local_only=True, fallback_local=True)
            clock = asyncio.get_running_loop().time
            self._machine = RequestMachine(config, self._services.new_gate(), clock)
        return self._machine

    def _feed_request(self, event: rq.Event) -> None:
        """An audio event into the request machine, built for it if it is the first."""
        self._request()
        self._feed(event)

    # ------------------------------------------------------------------ actions

    def _feed(self, event: rq.Event) -> None:
        """The one way into the request machine: an event in, its actions carried out.

        An event raised while actions are being carried out (a warm socket is open at once)
        waits until they all are, so the machine sees events in order and never re-entered.
        Events come from the read loop, timers and service callbacks: a failure in any of them
        ends the request here (:meth:`_crashed`) instead of escaping into the event loop.
        """
        if self._crash is not None:
            return  # a broken request takes no more events; cleanup closes what it held
        self._queued.append(event)
        if self._feeding:
            return
        self._feeding = True
        try:
            while self._queued:
                next_event = self._queued.popleft()
                if self._machine is not None and not self._machine.done:
                    self._apply(self._machine.handle(next_event))
        except Exception as err:  # see the docstring
            self._crashed(err)
        finally:
            self._feeding = False

    def _apply(self, actions: Iterable[act.Action]) -> None:
        for action in actions:
            self._do(action)

    def _do(self, action: act.Action) -> None:
        if self._ticket is not None:
            self._ticket.observe(action)  # operations: what the request did, counted
        self._carry_out[type(action)](self, action)

    def _send_text(self, action: act.SendText) -> None:
        self._cloud.send(action.conn, action.text)

    def _disconnect(self, action: act.Disconnect) -> None:
        # A socket whose audio the budget cut is not where the machine thinks: not reused.
        self._cloud.disconnect(action.conn, action.reusable and self._cut_short is None)

    def _probe(self, action: act.Probe) -> None:
        self._cloud.probe(action.conn)

    def _cancel_timer(self, action: act.CancelTimer) -> None:
        handle = self._timers.pop(action.timer, None)
        if handle is not None:
            handle.cancel()

    def _transcript_start(self, action: act.TranscriptStart) -> None:
        self._write(TranscriptStart(language=action.language or None).event())

    def _transcript_chunk(self, action: act.TranscriptChunk) -> None:
        self._write(TranscriptChunk(text=action.text).event())

    def _transcript(self, action: act.Transcript) -> None:
        self._write(TranscriptEvent(text=action.text, language=action.language or None).event())

    def _transcript_stop(self, action: act.TranscriptStop) -> None:
        self._write(TranscriptStop().event())

    def _request_error(self, action: act.Error) -> None:
        self._write(ErrorEvent(text=action.text, code=action.code.value).event())

    def _local(self, action: act.TranscribeLocally) -> None:
        self._spawn(self._transcribe_locally(action))

    def _log_line(self, action: act.Log) -> None:
        self._log.log(action.level, "client %d: %s", self._id, action.message)

    def _finish(self, action: act.Finish) -> None:
        self._finished.set()

    def _send_audio(self, action: act.SendAudio) -> None:
        """Audio to the service, as much of it as the day's budget still allows (guard)."""
        data = action.data
        if self._ticket is not None:
            allowed = self._ticket.take_audio(len(data))
            if allowed < len(data):
                data = data[:allowed]
                self._cut_audio("the daily audio limit is reached")
        if data:
            self._cloud.send(action.conn, data)

    def _connect(self, action: act.Connect) -> None:
        self._cloud.connect(action.conn, action.url)

    def _start_timer_action(self, action: act.StartTimer) -> None:
        self._start_timer(action.timer, action.delay)

    def _start_timer(self, timer: act.TimerId, delay: float) -> None:
        old = self._timers.pop(timer, None)
        if old is not None:
            old.cancel()

        def fire() -> None:
            self._timers.pop(timer, None)
            self._feed(rq.TimerFired(timer))

        self._timers[timer] = asyncio.get_running_loop().call_later(delay, fire)

    async def _transcribe_locally(self, action: act.TranscribeLocally) -> None:
        loop = asyncio.get_running_loop()
        local = self._services.local
        try:
            text: str | None = await loop.run_in_executor(
                None, local.transcribe, action.audio, action.language
            )
            error = None
        except Exception as err:
            text, error = None, f"{type(err).__name__}: {err}"
        self._feed(rq.LocalResult(text, error))

    def _spawn(self, coro: object) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(coro)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------------ output

    def _write(self, event: Event) -> None:
        if self._writer.is_closing():
            return
        with contextlib.suppress(ConnectionError, OSError):
            self._writer.write(encode_event(event))

    def _error(self, code: ErrorCode, text: str) -> None:
        """An error outside a request's own flow: tell the client, then hang up."""
        text = clip(text, ERROR_TEXT_CHARS)
        _WARNINGS.warning(code.value, "client %d: %s (%s)", self._id, text, code.value)
        self._write(ErrorEvent(text=text, code=code.value).event())
        if self._ticket is not None:
            self._ticket.observe(act.Error(code, text))
        self._feed(rq.Abort())
        self._finished.set()

    def cut(self, text: str) -> None:
        """The server is stopping and this connection outlived the drain: answer ``error``
        (unless the answer was already given), then hang up without waiting on the client."""
        if not self._finished.is_set():
            self._error(ErrorCode.UNAVAILABLE, text)
        self._cut = True

    def _debug(self, message: str) -> None:
        self._log.debug("client %d: %s", self._id, message)

    _carry_out: ClassVar[dict[type, Callable[[ClientHandler, Any], None]]] = {
        act.Connect: _connect,
        act.SendAudio: _send_audio,
        act.SendText: _send_text,
        act.Disconnect: _disconnect,
        act.Probe: _probe,
        act.StartTimer: _start_timer_action,
        act.CancelTimer: _cancel_timer,
        act.TranscriptStart: _transcript_start,
        act.TranscriptChunk: _transcript_chunk,
        act.Transcript: _transcript,
        act.TranscriptStop: _transcript_stop,
        act.Error: _request_error,
        act.TranscribeLocally: _local,
        act.Log: _log_line,
        act.Finish: _finish,
    }
    """How each action is carried out, by its type: one look-up, not a chain of tests."""
