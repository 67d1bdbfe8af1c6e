"""Which finals count, whose turn their words belong to, and which final ends a turn.

The live service answers one turn with *several* finals by default (``finalize_on_words``: a
final every few words; ``eou_timeout_ms``: a final after each pause of 800 ms), and the
bridge's ``finalize`` is answered by one more, the last, which covers the audio up to the point
where the finalize was sent. A server that ignores ``finalize_on_words=false`` sends its own
finals before *and after* the finalize has gone out: in a burst (a satellite flushing what it
buffered, a file client) every one of them arrives after it. So the answer cannot be "the first
final after the finalize". The vendor's own probe saw no ``from_finalize`` either, and arrival
times prove nothing. The ledger judges each final by *position* instead:

- **Whose words.** Each word (the bridge asks for word timestamps) belongs to the turn whose
  audio holds it: the turns of a connection lie end to end in its stream, each up to the
  stream offset at which its finalize was sent. A final for earlier audio is that turn's text,
  whenever it comes; one that straddles two turns is split between them.
- **Which final answers a finalize.** The turn is answered when its words are in: by a final
  whose last word reaches the end of the turn's speech (as the bridge's own VAD measured it,
  within :data:`REACH_S`), by an empty final once its finalize is out (the flush of a turn
  whose words all came earlier), or by words from a later turn (the service has gone past the
  finalize point). A word-count final that ends short of the speech is text, not the answer.
- **No word twice.** A word that ends no later than a word already counted is a copy (a
  repeated final, the finalize racing the server's own end of turn); a final that is partly a
  copy keeps only its new words. A speaker who says the same short thing twice gives words at
  two positions: both count.
- **A service that cuts turns itself.** Once one has shown a final of its own (one that
  answered no finalize), reaching the speech end no longer ends a turn (:class:`ServiceHabits`):
  a word-count final cut just before a short last word reaches it too, within a recognizer's
  word timing. Its turns end on an empty final, on later words, or when it goes quiet.
- **An echo.** When the server ended a turn itself (it has been seen doing so) and that final
  was taken as the answer, the finalize's own answer may follow, empty: it must not end the
  next turn.

Without word times (a server that ignores ``word_timestamps``) there is nothing to place a
final by, and the ledger falls back to order: the first new final after the finalize is its
answer, a repeat is the same text directly after the last final with nothing asked between.
From the service's ``from_finalize``, when it says so, ``True`` answers and ``False`` does not.

A replay after a lost connection starts a new ledger, since the new session recognises the
replayed audio afresh.
"""

from __future__ import annotations

import enum
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from wyoming_lightning.core.protocol import Result, Word

REACH_S = 0.25
"""A final whose last word ends at most this long before the end of its turn's speech (where
the bridge's VAD last heard speech, which it notices a little late) holds the turn's last words:
it answers the turn. Shorter than a short word with its gap, so that a word-count final cut
before the last word ("turn on the lights | on") is not taken for the answer. A final that
falls short of it (the VAD heard a breath after the last word) is text; the request machine
settles such a turn when the service has said nothing more for its stall timeout."""
COPY_SLACK_S = 0.05
"""Word times of a copy may be rounded or re-aligned this much (the service rounds to ms)."""
MAX_COUNTED = 64


def normalise(text: str) -> str:
    """Collapse whitespace so that two spellings of the same final compare equal."""
    return " ".join(text.split())


def join_texts(parts: Iterable[str]) -> str:
    """The session text: stripped segments joined with single spaces, as the service documents."""
    return " ".join(p for p in (normalise(x) for x in parts) if p)


class Verdict(enum.Enum):
    """What one final means for the turns of its connection."""

    REPEAT = "repeat"
    """A copy of words already counted: nothing is added and nothing ends."""
    ECHO = "echo"
    """The empty answer of a finalize whose turn a server final already ended."""
    TEXT = "text"
    """New words for their turns, which they do not end (the server's own final)."""
    ANSWER = "answer"
    """New words (possibly none) after which one or more turns are complete."""


@dataclass
class ServiceHabits:
    """What the bridge has learnt of the service, shared by every request of a server process.

    The bridge asks for ``finalize_on_words=false`` and a long end-of-utterance timer, so a
    service that obeys answers each turn with one final. Once a service has shown a final of its
    own (a final that was not the answer to a finalize: one before it, or one after it that falls
    short of the turn), it is known to cut turns itself, and from then on a final that reaches
    the end of a turn's speech is no longer taken for the answer (a word-count final cut before
    a short last word reaches it too, within the recognizer's timing): a turn then ends only on
    an empty final, on words past its finalize point, or when the service has said nothing more
    for the stall timeout (the request machine's ``_settle_heard``)."""

    own_finals: bool = False
    answer_delay_s: float = 0.0
    """The longest the service has taken from a ``finalize`` to the next final on its session:
    a service that went quiet for twice that long (and at least the stall timeout) after
    answering a turn has nothing more for it."""


