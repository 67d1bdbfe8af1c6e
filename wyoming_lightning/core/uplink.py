"""The request's sessions with the service, free of I/O: which session carries which
utterance, what each was sent, and how each utterance is ended on it.

The request machine (request.py) decides *when* (an utterance opens or closes, a session fails,
the request ends); the :class:`Uplink` does the bookkeeping of *what* goes where: it opens a
session for an utterance (Lightning: one per utterance; Pulse: one for all, the next one only
when the last is gone), sends each utterance's audio in order in frames of
:data:`~wyoming_lightning.core.segmenter.FRAME_MS`, ends it with ``finalize`` or the end of the
session, and watches a session that owes a final (the STALL and PROBE timers; request.py,
"Liveness"). Its two state sets, ``UtteranceState`` and ``SessionState``, are drawn in request.py's
docstring, and their moves are the tables ``UTTERANCE_MOVES`` and ``SESSION_MOVES`` below.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from wyoming_lightning.core import actions as act
from wyoming_lightning.core.actions import Action, TimerId, TimerKind, Timers
from wyoming_lightning.core.fsm import moved
from wyoming_lightning.core.pipeline_format import BYTES_PER_SECOND
from wyoming_lightning.core.protocol import (
    FINALIZE_MESSAGE,
    Dialect,
    Pong,
    Result,
    ServiceError,
    ServiceMessage,
    SpeechEvent,
    Unreadable,
)
from wyoming_lightning.core.segmenter import FRAME_BYTES
from wyoming_lightning.core.transcript import FinalLedger, ServiceHabits, Turn, UtteranceText

if TYPE_CHECKING:
    from wyoming_lightning.core.request import RequestConfig


def stall_timer(conn: int) -> TimerId:
    """The timer that watches session ``conn`` for a stall."""
    return TimerId(TimerKind.STALL, conn)


def probe_timer(conn: int) -> TimerId:
    """The timer that pings session ``conn`` while it owes a final."""
    return TimerId(TimerKind.PROBE, conn)


class UtteranceState(enum.Enum):
    OPEN = "taking audio"
    CLOSED = "complete, its end not sent"
    OWED = "its end sent, its final owed"
    SETTLED = "settled"


class SessionState(enum.Enum):
    CONNECTING = "handshake"
    OPEN = "open"
    ENDING = "end of session sent"
    GONE = "released"


class EndKind(enum.Enum):
    """How an utterance was ended on its session."""

    FINALIZE = "finalize"
    """Pulse: settle this utterance and keep the session for the next."""
    END = "end"
    """End the session (Lightning ``end``, Pulse ``close_stream``): ``is_last`` settles it."""


UTTERANCE_MOVES: dict[UtteranceState, frozenset[UtteranceState]] = {
    UtteranceState.OPEN: frozenset({UtteranceState.CLOSED, UtteranceState.SETTLED}),
    UtteranceState.CLOSED: frozenset({UtteranceState.OWED, UtteranceState.SETTLED}),
    UtteranceState.OWED: frozenset({UtteranceState.SETTLED, UtteranceState.CLOSED}),
    UtteranceState.SETTLED: frozenset(),
}
SESSION_MOVES: dict[SessionState, frozenset[SessionState]] = {
    SessionState.CONNECTING: frozenset({SessionState.OPEN, SessionState.GONE}),
    SessionState.OPEN: frozenset({SessionState.ENDING, SessionState.GONE}),
    SessionState.ENDING: frozenset({SessionState.GONE}),
    SessionState.GONE: frozenset(),
}


@dataclass(eq=False)
class Utterance:
    audio: bytearray = field(default_factory=bytearray)
    state: UtteranceState = UtteranceState.OPEN
    ended_by: EndKind | None = None
    conn: Session | None = None
    sent: int = 0
    stream_start: float | None = None
    """Where this utterance's audio begins in its session's stream, in seconds."""
    stream_end: float | None = None
    """Where its end (finalize, end of session) was sent in the stream, in seconds."""
    heard: bool = False
    """Words for it arrived after its finalize went out: the service is answering it."""
    speech_bytes: int | None = None
    """How much of ``audio`` the VAD had heard as speech when it last heard speech: where the
    speech ends, so that the final holding its last words can be recognised (transcript.Turn)."""
    text: UtteranceText = field(default_factory=UtteranceText)

    def move(self, new: UtteranceState) -> None:
        self.state = moved(UTTERANCE_MOVES, self.state, new)

    @property
    def settled(self) -> bool:
        return self.state is UtteranceState.SETTLED

    def turn(self) -> Turn:
        """What the session's ledger needs to know of this utterance (transcript.Turn)."""
        speech_end = None
        if self.stream_start is not None and self.speech_bytes is not None:
            speech_end = self.stream_start + self.speech_bytes / BYTES_PER_SECOND
        return Turn(
            start=self.stream_start,
            end=self.stream_end,
            awaiting=self.state is UtteranceState.OWED and self.ended_by is EndKind.FINALIZE,
            speech_end=speech_end,
            settled=self.settled,
        )

    def forget_connection(self) -> None:
        """The session is gone: what it was told and what it answered no longer counts."""
        self.conn = None
        self.sent = 0
        self.stream_start = None
        self.stream_end = None
        self.heard = False
        self.ended_by = None
        self.text.reset()
        if self.state is UtteranceState.OWED:
            self.move(UtteranceState.CLOSED)


