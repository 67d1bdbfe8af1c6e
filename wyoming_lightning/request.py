"""One transcription request as a state machine, free of I/O.

A request is the span from ``audio-start`` to the answer. Its audio is converted, gated by the
voice-activity detector, and cut into *utterances*: stretches of speech that go to the service
together and are settled by one ``finalize``/``end``. Every frame of an utterance is kept until
its final result is in, so that a connection that fails can be replaced and the audio replayed
without asking the speaker to repeat.

Inputs are method calls (audio, service results, failures, timers); outputs are the plain
:mod:`~wyoming_lightning.actions` values that the adapters carry out. Nothing here sleeps,
reads a clock or opens a socket, so every path, including the failure paths, is unit-testable.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from . import actions as act
from .actions import Action
from .audio import AudioConverter, AudioFormatError, Framer, PcmFormat
from .lightning.protocol import (
    FINALIZE_MESSAGE,
    Dialect,
    ErrorCode,
    Failure,
    Result,
    ServiceError,
    ServiceMessage,
    SessionOptions,
    SpeechEvent,
    Unreadable,
    build_url,
    classify_close,
    classify_error_frame,
    detect_dialect,
)
from .transcript import FinalLedger, UtteranceText, Verdict, join_texts
from .vad.events import SpeechAudio, SpeechEnd, SpeechStart
from .vad.gate import VadGate

BYTES_PER_SECOND = 32000  # 16 kHz, 16-bit, mono
RETRY_TIMER = "retry"
DEADLINE_TIMER = "deadline"
_SETTLE_PREFIX = "settle:"


@dataclass(frozen=True)
class RequestConfig:
    """How one request behaves; built from the server's flags and the client's ``transcribe``."""

    base_url: str
    session: SessionOptions = field(default_factory=SessionOptions)
    response_language: str | None = None
    early_finalize: bool = True
    finalize_after_ms: int | None = 200
    streaming: bool = True
    frame_ms: int = 100
    max_utterance_s: float = 30.0
    max_retries: int = 3
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    final_timeout_s: float = 5.0
    response_timeout_s: float = 15.0
    fallback_local: bool = False
    local_only: bool = False
    endpoint_silence_ms: int | None = None
    dialect_choice: Dialect | None = None

    @property
    def dialect(self) -> Dialect:
        return detect_dialect(self.base_url, self.dialect_choice)


class Phase(enum.Enum):
    """Where the request stands from the client's point of view."""

    WAITING_FOR_AUDIO = "waiting for audio-start"
    STREAMING = "streaming"
    STOPPED = "waiting for the service"
    DONE = "done"


@dataclass(eq=False)
class _Utterance:
    audio: bytearray = field(default_factory=bytearray)
    closed: bool = False
    done: bool = False
    conn: _Conn | None = None
    sent: int = 0
    stream_start: float | None = None
    """Where this utterance's audio begins in its connection's stream, in seconds."""
    end_sent: bool = False
    finalize_sent: bool = False
    text: UtteranceText = field(default_factory=UtteranceText)

    def forget_connection(self) -> None:
        """The connection is gone: what it was told and what it answered no longer counts."""
        self.conn = None
        self.sent = 0
        self.stream_start = None
        self.end_sent = False
        self.finalize_sent = False
        self.text.reset()


@dataclass(eq=False)
class _Conn:
    id: int
    is_open: bool = False
    alive: bool = True
    sent_bytes: int = 0
    ended: bool = False
    utterances: list[_Utterance] = field(default_factory=list)
    ledger: FinalLedger = field(default_factory=FinalLedger)

    def pending(self) -> list[_Utterance]:
        return [u for u in self.utterances if not u.done]