@dataclass(frozen=True)
class Turn:
    """What the ledger needs to know of one turn (an utterance) on its connection."""

    start: float | None
    """Where its audio begins in the stream, seconds; ``None`` while none of it was sent."""
    end: float | None = None
    """The stream offset at which its end (finalize or end of session) was sent, if it was."""
    awaiting: bool = False
    """A ``finalize`` was sent for it and its answer is owed."""
    speech_end: float | None = None
    """Where its speech ends in the stream by the bridge's VAD; ``None``: unknown."""
    settled: bool = False


@dataclass(frozen=True)
class Judgement:
    """The ledger's reading of one final: which turn gets which text, which turns end."""

    verdict: Verdict
    pieces: tuple[tuple[int, str, float | None], ...] = ()
    """(turn index, text, stream position of its first word or ``None``) in stream order."""
    answers: tuple[int, ...] = ()
    """Turns this final completes, oldest first."""


@dataclass
class FinalLedger:
    """One service connection's finals, in arrival order, judged one by one."""

    last: Result | None = None
    """The last final that counted."""
    last_end: float | None = None
    counted_words: list[Word] = field(default_factory=list)
    """The words that counted, in stream order: a word is a copy when one of these has the same
    text at an overlapping time (recent ones only: copies come soon)."""
    """Latest word end (stream seconds) among the words that counted."""
    finalize_since: bool = False
    """A finalize went out after ``last`` arrived: an identical text may be its real answer."""
    quiet_since: bool = True
    """Nothing (no interim, no other final) arrived since ``last``."""
    server_endpoints: bool = False
    """This service has been seen ending a turn, or cutting one, on its own."""
    echo_possible: bool = False
    """The last answer may have been a server final: an empty final may follow it."""
    habits: ServiceHabits = field(default_factory=ServiceHabits)
    """Shared across requests: whether this service sends finals of its own."""

    def finalize_sent(self) -> None:
        self.finalize_since = True

    def interim(self, result: Result) -> None:
        """An interim arrived: what comes next is no longer "directly after" the last final,
        unless the interim only repeats that final (a late interim, which the service sends)."""
        last = self.last
        if last is not None and normalise(result.transcript) == normalise(last.transcript):
            return
        self.quiet_since = False
        self.echo_possible = False

    def judge(self, result: Result, turns: Sequence[Turn]) -> Judgement:
        """Judge a final against the connection's turns, in stream order (settled ones too:
        a late final may still carry words for them)."""
        text = normalise(result.transcript)
        timed = [w for w in result.words if w.end is not None]
        if not turns:
            return Judgement(Verdict.TEXT)
        if not text:
            return self._empty(result, turns)
        if timed:
            return self._placed(result, text, timed, turns)
        return self._ordered(result, text, turns)

    # ------------------------------------------------------------------ the three readings

    def _empty(self, result: Result, turns: Sequence[Turn]) -> Judgement:
        waiting = _oldest_awaiting(turns)
        if waiting is None or result.from_finalize is False:
            return Judgement(Verdict.TEXT)
        if self.echo_possible and result.from_finalize is not True:
            self.echo_possible = False
            return Judgement(Verdict.ECHO)
        self._counted(result, None)
        return Judgement(Verdict.ANSWER, answers=(waiting,))

    def _placed(
        self, result: Result, text: str, timed: list[Word], turns: Sequence[Turn]
    ) -> Judgement:
        fresh = [w for w in timed if not self._copy(w)]
        if not fresh:
            self.echo_possible = False
            return Judgement(Verdict.REPEAT)
        groups: dict[int, list[Word]] = {}
        for word in fresh:
            index = _turn_of(word, turns)
            if index is not None:
                groups.setdefault(index, []).append(word)
        placed = sum(len(g) for g in groups.values())
        whole = placed == len(timed) and len(groups) == 1
        pieces = tuple(
            (i, text if whole else " ".join(normalise(w.word) for w in words), words[0].start)
            for i, words in sorted(groups.items())
        )
        answers: list[int] = []
        for i, turn in enumerate(turns):
            if turn.settled:
                continue
            if not turn.awaiting:
                break
            if any(j > i for j in groups):
                answers.append(i)  # the service has gone past this turn's finalize point
                continue
            mine = groups.get(i)
            reaches = mine and not self.habits.own_finals and _reaches(turn, _end(mine[-1]))
            if result.from_finalize is True or (reaches and result.from_finalize is None):
                answers.append(i)
            break
        self._counted(result, max(_end(w) for w in fresh))
        self.counted_words = sorted([*self.counted_words, *fresh], key=_end)[-MAX_COUNTED:]
        if answers:
            self.echo_possible = result.from_finalize is None and self.server_endpoints
            return Judgement(Verdict.ANSWER, pieces, tuple(answers))
        self.server_endpoints = self.server_endpoints or not result.is_last
        self.habits.own_finals = self.habits.own_finals or not result.is_last
        self.echo_possible = False
        return Judgement(Verdict.TEXT, pieces)

    def _ordered(self, result: Result, text: str, turns: Sequence[Turn]) -> Judgement:
        last = self.last
        if (
            last is not None
            and text == normalise(last.transcript)
            and self.quiet_since
            and not self.finalize_since
        ):
            self.echo_possible = False
            return Judgement(Verdict.REPEAT)
        target = next((i for i, t in enumerate(turns) if not t.settled), len(turns) - 1)
        pieces = ((target, text, None),)
        self._counted(result, None)
        if (
            turns[target].awaiting
            and not turns[target].settled
            and result.from_finalize is not False
        ):
            self.echo_possible = result.from_finalize is None and self.server_endpoints
            return Judgement(Verdict.ANSWER, pieces, (target,))
        self.server_endpoints = self.server_endpoints or not result.is_last
        self.echo_possible = False
        return Judgement(Verdict.TEXT, pieces)

    def _copy(self, word: Word) -> bool:
        """Is ``word`` one already counted? Same text at an overlapping time. Not "ends no later
        than the last counted word": a recognizer that reads a segment again places a word a few
        tens of ms differently, and a new word would be lost."""
        text = _bare(word.word)
        end = _end(word)
        start = end if word.start is None else word.start
        for seen in reversed(self.counted_words):
            seen_end = _end(seen)
            seen_start = seen_end if seen.start is None else seen.start
            if seen_end < start - COPY_SLACK_S:
                break  # counted words are in stream order: nothing earlier can overlap
            overlaps = start <= seen_end + COPY_SLACK_S and seen_start <= end + COPY_SLACK_S
            if overlaps and _bare(seen.word) == text:
                return True
        return False

    def _counted(self, result: Result, end: float | None) -> None:
        self.last = result
        if end is not None:
            self.last_end = end if self.last_end is None else max(self.last_end, end)
        self.finalize_since = False
        self.quiet_since = True


