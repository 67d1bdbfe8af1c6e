"""Where utterances begin and end, and when the turn is over: the request's audio side, free
of I/O.

The :class:`Segmenter` takes the client's audio as it comes (any chunking, any format the
converter knows) and says, as a list of :data:`Segment` values, what the request machine
(request.py) must do with it: open an utterance, add audio to it, note where its speech ends,
close it, or end the turn. It owns everything that decides those points and nothing else:

- conversion to the pipeline format and framing of what goes out into whole frames
  (:data:`FRAME_MS`);
- the voice-activity gate (vad/gate.py) and its events;
- the *pause rule*: an utterance is settled ``finalize_after_ms`` after its speech on the
  audio clock, before the gate closes; from ``pause_tail_ms`` into a pause the audio is held
  back (sent on if speech resumes, dropped if not); past ``dictation_after_s`` of audio out a
  pause no longer splits (dictation);
- the re-recognition buffer: a command split by a pause is re-sent whole from its start when
  speech resumes, always (``re_recognize``) or while the request's audio stays within the
  billing bound (``rejoin``, the default);
- the length cap (``max_utterance_s``), endpointing and the command cap, which end the turn.

The request machine keeps sessions, liveness, retries, replay, fallback and the answer: what
the segmenter says is the same whoever transcribes and whatever the service does, so it is
tested alone on synthetic audio (tests/core/test_segmenter.py), deterministically.

States and transitions
======================
``SegmenterState``; the moves, each with its cue, are the table ``MOVES`` (checked against this
diagram by tests/core/test_state_tables.py; a move not in it raises
:class:`~wyoming_lightning.core.fsm.IllegalTransition`)::

    IDLE --format--> QUIET
    QUIET --speech--> OPEN
    OPEN --speech--> OPEN
    OPEN --cut--> QUIET
    OPEN --closed--> QUIET
    OPEN --pause_held--> HOLDING
    HOLDING --resumed--> OPEN
    HOLDING --closed--> HELD_CLOSED
    HOLDING --gate_closed--> OPEN
    HELD_CLOSED --resumed--> QUIET
    HELD_CLOSED --gate_closed--> QUIET
    QUIET | OPEN | HOLDING | HELD_CLOSED --stop--> STOPPED

QUIET: no utterance open. OPEN: an utterance takes audio. HOLDING: an utterance is open and
its pause, past the tail, is held back. HELD_CLOSED: the utterance was settled at the pause
and what follows is still held back (speech resuming releases it into the next utterance,
which its first frame opens; the gate closing drops it as silence). A close with nothing open
(audio-stop, or the gate closing in QUIET) is not a move.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from wyoming_lightning.core.audio import AudioConverter, AudioFormatError, Framer, PcmFormat
from wyoming_lightning.core.fsm import IllegalTransition
from wyoming_lightning.core.pipeline_format import BYTES_PER_SECOND, SAMPLE_RATE, SAMPLE_WIDTH
from wyoming_lightning.core.turn import TurnVerdict
from wyoming_lightning.core.vad.events import SpeechAudio, SpeechEnd, SpeechStart
from wyoming_lightning.core.vad.gate import VadGate

FRAME_MS = 100
"""Audio per frame sent to the service."""
FRAME_BYTES = max(2, BYTES_PER_SECOND * FRAME_MS // 1000) // 2 * 2
COVER_MS = 0
"""A verdict counts for the turn only if no speech was heard after the audio its words cover: an
interim 300 ms before the end missed the "to" of "add milk to" on HA 2026.11 (judged
"add milk", no template, so the timer cut the command). A word said since is never assumed."""
ACOUSTIC_MAX_RUNS = 4
"""The acoustic model (smart_turn.py) runs at most this many times per request (each run is
50-200 ms of CPU): a command pauses only a few times, and past that the timer decides alone."""
ACOUSTIC_PAUSE_MS = 200
"""The acoustic model judges a pause at least this long (it was trained on turns followed by
about 200 ms of silence), and once per pause."""
ACOUSTIC_WINDOW_BYTES = 8 * BYTES_PER_SECOND
"""The acoustic model reads the last 8 s of what was said."""
RE_RECOGNIZE_MAX_S = 8.0
"""Re-recognition re-sends a command up to this long: past it the speaker is dictating, not
commanding, and re-sending at every pause would bill the square of its length."""
BOUND_PER_S = 1.3
BOUND_EXTRA_S = 0.5
"""The billing bound a rejoin keeps to (``rejoin``): a request sends at most 1.3 x its speech
+ 0.5 s of audio, its speech counted from the first utterance's first speech frame (its
pre-roll is audio sent, not speech)."""


def billed_bound_s(speech_s: float) -> float:
    """The most audio a request with ``speech_s`` of speech may send (and bill): the bound the
    rejoin keeps to, and the one the benchmarks check every request against."""
    return BOUND_PER_S * speech_s + BOUND_EXTRA_S


@dataclass(frozen=True, kw_only=True)
class SegmenterConfig:
    """The request settings that decide utterance boundaries (``RequestConfig`` extends it)."""

    early_finalize: bool = True
    finalize_after_ms: int | None = 200
    vad_lag_ms: int = 0
    """How late the VAD calls the end of speech (its last "speech" frame ends this much after
    the speaker stopped, on average): the pause rule counts it as pause already, so that
    ``finalize_after_ms`` is measured from when the speaker stopped, not from when the gate
    noticed."""
    pause_tail_ms: int = 10_000
    """How much of a pause (counted as ``finalize_after_ms`` is) goes to the service before the
    rest is held back until speech resumes; at most ``finalize_after_ms``."""
    dictation_after_s: float | None = None
    """After this much audio has gone to the service in one request, pauses no longer split it:
    the speaker is dictating, not commanding, and every further split would be read without
    its context while only the last one could save wait. ``None``: pauses split throughout."""
    re_recognize: bool = False
    """When speech resumes after a pause split the command, send the whole command again from
    its start, so the service recognises it with its context; its final replaces the earlier
    ones (a false split costs billed seconds instead of accuracy)."""
    rejoin: bool = True
    """When speech resumes after a pause split the command, re-send the command whole from its
    start (as ``re_recognize`` does) if the request's audio then stays within the billing bound
    (:data:`BOUND_PER_S` x the audio since its speech began + :data:`BOUND_EXTRA_S`, less the
    pause tail the last utterance may still send); else only what follows the pause goes.

    Why: the service (like Pulse, which settles by itself only after 800 ms of silence, and
    never in steady noise) reads a command with a pause in it whole, while the early finalize
    settles it at ``finalize_after_ms`` of pause, so that the wait after audio-stop is short.
    A command split there was read worse in its fragments than whole (measured on real speech
    in noise, ``python -m benchmarks noise``: the largest cause of the words the bridge lost).
    Rejoining keeps the early finalize, and with it the wait, and pays for the accuracy in
    billed seconds, never beyond the bound."""
    max_utterance_s: float = 30.0
    endpoint_silence_ms: int | None = None
    """With endpointing: end the command after this much silence once someone spoke (with a
    judge, words no template decides wait longer: see ``Segmenter._check_endpoint``)."""
    no_speech_timeout_s: float | None = None
    """With endpointing: end a request in which nobody spoke after this much audio."""
    max_command_s: float | None = None
    """With endpointing: end the command after this much audio, speech or not."""
    turn_judge: Callable[[str], TurnVerdict] | None = None
    """With endpointing: what the words heard so far say about the turn (turn.py); ``None``:
    the silence timer alone decides."""
    turn_complete_ms: int = 250
    """With a judge: the pause (counted as ``finalize_after_ms`` is, from the speech) that ends
    a turn whose words are a whole command."""
    turn_unfinished_ms: int = 1500
    """With a judge: the silence that ends a turn whose words are only the start of a command
    (the backstop: "turn on the" and nothing more)."""
    turn_acoustic: Callable[[bytes], float] | None = None
    """With a judge: how likely the turn is over (0-1) from the last 8 s of its audio
    (smart_turn.py), asked at a pause whose words no template decides; below one half the
    turn waits as for the start of a command (``turn_unfinished_ms``). ``None``: the timer
    decides such words alone."""
    turn_finalize_ms: int = 200
    """With a judge and endpointing: the pause (counted as ``finalize_after_ms`` is) after which
    the utterance is settled, unless the words heard for it are known to be only the start of a
    command; then ``finalize_after_ms`` still applies. 0: ``finalize_after_ms`` throughout.

    Why: a service's interims trail the speech (Whisper's come about a second apart), so the
    words of a short command usually arrive only with the final of its finalize; the turn can
    end no sooner than that final. Settling at a short pause brings the final, and with it the
    judge's verdict, 350 ms sooner. A pause that was not the end (the final is the start of a
    command, or speech resumes) is a split as any other: with ``re_recognize`` the command is
    re-sent whole when speech resumes."""


# ---------------------------------------------------------------------------------- output


@dataclass(frozen=True, slots=True)
class UtteranceStart:
    """A new utterance opens. ``replay``: the command so far, re-sent first (re-recognition);
    then the last ``replaces`` utterances no longer count toward the answer."""

    replay: bytes = b""
    replaces: int = 0


@dataclass(frozen=True, slots=True)
class UtteranceAudio:
    """Audio for the open utterance."""

    data: bytes


@dataclass(frozen=True, slots=True)
class SpeechMark:
    """The open utterance's speech ends, so far, after its first ``length`` bytes."""

    length: int


