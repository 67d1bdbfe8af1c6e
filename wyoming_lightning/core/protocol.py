"""What the bridge says to Smallest.ai and how it reads the answers, with no I/O.

Both generations of the service are spoken here: the current "Pulse" dialect (``finalize`` ends
one utterance and keeps the socket, ``close_stream`` ends the session) and the seed "Lightning"
dialect (end of stream is ``{"type": "end"}``, one utterance per session), which the vendor's
self-hosted servers still speak. The URL's path decides; ``--dialect`` decides for a URL whose
path says nothing (a proxy, a custom server), and Pulse, today's service, is the fallback.
Errors arrive in several shapes; they are all folded into :class:`ServiceError` here so that the
rest of the bridge never looks at raw JSON.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from wyoming_lightning.core.errors import ErrorCode
from wyoming_lightning.core.languages import (
    DEFAULT_HOST_ONLY_LANGUAGES,
    LIGHTNING_LANGUAGES,
    PULSE_LANGUAGES,
    US_ONLY_LANGUAGES,
)
from wyoming_lightning.core.pipeline_format import SAMPLE_RATE

DEFAULT_URL = "wss://api.smallest.ai/waves/v1/stt/live?model=pulse"
"""The unified endpoint every current client of the service uses (vendor SDK, LiveKit, pipecat)."""
PULSE_URL = "wss://api.smallest.ai/waves/v1/pulse/get_text"
"""The older Pulse path, documented to keep working; it takes no ``model``."""
LIGHTNING_URL = "wss://waves-api.smallest.ai/api/v1/lightning/get_text"
"""The seed's endpoint, removed from the vendor's docs in May 2026."""
DEFAULT_HOST = "api.smallest.ai"
US_HOST = "api.us.smallest.ai"
LIVE_PATH_SUFFIX = "/stt/live"
PULSE_MODEL = "pulse"

MAX_URL_BYTES = 8000
"""Longest session URL the bridge builds: common servers and proxies refuse request lines over
8 KiB, so keywords beyond this are left out (the ones sent first are the ones that matter)."""
MAX_INTENSIFIER = 3.0
"""The vendor's advice is 1 to 3 (default 1); above 5 the model hallucinates the keyword."""


class Dialect(enum.Enum):
    """Which generation of the service a URL speaks."""

    LIGHTNING = "lightning"
    PULSE = "pulse"

    @classmethod
    def choice(cls, name: str) -> Dialect | None:
        """``--dialect``: ``auto`` (None: the URL decides) or a dialect's name."""
        return None if name == "auto" else cls(name)

    @property
    def can_finalize(self) -> bool:
        """Pulse can settle one utterance and keep the socket; Lightning must end the session."""
        return self is Dialect.PULSE

    @property
    def end_message(self) -> str:
        """The text frame that ends a session in this dialect."""
        kind = "close_stream" if self is Dialect.PULSE else "end"
        return json.dumps({"type": kind})


FINALIZE_MESSAGE = json.dumps({"type": "finalize"})
KEEPALIVE_MESSAGE = json.dumps({"type": "keepalive"})
"""Pulse: keeps an idle socket open; the service answers ``{"type": "pong"}``."""


DIALECT_CHOICES = ("auto", "pulse", "lightning")


def dialect_from_path(url: str) -> Dialect | None:
    """What the URL's path says: ``/pulse/`` and ``/stt/live`` are Pulse, ``/lightning/`` is
    the seed's dialect; anything else (a proxy, a custom path) says nothing."""
    path = urlsplit(url).path.rstrip("/") + "/"
    if "/pulse/" in path or path.endswith(LIVE_PATH_SUFFIX + "/"):
        return Dialect.PULSE
    if "/lightning/" in path:
        return Dialect.LIGHTNING
    return None


def detect_dialect(url: str, chosen: Dialect | None = None) -> Dialect:
    """The dialect to speak: the user's explicit choice, else the path's, else Pulse (today's)."""
    if chosen is not None:
        return chosen
    return dialect_from_path(url) or Dialect.PULSE


