"""The microphone test's rules: what the browser may send and what each message makes the
server do; free of I/O (the site in :mod:`.site` carries the actions out).

The page streams 16 kHz 16-bit mono PCM in binary messages (about 4096 bytes each, as the
vendor's own browser example does), then a text message ``{"type": "end"}``; it may first send
``{"type": "start", "language": "xx"}``. The server turns that into one ordinary Wyoming
request to itself, so the test passes through the same allow-list, limits, gate and service as
a satellite's. Anything else is answered with a clear error and the socket closed; every
resource is bounded: message size, message count, audio length, idle time.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass

RATE = 16000
WIDTH = 2
CHANNELS = 1
MAX_MESSAGE_BYTES = 16384
"""Four times the page's own 4096-byte messages; anything bigger is not from the page."""
MAX_AUDIO_S = 30.0
"""The longest test: the server's own --max-utterance default; then the request is ended."""
MAX_MESSAGES = 4000
"""Enough for 30 s of 256-byte messages; a flood of tiny messages stops here."""
MAX_TEXT_CHARS = 200
IDLE_TIMEOUT_S = 10.0
"""A test that goes quiet (a closed laptop lid) ends with an error after this long."""


class State(enum.Enum):
    WAITING = "waiting"
    """Connected; nothing sent yet."""
    STREAMING = "streaming"
    """The request to the server is open and audio flows."""
    ENDED = "ended"
    """``end`` (or the audio cap) sent the request's audio-stop: only the answer is awaited."""
    FAILED = "failed"


@dataclass(frozen=True)
class Start:
    """Open the Wyoming request: transcribe in ``language``, then audio-start."""

    language: str


@dataclass(frozen=True)
class Forward:
    audio: bytes


@dataclass(frozen=True)
class Stop:
    """audio-stop: the page is done (or the test reached its length)."""


@dataclass(frozen=True)
class Reject:
    """Tell the page why and close; a running request is abandoned."""

    text: str


Action = Start | Forward | Stop | Reject


class MicSession:
    """One page's test: fed each WebSocket message, returns what to do."""

    def __init__(self, languages: tuple[str, ...], default_language: str) -> None:
        self.languages = languages
        self.default_language = default_language
        self.state = State.WAITING
        self.audio_bytes = 0
        self.messages = 0

    @property
    def audio_s(self) -> float:
        return self.audio_bytes / (RATE * WIDTH * CHANNELS)

    def _fail(self, text: str) -> list[Action]:
        self.state = State.FAILED
        return [Reject(text)]

    def binary(self, data: bytes) -> list[Action]:
        if (problem := self._count(len(data))) is not None:
            return self._fail(problem)
        if self.state is State.ENDED:
            return []  # the tail of the stream after "end" crossed it in flight: ignored
        if self.state is State.FAILED:
            return []
        if len(data) % (WIDTH * CHANNELS):
            return self._fail("audio must be 16-bit samples: a message had an odd byte count")
        actions: list[Action] = []
        if self.state is State.WAITING:
            actions.append(Start(self.default_language))
            self.state = State.STREAMING
        room = int(MAX_AUDIO_S * RATE) * WIDTH - self.audio_bytes
        chunk = data[:room]
        self.audio_bytes += len(chunk)
        if chunk:
            actions.append(Forward(chunk))
        if self.audio_bytes >= int(MAX_AUDIO_S * RATE) * WIDTH:
            self.state = State.ENDED
            actions.append(Stop())
        return actions

    def text(self, message: str) -> list[Action]:
        if (problem := self._count(len(message.encode()))) is not None:
            return self._fail(problem)
        if self.state is State.FAILED:
            return []
        if len(message) > MAX_TEXT_CHARS:
            return self._fail(f"a control message is at most {MAX_TEXT_CHARS} characters")
        try:
            parsed = json.loads(message)
        except ValueError:
            return self._fail('a text message must be JSON: {"type": "start"} or {"type": "end"}')
        kind = parsed.get("type") if isinstance(parsed, dict) else None
        if kind == "start":
            if self.state is not State.WAITING:
                return self._fail('"start" must come first, and once')
            language = parsed.get("language") or self.default_language
            if not isinstance(language, str) or language not in self.languages:
                return self._fail(f"language {str(language)[:20]!r} is not served here")
            self.state = State.STREAMING
            return [Start(language)]
        if kind == "end":
            if self.state is State.WAITING:
                return self._fail('"end" before any audio: nothing to transcribe')
            if self.state is State.ENDED:
                return []
            self.state = State.ENDED
            return [Stop()]
        return self._fail('unknown message: send audio, then {"type": "end"}')

    def _count(self, size: int) -> str | None:
        self.messages += 1
        if size > MAX_MESSAGE_BYTES:
            return f"a message of {size} bytes is too big (at most {MAX_MESSAGE_BYTES})"
        if self.messages > MAX_MESSAGES:
            return f"too many messages (at most {MAX_MESSAGES} per test)"
        return None