@dataclass(frozen=True, slots=True)
class UtteranceEnd:
    """The open utterance is complete: settle it."""


@dataclass(frozen=True, slots=True)
class EndOfTurn:
    """The server, not the client, ends the command (endpointing, the command cap)."""

    reason: str


Segment = UtteranceStart | UtteranceAudio | SpeechMark | UtteranceEnd | EndOfTurn

# ---------------------------------------------------------------------------------- states


class SegmenterState(enum.Enum):
    IDLE = "no audio format yet"
    QUIET = "no utterance open"
    OPEN = "an utterance takes audio"
    HOLDING = "an utterance open, its pause held back"
    HELD_CLOSED = "settled at the pause, the pause still held back"
    STOPPED = "the audio is over"


class Cue(enum.Enum):
    """What moves the segmenter."""

    FORMAT = "format"
    SPEECH = "speech"
    PAUSE_HELD = "pause_held"
    RESUMED = "resumed"
    CLOSED = "closed"
    CUT = "cut"
    GATE_CLOSED = "gate_closed"
    STOP = "stop"


_Q, _O, _H, _HC = (
    SegmenterState.QUIET,
    SegmenterState.OPEN,
    SegmenterState.HOLDING,
    SegmenterState.HELD_CLOSED,
)
MOVES: dict[tuple[SegmenterState, Cue], SegmenterState] = {
    (SegmenterState.IDLE, Cue.FORMAT): _Q,
    (_Q, Cue.SPEECH): _O,
    (_O, Cue.SPEECH): _O,
    (_O, Cue.CUT): _Q,
    (_O, Cue.CLOSED): _Q,
    (_O, Cue.PAUSE_HELD): _H,
    (_H, Cue.RESUMED): _O,
    (_H, Cue.CLOSED): _HC,
    (_H, Cue.GATE_CLOSED): _O,
    (_HC, Cue.RESUMED): _Q,
    (_HC, Cue.GATE_CLOSED): _Q,
    **{(state, Cue.STOP): SegmenterState.STOPPED for state in (_Q, _O, _H, _HC)},
}
"""(state, cue) -> the next state; anything else is a bug here (``IllegalTransition``)."""