class RequestMachine:
    """The whole life of one request; see the module docstring."""

    def __init__(self, config: RequestConfig, gate: VadGate) -> None:
        self.config = config
        self.gate = gate
        self.dialect = config.dialect
        self.phase = Phase.WAITING_FOR_AUDIO
        self._url = build_url(config.base_url, config.session, self.dialect)
        self._converter: AudioConverter | None = None
        self._format: PcmFormat | None = None
        self._frame_bytes = max(2, BYTES_PER_SECOND * config.frame_ms // 1000) // 2 * 2
        self._framer = Framer(self._frame_bytes)
        self._max_utterance_bytes = int(config.max_utterance_s * BYTES_PER_SECOND)
        self._utterances: list[_Utterance] = []
        self._current: _Utterance | None = None
        self._conns: dict[int, _Conn] = {}
        self._next_conn = 1
        self._pulse_conn: _Conn | None = None
        self._retries = 0
        self._retry_pending = False
        self._local_mode = config.local_only
        self._holding = False
        self._held = bytearray()
        self._dropped_bytes = 0
        self._local_pending = False
        self._timers: set[str] = set()
        self._emitted = 0
        self._started_stream = False
        self._emitted_text = False
        self._audio_bytes_in = 0
        self._out: list[Action] = []

    # ------------------------------------------------------------------ inputs

    def start_audio(self, fmt: PcmFormat) -> list[Action]:
        """``audio-start``: fix the input format; the cloud is not contacted until speech."""
        if self.phase is not Phase.WAITING_FOR_AUDIO:
            return self._run(lambda: self._fail(ErrorCode.BAD_AUDIO, "audio-start sent twice"))
        return self._run(lambda: self._set_format(fmt))

    def audio(self, data: bytes, fmt: PcmFormat | None = None) -> list[Action]:
        """``audio-chunk``: convert, gate and stream. A chunk may announce a new format."""
        return self._run(lambda: self._audio(data, fmt))

    def stop_audio(self) -> list[Action]:
        """``audio-stop``: settle the last utterance; answer as soon as every final is in."""
        return self._run(self._stop)

    def upstream_opened(self, conn: int) -> list[Action]:
        """The WebSocket handshake succeeded: send what has waited for it."""
        return self._run(lambda: self._opened(conn))

    def upstream_message(self, conn: int, message: ServiceMessage) -> list[Action]:
        """A parsed text frame from the service."""
        return self._run(lambda: self._message(conn, message))

    def upstream_closed(self, conn: int, code: int | None, reason: str = "") -> list[Action]:
        """The socket closed (cleanly or not) after it had opened."""
        return self._run(lambda: self._closed(conn, code, reason))

    def upstream_failed(self, conn: int, failure: Failure) -> list[Action]:
        """The handshake was refused, timed out, or a send timed out."""
        return self._run(lambda: self._failed(conn, failure))

    def timer_fired(self, name: str) -> list[Action]:
        """A timer asked for with :class:`~wyoming_lightning.actions.StartTimer` ran out."""
        return self._run(lambda: self._timer(name))

    def local_result(self, text: str | None, error: str | None = None) -> list[Action]:
        """The offline recognizer finished (``text``) or could not run (``error``)."""
        return self._run(lambda: self._local_done(text, error))

    def client_gone(self) -> list[Action]:
        """The client vanished: release every upstream session now."""
        return self._run(self._abandon)

    def abort(self) -> list[Action]:
        """The adapter ended the request (it already told the client why)."""
        return self._run(self._end)

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    # ------------------------------------------------------------------ plumbing

    def _run(self, step: Callable[[], None]) -> list[Action]:
        if self.phase is not Phase.DONE:
            step()
        out, self._out = self._out, []
        return out

    def _emit(self, action: Action) -> None:
        self._out.append(action)

    def _start_timer(self, name: str, delay: float) -> None:
        self._timers.add(name)
        self._emit(act.StartTimer(name, delay))

    def _cancel_timer(self, name: str) -> None:
        if name in self._timers:
            self._timers.discard(name)
            self._emit(act.CancelTimer(name))

    # ------------------------------------------------------------------ audio side

    def _set_format(self, fmt: PcmFormat) -> None:
        try:
            converter = AudioConverter(fmt)
        except AudioFormatError as err:
            self._fail(ErrorCode.BAD_AUDIO, str(err))
            return
        self._format = fmt
        self._converter = converter
        self.phase = Phase.STREAMING

    def _audio(self, data: bytes, fmt: PcmFormat | None) -> None:
        if self.phase is Phase.WAITING_FOR_AUDIO:
            self._fail(ErrorCode.BAD_AUDIO, "audio-chunk before audio-start")
            return
        if self.phase is not Phase.STREAMING:
            return  # after an endpoint or audio-stop: late audio has nowhere to go
        if fmt is not None and fmt != self._format:
            self._feed_gate(self._drain_converter())
            self._set_format(fmt)
            if self.phase is not Phase.STREAMING:
                return
        assert self._converter is not None
        self._audio_bytes_in += len(data)
        self._feed_gate(self._converter.convert(data))
        self._finalize_on_pause()
        self._check_endpoint()

    def _drain_converter(self) -> bytes:
        return self._converter.flush() if self._converter is not None else b""

    def _feed_gate(self, pcm: bytes) -> None:
        if pcm:
            self._handle_gate_events(self.gate.process(pcm))

    def _handle_gate_events(self, events: list[SpeechStart | SpeechAudio | SpeechEnd]) -> None:
        for event in events:
            if isinstance(event, SpeechStart):
                self._speech(event.pre_roll)
            elif isinstance(event, SpeechAudio):
                if self._holding:
                    self._held += event.data
                else:
                    self._speech(event.data)
            elif self._holding:
                # The pause outlasted the hangover: what was held back is silence, never sent.
                self._holding = False
                self._dropped_bytes += len(self._held)
                self._held = bytearray()
            elif self.config.early_finalize or event.reason == "max_utterance":
                self._close_current()

    def _finalize_on_pause(self) -> None:
        """Settle the utterance ``finalize_after_ms`` into a pause, before the gate closes.

        The gate keeps its longer hangover so that no word tail is clipped and a short pause
        does not reopen it; but the wait the user feels starts when they stop speaking, so the
        service is asked to finalize early. Audio after that point is held back: if speech
        resumes it opens the next utterance (nothing lost), if not it is silence and dropped.
        """
        limit = self.config.finalize_after_ms
        silence = self.gate.silence_ms
        if limit is None or not self.config.early_finalize or silence is None:
            return
        if self._holding:
            if silence < limit:
                held, self._held = bytes(self._held), bytearray()
                self._holding = False
                self._speech(held)
            return
        if self._current is not None and self.gate.is_open and silence >= limit:
            self._holding = True
            self._close_current()

    def _speech(self, pcm: bytes) -> None:
        for frame in self._framer.push(pcm):
            self._append_frame(frame)

    def _append_frame(self, frame: bytes) -> None:
        utterance = self._current
        if utterance is None:
            utterance = self._new_utterance()
        utterance.audio += frame
        if len(utterance.audio) >= self._max_utterance_bytes:
            self._close_utterance(utterance)
        elif utterance.conn is not None:
            self._pump(utterance.conn)

    def _new_utterance(self) -> _Utterance:
        utterance = _Utterance()
        self._utterances.append(utterance)
        self._current = utterance
        if not self._local_mode and not self._retry_pending:
            self._assign(utterance)
        return utterance

    def _close_current(self) -> None:
        rest = self._framer.flush()
        if rest:
            (self._current or self._new_utterance()).audio += rest
        if self._current is not None:
            self._close_utterance(self._current)

    def _close_utterance(self, utterance: _Utterance) -> None:
        if utterance is self._current:
            self._current = None
        utterance.closed = True
        if not utterance.audio:
            utterance.done = True  # nothing was said into it: nothing to settle
            self._emit_settled()
        elif utterance.conn is not None:
            self._pump(utterance.conn)

    def _check_endpoint(self) -> None:
        limit = self.config.endpoint_silence_ms
        silence = self.gate.silence_ms
        if limit is None or silence is None or silence < limit or not self._utterances:
            return
        self._emit(act.Log.info(f"end of command detected after {silence} ms of silence"))
        self._stop()

    def _stop(self) -> None:
        if self.phase is Phase.WAITING_FOR_AUDIO:
            self._fail(ErrorCode.BAD_AUDIO, "audio-stop without audio-start")
            return
        if self.phase is not Phase.STREAMING:
            return
        self.phase = Phase.STOPPED
        self._feed_gate(self._drain_converter())
        self._handle_gate_events(self.gate.flush())
        self._close_current()
        self._emit(act.Log.info(self._summary()))
        for conn in list(self._conns.values()):
            self._pump(conn)
        if self._local_mode:
            self._start_local()
        if not self._complete_if_settled():
            self._start_timer(DEADLINE_TIMER, self.config.response_timeout_s)

    def _summary(self) -> str:
        fmt = self._format
        frame = (fmt.width * fmt.channels) if fmt else 2
        rate = fmt.rate if fmt else 16000
        received = self._audio_bytes_in / max(1, frame * rate)
        sent = self.gate.audio_out_ms / 1000 - self._dropped_bytes / BYTES_PER_SECOND
        speech = self.gate.speech_ms / 1000
        tag = self.config.session.external_session_id
        usage = f"; usage tag {tag}" if tag and self.dialect is Dialect.PULSE else ""
        return (
            f"audio received {received:.2f} s, sent {sent:.2f} s, speech {speech:.2f} s "
            f"in {len(self._utterances)} utterance(s){usage}"
        )

    # ------------------------------------------------------------------ service side

    def _assign(self, utterance: _Utterance) -> None:
        conn: _Conn | None = None
        if self.dialect is Dialect.PULSE:
            live = self._pulse_conn
            if live is not None and live.alive and not live.ended:
                conn = live
        if conn is None:
            conn = self._connect()
            if self.dialect is Dialect.PULSE:
                self._pulse_conn = conn
        conn.utterances.append(utterance)
        utterance.conn = conn
        self._pump(conn)

    def _connect(self) -> _Conn:
        ledger = FinalLedger(server_endpoints=self.config.session.server_endpointing)
        conn = _Conn(id=self._next_conn, ledger=ledger)
        self._next_conn += 1
        self._conns[conn.id] = conn
        self._emit(act.Connect(conn.id, self._url))
        return conn

    def _pump(self, conn: _Conn) -> None:
        """Send everything the service has not yet been told on this connection, in order."""
        if not conn.is_open or not conn.alive:
            return
        for utterance in conn.pending():
            while utterance.sent < len(utterance.audio):
                end = min(len(utterance.audio), utterance.sent + self._frame_bytes)
                if utterance.sent == 0:
                    utterance.stream_start = conn.sent_bytes / BYTES_PER_SECOND
                conn.sent_bytes += end - utterance.sent
                self._emit(act.SendAudio(conn.id, bytes(utterance.audio[utterance.sent : end])))
                utterance.sent = end
            if not utterance.closed:
                return  # later utterances cannot exist while this one is still open
            if not utterance.end_sent:
                utterance.end_sent = True
                end_text = self._end_text(conn, utterance)
                utterance.finalize_sent = end_text == FINALIZE_MESSAGE
                if utterance.finalize_sent:
                    conn.ledger.finalize_sent()
                self._emit(act.SendText(conn.id, end_text))
                self._start_timer(_SETTLE_PREFIX + str(conn.id), self.config.final_timeout_s)

    def _end_text(self, conn: _Conn, utterance: _Utterance) -> str:
        last = self.phase is not Phase.STREAMING and utterance is self._utterances[-1]
        if self.dialect.can_finalize and not last:
            return FINALIZE_MESSAGE
        conn.ended = True
        return self.dialect.end_message

    def _opened(self, conn_id: int) -> None:
        conn = self._conns.get(conn_id)
        if conn is None or not conn.alive:
            return
        conn.is_open = True
        self._emit(act.Log.debug(f"service session {conn_id} open"))
        self._pump(conn)

    def _message(self, conn_id: int, message: ServiceMessage) -> None:
        conn = self._conns.get(conn_id)
        if conn is None or not conn.alive:
            return
        if isinstance(message, Unreadable):
            self._emit(act.Log.warning(f"ignored a frame from the service ({message.reason})"))
        elif isinstance(message, SpeechEvent):
            self._emit(act.Log.debug(f"service reports {message.kind}"))
        elif isinstance(message, ServiceError):
            self._conn_failed(conn, classify_error_frame(message))
        else:
            self._result(conn, message)

    def _result(self, conn: _Conn, result: Result) -> None:
        if not result.is_final and not result.is_last:
            conn.ledger.interim(result)
            self._emit(act.Log.debug(f"interim: {result.transcript!r}"))
            return
        pending = conn.pending()
        if not pending:
            if result.is_last:
                self._retire(conn)
            return
        target = pending[0]
        # Which finals count and which one answers the finalize: see transcript.FinalLedger.
        verdict = conn.ledger.judge(
            result, awaiting=target.finalize_sent, turn_start=target.stream_start
        )
        if verdict in (Verdict.REPEAT, Verdict.ECHO):
            self._emit(act.Log.debug(f"dropped a repeated final: {result.transcript!r}"))
        elif target.text.add(result):
            self._emit(act.Log.debug(f"final: {result.transcript!r}"))
        settled: list[_Utterance] = []
        if result.is_last:
            settled = [u for u in pending if u.end_sent]
        elif verdict is Verdict.ANSWER:
            settled = [target]
        for utterance in settled:
            self._settle(utterance)
        if result.is_last:
            self._retire(conn)
        self._rearm_settle_timer(conn)
        self._complete_if_settled()

    def _settle(self, utterance: _Utterance) -> None:
        utterance.done = True
        utterance.audio = bytearray()  # the replay buffer is no longer needed
        self._emit_settled()

    def _retire(self, conn: _Conn) -> None:
        """The session said ``is_last``: it is over, and anything it did not settle must move."""
        if conn.pending():
            self._conn_failed(conn, classify_close(1000, "session ended before every final"))
        else:
            self._release(conn)

    def _release(self, conn: _Conn) -> None:
        """Let a connection go: its timer stops, the adapter closes it, its reports are ignored."""
        conn.alive = False
        self._cancel_timer(_SETTLE_PREFIX + str(conn.id))
        self._emit(act.Disconnect(conn.id))
        if conn is self._pulse_conn:
            self._pulse_conn = None

    def _rearm_settle_timer(self, conn: _Conn) -> None:
        name = _SETTLE_PREFIX + str(conn.id)
        if not conn.alive:
            return
        if any(u.end_sent for u in conn.pending()):
            self._start_timer(name, self.config.final_timeout_s)
        else:
            self._cancel_timer(name)

    def _closed(self, conn_id: int, code: int | None, reason: str) -> None:
        conn = self._conns.get(conn_id)
        if conn is None or not conn.alive:
            return
        if conn.pending():
            self._conn_failed(conn, classify_close(code, reason))
        else:
            self._release(conn)

    def _failed(self, conn_id: int, failure: Failure) -> None:
        conn = self._conns.get(conn_id)
        if conn is not None and conn.alive:
            self._conn_failed(conn, failure)

    def _conn_failed(self, conn: _Conn, failure: Failure) -> None:
        self._release(conn)
        orphans = conn.pending()
        for utterance in orphans:
            utterance.forget_connection()
        if not orphans:
            return
        if failure.retryable and self._retry_pending:
            # Another connection of this request failed too and a reconnection is already
            # scheduled: these utterances go with it. One outage is one retry, not several.
            return
        if failure.retryable and self._retries < self.config.max_retries:
            delay = min(
                self.config.backoff_max_s, self.config.backoff_initial_s * (2**self._retries)
            )
            if failure.retry_after is not None:
                delay = max(delay, min(failure.retry_after, self.config.backoff_max_s))
            self._retries += 1
            self._retry_pending = True
            self._emit(
                act.Log.warning(
                    f"{failure.message}; retrying in {delay:.1f} s "
                    f"(attempt {self._retries + 1} of {self.config.max_retries + 1}), "
                    "replaying the audio not yet transcribed"
                )
            )
            self._start_timer(RETRY_TIMER, delay)
            return
        self._give_up(failure)

    def _give_up(self, failure: Failure) -> None:
        if self.config.fallback_local:
            self._emit(
                act.Log.warning(f"{failure.message}; transcribing with the local recognizer")
            )
            self._local_mode = True
            self._retry_pending = False
            self._cancel_timer(RETRY_TIMER)
            for conn in self._conns.values():
                if conn.alive:
                    self._release(conn)
            for utterance in self._utterances:
                if not utterance.done:
                    utterance.forget_connection()
            if self.phase is Phase.STOPPED:
                self._start_local()
            return
        self._fail(failure.code, failure.message)

    def _reconnect(self) -> None:
        self._retry_pending = False
        orphans = [u for u in self._utterances if not u.done and u.conn is None]
        for utterance in orphans:
            self._assign(utterance)

    def _timer(self, name: str) -> None:
        if name not in self._timers:
            return
        self._timers.discard(name)
        if name == RETRY_TIMER:
            self._reconnect()
        elif name == DEADLINE_TIMER:
            seconds = self.config.response_timeout_s
            failure = Failure(
                ErrorCode.TIMEOUT, f"no transcript from the service within {seconds:g} s", False
            )
            if self._local_mode:
                self._fail(failure.code, "the local recognizer did not finish in time")
            else:
                self._give_up(failure)
                if self._local_mode:
                    self._start_timer(DEADLINE_TIMER, self.config.response_timeout_s)
        elif name.startswith(_SETTLE_PREFIX):
            conn = self._conns.get(int(name[len(_SETTLE_PREFIX) :]))
            if conn is not None and conn.alive:
                seconds = self.config.final_timeout_s
                self._conn_failed(
                    conn,
                    Failure(
                        ErrorCode.TIMEOUT,
                        f"the service sent no final result within {seconds:g} s",
                        True,
                    ),
                )

    # ------------------------------------------------------------------ local fallback

    def _start_local(self) -> None:
        if self._local_pending:
            return
        pending = [u for u in self._utterances if not u.done]
        if not pending:
            self._complete_if_settled()
            return
        gap = bytes(BYTES_PER_SECOND // 5)  # keep words of separate utterances apart
        audio = gap.join(bytes(u.audio) for u in pending)
        self._local_pending = True
        language = self.config.session.language
        self._emit(act.TranscribeLocally(audio, language))

    def _local_done(self, text: str | None, error: str | None) -> None:
        if not self._local_pending:
            return
        self._local_pending = False
        if text is None:
            self._fail(ErrorCode.UNAVAILABLE, f"the local recognizer failed: {error}")
            return
        pending = [u for u in self._utterances if not u.done]
        for i, utterance in enumerate(pending):
            utterance.text.reset()
            if i == 0:
                utterance.text.finals.append(text.strip())
            self._settle(utterance)
        self._emit(act.Log.info("transcript produced by the local recognizer"))
        self._complete_if_settled()

    # ------------------------------------------------------------------ answers

    def _emit_settled(self) -> None:
        """Stream each utterance's text once it and all before it are settled, never twice."""
        while self._emitted < len(self._utterances) and self._utterances[self._emitted].done:
            text = self._utterances[self._emitted].text.text
            if text and self.config.streaming:
                self._ensure_stream_started()
                prefix = " " if self._emitted_text else ""
                self._emit(act.TranscriptChunk(prefix + text))
            if text:
                self._emitted_text = True
            self._emitted += 1

    def _ensure_stream_started(self) -> None:
        if not self._started_stream:
            self._started_stream = True
            self._emit(act.TranscriptStart(self._language()))

    def _language(self) -> str | None:
        for utterance in reversed(self._utterances):
            if utterance.text.language:
                return utterance.text.language
        return self.config.response_language

    def _complete_if_settled(self) -> bool:
        if self.phase is not Phase.STOPPED or self._local_pending:
            return False
        if any(not u.done for u in self._utterances):
            return False
        text = join_texts(u.text.text for u in self._utterances)
        language = self._language()
        if self.config.streaming:
            self._ensure_stream_started()
        self._emit(act.Transcript(text, language))
        if self.config.streaming:
            self._emit(act.TranscriptStop())
        self._emit(act.Log.info(f"answered: {len(text.split())} word(s)"))
        self._emit(act.Log.debug(f"transcript: {text!r}"))
        self._end()
        return True

    def _fail(self, code: ErrorCode, message: str) -> None:
        self._emit(act.Log.warning(f"request failed ({code.value}): {message}"))
        self._emit(act.Error(code, message))
        self._end()

    def _abandon(self) -> None:
        self._emit(act.Log.info("client disconnected; releasing the service session"))
        self._end()

    def _end(self) -> None:
        for conn in self._conns.values():
            if conn.alive:
                if conn.is_open and not conn.ended and self.dialect is Dialect.PULSE:
                    self._emit(act.SendText(conn.id, self.dialect.end_message))
                self._release(conn)
        for name in sorted(self._timers):
            self._emit(act.CancelTimer(name))
        self._timers.clear()
        for utterance in self._utterances:
            utterance.audio = bytearray()
        self.phase = Phase.DONE
        self._emit(act.Finish())
