"""One transcription request as a state machine, free of I/O.

A request is the span from ``audio-start`` to the answer. Its audio is converted, gated by the
voice-activity detector, and cut into *utterances*: stretches of speech that go to the service
together and are settled by one ``finalize``/``end``. Every frame of an utterance is kept until
its final result is in, so that a connection that fails can be replaced and the audio replayed
without asking the speaker to repeat.

Where utterances begin and end, and when the turn is over, is the segmenter's to say
(segmenter.py: conversion, the gate, the pause rule, re-recognition, endpointing): this machine
carries out its segments and keeps the rest, each part in a module of its own: the sessions
and what goes on them (uplink.py), the retry budget and the answer deadline (budgets.py), the
transcript the client hears (answer.py).

Events in, actions out
======================
Everything that happens to a request comes in through one method, :meth:`RequestMachine.handle`,
as one of the typed events below: from the client ``StartAudio``, ``AudioIn``, ``StopAudio``,
``TranscribeAgain``, ``ClientGone``, ``Abort``; from a service session ``SessionOpened``,
``SessionMessage``, ``SessionProgress``, ``SessionClosed``, ``SessionFailed``; and
``TimerFired``, ``LocalResult``. The answer is a list of :mod:`~wyoming_lightning.core.actions`
values that the adapters carry out. Nothing here sleeps or opens a socket; the only outside
input is an injected clock, read to date the last sign of life of each session, so every path,
failures included, is unit-testable with a fake clock.

The order of the client's events is judged here and nowhere else, since only the machine knows
the phase: ``audio-chunk`` before ``audio-start``, ``audio-stop`` without it and a second
``audio-start`` are ``bad_audio`` errors; a ``transcribe`` once audio has started is ignored;
audio after ``audio-stop`` (or after the server ended the command) is dropped. The Wyoming
adapter builds the machine at the first audio event of any kind and feeds it every one.

States and transitions
======================
Four small state sets, each an enum whose legal moves are tabled (``PHASE_MOVES`` and
``ROUTE_MOVES`` here, ``UTTERANCE_MOVES`` and ``SESSION_MOVES`` in uplink.py); anything else
raises :class:`~wyoming_lightning.core.fsm.IllegalTransition`, as h11 does for its connection
states. The diagrams below are checked against those tables by tests/core/test_state_tables.py;
each event's handler is the table ``_HANDLERS`` at the end of this module.

The request, ``Phase``::

    AWAITING_AUDIO --StartAudio--> STREAMING
    STREAMING --StopAudio | endpoint | no speech | command cap--> SETTLING
    SETTLING --every utterance settled (transcript)--> DONE
    any --error | ClientGone | Abort--> DONE

Where the audio goes, ``Route``::

    CLOUD --a session failed, retry budget left--> RECONNECTING --RETRY timer--> CLOUD
    CLOUD | RECONNECTING --the service cannot finish, fallback configured--> LOCAL
    LOCAL --audio-stop reached--> LOCAL_RUNNING --LocalResult--> (the request is DONE)
    (a server without an API key starts in LOCAL)

Each utterance, ``UtteranceState``::

    OPEN --pause | max length | stop--> CLOSED --its end sent--> OWED --its final--> SETTLED
    (a pause only until ``dictation_after_s`` of audio has gone out: past it, only the
    length cap or audio-stop closes the utterance)
    OPEN --closed with no audio in it--> SETTLED
    OWED --its session failed--> CLOSED      (replayed whole on the next session)
    CLOSED --the local recognizer answered--> SETTLED

Each service session, ``SessionState``::

    CONNECTING --SessionOpened--> OPEN --end of session sent--> ENDING
    CONNECTING | OPEN | ENDING --released (finished, failed, stalled, request over)--> GONE

Liveness: judged by progress, not by a deadline per final
=========================================================
A session *owes a final* while one of its utterances is OWED. Progress is any sign that the
session is working: a message from it (an interim, a final, a speech event, an error; not an
unreadable frame, which proves nothing), a send that completed (the service is taking audio off
the wire: the write buffer drains), or the pong to a probe; the last two only while the
session's last frame was readable, since a session that only sends garbage is not progressing.
While a final is owed the machine probes every ``stall_timeout_s / 4`` and keeps one STALL
timer per session; when it fires and nothing has come for ``stall_timeout_s``, the session has
*stalled*. A stalled session is released and replaced once per request (only its unsettled
audio is replayed); a second stall hands the request to the local fallback, or answers
``error``. A slow session that keeps making progress is never replaced, so a replay never runs
alongside a live session.

A session opened after ``audio-stop`` (a replacement) is watched from its handshake on: a
handshake that hangs for ``stall_timeout_s`` is a stall like any other.

After ``audio-stop`` one ANSWER timer bounds the whole wait: ``final_timeout_s`` plus
``FINAL_TIMEOUT_PER_AUDIO_S`` per second of audio still without a final, counted from
``audio-stop`` or from the last final that settled an utterance, whichever came later, and at
most ``response_timeout_s`` after ``audio-stop``. So a service that is settling the owed audio
final after final (slow, each final several seconds behind the last) is waited for, each final
renewing the wait for the audio still owed, up to the ceiling; one that settles nothing more is
answered at the bound. When the timer runs out with no renewal due, the service is alive but
cannot finish: the local recognizer takes over when configured, otherwise the answer is
``error`` (``timeout``), and the log says which.

Warm sessions (``keep_session``, Pulse)
=======================================
The adapter may answer ``Connect`` with a socket kept from an earlier request
(``SessionOpened.stream_offset_bytes``: the audio it already carried). Nothing else changes for
the machine, liveness included. The last utterance then ends with ``finalize`` too, and once the
transcript is out a session whose every utterance is settled is released with
``Disconnect(reusable=True)``; any other end (an error, the client gone, a final still owed)
closes it. On a lent socket a result whose words end before this request's first audio on it
belongs to an earlier request and is dropped.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wyoming_lightning.core import actions as act
from wyoming_lightning.core.actions import Action, TimerId, TimerKind, Timers
from wyoming_lightning.core.answer import Answer
from wyoming_lightning.core.audio import PcmFormat
from wyoming_lightning.core.budgets import AnswerDeadline, RetryBudget, quiet_s
from wyoming_lightning.core.errors import ErrorCode
from wyoming_lightning.core.fsm import IllegalTransition as IllegalTransition
from wyoming_lightning.core.fsm import moved
from wyoming_lightning.core.pipeline_format import BYTES_PER_SECOND
from wyoming_lightning.core.protocol import (
    Dialect,
    Failure,
    Result,
    ServiceError,
    ServiceMessage,
    SessionOptions,
    build_url,
    classify_close,
    classify_error_frame,
    detect_dialect,
)
from wyoming_lightning.core.segmenter import (
    EndOfTurn,
    Segment,
    Segmenter,
    SegmenterConfig,
    SpeechMark,
    UtteranceAudio,
    UtteranceEnd,
    UtteranceStart,
)
from wyoming_lightning.core.transcript import ServiceHabits, Verdict
from wyoming_lightning.core.uplink import EndKind as EndKind
from wyoming_lightning.core.uplink import Session, SessionState, Uplink, Utterance, UtteranceState
from wyoming_lightning.core.uplink import probe_timer as probe_timer
from wyoming_lightning.core.uplink import stall_timer as stall_timer
from wyoming_lightning.core.vad.gate import VadGate

RETRY_TIMER = TimerId(TimerKind.RETRY)
ANSWER_TIMER = TimerId(TimerKind.ANSWER)
_EARLY = 1e-3  # a timer that fires this much before its due time re-arms instead


@dataclass(frozen=True, kw_only=True)
class RequestConfig(SegmenterConfig):
    """How one request behaves; built from the server's flags and the client's ``transcribe``.

    Where utterances begin and end is configured by the fields it inherits from
    :class:`~wyoming_lightning.core.segmenter.SegmenterConfig`. A field named as a server setting
    (config.Settings) gets that setting's value without further code
    (``services.Services.request_config``): a request-level setting is declared in config.py
    and used where its field is, nowhere else.
    """

    base_url: str
    session: SessionOptions = field(default_factory=SessionOptions)
    response_language: str | None = None
    streaming: bool = True
    max_retries: int = 3
    stall_timeout_s: float = 2.0
    """No progress at all for this long while a final is owed: the session has stalled."""
    final_timeout_s: float = 10.0
    """The wait after audio-stop for a live service, before the per-second part."""
    response_timeout_s: float = 30.0
    """The ceiling on the wait after audio-stop, however much audio is owed."""
    fallback_local: bool = False
    local_only: bool = False
    dialect_choice: Dialect | None = None
    connect_at_start: bool = False
    """Open the first session with the first audio, not at speech, so that its handshake is done
    before the speaker is. Free of charge: no audio goes before speech, so it bills nothing.
    For the Lightning dialect (a session per utterance, nothing to keep warm)."""
    keep_session: bool = False
    """Warm sessions (Pulse): end the last utterance with ``finalize`` too, not ``close_stream``,
    and hand a session that owes nothing back for the next request (``Disconnect(reusable)``)."""
    habits: ServiceHabits = field(default_factory=ServiceHabits)
    """What the server process has learnt of the service (transcript.ServiceHabits): shared,
    so that once one request saw the service cut turns itself, every later one is careful."""

    @property
    def dialect(self) -> Dialect:
        return detect_dialect(self.base_url, self.dialect_choice)

    @property
    def probe_interval_s(self) -> float:
        """Pings while a final is owed: several per stall window, so one lost pong is no stall."""
        return self.stall_timeout_s / 4


# ---------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class StartAudio:
    """``audio-start``: the client's format; the cloud is not contacted until speech."""

    format: PcmFormat


