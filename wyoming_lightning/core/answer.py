"""What the client is told: the transcript of one request, streamed in order and answered once.

The request machine (request.py) decides when an utterance is settled; this module decides
what the client then hears. Each utterance's text goes out as a ``transcript-chunk`` once it and
every one before it are settled (never twice, never out of order); a final that arrives for an
utterance whose text already went out is streamed at once (the transcript has it in its place,
the stream at least has it); the answer is one ``transcript`` of every counted text, in the
language the service last reported, or the one asked for. Free of I/O: it emits actions.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import Protocol

from wyoming_lightning.core import actions as act
from wyoming_lightning.core.actions import Action
from wyoming_lightning.core.transcript import UtteranceText, join_texts


class Spoken(Protocol):
    """An utterance as the answer sees it: is it settled, and its words."""

    @property
    def settled(self) -> bool: ...

    text: UtteranceText


class Stream(enum.Enum):
    """How far the streamed answer has gone."""

    UNSTARTED = "no transcript-start yet"
    STARTED = "transcript-start sent"


class Answer:
    """The streamed and the final transcript of one request; see the module docstring."""

    def __init__(
        self,
        utterances: Sequence[Spoken],
        *,
        streaming: bool,
        language: str | None,
        emit: Callable[[Action], None],
    ) -> None:
        self._utterances = utterances
        """The request's utterances, in order (the machine's own list, read as it grows)."""
        self._streaming = streaming
        self._asked_language = language
        self._emit = emit
        self.stream = Stream.UNSTARTED
        self._emitted = 0
        """Utterances whose text went out (or had none): the next one to stream."""
        self._said = False
        """Some text went out already: the next chunk starts with a space."""

    def stream_settled(self) -> None:
        """Stream each utterance's text once it and all before it are settled, never twice."""
        utterances = self._utterances
        while self._emitted < len(utterances) and utterances[self._emitted].settled:
            text = utterances[self._emitted].text.counted
            if text and self._streaming:
                self._chunk(text)
            if text:
                self._said = True
            self._emitted += 1

    def late_final(self, utterance: Spoken, text: str) -> None:
        """Words added to ``utterance`` after it was settled: streamed now if its text already
        went out (a replaced utterance's words never count)."""
        streamed = any(u is utterance for u in self._utterances[: self._emitted])
        if streamed and self._streaming and not utterance.text.replaced:
            self._emit(act.Log.info(f"a final came after its turn was settled: {text!r}"))
            self._chunk(text)
            self._said = True

    def complete(self) -> str:
        """Every utterance is settled: the transcript, then the end of the stream."""
        text = join_texts(u.text.counted for u in self._utterances)
        language = self.language()
        if self._streaming:
            self._start()
        self._emit(act.Transcript(text, language))
        if self._streaming:
            self._emit(act.TranscriptStop())
        return text

    def language(self) -> str | None:
        """The language the service last reported for an utterance, else the one asked for."""
        for utterance in reversed(self._utterances):
            if utterance.text.language:
                return utterance.text.language
        return self._asked_language

    def _chunk(self, text: str) -> None:
        self._start()
        self._emit(act.TranscriptChunk((" " if self._said else "") + text))

    def _start(self) -> None:
        if self.stream is Stream.UNSTARTED:
            self.stream = Stream.STARTED
            self._emit(act.TranscriptStart(self.language()))