class Segmenter:
    """One request's audio, cut into utterances; see the module docstring."""

    def __init__(self, config: SegmenterConfig, gate: VadGate) -> None:
        self.config = config
        self.gate = gate
        self.state = SegmenterState.IDLE
        self._converter: AudioConverter | None = None
        self.format: PcmFormat | None = None
        self._framer = Framer(FRAME_BYTES)
        self._max_utterance_bytes = int(config.max_utterance_s * BYTES_PER_SECOND)
        self._endpointing = not (
            config.max_command_s is None
            and config.no_speech_timeout_s is None
            and config.endpoint_silence_ms is None
        )
        """Some rule of :meth:`_check_endpoint` is on (else it is skipped, chunk after chunk)."""
        self._length = 0
        """Bytes in the open utterance (its replay included)."""
        self._marked: int | None = None
        self._held = bytearray()
        """Audio held back in HOLDING and HELD_CLOSED."""
        self._held_at = 0.0
        """The pause at which the hold began (a shorter one means speech resumed)."""
        self._quick_finalize = bool(
            config.turn_finalize_ms
            and config.turn_judge is not None
            and config.endpoint_silence_ms is not None
            and config.early_finalize
            and config.finalize_after_ms is not None
            and config.turn_finalize_ms < config.finalize_after_ms
        )
        """The turn rule settles utterances at a short pause (``turn_finalize_ms``)."""
        self._command: bytearray | None = (
            bytearray() if config.re_recognize or config.rejoin else None
        )
        """With re-recognition: the audio of the command so far (every utterance since the last
        split a pause did not make), to be re-sent when speech resumes after a pause."""
        self._command_parts = 0
        self._began_ms: float | None = None
        """Where the first utterance's speech began on the audio clock, after its pre-roll (the
        bound's speech is counted from there: the pre-roll is audio sent, not speech; counted
        as speech it let a rejoin bill 1.3 x 0.3 s more than the bound allows, as on three
        commands of the pause set)."""
        self.utterances = 0
        """Utterances opened so far."""
        self.dropped_bytes = 0
        self.streamed_bytes = 0
        """Audio given to utterances so far (replays of a command not counted)."""
        self.replayed_bytes = 0
        self.kept_pause_bytes = 0
        """Pauses the gate dropped that went out all the same (dictation, ``_pause_kept``)."""
        self.received_s = 0.0
        """Seconds of audio the client sent after ``audio-start``, each chunk in its format."""
        self._out: list[Segment] = []
        self.turn = TurnVerdict.UNKNOWN
        """The judge's verdict on the words heard so far (UNKNOWN until it has any)."""
        self._said = bytearray()
        """With the acoustic model: the last 8 s given to utterances (its input)."""
        self._sounds_over: bool | None = None
        """The acoustic model's verdict on the present pause (None: not asked yet)."""
        self.acoustic_runs = 0
        """Runs of the acoustic model in this request (at most :data:`ACOUSTIC_MAX_RUNS`)."""
        self._judged_at_ms: float | None = None
        """Where the speech the judged words cover ends: speech after it is not in them."""
        self._judged_final = False
        """The verdict is on finals alone, every closed utterance's (see :meth:`heard`)."""
        self._closes = 0
        """Utterances closed so far."""
        self._closed_speech_end_ms: float | None = None
        self._closed_at_ms = 0.0
        """Where the speech ended, and the audio clock, when the last utterance was closed."""
        self._settle_ms: float | None = None
        """How long the service took to answer the last close: the audio clock from the close
        to :meth:`heard` with its final (``None``: not seen yet for that close)."""
        self._settle_close = 0
        """The close whose answer ``_settle_ms`` measures."""
        self._ended = False
        self._judged = config.turn_judge is not None and self._endpointing
        """The turn rule reads the audio clock when words arrive (the settle time, where the
        words' speech ends): audio read late would move those readings, so none is."""

    # ------------------------------------------------------------------ the entry points

    @property
    def undecided_ms(self) -> float:
        """How much more audio can come before any rule here may settle an utterance or end
        the turn on it.

        The adapter may read a client's audio late by up to this much (it then arrives in
        one piece): the segmenter still sees every chunk, in order, so what it decides is the
        same, and reading within this room moves no decision in time either. The room runs to
        the next rule's pause from where the speech ended (while the VAD hears speech, as if
        it stopped now: the pause if the next frame is silence); before any speech, from
        the next frame. Near a cap there is none (issue 27: a wake-up per 10 ms chunk was
        most of a stream's CPU). With the turn rule, none at all: it reads the audio clock
        when the service's words arrive (how long a final took, where the words' speech
        ends), and audio read late would move those readings. A loud frame the VAD doubts
        holds the pause at 0 without moving the speech's end (the gate's sustain): the room
        is counted from that end.
        """
        if self._judged:
            return 0.0
        gate, config = self.gate, self.config
        lag, frame = config.vad_lag_ms, gate.frame_ms
        room = math.inf
        if config.early_finalize and config.finalize_after_ms is not None:
            # The pause rule settles the open utterance ``finalize_after_ms`` into a pause,
            # counted from the speech's end (as if the next frame were silence); an utterance
            # not open yet needs speech first, and its pause starts after it.
            spoken = gate.speech_end_ms
            pause: float = lag
            if self._open and spoken is not None:
                pause = gate.audio_in_ms - spoken + lag
            room = config.finalize_after_ms - pause
        # The gate closes after its hangover of silence (judged in whole frames, which a loud
        # frame it doubts starts again), and settles what is still open; the endpointing timer
        # ends the turn after its silence. Either needs a segment opened first.
        silence = gate.silence_ms or 0.0
        hangover = gate.config.hangover_ms
        room = min(room, hangover - (silence if gate.is_open else 0.0) - frame)
        if config.endpoint_silence_ms is not None and not self._ended:
            room = min(room, config.endpoint_silence_ms - silence - frame)
        if self._endpointing:
            heard_ms = gate.audio_in_ms
            cap = config.max_command_s
            if cap is not None:
                room = min(room, cap * 1000 - heard_ms)
            quiet = config.no_speech_timeout_s
            if quiet is not None and not self.utterances:
                room = min(room, quiet * 1000 - heard_ms)
        return max(0.0, room)

    def heard(self, text: str, *, final: bool = False) -> list[Segment]:
        """The words of the request so far (its finals and the open utterance's interim): with
        a judge and endpointing, they may end the turn now, a pause being under way.

        ``final``: ``text`` is the finals of every closed utterance and nothing else (no
        utterance open, none still owing its words). Only then is it known which speech the
        words cover: all of it up to the last close. An interim covers some unknown part of
        the open utterance's audio; it is stamped with the speech end at its arrival, which
        may be later than the audio it read. "Add milk to ... my shopping list" streamed in
        real time to the emulator's Whisper: the interim "Add milk." came about 450 ms into
        the pause after "to" and passed for all of the speech; no template decides "add
        milk", so the 700 ms timer ended the turn before the final "Add milk to..." came (3
        runs of 3, as on HA 2026.11). So an interim's verdict may only make the turn wait
        (the start of a command holds the finalize back); ending a turn takes a final's words.

        The templates are matched here, when text arrives, never per chunk of audio.
        """
        judge = self.config.turn_judge
        if judge is None or not self._endpointing or self.state is SegmenterState.STOPPED:
            return []
        self.turn = judge(text)
        self._judged_final = final and self._closes > 0
        if self._judged_final:
            self._judged_at_ms = self._closed_speech_end_ms
            if self._settle_close != self._closes:
                self._settle_close = self._closes
                self._settle_ms = self.gate.audio_in_ms - self._closed_at_ms
        else:
            self._judged_at_ms = self.gate.speech_end_ms
        self._check_endpoint()
        return self._take()

    def set_format(self, fmt: PcmFormat) -> str | None:
        """The client's audio format (``audio-start``, or a chunk that changes it); a format
        the converter cannot take is the returned reason, and nothing changes."""
        try:
            converter = AudioConverter(fmt)
        except AudioFormatError as err:
            return str(err)
        self.format = fmt
        self._converter = converter
        if self.state is SegmenterState.IDLE:
            self._move(Cue.FORMAT)
        return None

    def drain(self) -> list[Segment]:
        """What the converter still holds, through the gate (before a format change)."""
        if self._converter is not None:
            self._feed_gate(self._converter.flush())
        return self._take()

    def feed(self, data: bytes) -> list[Segment]:
        """One chunk of the client's audio in the current format."""
        assert self._converter is not None
        pcm = self._converter.convert(data)
        if pcm:
            self._handle_gate_events(self.gate.process(pcm))
        pause = self.pause_ms  # the gate's judgement moves only with its input
        self._mark_speech(pause)
        self._finalize_on_pause(pause)
        if self._endpointing:
            self._check_endpoint()
        out, self._out = self._out, []
        return out

    def finish(self) -> list[Segment]:
        """The audio is over: everything still held in the converter, the gate and the framer
        goes out, and the open utterance closes."""
        if self._converter is not None:
            self._feed_gate(self._converter.flush())
        self._handle_gate_events(self.gate.flush())
        self._mark_speech(self.pause_ms)
        self._close_current()
        self._move(Cue.STOP)
        return self._take()

    @property
    def sent_s(self) -> float:
        """Audio given to utterances: what the gate let through, less the silence held back and
        dropped, plus the re-sent commands."""
        return (
            self.gate.audio_out_ms / 1000
            + (self.replayed_bytes + self.kept_pause_bytes - self.dropped_bytes) / BYTES_PER_SECOND
        )

    def count(self, data: bytes, fmt: PcmFormat | None) -> None:
        """A chunk the client sent (in ``fmt``, or the current format), used or not."""
        shape = fmt or self.format
        if shape is not None:
            self.received_s += len(data) / max(1, shape.rate * shape.width * shape.channels)

    def summary(self) -> str:
        """The request's audio in one line, for the log."""
        received_s = self.received_s
        replayed = self.replayed_bytes / BYTES_PER_SECOND
        again = f" ({replayed:.2f} s of it re-sent after pauses)" if replayed else ""
        return (
            f"audio received {received_s:.2f} s, sent {self.sent_s:.2f} s{again}, speech "
            f"{self.gate.speech_ms / 1000:.2f} s in {self.utterances} utterance(s)"
        )

    # ------------------------------------------------------------------ plumbing

    def _take(self) -> list[Segment]:
        out, self._out = self._out, []
        return out

    def _move(self, cue: Cue) -> None:
        new = MOVES.get((self.state, cue))
        if new is None:
            raise IllegalTransition(f"SegmenterState: {self.state.name} --{cue.value}-->")
        self.state = new

    @property
    def _open(self) -> bool:
        return self.state is SegmenterState.OPEN or self.state is SegmenterState.HOLDING

    @property
    def _holding(self) -> bool:
        return self.state is SegmenterState.HOLDING or self.state is SegmenterState.HELD_CLOSED

    def _feed_gate(self, pcm: bytes) -> None:
        if pcm:
            self._handle_gate_events(self.gate.process(pcm))

    def _handle_gate_events(self, events: Iterable[SpeechStart | SpeechAudio | SpeechEnd]) -> None:
        for event in events:
            if isinstance(event, SpeechStart):
                if self._began_ms is None:
                    first_speech = event.start_sample + len(event.pre_roll) // SAMPLE_WIDTH
                    self._began_ms = first_speech * 1000 / SAMPLE_RATE
                self._speech(self._pause_kept(event.gap) + event.pre_roll)
            elif isinstance(event, SpeechAudio):
                if self._holding:
                    self._held += event.data
                else:
                    self._speech(event.data)
            else:
                if self._holding:
                    # The pause outlasted the hangover: what was held back is silence, never sent.
                    self.dropped_bytes += len(self._held)
                    self._held.clear()
                    closed_at_pause = self.state is SegmenterState.HELD_CLOSED
                    self._move(Cue.GATE_CLOSED)
                    if closed_at_pause:
                        continue  # already settled at the pause
                if event.reason == "max_utterance" or (
                    self.config.early_finalize and not self._dictating
                ):
                    if event.reason == "max_utterance":
                        self._end_command()
                    self._close_current()

    # ------------------------------------------------------------------ the pause rule

    @property
    def pause_ms(self) -> float | None:
        """How far the audio clock is past the end of the last speech frame (the VAD's lag
        counted as pause), or ``None`` before any speech.

        Measured on the audio clock (everything the gate was fed, the frame it has not judged
        yet included), so the rule "finalize F ms after the speech" is met to the chunk, not
        rounded up to the gate's next frame boundary (up to a frame, 32 ms with silero, late).
        Zero while the last judged frame was speech: the pause has not begun.
        """
        end = self.gate.speech_end_ms
        silence = self.gate.silence_ms
        if end is None or silence is None:
            return None
        if silence <= 0:
            return 0.0
        return self.gate.audio_in_ms - end + self.config.vad_lag_ms

    def _mark_speech(self, pause: float | None) -> None:
        """Note where the open utterance's speech ends so far: while the VAD hears speech
        (``pause`` is 0), at the end of the audio it holds."""
        if pause == 0.0 and self._length != self._marked and self._open:
            self._marked = self._length
            self._out.append(SpeechMark(self._length))

    def _finalize_on_pause(self, silence: float | None) -> None:
        """Hold the pause back ``pause_tail_ms`` after the speech, and settle the utterance
        when the audio clock reaches the end of its speech plus ``finalize_after_ms``, before
        the gate closes.

        The gate keeps its longer hangover so that no word tail is clipped and a short pause
        does not reopen it; but the wait the user feels starts when they stop speaking, so the
        service is asked to finalize early. The service needs no more of the pause than a tail
        behind the last word, so from ``pause_tail_ms`` on the audio is held back: if speech
        resumes it goes on (into the same utterance before the finalize, into the next one
        after it: nothing lost), if not it is silence and dropped. The last pause of a command,
        the one that ends it, is then never paid for beyond that tail. Dictation (past
        ``dictation_after_s``) holds nothing back: Whisper read 15-30 s recordings half a point
        worse with their pauses cut to the tail, and a long request has room in its budget.
        """
        limit = self._finalize_limit()
        if limit is None or not self.config.early_finalize or silence is None:
            return
        holding = self._holding
        if not holding and self._dictating:
            return  # dictation keeps its pauses (up to the hangover): they read better whole
        # Below, not dictating: holding began before the dictation point and, holding, the
        # request streams nothing that could carry it past.
        hold_at = min(limit, self.config.pause_tail_ms)
        if holding:
            # Speech resumed: the pause clock starts again. Compared with the point the hold
            # began at, not today's: the limit moves with the turn judge's verdict.
            if silence < self._held_at:
                held = bytes(self._held)
                self._held.clear()
                self._move(Cue.RESUMED)
                self._speech(held)
            elif silence >= limit and self.state is SegmenterState.HOLDING:
                self._close_current()
            return
        if self.state is SegmenterState.OPEN and self.gate.is_open and silence >= hold_at:
            self._held_at = hold_at
            self._move(Cue.PAUSE_HELD)
            if silence >= limit:
                self._close_current()

    def _pause_kept(self, gap: bytes) -> bytes:
        """The part of a pause the gate dropped that goes out after all: all of it when an
        utterance stays open over the pause (dictation) and the request stays within the
        billing bound, else nothing.

        A dictated recording is read as one utterance with its pauses in it; the gate cuts a
        long pause to its hangover and the next pre-roll, and Whisper read 15-30 s recordings
        so shortened worse than whole (``python -m benchmarks noise --only long``). Only
        within an open utterance: a pause between utterances is the service's business no
        more (a new utterance starting with seconds of silence gains nothing)."""
        if not gap or self.state is not SegmenterState.OPEN or not self._dictating:
            return b""
        if not self._fits_bound(len(gap)):
            return b""
        self.kept_pause_bytes += len(gap)
        return gap

    def _finalize_limit(self) -> int | None:
        """The pause that settles the open utterance: ``turn_finalize_ms`` under the turn rule
        unless the words heard for all of its speech are the start of a command ("turn on
        the", "set a timer for", "um": the speaker is looking for the rest), else
        ``finalize_after_ms``. Read per chunk; the verdict itself moves only with text."""
        limit = self.config.finalize_after_ms
        if not self._quick_finalize or limit is None:
            return limit
        if self.turn is TurnVerdict.UNFINISHED and self._words_cover_speech():
            return limit
        return min(limit, self.config.turn_finalize_ms)

    @property
    def _dictating(self) -> bool:
        """Past ``dictation_after_s`` of streamed audio: a pause no longer ends an utterance.

        From then on the utterance stays open over the speaker's pauses (the gate still keeps
        their silence out), and is settled at audio-stop or by the length cap. Measured on real
        speech (``python -m benchmarks.gate_diff --dictation-after``), splitting dictation at
        its pauses cost more than a WER point on 15-30 s recordings.
        """
        after = self.config.dictation_after_s
        return after is not None and self.streamed_bytes >= after * BYTES_PER_SECOND

    # ------------------------------------------------------------------ utterances

    def _speech(self, pcm: bytes) -> None:
        for frame in self._framer.push(pcm):
            self._append_frame(frame)

    def _append_frame(self, frame: bytes) -> None:
        if not self._open:
            self._start_utterance()
        self._move(Cue.SPEECH)
        self._give(frame)
        self.streamed_bytes += len(frame)
        if self._length >= self._max_utterance_bytes:
            self._end_command()  # a forced cut, not a pause: what follows starts afresh
            self._end_utterance()
            self._move(Cue.CUT)

    def _start_utterance(self) -> None:
        """Open an utterance. Speech resumed after a pause split the command: it re-sends the
        command from its start, and the utterances it repeats no longer count toward the answer.

        Only up to :data:`RE_RECOGNIZE_MAX_S` and within ``max_utterance_s`` (a longer command
        starts afresh, as a forced cut does).
        """
        self.utterances += 1
        self._length = 0
        self._marked = None
        command = self._command
        if command is None:
            self._out.append(UtteranceStart())
            return
        limit = min(self._max_utterance_bytes, int(RE_RECOGNIZE_MAX_S * BYTES_PER_SECOND))
        if (
            command
            and len(command) + FRAME_BYTES < limit
            and (self.config.re_recognize or self._fits_bound(len(command)))
        ):
            self._out.append(UtteranceStart(bytes(command), self._command_parts))
            self._length = len(command)
            self.replayed_bytes += len(command)
        else:
            self._end_command()
            self._out.append(UtteranceStart())
        self._command_parts += 1

    def _fits_bound(self, extra_bytes: int) -> bool:
        """Sending ``extra_bytes`` more than the gate lets out (a rejoin's replay, a dictated
        pause) now keeps the request within the billing bound, the pause tail its last
        utterance may still send included.

        The audio still to come adds at most itself to what is sent (the gate sends no more
        than it hears) and 1.3 times itself to the bound, so a rejoin that fits now still fits
        at audio-stop. Counted from the first utterance's speech, not from audio-start nor from
        its pre-roll: the silence before the speech is no part of what the bound allows."""
        if self._began_ms is None:
            return False
        speech_s = (self.gate.audio_in_ms - self._began_ms) / 1000
        sent_s = self.sent_s + extra_bytes / BYTES_PER_SECOND
        tail_s = self._tail_ms() / 1000
        return sent_s + tail_s <= billed_bound_s(speech_s)

    def _tail_ms(self) -> int:
        """The most of a pause that goes out behind the last words: the pause tail where the
        pause rule holds the rest back, else the gate's hangover."""
        limit = self.config.finalize_after_ms
        if limit is None or not self.config.early_finalize:
            return self.gate.config.hangover_ms
        return min(limit, self.config.pause_tail_ms)

    @property
    def may_replay(self) -> bool:
        """A later utterance may yet re-send the ones settled so far (re-recognition, or a
        rejoin not past dictation): text streamed now could not be taken back."""
        if self.config.re_recognize:
            return True
        return self._command is not None and not self._dictating

    def _give(self, pcm: bytes) -> None:
        """Audio into the open utterance: counted, sent, kept for the acoustic model and for
        re-recognition."""
        self._length += len(pcm)
        self._out.append(UtteranceAudio(pcm))
        self._heard_audio(pcm)
        if self._command is not None:
            self._command += pcm

    def _heard_audio(self, pcm: bytes) -> None:
        """Keep the acoustic model's input; new audio means a new pause to judge."""
        if self.config.turn_acoustic is None:
            return
        self._said += pcm
        del self._said[:-ACOUSTIC_WINDOW_BYTES]
        self._sounds_over = None

    def _end_command(self) -> None:
        """A split no pause made (the length cap): the next utterance re-sends nothing before it."""
        if self._command is not None:
            self._command = bytearray()
            self._command_parts = 0

    def _close_current(self) -> None:
        rest = self._framer.flush()
        if rest:
            if not self._open:
                self._start_utterance()
                self._move(Cue.SPEECH)
            self._give(rest)
        if self._open:
            self._end_utterance()
            self._move(Cue.CLOSED)

    def _end_utterance(self) -> None:
        """Settle the open utterance; note where its speech ended and when (its final will
        cover that speech, and the time it takes is the service's settle time)."""
        self._out.append(UtteranceEnd())
        self._closes += 1
        self._closed_speech_end_ms = self.gate.speech_end_ms
        self._closed_at_ms = self.gate.audio_in_ms

    # ------------------------------------------------------------------ end of turn

    def _words_cover_speech(self) -> bool:
        """The judged words can be the whole command: no more than :data:`COVER_MS` of speech
        came after them (an interim trails the speech; a word said since may not be in it)."""
        judged, end = self._judged_at_ms, self.gate.speech_end_ms
        return judged is not None and end is not None and end - judged <= COVER_MS

    def _sounds_unfinished(self) -> bool:
        """The acoustic model says the speaker is not done (words known, no template decides).

        Asked once per pause of at least :data:`ACOUSTIC_PAUSE_MS`, at most
        :data:`ACOUSTIC_MAX_RUNS` times per request; past that it says nothing."""
        model = self.config.turn_acoustic
        if model is None or self.config.turn_judge is None or not self._said:
            return False
        if self._sounds_over is None:
            pause = self.pause_ms
            if pause is None or pause < ACOUSTIC_PAUSE_MS:
                return False
            if self.acoustic_runs >= ACOUSTIC_MAX_RUNS:
                return False
            self.acoustic_runs += 1
            self._sounds_over = model(bytes(self._said)) >= 0.5
        return not self._sounds_over

    def _timer_answers_at_ms(self) -> float:
        """The pause at which the silence timer alone (``--no-turn-intents``) would answer at
        the earliest: it settles at ``finalize_after_ms`` of pause, and the final takes the
        service's settle time, as observed in this request, to come back."""
        return (self.config.finalize_after_ms or 0) + (self._settle_ms or 0.0)

    def _check_endpoint(self) -> None:
        """With endpointing the server, not the client, ends the command.

        With a judge, on the words of the finals (:meth:`heard`) covering all the speech:

        - a whole command ends at ``turn_complete_ms`` of pause;
        - the start of one waits for ``turn_unfinished_ms`` of silence (the backstop), as do
          words not yet known for the last speech (the early finalize's final brings them);
        - words no template decides (UNKNOWN: a question for an agent, a name the templates
          do not know, a recognizer's garble of a command cut by a pause: "Lock it.", "Santa
          Mutter was tattooed.") end neither sooner than ``endpoint_silence_ms`` of silence
          nor before the pause at which the timer rule would answer,
          :meth:`_timer_answers_at_ms`. Ending them at the 700 ms timer, as before, cut 5 of
          23 commands on HA 2026.11: the final of the 200 ms finalize came C = 600 ms later,
          800 ms into a 900 ms pause, found the timer long past and ended the turn at once.
          Waiting until ``finalize_after_ms`` + C costs such words nothing against the timer
          (its answer cannot come sooner: it waits for that final), and every pause shorter
          than that (1,150 ms at C = 600) survives. Speech resuming before then is speech
          after the judged words: the turn goes on, the next final is judged afresh.
        """
        heard_s = self.gate.audio_in_ms / 1000
        cap = self.config.max_command_s
        if cap is not None and heard_s >= cap:
            self._out.append(EndOfTurn(f"command cut at {cap:g} s of audio (the command cap)"))
            return
        quiet = self.config.no_speech_timeout_s
        if quiet is not None and not self.utterances and heard_s >= quiet:
            self._out.append(EndOfTurn(f"no speech in {quiet:g} s of audio; answering empty"))
            return
        limit = self.config.endpoint_silence_ms
        if limit is None or not self.utterances or self._ended:
            return
        known = self._judged_final and self._words_cover_speech()
        pause = self.pause_ms
        if self.turn is TurnVerdict.COMPLETE and known:
            if pause is not None and pause >= self.config.turn_complete_ms:
                self._ended = True
                self._out.append(EndOfTurn(f"a whole command heard, then {pause:g} ms of pause"))
            return
        judged = self.config.turn_judge is not None
        if (
            self.turn is TurnVerdict.UNFINISHED
            or (judged and not known)
            or self._sounds_unfinished()
        ):
            # The start of a command, or words not yet heard for the last speech (a service's
            # interims can trail it; the final of the early finalize brings them at the latest,
            # and the answer waits for that final anyway), or words no template decides said
            # as if more were to come: wait for the rest, up to the backstop.
            limit = max(limit, self.config.turn_unfinished_ms)
        elif judged and (pause is None or pause < self._timer_answers_at_ms()):
            return  # words no template decides: not before the timer rule would answer
        silence = self.gate.silence_ms
        if silence is None or silence < limit:
            return
        self._ended = True
        self._out.append(EndOfTurn(f"end of command detected after {silence:g} ms of silence"))