@dataclass(frozen=True)
class TranscribeAgain:
    """``transcribe`` after ``audio-start``: too late to change this request, so ignored."""


@dataclass(frozen=True)
class AudioIn:
    """``audio-chunk``; a chunk may announce a new format."""

    data: bytes
    format: PcmFormat | None = None


@dataclass(frozen=True)
class StopAudio:
    """``audio-stop``: settle the last utterance; answer as soon as every final is in."""


@dataclass(frozen=True)
class SessionOpened:
    """The WebSocket handshake of session ``conn`` succeeded, or a warm socket was lent."""

    conn: int
    stream_offset_bytes: int = 0
    """Audio a lent warm socket already carried for earlier requests: the service's word times
    for this request start there, and anything placed before it is not this request's."""


@dataclass(frozen=True)
class SessionMessage:
    """A parsed text frame from session ``conn``."""

    conn: int
    message: ServiceMessage


@dataclass(frozen=True)
class SessionProgress:
    """Session ``conn`` took a frame off the wire (a send completed) or answered a ping."""

    conn: int


@dataclass(frozen=True)
class SessionClosed:
    """The socket of session ``conn`` closed (cleanly or not) after it had opened."""

    conn: int
    code: int | None
    reason: str = ""


@dataclass(frozen=True)
class SessionFailed:
    """The handshake was refused or timed out, or a send timed out."""

    conn: int
    failure: Failure


