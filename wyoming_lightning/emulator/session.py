"""The protocol of one streaming session, without any I/O.

Fed with the audio and text frames a client sends, it returns the messages the service would
answer: interims while audio flows, a final at each end of utterance (the server's own, after
``eou_timeout_ms`` of silence measured in audio time, or the client's ``finalize``), the last
final with ``is_last`` at the end signal, and ``pong`` to a Pulse ``keepalive``.

Pulse's live defaults, as the vendor documents and its probe saw them: ``finalize_on_words``
is on unless the query says ``false``, a final every at most :data:`WORDS_PER_FINAL` words
(``max_words`` changes the cap), cut at the last sentence end within the cap when there is one
(the probe's finals end at sentence ends: "... about my recent order.", "My phone is five five
five one two three.") and after the cap otherwise, as soon as the words are complete (another
word follows); ``eou_timeout_ms`` is 800 and ``endpointing=false`` does not turn it off.

Keeping it free of sockets and clocks makes it exact under audio sent faster than real time,
and testable on its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from wyoming_lightning.emulator.audio import dbfs, to_recognizer_pcm
from wyoming_lightning.emulator.config import AUTO_LANGUAGE_REPORTED, Dialect
from wyoming_lightning.emulator.params import SessionParams
from wyoming_lightning.emulator.recognizers import Recognizer, RecognizerBusy, Word

FRAME_MS = 20
WORDS_PER_FINAL = 10
"""``finalize_on_words``: the live probe's largest final with default parameters."""
SENTENCE_ENDS = (".", "?", "!")
REALIGN_S = 0.1
"""Reading a segment again moves a word's times by up to this much (Whisper)."""
PREROLL_MS = 300
MAX_LEADING_SILENCE_MS = 1000
"""Silence before any speech beyond this is dropped (keeping a pre-roll): a session may idle."""

LIGHTNING_END = "end"
PULSE_END = "close_stream"
PULSE_FINALIZE = "finalize"
PULSE_KEEPALIVE = "keepalive"
PONG: dict[str, Any] = {"type": "pong"}


def error_message(message: str) -> dict[str, Any]:
    """The error shape the specification gives."""
    return {"type": "error", "status": "error", "message": message}


@dataclass
class Reply:
    """What the connection must do after one input frame."""

    messages: list[dict[str, Any]] = field(default_factory=list)
    answers_control: bool = False
    """These messages answer ``finalize`` / end: the server's finalize delay applies."""
    end_of_session: bool = False
    """``is_last`` was produced: close the socket normally once the messages are sent."""