def with_model(url: str) -> str:
    """A ``/stt/live`` URL with ``model=pulse`` when it names no model: the vendor prints the
    URL without it, but the service refuses such a handshake with HTTP 400."""
    parts = urlsplit(url)
    if not parts.path.rstrip("/").endswith(LIVE_PATH_SUFFIX):
        return url
    query = parse_qsl(parts.query, keep_blank_values=True)
    if any(name == "model" for name, _ in query):
        return url
    query.insert(0, ("model", PULSE_MODEL))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def languages_for(dialect: Dialect) -> tuple[str, ...]:
    """Language codes the service accepts in this dialect (advertised to Wyoming clients)."""
    return PULSE_LANGUAGES if dialect is Dialect.PULSE else LIGHTNING_LANGUAGES


@dataclass(frozen=True)
class Keyword:
    """A word or phrase to boost, with the service's intensifier (None: the service's default)."""

    text: str
    weight: float | None = None


@dataclass(frozen=True)
class SessionOptions:
    """Everything that goes into one session's query string."""

    language: str = "en"
    sample_rate: int = SAMPLE_RATE
    encoding: str = "linear16"
    word_timestamps: bool = False
    keywords: Sequence[Keyword] = ()
    eou_timeout_ms: int | None = None
    """Pulse only: the server's end-of-utterance timer (100..10000 ms; the service's default,
    800, when not sent). Its finals come whatever ``endpointing`` says."""
    finalize_on_words: bool | None = None
    """Pulse only: a final every few words (the service's default: on); ``None``: not sent."""
    server_endpointing: bool = False
    """Pulse only. Off: the bridge's own VAD ends each turn with ``finalize``, and the service
    never cuts a command at a pause of its own choosing. It does not stop the service's other
    finals (``finalize_on_words``, ``eou_timeout_ms``); settling copes with any number of them
    (transcript.FinalLedger)."""
    external_session_id: str | None = None
    """Pulse only: a tag stored on the vendor's usage record, to find a request there."""
    extra: Mapping[str, str] = field(default_factory=dict)


def _format_weight(weight: float) -> str:
    return f"{weight:g}"


def _keyword_entry(text: str, weight: float | None, dialect: Dialect) -> str:
    if dialect is Dialect.PULSE:
        if weight is None:
            return text  # the service's default intensifier, 1
        return f"{text}:{_format_weight(min(weight, MAX_INTENSIFIER))}"
    # The seed's Lightning spec requires word:weight on every entry.
    return f"{text}:{_format_weight(1.0 if weight is None else weight)}"


EXTERNAL_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")


def valid_external_id(tag: str) -> bool:
    """The service accepts up to 128 characters of ``[A-Za-z0-9_.-]``."""
    return 0 < len(tag) <= 128 and set(tag) <= EXTERNAL_ID_CHARS


def _keyword_text(text: str) -> str:
    # ':' and ',' are the list's own separators: a keyword cannot carry them.
    return " ".join(text.replace(":", " ").replace(",", " ").split())


def build_url(base_url: str, options: SessionOptions, dialect: Dialect | None = None) -> str:
    """The full session URL: the base (with ``model=pulse`` added on ``/stt/live`` when it
    lacks one) plus the options, booleans spelled exactly ``true``/``false`` as the service
    demands, and as many keywords, in order, as fit in :data:`MAX_URL_BYTES`."""
    dialect = dialect or detect_dialect(base_url)
    parts = urlsplit(with_model(base_url))
    query: list[tuple[str, str]] = list(parse_qsl(parts.query, keep_blank_values=True))
    query += [
        ("language", options.language),
        ("encoding", options.encoding),
        ("sample_rate", str(options.sample_rate)),
        ("word_timestamps", "true" if options.word_timestamps else "false"),
    ]
    if dialect is Dialect.PULSE:
        query.append(("endpointing", "true" if options.server_endpointing else "false"))
        if options.eou_timeout_ms is not None:
            query.append(("eou_timeout_ms", str(options.eou_timeout_ms)))
        if options.finalize_on_words is not None:
            query.append(("finalize_on_words", "true" if options.finalize_on_words else "false"))
        tag = options.external_session_id
        if tag is not None and valid_external_id(tag):
            query.append(("external_session_id", tag))
    query += sorted(options.extra.items())

    def url(pairs: list[tuple[str, str]]) -> str:
        return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(pairs), ""))

    entries: list[str] = []
    seen: set[str] = set()
    for keyword in options.keywords:
        text = _keyword_text(keyword.text)
        if not text or text in seen or (keyword.weight is not None and keyword.weight <= 0):
            continue
        seen.add(text)
        entries.append(_keyword_entry(text, keyword.weight, dialect))
    # Keep the longest prefix of the list that fits (binary search on the encoded length).
    low, high = 0, len(entries)
    while low < high:
        mid = (low + high + 1) // 2
        if len(url(query + _keyword_pairs(entries[:mid], dialect))) <= MAX_URL_BYTES:
            low = mid
        else:
            high = mid - 1
    return url(query + _keyword_pairs(entries[:low], dialect))