@dataclass(eq=False)
class Session:
    id: int
    state: SessionState = SessionState.CONNECTING
    sent_bytes: int = 0
    utterances: list[Utterance] = field(default_factory=list)
    ledger: FinalLedger = field(default_factory=FinalLedger)
    """Which finals count and which one answers a finalize (see transcript.FinalLedger)."""
    last_progress: float = 0.0
    origin_s: float = 0.0
    """Where this request's audio begins in the socket's stream (0 on a new socket)."""
    finalized_at: float | None = None
    """When its last ``finalize`` went out, until the next final came (the answer delay)."""
    last_result: float = 0.0
    """When its last result (interim or final) arrived: pongs and sends prove it alive, only
    results that it has nothing more to say for a turn it answered (``_settle_heard``)."""
    garbled: bool = False
    """Its last frame was unreadable: until it says something readable, pongs and completed
    sends prove nothing (a session that talks but cannot be understood is not progressing)."""

    def move(self, new: SessionState) -> None:
        self.state = moved(SESSION_MOVES, self.state, new)

    @property
    def live(self) -> bool:
        return self.state is not SessionState.GONE

    @property
    def can_send(self) -> bool:
        return self.state in (SessionState.OPEN, SessionState.ENDING)

    def pending(self) -> list[Utterance]:
        return [u for u in self.utterances if not u.settled]

    def answered(self, habits: ServiceHabits) -> None:
        """A final came (at ``last_result``): the service's longest answer delay so far grows
        to this one's, counted from the finalize it answers."""
        if self.finalized_at is not None:
            delay = self.last_result - self.finalized_at
            habits.answer_delay_s = max(habits.answer_delay_s, delay)
            self.finalized_at = None

    def owes_final(self) -> bool:
        return any(u.state is UtteranceState.OWED for u in self.utterances)