@dataclass(frozen=True)
class TimerFired:
    """A timer asked for with :class:`~wyoming_lightning.core.actions.StartTimer` ran out."""

    timer: TimerId


@dataclass(frozen=True)
class LocalResult:
    """The offline recognizer finished (``text``) or could not run (``error``)."""

    text: str | None
    error: str | None = None


@dataclass(frozen=True)
class ClientGone:
    """The client vanished: release every upstream session now."""


@dataclass(frozen=True)
class Abort:
    """The adapter ended the request (it already told the client why)."""


Event = (
    StartAudio
    | TranscribeAgain
    | AudioIn
    | StopAudio
    | SessionOpened
    | SessionMessage
    | SessionProgress
    | SessionClosed
    | SessionFailed
    | TimerFired
    | LocalResult
    | ClientGone
    | Abort
)


# ---------------------------------------------------------------------------------- states


class Phase(enum.Enum):
    """Where the request stands from the client's point of view."""

    AWAITING_AUDIO = "waiting for audio-start"
    STREAMING = "streaming"
    SETTLING = "waiting for the service"
    DONE = "done"


class Route(enum.Enum):
    """Who will transcribe the audio."""

    CLOUD = "the service"
    RECONNECTING = "the service, after a backoff"
    LOCAL = "the local recognizer, at audio-stop"
    LOCAL_RUNNING = "the local recognizer, running"


PHASE_MOVES: dict[Phase, frozenset[Phase]] = {
    Phase.AWAITING_AUDIO: frozenset({Phase.STREAMING, Phase.DONE}),
    Phase.STREAMING: frozenset({Phase.SETTLING, Phase.DONE}),
    Phase.SETTLING: frozenset({Phase.DONE}),
    Phase.DONE: frozenset(),
}
ROUTE_MOVES: dict[Route, frozenset[Route]] = {
    Route.CLOUD: frozenset({Route.RECONNECTING, Route.LOCAL}),
    Route.RECONNECTING: frozenset({Route.CLOUD, Route.LOCAL}),
    Route.LOCAL: frozenset({Route.LOCAL_RUNNING}),
    Route.LOCAL_RUNNING: frozenset(),
}