def _bare(text: str) -> str:
    """A word without case or punctuation: a copy may be punctuated differently."""
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _end(word: Word) -> float:
    assert word.end is not None
    return word.end


def _oldest_awaiting(turns: Sequence[Turn]) -> int | None:
    for i, turn in enumerate(turns):
        if not turn.settled:
            return i if turn.awaiting else None
    return None


def _turn_of(word: Word, turns: Sequence[Turn]) -> int | None:
    """The turn whose audio holds the word (its middle, or its end without a start): the
    first whose end point lies after it; words past every end point go to the last turn, and
    words before the first turn's audio (a warm socket's earlier request) to none."""
    end = _end(word)
    at = end if word.start is None else (word.start + end) / 2
    first = turns[0].start
    if first is not None and at < first:
        return None
    for i, turn in enumerate(turns):
        if turn.end is None or at < turn.end:
            return i
    return len(turns) - 1


def _reaches(turn: Turn, word_end: float) -> bool:
    """Does a final whose last word ends at ``word_end`` hold the turn's last words?"""
    if turn.speech_end is None:
        return True  # no VAD measure of the speech: the first final after the finalize
    return word_end >= turn.speech_end - REACH_S


@dataclass
class UtteranceText:
    """The finals that counted for one utterance, in stream order, and the reported language."""

    finals: list[str] = field(default_factory=list)
    positions: list[float] = field(default_factory=list)
    """Where each of ``finals`` begins in the stream (arrival order when not known), so that a
    late final for earlier words still lands before the words that follow them."""
    language: str | None = None
    replaced: bool = False
    """A later utterance re-sent this one's audio as part of the whole command (a false split
    re-recognised): its finals still settle it on its session, but the request's text is the
    later one's, so these are never joined to it a second time."""

    def add(self, result: Result) -> bool:
        """Take a counted final's whole text; False when it has none."""
        return self.add_text(result.transcript, result.language)

    def add_text(self, text: str, language: str | None, at: float | None = None) -> bool:
        """Take text that counted for this utterance, placed at stream position ``at``."""
        if language:
            self.language = language
        text = normalise(text)
        if not text:
            return False
        where = self.positions[-1] if self.positions else float("-inf")
        if at is not None:
            where = at
        index = bisect_right(self.positions, where)
        self.finals.insert(index, text)
        self.positions.insert(index, where)
        return True

    def reset(self) -> None:
        """Forget everything: the audio is about to be replayed and will be recognised afresh."""
        self.finals.clear()
        self.positions.clear()

    @property
    def text(self) -> str:
        return join_texts(self.finals)

    @property
    def counted(self) -> str:
        """What this utterance contributes to the request's answer: nothing once replaced."""
        return "" if self.replaced else self.text