def _keyword_pairs(entries: list[str], dialect: Dialect) -> list[tuple[str, str]]:
    if not entries:
        return []
    if dialect is Dialect.PULSE:
        return [("keywords", ",".join(entries))]  # Pulse: one comma-separated string
    return [("keywords", entry) for entry in entries]  # Lightning: the parameter repeated


def region_url(base_url: str, language: str) -> str:
    """The host that serves ``language``, when the URL is the vendor's own Pulse service.

    zh, yue, ja, ko and multi-asian exist only on the US host; ta, te, kn, ml and
    multi-south-indic only on the default host. Any other host (the emulator, a self-hosted
    server, a proxy) is left alone: it serves what it serves.
    """
    parts = urlsplit(base_url)
    host = parts.hostname or ""
    if host not in (DEFAULT_HOST, US_HOST) or "/waves/" not in parts.path:
        return base_url
    if language in US_ONLY_LANGUAGES:
        wanted = US_HOST
    elif language in DEFAULT_HOST_ONLY_LANGUAGES:
        wanted = DEFAULT_HOST
    else:
        return base_url
    netloc = wanted if parts.port is None else f"{wanted}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def auth_headers(api_key: str) -> dict[str, str]:
    """Headers for the handshake. Kept here so the only place the key is spelled out is one line."""
    return {"Authorization": f"Bearer {api_key}"}


# --------------------------------------------------------------------------------------------
# Messages from the service


@dataclass(frozen=True)
class Word:
    """One word with its timing, when ``word_timestamps=true``."""

    word: str
    start: float | None = None
    end: float | None = None
    confidence: float | None = None


@dataclass(frozen=True)
class Result:
    """A transcription result: interim (may still change) or final (settled)."""

    transcript: str
    is_final: bool
    is_last: bool = False
    from_finalize: bool | None = None
    """True: answers a ``finalize``; False: the server's own end of turn; None: not said (the
    live service's usual case), so settling never depends on it."""
    language: str | None = None
    words: tuple[Word, ...] = ()
    session_id: str | None = None

    @property
    def end_time(self) -> float | None:
        """Audio time at which the result's last word ends, when the service told us."""
        ends = [w.end for w in self.words if w.end is not None]
        return max(ends) if ends else None


@dataclass(frozen=True)
class SpeechEvent:
    """Pulse ``vad_events``: the service's own voice activity, informational only."""

    kind: str
    timestamp: float | None = None


@dataclass(frozen=True)
class ServiceError:
    """An error frame, in whichever of the documented shapes it came."""

    message: str
    code: str | None = None


@dataclass(frozen=True)
class Pong:
    """Pulse's answer to a ``keepalive``: a sign of life that belongs to no turn."""


@dataclass(frozen=True)
class Unreadable:
    """A frame that is not JSON or not any known message; the session goes on without it."""

    reason: str


ServiceMessage = Result | SpeechEvent | ServiceError | Pong | Unreadable


def _as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _as_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


def _parse_words(raw: Any) -> tuple[Word, ...]:
    if not isinstance(raw, list):
        return ()
    words: list[Word] = []
    for item in raw:
        if isinstance(item, dict) and isinstance(item.get("word"), str):
            words.append(
                Word(
                    word=item["word"],
                    start=_as_float(item.get("start")),
                    end=_as_float(item.get("end")),
                    confidence=_as_float(item.get("confidence")),
                )
            )
    return tuple(words)


def _parse_error(obj: Mapping[str, Any]) -> ServiceError | None:
    nested = obj.get("error")
    if obj.get("status") == "error" and isinstance(nested, dict):
        # The older shape: {"status": "error", "error": {"message", "code"}}
        return ServiceError(
            message=_as_str(nested.get("message")) or "error",
            code=_as_str(nested.get("code")),
        )
    if obj.get("type") == "error" or obj.get("status") == "error":
        message = _as_str(obj.get("message")) or _as_str(nested) or "error"
        return ServiceError(message=message, code=_as_str(obj.get("error_code")))
    return None


