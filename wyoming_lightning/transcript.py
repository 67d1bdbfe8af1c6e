"""Which finals count, and which final ends a turn, when finals may repeat or race.

The service's final segments are incremental, but the live service is untidy in three ways
that the bridge must survive exactly:

- the vendor's own probe saw no ``from_finalize`` on the final that answers a ``finalize``, so
  the answer is recognised by *order*: the first final, not a repeat, that arrives after the
  finalize was sent (the service answers each finalize with exactly one final);
- a final may be sent twice; a copy is recognised by *position* (its words end no later than
  those of a final already counted; the bridge asks for word timestamps for this), or, when the
  service gives no word times, by order (the same text directly after, no finalize in between);
- when the service ends a turn itself (server endpointing) just as the finalize goes out, its
  final arrives first and is taken as the answer; the finalize's own answer that follows is then
  a copy (dropped as above), the rest of that turn (its words lie before the next turn's audio:
  kept, in order, but it ends nothing), or empty, and that empty *echo* must not end the next
  turn.

A speaker who says the same short thing twice ("no ... no") gives two finals at two positions
(or with a finalize between them): both count. A replay after a lost connection starts a new
ledger, since the new session recognises the replayed audio afresh.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field

from .lightning.protocol import Result


def normalise(text: str) -> str:
    """Collapse whitespace so that two spellings of the same final compare equal."""
    return " ".join(text.split())


def join_texts(parts: Iterable[str]) -> str:
    """The session text: stripped segments joined with single spaces, as the service documents."""
    return " ".join(p for p in (normalise(x) for x in parts) if p)


class Verdict(enum.Enum):
    """What one final means for the turns of its connection."""

    REPEAT = "repeat"
    """A copy of a final already counted: its text is not added again and it ends nothing."""
    ECHO = "echo"
    """The empty answer of a finalize whose turn a racing server final already ended."""
    TEXT = "text"
    """New text for the oldest unfinished turn, which it does not end (the server's own final)."""
    ANSWER = "answer"
    """New text (possibly none) that answers the oldest outstanding finalize: that turn ends."""


@dataclass
class FinalLedger:
    """One service connection's finals, in arrival order, judged one by one."""

    last: Result | None = None
    """The last final that counted (TEXT or ANSWER)."""
    last_end: float | None = None
    """Latest word end (stream seconds) among the finals that counted."""
    finalize_since: bool = False
    """A finalize went out after ``last`` arrived: an identical text may be its real answer."""
    quiet_since: bool = True
    """Nothing (no interim, no other final) arrived since ``last``."""
    server_endpoints: bool = False
    """This service has ended a turn on its own: a finalize may race it."""
    echo_possible: bool = False
    """The last answer may have been a racing server final: an empty final may follow."""

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

    def judge(self, result: Result, *, awaiting: bool, turn_start: float | None = None) -> Verdict:
        """Judge a final. ``awaiting``: the oldest unfinished turn was sent its finalize;
        ``turn_start``: where that turn's audio begins in the stream (seconds), if known."""
        if self._is_repeat(result):
            self.echo_possible = False
            return Verdict.REPEAT
        text = normalise(result.transcript)
        if awaiting and not text and self.echo_possible and result.from_finalize is not True:
            self.echo_possible = False
            return Verdict.ECHO
        end = result.end_time
        earlier = end is not None and turn_start is not None and end <= turn_start
        if result.from_finalize is False or not awaiting or earlier:
            # The server ended a turn of its own accord (said so, or no finalize is out), or
            # this is the rest of a turn already ended: it answers no finalize of this turn.
            self.server_endpoints = self.server_endpoints or not result.is_last
            verdict = Verdict.TEXT
            self.echo_possible = False
        else:
            verdict = Verdict.ANSWER
            self.echo_possible = (
                result.from_finalize is None and bool(text) and self.server_endpoints
            )
        self._count(result)
        return verdict

    def _is_repeat(self, result: Result) -> bool:
        text = normalise(result.transcript)
        if not text:
            return False
        end = result.end_time
        if end is not None and self.last_end is not None:
            return end <= self.last_end
        last = self.last
        return (
            end is None
            and last is not None
            and text == normalise(last.transcript)
            and self.quiet_since
            and not self.finalize_since
        )

    def _count(self, result: Result) -> None:
        self.last = result
        end = result.end_time
        if end is not None:
            self.last_end = end if self.last_end is None else max(self.last_end, end)
        self.finalize_since = False
        self.quiet_since = True


@dataclass
class UtteranceText:
    """The finals that counted for one utterance, and the language the service reported."""

    finals: list[str] = field(default_factory=list)
    language: str | None = None
    replaced: bool = False
    """A later utterance re-sent this one's audio as part of the whole command (a false split
    re-recognised): its finals still settle it on its session, but the request's text is the
    later one's, so these are never joined to it a second time."""

    def add(self, result: Result) -> bool:
        """Take a counted final's text; False when it has none."""
        text = normalise(result.transcript)
        if result.language:
            self.language = result.language
        if not text:
            return False
        self.finals.append(text)
        return True

    def reset(self) -> None:
        """Forget everything: the audio is about to be replayed and will be recognised afresh."""
        self.finals.clear()

    @property
    def text(self) -> str:
        return join_texts(self.finals)

    @property
    def counted(self) -> str:
        """What this utterance contributes to the request's answer: nothing once replaced."""
        return "" if self.replaced else self.text