class SessionCore:
    """State of one session: the current segment's audio and what was already settled.

    Audio is kept at the client's rate and cut on 20 ms frame boundaries; each recognition
    resamples the segment to 16 kHz. Word times are seconds from the start of the stream.
    """

    def __init__(
        self,
        *,
        session_id: str,
        dialect: Dialect,
        params: SessionParams,
        recognizer: Recognizer,
        eou_timeout_ms: int,
        words_per_final: int = WORDS_PER_FINAL,
        silence_dbfs: float = -45.0,
        from_finalize: bool = True,
        text_field: str = "both",
    ) -> None:
        self.session_id = session_id
        self._dialect = dialect
        self._params = params
        self._recognizer = recognizer
        self._rate = params.sample_rate
        self._frame = self._rate * FRAME_MS // 1000
        eou_ms = params.eou_timeout_ms if params.eou_timeout_ms is not None else eou_timeout_ms
        self._eou_samples = self._rate * eou_ms // 1000
        self._interim_samples = self._rate * recognizer.interim_interval_ms // 1000
        self._silence_dbfs = silence_dbfs
        self._say_from_finalize = from_finalize
        self._text_field = text_field
        self._results = 0
        # Pulse's end-of-utterance timer runs whatever ``endpointing`` says (the vendor's docs).
        self._endpointing = params.endpointing or dialect is Dialect.PULSE
        self._cap = (params.max_words or words_per_final) if params.finalize_on_words else None

        self._segment = bytearray()
        self._odd_byte = b""
        self._segment_start = 0
        self._classified = 0
        self._voiced = False
        self._silence_run = 0
        self._speaking = False
        self._last_voice_end = 0
        self._interim_at = 0
        self._interim_text = ""
        self._said_until: float | None = None
        self._said_last: Word | None = None
        """Stream seconds up to which the segment's words already went out as word-count
        finals: the segment stays whole (the recognizer keeps its context, as a streaming
        recognizer does) and later results carry only the words after this point."""
        self._finals: list[str] = []
        self._ended = False

    @property
    def ended(self) -> bool:
        return self._ended

    @property
    def segment_s(self) -> float:
        """Seconds of audio in the segment a ``finalize`` or end would settle now."""
        return len(self._segment) / 2 / self._rate

    @property
    def _pulse(self) -> bool:
        return self._dialect is Dialect.PULSE

    def _samples(self) -> int:
        return len(self._segment) // 2

    def feed_audio(self, data: bytes) -> Reply:
        if self._ended:
            return Reply()
        data = self._odd_byte + data
        whole = len(data) - len(data) % 2
        self._odd_byte = data[whole:]
        self._segment += data[:whole]
        messages: list[dict[str, Any]] = []
        while self._samples() - self._classified >= self._frame:
            messages += self._classify(self._classified + self._frame, allow_eou=True)
        self._drop_leading_silence()
        messages += self._interim()
        return Reply(messages)

    def feed_text(self, text: str) -> Reply:
        if self._ended:
            return Reply()
        try:
            payload = json.loads(text)
        except ValueError:
            return Reply([error_message("text frames must be JSON control messages")])
        kind = payload.get("type") if isinstance(payload, dict) else None
        if not isinstance(kind, str):
            return Reply([error_message('a control message needs a string "type"')])
        if self._pulse:
            if kind == PULSE_END:
                return self.finish()
            if kind == PULSE_FINALIZE:
                return Reply(self._flush(from_finalize=True, is_last=False), answers_control=True)
            if kind == PULSE_KEEPALIVE:
                return Reply([dict(PONG)])
            return Reply(
                [
                    error_message(
                        f"unknown message type {kind!r}; expected finalize, keepalive or "
                        "close_stream"
                    )
                ]
            )
        if kind == LIGHTNING_END:
            return self.finish()
        if kind == PULSE_FINALIZE:
            return Reply([error_message('finalize is not supported here; send {"type": "end"}')])
        return Reply([error_message(f"unknown message type {kind!r}; expected end")])

    def finish(self) -> Reply:
        """The end signal: settle what is pending and close the session."""
        if self._ended:
            return Reply()
        messages = self._flush(from_finalize=False, is_last=True)
        self._ended = True
        return Reply(messages, answers_control=True, end_of_session=True)

    def _classify(self, end: int, *, allow_eou: bool) -> list[dict[str, Any]]:
        start = self._classified
        self._classified = end
        voiced = dbfs(bytes(self._segment[2 * start : 2 * end])) >= self._silence_dbfs
        if voiced:
            self._voiced = True
            self._silence_run = 0
            self._last_voice_end = self._segment_start + end
            if not self._speaking:
                self._speaking = True
                if self._params.vad_events:
                    return [self._vad("speech_started", self._segment_start + start)]
            return []
        self._silence_run += end - start
        endpoint = allow_eou and self._endpointing and self._voiced
        if endpoint and self._silence_run >= self._eou_samples:
            return self._settle(end, from_finalize=False, is_last=False, server_eou=True)
        return []

    def _drop_leading_silence(self) -> None:
        if self._voiced or self._classified * 1000 <= MAX_LEADING_SILENCE_MS * self._rate:
            return
        drop = self._classified - PREROLL_MS * self._rate // 1000
        del self._segment[: 2 * drop]
        self._segment_start += drop
        self._classified -= drop

    def _interim(self) -> list[dict[str, Any]]:
        samples = self._samples()
        if not self._voiced or samples - self._interim_at < self._interim_gap():
            return []
        self._interim_at = samples
        try:
            words = self._recognize(bytes(self._segment), interim=True)
        except RecognizerBusy:
            return []  # the recognizer serves finals first; the next interim catches up
        words = self._unsaid(words)
        cut = self._word_cut(words)
        if cut is not None:
            return self._cut_on_words(words, cut)
        text = _text(words)
        if not text or text == self._interim_text:
            return []
        self._interim_text = text
        message: dict[str, Any] = {
            **self._text(text),
            "session_id": self.session_id,
            "is_final": False,
            "is_last": False,
        }
        if self._params.word_timestamps:
            message["words"] = self._word_list(words)
        return [message]

    def _interim_gap(self) -> int:
        """Samples of new audio before the next interim.

        A blocking recognizer (Whisper) decodes the whole segment again for each interim: at a
        fixed cadence that work grows with the square of the segment, and on a long monologue
        the session falls behind real time and its final comes many seconds late, which a real
        service does not do (its interims never hold back its finals). So for such recognizers
        the gap grows with the segment (half the audio decoded at the last interim), which keeps
        the decoding per second of audio bounded; cheap recognizers keep the fixed cadence.
        """
        if not self._recognizer.blocking:
            return self._interim_samples
        return max(self._interim_samples, self._interim_at // 2)

    def _word_cut(self, words: list[Word], *, complete: bool = False) -> int | None:
        """How many leading words make a word-count final now, or ``None``.

        Within the cap, up to the last sentence end; else the cap. A word is complete only
        when another follows it (unless the audio is complete: a finalize or an end of
        utterance), so an interim never cuts a word still being spoken.
        """
        cap = self._cap
        if cap is None:
            return None
        done = len(words) if complete else len(words) - 1
        limit = min(cap, done)
        for i in range(limit, 0, -1):
            if words[i - 1].text.rstrip().endswith(SENTENCE_ENDS) and i < len(words):
                return i
        return cap if done >= cap and cap < len(words) else None

    def _unsaid(self, words: list[Word]) -> list[Word]:
        """The words not yet sent as a word-count final (by their middle, since a recognizer
        that reads the segment again places a word a few ms differently)."""
        until = self._said_until
        if until is None:
            return words
        rest = [w for w in words if (w.start + w.end) / 2 > until]
        last = self._said_last
        if (
            rest
            and last is not None
            and _bare(rest[0].text) == _bare(last.text)
            and rest[0].start < last.end + REALIGN_S
        ):
            rest = rest[1:]  # the last word said, placed a little later: not a new word
        return rest

    def _cut_on_words(self, words: list[Word], count: int) -> list[dict[str, Any]]:
        """A word-count final mid-speech: its words are said, the segment goes on."""
        head, rest = words[:count], words[count:]
        self._said_until = (head[-1].end + rest[0].start) / 2 if rest else head[-1].end
        self._said_last = head[-1]
        text = _text(head)
        self._finals.append(text)
        self._interim_text = ""
        return [self._final(head, text, from_finalize=False, is_last=False)]

    def _flush(self, *, from_finalize: bool, is_last: bool) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        if self._samples() > self._classified:
            messages += self._classify(self._samples(), allow_eou=False)
        messages += self._settle(
            self._samples(), from_finalize=from_finalize, is_last=is_last, server_eou=False
        )
        return messages

    def _settle(
        self, cut: int, *, from_finalize: bool, is_last: bool, server_eou: bool
    ) -> list[dict[str, Any]]:
        """End the current segment at ``cut`` samples and start the next one there."""
        words = self._recognize(bytes(self._segment[: 2 * cut])) if self._voiced else []
        words = self._unsaid(words)
        self._said_until = None
        self._said_last = None
        text = _text(words)
        messages: list[dict[str, Any]] = []
        # Past the word cap, the words before the last piece go as the server's own finals.
        while (count := self._word_cut(words, complete=True)) is not None and count < len(words):
            head, words = words[:count], words[count:]
            self._finals.append(_text(head))
            messages.append(self._final(head, _text(head), from_finalize=False, is_last=False))
            text = _text(words)
        # A server-side end of utterance over noise that produced no words settles nothing.
        if not server_eou or text or self._interim_text or messages:
            if text:
                self._finals.append(text)
            messages.append(self._final(words, text, from_finalize=from_finalize, is_last=is_last))
        if self._speaking:
            # After the final, as in the vendor's sequence diagram.
            self._speaking = False
            if self._params.vad_events:
                messages.append(self._vad("speech_ended", self._last_voice_end))
        del self._segment[: 2 * cut]
        self._segment_start += cut
        self._classified = max(0, self._classified - cut)
        self._voiced = False
        self._silence_run = 0
        self._interim_at = 0
        self._interim_text = ""
        return messages

    def _recognize(self, pcm: bytes, *, interim: bool = False) -> list[Word]:
        offset = self._segment_start / self._rate
        words = self._recognizer.transcribe(
            to_recognizer_pcm(pcm, self._rate),
            self._params.language,
            word_times=self._params.word_timestamps or self._params.sentence_timestamps,
            interim=interim,
            # Pulse's keywords, as hints (only when there are some: a recognizer that takes
            # none is called as before).
            **({"keywords": self._params.keywords} if self._params.keywords else {}),
        )
        return [Word(w.text, w.start + offset, w.end + offset, w.confidence) for w in words]

    def _final(
        self, words: list[Word], text: str, *, from_finalize: bool, is_last: bool
    ) -> dict[str, Any]:
        language = self._params.language
        message: dict[str, Any] = {
            **self._text(text),
            "session_id": self.session_id,
            "is_final": True,
            "is_last": is_last,
            "language": AUTO_LANGUAGE_REPORTED.get(language, language),
        }
        if self._pulse and self._say_from_finalize:
            message["from_finalize"] = from_finalize
        if self._params.full_transcript:
            message["full_transcript"] = " ".join(self._finals)
        if self._params.word_timestamps:
            message["words"] = self._word_list(words)
        if self._params.sentence_timestamps:
            message["utterances"] = (
                [{"text": text, "start": _time(words[0].start), "end": _time(words[-1].end)}]
                if words
                else []
            )
        return message

    def _text(self, text: str) -> dict[str, Any]:
        """The result's type and text fields: the seed's shape, or Pulse's as configured."""
        if not self._pulse:
            return {"transcript": text}
        shape = self._text_field
        if shape == "alternate":
            shape = ("transcript", "transcription")[self._results % 2]
        self._results += 1
        fields: dict[str, Any] = {"type": "transcription", "status": "success"}
        if shape in ("both", "transcription"):
            fields["transcription"] = text
        if shape in ("both", "transcript"):
            fields["transcript"] = text
        return fields

    @staticmethod
    def _word_list(words: list[Word]) -> list[dict[str, Any]]:
        return [
            {
                "word": w.text,
                "start": _time(w.start),
                "end": _time(w.end),
                "confidence": round(w.confidence, 3),
            }
            for w in words
        ]

    def _vad(self, kind: str, sample: int) -> dict[str, Any]:
        return {
            "type": kind,
            "session_id": self.session_id,
            "timestamp": _time(sample / self._rate),
        }


def _bare(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _text(words: list[Word]) -> str:
    return " ".join(w.text for w in words).strip()


def _time(seconds: float) -> float:
    return round(seconds, 3)
