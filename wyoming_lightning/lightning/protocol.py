"""What the bridge says to Smallest.ai and how it reads the answers, with no I/O.

Both generations of the service are spoken here: the seed "Lightning" dialect (end of stream is
``{"type": "end"}``, one utterance per session) and the current "Pulse" dialect (``finalize`` ends
one utterance and keeps the socket, ``close_stream`` ends the session). The URL alone decides.
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

DEFAULT_URL = "wss://waves-api.smallest.ai/api/v1/lightning/get_text"
PULSE_URL = "wss://api.smallest.ai/waves/v1/pulse/get_text"
US_HOST = "api.us.smallest.ai"

MAX_KEYWORDS = 100


class Dialect(enum.Enum):
    """Which generation of the service a URL speaks."""

    LIGHTNING = "lightning"
    PULSE = "pulse"

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


def detect_dialect(url: str) -> Dialect:
    """Tell the dialect from the URL path: ``/pulse/`` and ``/stt/live`` are the newer service."""
    path = urlsplit(url).path.rstrip("/")
    if "/pulse/" in path + "/" or path.endswith("/stt/live"):
        return Dialect.PULSE
    return Dialect.LIGHTNING


LIGHTNING_LANGUAGES: tuple[str, ...] = (
    *("it", "es", "en", "pt", "hi", "de", "fr", "uk", "ru", "kn", "ml", "pl", "mr", "gu"),
    *("cs", "sk", "te", "or", "nl", "bn", "lv", "et", "ro", "pa", "fi", "sv", "bg", "ta"),
    *("hu", "da", "lt", "mt", "multi"),
)
PULSE_LANGUAGES: tuple[str, ...] = (
    *("en", "hi", "de", "es", "ru", "it", "fr", "nl", "pt", "zh", "yue", "ja", "ko", "gu"),
    *("mr", "or", "bn", "ta", "te", "kn", "ml", "north_indic", "multi-asian"),
    "multi-south-indic",
)
US_ONLY_LANGUAGES = frozenset({"zh", "yue", "ja", "ko"})


def languages_for(dialect: Dialect) -> tuple[str, ...]:
    """Language codes the service accepts in this dialect (advertised to Wyoming clients)."""
    return PULSE_LANGUAGES if dialect is Dialect.PULSE else LIGHTNING_LANGUAGES


@dataclass(frozen=True)
class Keyword:
    """A word or phrase to boost, with the service's weight."""

    text: str
    weight: float


@dataclass(frozen=True)
class SessionOptions:
    """Everything that goes into one session's query string."""

    language: str = "en"
    sample_rate: int = 16000
    encoding: str = "linear16"
    word_timestamps: bool = False
    keywords: Sequence[Keyword] = ()
    eou_timeout_ms: int | None = None
    extra: Mapping[str, str] = field(default_factory=dict)


def _format_weight(weight: float) -> str:
    return f"{weight:g}"


def _keyword_text(text: str) -> str:
    # ':' and ',' are the list's own separators: a keyword cannot carry them.
    return " ".join(text.replace(":", " ").replace(",", " ").split())


def build_url(base_url: str, options: SessionOptions) -> str:
    """The full session URL: the base (which may carry its own query, e.g. ``model=pulse``)
    plus the options, booleans spelled exactly ``true``/``false`` as the service demands."""
    dialect = detect_dialect(base_url)
    parts = urlsplit(base_url)
    query: list[tuple[str, str]] = list(parse_qsl(parts.query, keep_blank_values=True))
    query += [
        ("language", options.language),
        ("encoding", options.encoding),
        ("sample_rate", str(options.sample_rate)),
        ("word_timestamps", "true" if options.word_timestamps else "false"),
    ]
    if dialect is Dialect.PULSE and options.eou_timeout_ms is not None:
        query.append(("eou_timeout_ms", str(options.eou_timeout_ms)))
    keywords = [(_keyword_text(k.text), k.weight) for k in options.keywords[:MAX_KEYWORDS]]
    keywords = [(t, w) for t, w in keywords if t and w > 0]
    if keywords:
        if dialect is Dialect.PULSE:
            # Pulse: one comma-separated string, weights 0..20.
            joined = ",".join(f"{t}:{_format_weight(min(w, 20.0))}" for t, w in keywords)
            query.append(("keywords", joined))
        else:
            # Lightning spec: a list of word:weight, i.e. the parameter repeated.
            query += [("keywords", f"{t}:{_format_weight(w)}") for t, w in keywords]
    query += sorted(options.extra.items())
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))


def with_us_host(base_url: str) -> str:
    """The same endpoint on the US region host, which alone serves zh, yue, ja and ko."""
    parts = urlsplit(base_url)
    if not parts.hostname or not parts.hostname.endswith("smallest.ai"):
        return base_url
    netloc = US_HOST if parts.port is None else f"{US_HOST}:{parts.port}"
    if "/waves/" not in parts.path:
        # The seed's host has no US twin; the US region only speaks the Pulse paths.
        return urlunsplit((parts.scheme, netloc, "/waves/v1/pulse/get_text", parts.query, ""))
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, ""))


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
    from_finalize: bool = False
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
class Unreadable:
    """A frame that is not JSON or not any known message; the session goes on without it."""

    reason: str


ServiceMessage = Result | SpeechEvent | ServiceError | Unreadable


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
    if kind in ("speech_started", "speech_ended"):
        return SpeechEvent(kind=kind, timestamp=_as_float(obj.get("timestamp")))
    if "transcript" not in obj and "is_last" not in obj and "is_final" not in obj:
        return Unreadable("no transcript field")
    transcript = obj.get("transcript")
    if transcript is None:
        transcript = ""
    if not isinstance(transcript, str):
        return Unreadable("transcript is not text")
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
        from_finalize=obj.get("from_finalize") is True,
        language=language,
        words=_parse_words(words),
        session_id=_as_str(obj.get("session_id")),
    )


# --------------------------------------------------------------------------------------------
# Failures, classified once so the state machine only sees stable codes


class ErrorCode(enum.StrEnum):
    """Stable codes for the Wyoming ``error`` event; clients may branch on them."""

    AUTH = "auth"
    QUOTA = "quota"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    UPSTREAM = "upstream"
    BAD_AUDIO = "bad_audio"
    LANGUAGE = "language"
    BAD_REQUEST = "bad_request"
    UNAVAILABLE = "unavailable"


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