class Uplink:
    """One request's sessions with the service; see the module docstring."""

    def __init__(
        self,
        config: RequestConfig,
        url: str,
        utterances: list[Utterance],
        timers: Timers,
        clock: Callable[[], float],
        emit: Callable[[Action], None],
    ) -> None:
        self.config = config
        self.dialect = config.dialect
        self._url = url
        self._utterances = utterances
        """The request's utterances, in order (the machine's own list)."""
        self.timers = timers
        self._clock = clock
        self._emit = emit
        self.sessions: dict[int, Session] = {}
        self.next_conn = 1
        self._pulse_session: Session | None = None
        self.early: Session | None = None
        """A session opened at audio-start (``connect_at_start``) for the first utterance."""
        self.stopped = False
        """Audio-stop came (set by the machine): the last utterance ends the session, and a
        new session is watched from its handshake on."""

    def live(self, conn: int) -> Session | None:
        session = self.sessions.get(conn)
        return session if session is not None and session.live else None

    def receive(
        self, conn: int, message: ServiceMessage
    ) -> tuple[Session, Result | ServiceError] | None:
        """A message from session ``conn``, read for what the request must act on: a result or
        an error frame, with its session. ``None`` when the session is gone or the message is
        only a sign of life (a ``pong``, a speech event) or could not be read; a readable one
        counts as the session's progress (the stall watch reads it)."""
        session = self.live(conn)
        if session is None:
            return None
        if isinstance(message, Unreadable):
            # A frame we cannot read proves nothing about progress: it does not count.
            session.garbled = True
            self._emit(act.Log.warning(f"ignored a frame from the service ({message.reason})"))
            return None
        session.garbled = False
        session.last_progress = self._clock()
        if isinstance(message, Pong):
            return None  # the answer to a keepalive sent while the socket was idle
        if isinstance(message, SpeechEvent):
            at = "" if message.timestamp is None else f" at {message.timestamp:.2f} s"
            self._emit(act.Log.debug(f"service reports {message.kind}{at}"))
            return None
        return session, message

    def assign(self, utterance: Utterance) -> None:
        session: Session | None = None
        early, self.early = self.early, None
        if early is not None and early.live and not early.utterances:
            session = early
        elif self.dialect is Dialect.PULSE:
            live = self._pulse_session
            if live is not None and live.state in (SessionState.CONNECTING, SessionState.OPEN):
                session = live
        if session is None:
            session = self.connect()
        if self.dialect is Dialect.PULSE:
            self._pulse_session = session
        session.utterances.append(utterance)
        utterance.conn = session
        self.pump(session)

    def connect(self) -> Session:
        ledger = FinalLedger(
            server_endpoints=self.config.session.server_endpointing, habits=self.config.habits
        )
        session = Session(id=self.next_conn, ledger=ledger)
        self.next_conn += 1
        self.sessions[session.id] = session
        self._emit(act.Connect(session.id, self._url))
        if self.stopped:
            # The user is already waiting (a replacement after audio-stop): a handshake that
            # hangs is a stall too, not something to wait --connect-timeout for.
            session.last_progress = self._clock()
            self.timers.start(stall_timer(session.id), self.config.stall_timeout_s)
        return session

    def pump(self, session: Session) -> None:
        """Send everything the service has not yet been told on this session, in order."""
        if not session.can_send:
            return
        for utterance in session.pending():
            while utterance.sent < len(utterance.audio):
                end = min(len(utterance.audio), utterance.sent + FRAME_BYTES)
                if utterance.sent == 0:
                    utterance.stream_start = session.sent_bytes / BYTES_PER_SECOND
                session.sent_bytes += end - utterance.sent
                chunk = bytes(utterance.audio[utterance.sent : end])
                self._emit(act.SendAudio(session.id, chunk))
                utterance.sent = end
            if utterance.state is UtteranceState.OPEN:
                return  # later utterances cannot exist while this one is still open
            if utterance.state is UtteranceState.CLOSED:
                self._send_end(session, utterance)

    def _send_end(self, session: Session, utterance: Utterance) -> None:
        owed_before = session.owes_final()
        last = self.stopped and utterance is self._utterances[-1]
        if self.dialect.can_finalize and (not last or self.config.keep_session):
            utterance.ended_by = EndKind.FINALIZE
            session.ledger.finalize_sent()
            session.finalized_at = self._clock()
            text = FINALIZE_MESSAGE
        else:
            utterance.ended_by = EndKind.END
            session.move(SessionState.ENDING)
            text = self.dialect.end_message
        utterance.stream_end = session.sent_bytes / BYTES_PER_SECOND
        utterance.move(UtteranceState.OWED)
        self._emit(act.SendText(session.id, text))
        if not owed_before:
            # The wait for a sign of life starts now; sending is not itself progress.
            session.last_progress = max(session.last_progress, self._clock())
            self.timers.start(stall_timer(session.id), self.config.stall_timeout_s)
            self.timers.start(probe_timer(session.id), self.config.probe_interval_s)

    def opened(self, conn: int, offset: int = 0) -> None:
        session = self.live(conn)
        if session is None or session.state is not SessionState.CONNECTING:
            return
        session.move(SessionState.OPEN)
        session.last_progress = self._clock()
        session.sent_bytes = offset
        session.origin_s = offset / BYTES_PER_SECOND
        warm = f" (warm, at {session.origin_s:.2f} s of its stream)" if offset else ""
        self._emit(act.Log.debug(f"service session {conn} open{warm}"))
        self.pump(session)

    def progress(self, conn: int) -> None:
        session = self.live(conn)
        if session is not None and not session.garbled:
            session.last_progress = self._clock()

    def stop_watching(self, session: Session) -> None:
        self.timers.cancel(stall_timer(session.id))
        self.timers.cancel(probe_timer(session.id))

    def release(self, session: Session, *, reusable: bool = False) -> None:
        """Let a session go: its timers stop, the adapter closes it (or, ``reusable``, keeps it
        warm for another request), its reports are ignored."""
        session.move(SessionState.GONE)
        self.stop_watching(session)
        self._emit(act.Disconnect(session.id, reusable))
        if session is self._pulse_session:
            self._pulse_session = None

    def clean(self, session: Session) -> bool:
        """May this session serve another request (asked only once the transcript is out)?
        Only if every turn it was given has its final (nothing owed, nothing that a late answer
        could still belong to)."""
        return (
            self.config.keep_session
            and self.dialect is Dialect.PULSE
            and session.state is SessionState.OPEN
            and not session.garbled
            and all(u.settled for u in session.utterances)
        )