class RequestMachine:
    """The whole life of one request; see the module docstring."""

    def __init__(
        self, config: RequestConfig, gate: VadGate, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.config = config
        self._out: list[Action] = []
        self.gate = gate
        self.dialect = config.dialect
        self.phase = Phase.AWAITING_AUDIO
        self.route = Route.LOCAL if config.local_only else Route.CLOUD
        self._clock = clock
        self._url = build_url(config.base_url, config.session, self.dialect)
        self.segmenter = Segmenter(config, gate)
        """Where utterances begin and end (segmenter.py): this machine carries it out."""
        self._utterances: list[Utterance] = []
        self._current: Utterance | None = None
        self._connect_early = False
        self._known_format: PcmFormat | None = None
        """A format object known equal to the segmenter's: a client repeats its format with
        every chunk (the handler passes the same object while it does), so one comparison of
        the dataclasses per object, not per chunk."""
        self.reconnects = 0
        """Reconnections scheduled after a failure (each backoff started): the retries metric."""
        self._budget = RetryBudget(config.max_retries)
        self._timers = Timers(self._emit)
        self.uplink = Uplink(config, self._url, self._utterances, self._timers, clock, self._emit)
        """The sessions with the service and what goes on them (uplink.py)."""
        self._deadline = AnswerDeadline(config.final_timeout_s, config.response_timeout_s)
        self.ended_itself = False
        """The server's endpointing, not the client's ``audio-stop``, ended the audio."""
        self._answer = Answer(
            self._utterances,
            streaming=config.streaming,
            language=config.response_language,
            emit=self._emit,
        )

    # ------------------------------------------------------------------ the entry point

    def handle(self, event: Event) -> list[Action]:
        """Feed one event; return what the adapters must do, in order."""
        if self.phase is not Phase.DONE:
            _HANDLERS[type(event)](self, event)
        out, self._out = self._out, []
        return out

    @property
    def done(self) -> bool:
        return self.phase is Phase.DONE

    def _start(self, fmt: PcmFormat) -> None:
        if self.phase is not Phase.AWAITING_AUDIO:
            self._fail(ErrorCode.BAD_AUDIO, "audio-start sent twice")
        else:
            self._set_format(fmt)

    def _failed(self, conn: int, failure: Failure) -> None:
        session = self.uplink.live(conn)
        if session is not None:
            self._session_failed(session, failure)

    def _gone(self) -> None:
        self._emit(act.Log.info("client disconnected; releasing the service session"))
        self._end()

    # ------------------------------------------------------------------ plumbing

    def _emit(self, action: Action) -> None:
        self._out.append(action)

    def _move(self, new: Phase | Route) -> None:
        if isinstance(new, Phase):
            self.phase = moved(PHASE_MOVES, self.phase, new)
        else:
            self.route = moved(ROUTE_MOVES, self.route, new)

    # ------------------------------------------------------------------ audio side

    def _set_format(self, fmt: PcmFormat) -> None:
        error = self.segmenter.set_format(fmt)
        if error is not None:
            self._fail(ErrorCode.BAD_AUDIO, error)
            return
        self._known_format = fmt
        if self.phase is Phase.AWAITING_AUDIO:
            self._move(Phase.STREAMING)
            self._connect_early = self.config.connect_at_start and self.route is Route.CLOUD

    def _audio(self, data: bytes, fmt: PcmFormat | None) -> None:
        if self.phase is Phase.AWAITING_AUDIO:
            self._fail(ErrorCode.BAD_AUDIO, "audio-chunk before audio-start")
            return
        self.segmenter.count(data, fmt)
        if self.phase is not Phase.STREAMING:
            return  # after an endpoint or audio-stop: late audio has nowhere to go
        if fmt is not None and fmt is not self._known_format:
            if fmt != self.segmenter.format:
                self._segments(self.segmenter.drain())
                self._set_format(fmt)
                if self.phase is not Phase.STREAMING:
                    return
            else:
                self._known_format = fmt
        if self._connect_early:
            # At the first chunk (audio-start and its first chunk come together), not at
            # audio-start itself: a client that errs in between costs the service nothing.
            self._connect_early = False
            self.uplink.early = self.uplink.connect()
        segments = self.segmenter.feed(data)
        if segments:  # most chunks decide nothing: the gate holds them or a frame is not full
            self._segments(segments)

    @property
    def audio_may_wait_ms(self) -> float:
        """How late the client's audio may be read without changing what this request decides
        or when (``Segmenter.undecided_ms``; 0 unless the machine is streaming audio)."""
        if self.phase is not Phase.STREAMING:
            return 0.0
        return self.segmenter.undecided_ms

    @property
    def pause_ms(self) -> float | None:
        """How far into a pause the audio is (``Segmenter.pause_ms``: 0 while the VAD hears
        speech, ``None`` before any)."""
        return self.segmenter.pause_ms

    @property
    def received_s(self) -> float:
        """Seconds of audio the client sent after ``audio-start``, each chunk in its format.

        The one count of received audio: the summary in the log and the guard's usage read it.
        """
        return self.segmenter.received_s

    def _segments(self, segments: list[Segment]) -> None:
        """Carry out what the segmenter decided (segmenter.py), in its order."""
        for segment in segments:
            if type(segment) is UtteranceAudio:
                utterance = self._current
                assert utterance is not None
                utterance.audio += segment.data
                if utterance.conn is not None:
                    self.uplink.pump(utterance.conn)
            elif type(segment) is SpeechMark:
                if self._current is not None:
                    self._current.speech_bytes = segment.length
            elif type(segment) is UtteranceStart:
                self._new_utterance(segment)
            elif type(segment) is UtteranceEnd:
                if self._current is not None:
                    self._close_utterance(self._current)
            elif type(segment) is EndOfTurn:
                self.ended_itself = True
                self._emit(act.Log.info(segment.reason))
                self._stop()

    def _new_utterance(self, start: UtteranceStart) -> Utterance:
        utterance = Utterance()
        if start.replay:
            # Speech resumed after a pause split the command: this utterance re-sends it from
            # its start, and the ones it repeats no longer count toward the answer.
            utterance.audio += start.replay
            for earlier in self._utterances[len(self._utterances) - start.replaces :]:
                earlier.text.replaced = True
            seconds = len(start.replay) / BYTES_PER_SECOND
            self._emit(act.Log.debug(f"speech resumed: re-sending the command's {seconds:.2f} s"))
        self._utterances.append(utterance)
        self._current = utterance
        if self.route is Route.CLOUD:
            self.uplink.assign(utterance)
        return utterance

    def _close_utterance(self, utterance: Utterance) -> None:
        if utterance is self._current:
            self._current = None
        if not utterance.audio:
            utterance.move(UtteranceState.SETTLED)  # nothing was said into it: nothing to settle
            self._emit_settled()
            return
        utterance.move(UtteranceState.CLOSED)
        if utterance.conn is not None:
            self.uplink.pump(utterance.conn)

    def _stop(self) -> None:
        if self.phase is Phase.AWAITING_AUDIO:
            self._fail(ErrorCode.BAD_AUDIO, "audio-stop without audio-start")
            return
        if self.phase is not Phase.STREAMING:
            return
        self._move(Phase.SETTLING)
        self.uplink.stopped = True
        self._segments(self.segmenter.finish())
        self._emit_settled()
        self._emit(act.Log.info(self._summary()))
        for session in list(self.uplink.sessions.values()):
            self.uplink.pump(session)
        if self.route is Route.LOCAL:
            self._start_local()
        if not self.done and not self._complete_if_settled():
            owed_s = self._unsettled_bytes() / BYTES_PER_SECOND
            local = self.route is Route.LOCAL_RUNNING
            wait = self._deadline.start(self._clock(), owed_s, local=local)
            self._timers.start(ANSWER_TIMER, wait)

    def _unsettled_bytes(self) -> int:
        return sum(len(u.audio) for u in self._utterances if not u.settled)

    def _summary(self) -> str:
        tag = self.config.session.external_session_id
        usage = f"; usage tag {tag}" if tag and self.dialect is Dialect.PULSE else ""
        return self.segmenter.summary() + usage

    # ------------------------------------------------------------------ service side

    def _message(self, conn: int, message: ServiceMessage) -> None:
        received = self.uplink.receive(conn, message)
        if received is None:
            return
        session, content = received
        if isinstance(content, ServiceError):
            self._session_failed(session, classify_error_frame(content))
        else:
            self._result(session, content)

    def _result(self, session: Session, result: Result) -> None:
        session.last_result = self._clock()
        if result.is_final or result.is_last:
            session.answered(self.config.habits)
        if not result.is_final and not result.is_last:
            session.ledger.interim(result)
            self._emit(act.Log.debug(f"interim: {result.transcript!r}"))
            self._heard(result.transcript)
            return
        end = result.end_time
        if session.origin_s and end is not None and end <= session.origin_s:
            # A warm socket: these words were spoken before this request began on it.
            text = result.transcript
            self._emit(act.Log.debug(f"dropped a result of an earlier request: {text!r}"))
            return
        if not session.utterances:
            if result.is_last:
                self._retire(session)
            return
        # Whose words these are and which turns they complete: see transcript.FinalLedger.
        careful = self.config.habits.own_finals
        judged = session.ledger.judge(result, [u.turn() for u in session.utterances])
        if self.config.habits.own_finals and not careful:
            self._emit(
                act.Log.info(
                    "the service sends finals of its own (it ignores finalize_on_words=false "
                    "or eou_timeout_ms): from now on a turn ends on its empty answer, on later "
                    "words, or once the service goes quiet"
                )
            )
        if judged.verdict in (Verdict.REPEAT, Verdict.ECHO):
            self._emit(act.Log.debug(f"dropped a repeated final: {result.transcript!r}"))
        for index, text, at in judged.pieces:
            self._take(session.utterances[index], text, result.language, at)
        if not judged.pieces and result.language:
            for utterance in session.pending()[:1]:
                utterance.text.language = result.language
        pending = session.pending()
        settled = [session.utterances[i] for i in judged.answers]
        if result.is_last:
            settled = [u for u in pending if u.state is UtteranceState.OWED]
        settled = [u for u in settled if u.state is UtteranceState.OWED]
        if settled:
            self._deadline.final_came(self._clock())
        for utterance in settled:
            self._settle(utterance)
        if result.is_last:
            self._retire(session)
        elif not session.owes_final():
            self.uplink.stop_watching(session)
        if not self._complete_if_settled():
            self._heard("")

    def _heard(self, interim: str) -> None:
        """The request's words so far (its finals, then the open utterance's interim) to the
        segmenter, whose turn judge may end the command on them (segmenter.heard): as finals
        alone when every utterance is settled (none open, none owing its final)."""
        if self.phase is not Phase.STREAMING or self.config.turn_judge is None:
            return
        said = [u.text.counted for u in self._utterances] + [interim]
        final = not interim and all(u.settled for u in self._utterances)
        self._segments(self.segmenter.heard(" ".join(t for t in said if t), final=final))

    def _take(
        self, utterance: Utterance, text: str, language: str | None, at: float | None
    ) -> None:
        """Add a final's words to their utterance, in stream order. Words of a turn whose text
        already went out as a chunk (a final that came after the turn was settled) are streamed
        at once: the transcript has them in their place, the stream at least has them."""
        if utterance.state is UtteranceState.OWED:
            utterance.heard = True
        if not utterance.text.add_text(text, language, at):
            return
        self._emit(act.Log.debug(f"final: {text!r}"))
        self._answer.late_final(utterance, text)

    def _settle(self, utterance: Utterance) -> None:
        utterance.move(UtteranceState.SETTLED)
        utterance.audio = bytearray()  # the replay buffer is no longer needed
        self._emit_settled()

    def _retire(self, session: Session) -> None:
        """The session said ``is_last``: it is over, and anything it did not settle must move."""
        if session.pending():
            self._session_failed(session, classify_close(1000, "session ended before every final"))
        else:
            self.uplink.release(session)

    def _closed(self, conn: int, code: int | None, reason: str) -> None:
        session = self.uplink.live(conn)
        if session is None:
            return
        if session.pending():
            self._session_failed(session, classify_close(code, reason))
        else:
            self.uplink.release(session)

    def _session_failed(self, session: Session, failure: Failure) -> None:
        self.uplink.release(session)
        orphans = session.pending()
        for utterance in orphans:
            utterance.forget_connection()
        if not orphans:
            return
        if failure.retryable and self.route is Route.RECONNECTING:
            # Another session of this request failed too and a reconnection is already
            # scheduled: these utterances go with it. One outage is one retry, not several.
            return
        delay = self._budget.retry_delay(session.id, failure)
        if delay is not None:
            self._move(Route.RECONNECTING)
            self._emit(
                act.Log.warning(
                    f"{failure.message}; retrying in {delay:.1f} s "
                    f"(attempt {self._budget.retries + 1} of {self.config.max_retries + 1}), "
                    "replaying the audio not yet transcribed"
                )
            )
            self._timers.start(RETRY_TIMER, delay)
            self.reconnects += 1
            return
        self._give_up(failure)

    def _settle_heard(self, session: Session) -> bool:
        """The service answered a turn after its finalize, then sent no result for
        ``stall_timeout_s``: its words are in even though no final was recognised as the answer
        (the VAD heard speech, a breath or a cough, well after the last word the service
        placed). A bounded fall-back, checked at each probe, never the usual way a turn ends."""
        owed = [u for u in session.pending() if u.state is UtteranceState.OWED]
        if not owed or not all(u.heard for u in owed):
            return False
        self._emit(act.Log.info("the service went quiet after answering: taking its words"))
        self._deadline.final_came(self._clock())
        for utterance in owed:
            self._settle(utterance)
        self.uplink.stop_watching(session)
        self._complete_if_settled()
        return True

    def _stalled(self, session: Session) -> None:
        if self._settle_heard(session):
            return
        seconds = self.config.stall_timeout_s
        reconnecting = self.route is Route.RECONNECTING
        retry = self._budget.stall_retryable(session.id, reconnecting)
        self._session_failed(
            session,
            Failure(
                ErrorCode.TIMEOUT,
                f"the service stopped answering (session {session.id} showed no progress "
                f"for {seconds:g} s while a final was owed)",
                retry,
            ),
        )

    def _give_up(self, failure: Failure) -> None:
        if self.config.fallback_local:
            self._emit(
                act.Log.warning(f"{failure.message}; transcribing with the local recognizer")
            )
            self._move(Route.LOCAL)
            self._timers.cancel(RETRY_TIMER)
            for session in self.uplink.sessions.values():
                if session.live:
                    self.uplink.release(session)
            for utterance in self._utterances:
                if not utterance.settled:
                    utterance.forget_connection()
            if self.phase is Phase.SETTLING:
                self._start_local()
            return
        self._fail(failure.code, failure.message)

    def _reconnect(self) -> None:
        self._move(Route.CLOUD)
        self._budget.reconnected(self.uplink.next_conn)
        for utterance in self._utterances:
            if not utterance.settled and utterance.conn is None:
                self.uplink.assign(utterance)

    def _timer(self, timer: TimerId) -> None:
        if not self._timers.fired(timer):
            return
        if timer.kind is TimerKind.RETRY:
            self._reconnect()
        elif timer.kind is TimerKind.ANSWER:
            self._answer_timeout()
        else:
            assert timer.conn is not None
            session = self.uplink.live(timer.conn)
            connecting = session is not None and session.state is SessionState.CONNECTING
            if session is None or not (session.owes_final() or connecting):
                return
            if timer.kind is TimerKind.PROBE:
                quiet = self._clock() - session.last_result
                if quiet + _EARLY >= quiet_s(self.config) and self._settle_heard(session):
                    return
                self._emit(act.Probe(session.id))
                self._timers.start(timer, self.config.probe_interval_s)
                return
            due = session.last_progress + self.config.stall_timeout_s - self._clock()
            if due > _EARLY:
                self._timers.start(timer, due)  # progress came since: watch the rest
            else:
                self._stalled(session)

    def _answer_timeout(self) -> None:
        if self.route in (Route.LOCAL, Route.LOCAL_RUNNING):
            self._fail(ErrorCode.TIMEOUT, "the local recognizer did not finish in time")
            return
        for session in list(self.uplink.sessions.values()):
            if session.live and self._settle_heard(session) and self.done:
                return
        owed_s = self._unsettled_bytes() / BYTES_PER_SECOND
        rest = self._deadline.rest(self._clock(), owed_s)
        if rest > _EARLY:
            self._deadline.extend(self._clock(), rest)
            self._emit(
                act.Log.debug(
                    f"the service is still settling ({owed_s:.1f} s of audio owed a final): "
                    f"waiting up to {rest:.1f} s more"
                )
            )
            self._timers.start(ANSWER_TIMER, rest)
            return
        self._give_up(self._deadline.overdue(owed_s))
        if not self.done:  # the local recognizer took over: it gets a bound of its own
            self._timers.start(ANSWER_TIMER, self.config.response_timeout_s)

    # ------------------------------------------------------------------ local fallback

    def _start_local(self) -> None:
        if self.route is not Route.LOCAL:
            return
        audio = local_audio(self._utterances)
        if audio is None:
            for utterance in [u for u in self._utterances if not u.settled]:
                self._settle(utterance)
            self._complete_if_settled()
            return
        self._move(Route.LOCAL_RUNNING)
        language = self.config.session.language
        self._emit(act.TranscribeLocally(audio, language))

    def _local_done(self, text: str | None, error: str | None) -> None:
        if self.route is not Route.LOCAL_RUNNING:
            return
        if text is None:
            self._fail(ErrorCode.UNAVAILABLE, f"the local recognizer failed: {error}")
            return
        pending = [u for u in self._utterances if not u.settled]
        local_text(pending, text)
        for utterance in pending:
            self._settle(utterance)
        self._emit(act.Log.info("transcript produced by the local recognizer"))
        self._complete_if_settled()

    # ------------------------------------------------------------------ answers

    def _emit_settled(self) -> None:
        """Stream the text of every utterance settled in order (answer.py). With
        re-recognition or a rejoin an utterance may yet be replaced while audio still comes, and
        a streamed chunk cannot be taken back: its text waits for audio-stop."""
        if not (self.segmenter.may_replay and self.phase is Phase.STREAMING):
            self._answer.stream_settled()

    def _complete_if_settled(self) -> bool:
        if self.phase is not Phase.SETTLING:
            return False
        if any(not u.settled for u in self._utterances):
            return False
        text = self._answer.complete()
        self._emit(act.Log.info(f"answered: {len(text.split())} word(s)"))
        self._emit(act.Log.debug(f"transcript: {text!r}"))
        self._end(answered=True)
        return True

    def _fail(self, code: ErrorCode, message: str) -> None:
        self._emit(act.Log.warning(f"request failed ({code.value}): {message}"))
        self._emit(act.Error(code, message))
        self._end()

    def _end(self, *, answered: bool = False) -> None:
        """Close the request; ``answered``: it ends with its transcript, so a clean session may
        be kept for the next one (after an error or a vanished client none is)."""
        for session in self.uplink.sessions.values():
            if session.live:
                if answered and self.uplink.clean(session):
                    self.uplink.release(session, reusable=True)
                    continue
                if session.state is SessionState.OPEN and self.dialect is Dialect.PULSE:
                    self._emit(act.SendText(session.id, self.dialect.end_message))
                self.uplink.release(session)
        self._timers.cancel_all()
        for utterance in self._utterances:
            utterance.audio = bytearray()
        self._move(Phase.DONE)
        self._emit(act.Finish())


def local_audio(utterances: list[Utterance]) -> bytes | None:
    """What the local recognizer reads: the unsettled utterances that count, 0.2 s apart (so
    that words of separate utterances stay apart), or ``None`` if none counts. A replaced
    utterance's audio is in the one that replaced it: never recognised twice."""
    counted = [u for u in utterances if not u.settled and not u.text.replaced]
    if not counted:
        return None
    return bytes(BYTES_PER_SECOND // 5).join(bytes(u.audio) for u in counted)


def local_text(pending: list[Utterance], text: str) -> None:
    """The local recognizer's one text goes to the first utterance that counts; the rest
    (read with it) are left empty."""
    first = next((u for u in pending if not u.text.replaced), None)
    for utterance in pending:
        utterance.text.reset()
        if utterance is first:
            utterance.text.add_text(text, None)


_R = RequestMachine
_HANDLERS: dict[type, Callable[[_R, Any], None]] = {
    AudioIn: lambda m, e: m._audio(e.data, e.format),
    SessionProgress: lambda m, e: m.uplink.progress(e.conn),
    SessionMessage: lambda m, e: m._message(e.conn, e.message),
    StartAudio: lambda m, e: m._start(e.format),
    StopAudio: lambda m, e: m._stop(),
    TranscribeAgain: lambda m, e: m._emit(act.Log.debug("ignored transcribe during a request")),
    SessionOpened: lambda m, e: m.uplink.opened(e.conn, e.stream_offset_bytes),
    SessionClosed: lambda m, e: m._closed(e.conn, e.code, e.reason),
    SessionFailed: lambda m, e: m._failed(e.conn, e.failure),
    TimerFired: lambda m, e: m._timer(e.timer),
    LocalResult: lambda m, e: m._local_done(e.text, e.error),
    ClientGone: lambda m, e: m._gone(),
    Abort: lambda m, e: m._end(),
}
"""Each event and the move it makes, as h11 tables its events: one entry per event type."""