def parse_message(text: str | bytes) -> ServiceMessage:
    """Turn one text frame into a typed message. Never raises: odd frames become Unreadable."""
    try:
        obj = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        return Unreadable("not JSON")
    if not isinstance(obj, dict):
        return Unreadable("not a JSON object")
    error = _parse_error(obj)
    if error is not None:
        return error
    kind = obj.get("type")
    if kind == "pong":
        return Pong()
    if kind in ("speech_started", "speech_ended"):
        return SpeechEvent(kind=kind, timestamp=_as_float(obj.get("timestamp")))
    texts = [obj[name] for name in ("transcript", "transcription") if obj.get(name) is not None]
    if not texts and "is_last" not in obj and "is_final" not in obj:
        return Unreadable("no transcript field")
    if not all(isinstance(t, str) for t in texts):
        return Unreadable("transcript is not text")
    # The service documents both fields with the same text; its own examples carry only
    # ``transcription``. Read whichever has the text.
    transcript = next((t for t in texts if t.strip()), texts[0] if texts else "")
    language = _as_str(obj.get("language"))
    if language is None:
        languages = obj.get("languages")
        if isinstance(languages, list) and languages and isinstance(languages[0], str):
            language = languages[0]
    words = obj.get("words")
    if words is None:
        words = obj.get("word_timestamps")
    return Result(
        transcript=transcript,
        is_final=obj.get("is_final") is True,
        is_last=obj.get("is_last") is True,
        from_finalize=flag if isinstance(flag := obj.get("from_finalize"), bool) else None,
        language=language,
        words=_parse_words(words),
        session_id=_as_str(obj.get("session_id")),
    )


# --------------------------------------------------------------------------------------------
# Failures, classified once so the state machine only sees stable codes


@dataclass(frozen=True)
class Failure:
    """Why an upstream connection ended without its last result, and whether trying again helps."""

    code: ErrorCode
    message: str
    retryable: bool
    retry_after: float | None = None


def classify_http_status(status: int, retry_after: float | None = None) -> Failure:
    """A refused handshake: never retry a key problem, back off on limits."""
    if status == 401:
        return Failure(ErrorCode.AUTH, "the service rejected the API key (HTTP 401)", False)
    if status == 403:
        return Failure(
            ErrorCode.QUOTA,
            "the API key is not allowed this model or its usage limit is reached (HTTP 403)",
            False,
        )
    if status == 429:
        return Failure(
            ErrorCode.RATE_LIMITED, "the service is rate limiting (HTTP 429)", True, retry_after
        )
    if status == 400:
        return Failure(
            ErrorCode.BAD_REQUEST, "the service refused the session parameters (HTTP 400)", False
        )
    if status == 404:
        return Failure(ErrorCode.UPSTREAM, "no such service endpoint (HTTP 404)", False)
    return Failure(ErrorCode.UPSTREAM, f"the service answered HTTP {status}", status >= 500)


def classify_close(code: int | None, reason: str = "") -> Failure:
    """A socket that closed before ``is_last``: a failure of that utterance."""
    if code == 1008:
        return Failure(
            ErrorCode.RATE_LIMITED,
            "the service's concurrency limit is reached (close 1008)",
            True,
            1.0,
        )
    shown = f"close {code}" if code is not None else "connection lost"
    detail = f": {reason}" if reason else ""
    return Failure(ErrorCode.UPSTREAM, f"the service closed the session ({shown}{detail})", True)


def classify_error_frame(error: ServiceError) -> Failure:
    """An error frame. Some codes say retrying is pointless; others may be passing faults."""
    code = (error.code or "").upper()
    text = error.message
    if "LANGUAGE" in code:
        return Failure(ErrorCode.LANGUAGE, f"the service cannot serve this language: {text}", False)
    if "AUTH" in code or "KEY" in code or "UNAUTHORI" in code:
        return Failure(ErrorCode.AUTH, f"the service rejected the API key: {text}", False)
    if "LIMIT" in code or "QUOTA" in code or "CREDIT" in code:
        return Failure(ErrorCode.QUOTA, f"the service refused: {text}", False)
    return Failure(ErrorCode.UPSTREAM, f"the service reported an error: {text}", True)
