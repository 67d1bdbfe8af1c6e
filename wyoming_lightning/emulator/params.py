"""Routing and query-string validation of the opening handshake.

The service answers bad parameters with HTTP 400 before upgrading, so a client that sends
``sample_rate=11025`` must learn it here, not from silence later. The seed's Lightning spec
demands booleans spelled exactly ``true``/``false``; Pulse compares with ``true`` and reads
anything else as false, which is what the vendor's clients rely on (they send ``True``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from wyoming_lightning.core.languages import LIGHTNING_LANGUAGES, PULSE_LANGUAGES
from wyoming_lightning.emulator.config import (
    ENCODINGS,
    LIGHTNING_PATH,
    LIVE_PATH,
    PULSE_PATH,
    SAMPLE_RATES,
    Dialect,
)

BOOLEAN_PARAMS = (
    "word_timestamps",
    "full_transcript",
    "sentence_timestamps",
    "redact_pii",
    "redact_pci",
    "diarize",
)
PULSE_MAX_KEYWORDS = 10000


class ParamError(ValueError):
    """A query string the service would refuse with HTTP 400."""


@dataclass(frozen=True)
class SessionParams:
    """The parameters that change what the emulator sends back."""

    language: str = "en"
    encoding: str = "linear16"
    sample_rate: int = 16000
    word_timestamps: bool = False
    full_transcript: bool = False
    sentence_timestamps: bool = False
    vad_events: bool = False
    endpointing: bool = True
    """The server ends a turn on trailing silence (Pulse: unless ``endpointing`` is not true)."""
    eou_timeout_ms: int | None = None
    """The end-of-utterance timer (Pulse: 100..10000, the service's default 800 when absent):
    a final after that much silence, whatever ``endpointing`` says."""
    finalize_on_words: bool = False
    """A final every few words (Pulse: on unless the query says otherwise)."""
    max_words: int | None = None
    """Pulse's cap on the words of one such final (undocumented, still accepted)."""
    keywords: tuple[tuple[str, float], ...] = field(default=())


def split_target(target: str) -> tuple[str, list[tuple[str, str]]]:
    """Path and ordered query pairs of a request target; repeats are kept (keywords may repeat)."""
    parts = urlsplit(target)
    return parts.path, parse_qsl(parts.query, keep_blank_values=True)


def route(path: str) -> Dialect | None:
    """Which dialect a path speaks; ``None`` for an unknown path (HTTP 404)."""
    if path == LIGHTNING_PATH:
        return Dialect.LIGHTNING
    if path in (PULSE_PATH, LIVE_PATH):
        return Dialect.PULSE
    return None


def require_model(path: str, query: Sequence[tuple[str, str]]) -> None:
    """The live URL serves several models and must be told which one: only Pulse is emulated."""
    if path != LIVE_PATH:
        return
    models = [v for k, v in query if k == "model"]
    if not models:
        raise ParamError("model is required on /waves/v1/stt/live (model=pulse)")
    if models[-1] != "pulse":
        raise ParamError(f"unknown model {models[-1]!r}; this endpoint serves model=pulse")


def _boolean(name: str, value: str) -> bool:
    if value == "true":
        return True
    if value == "false":
        return False
    raise ParamError(f"{name} must be exactly 'true' or 'false', got {value!r}")


PULSE_DEFAULT_INTENSIFIER = 1.0


def _pulse_boolean(_name: str, value: str) -> bool:
    return value == "true"


def _keyword(
    entry: str, low: float, high: float | None, strict_low: bool, default: float | None = None
) -> tuple[str, float]:
    word, sep, weight_text = entry.rpartition(":")
    word = word.strip()
    if not sep and default is not None and entry.strip():
        return entry.strip(), default  # Pulse: the intensifier is optional
    if not sep or not word:
        raise ParamError(f"keyword {entry!r} must look like word:weight")
    try:
        weight = float(weight_text)
    except ValueError:
        raise ParamError(f"keyword {entry!r} has a weight that is not a number") from None
    too_low = weight <= low if strict_low else weight < low
    if not math.isfinite(weight) or too_low or (high is not None and weight > high):
        bounds = f"> {low:g}" if high is None else f"within {low:g}..{high:g}"
        raise ParamError(f"keyword {entry!r}: weight must be {bounds}")
    return word, weight


def _keywords(dialect: Dialect, values: list[str]) -> tuple[tuple[str, float], ...]:
    entries: list[str] = []
    for value in values:
        if not value.strip():
            raise ParamError("keywords is empty; omit the parameter when there are none")
        entries.extend(value.split(","))
    if any(not e.strip() for e in entries):
        raise ParamError("keywords has an empty entry")
    if dialect is Dialect.PULSE:
        if len(entries) > PULSE_MAX_KEYWORDS:
            raise ParamError(f"at most {PULSE_MAX_KEYWORDS} keywords are allowed")
        return tuple(
            _keyword(e, 0.0, None, strict_low=False, default=PULSE_DEFAULT_INTENSIFIER)
            for e in entries
        )
    return tuple(_keyword(e, 0.0, None, strict_low=True) for e in entries)


def parse_params(dialect: Dialect, query: Sequence[tuple[str, str]]) -> SessionParams:
    """Validate the documented parameters of ``dialect``; undocumented ones are ignored.

    Pulse-only parameters on the Lightning URL are ignored too, as a service that does not know
    them would.
    """
    last = dict(query)
    languages = LIGHTNING_LANGUAGES if dialect is Dialect.LIGHTNING else PULSE_LANGUAGES
    language = last.get("language", "en")
    if language not in languages:
        raise ParamError(f"unsupported language {language!r} for {dialect.value}")
    encoding = last.get("encoding", "linear16")
    if encoding not in ENCODINGS:
        raise ParamError(f"unsupported encoding {encoding!r}")
    rate_text = last.get("sample_rate", "16000")
    if not rate_text.isdigit() or int(rate_text) not in SAMPLE_RATES:
        raise ParamError(f"unsupported sample_rate {rate_text!r}")
    pulse = dialect is Dialect.PULSE
    read = _pulse_boolean if pulse else _boolean
    flags = {name: read(name, last[name]) for name in BOOLEAN_PARAMS if name in last}
    numerals = last.get("numerals")
    if numerals is not None and numerals not in ("true", "false", "auto"):
        raise ParamError(f"numerals must be 'true', 'false' or 'auto', got {numerals!r}")
    keyword_values = [v for k, v in query if k == "keywords"]
    keywords = _keywords(dialect, keyword_values) if keyword_values else ()

    vad_events = False
    endpointing = True
    eou_timeout_ms: int | None = None
    finalize_on_words = pulse
    max_words: int | None = None
    if pulse:
        if "finalize_on_words" in last:
            finalize_on_words = _pulse_boolean("finalize_on_words", last["finalize_on_words"])
        if "max_words" in last:
            text = last["max_words"]
            if not text.isdigit() or int(text) < 1:
                raise ParamError(f"max_words must be a positive integer, got {text!r}")
            max_words = int(text)
        # ``vad`` is an alias of ``vad_events``, which wins when both are given.
        vad_text = last.get("vad_events", last.get("vad"))
        vad_events = vad_text is not None and _pulse_boolean("vad_events", vad_text)
        if "endpointing" in last:
            endpointing = _pulse_boolean("endpointing", last["endpointing"])
        if "eou_timeout_ms" in last:
            text = last["eou_timeout_ms"]
            if not text.isdigit() or not 100 <= int(text) <= 10000:
                raise ParamError(
                    f"eou_timeout_ms must be an integer within 100..10000, got {text!r}"
                )
            eou_timeout_ms = int(text)

    return SessionParams(
        language=language,
        encoding=encoding,
        sample_rate=int(rate_text),
        word_timestamps=flags.get("word_timestamps", False),
        full_transcript=flags.get("full_transcript", False),
        sentence_timestamps=flags.get("sentence_timestamps", False),
        vad_events=vad_events,
        endpointing=endpointing,
        eou_timeout_ms=eou_timeout_ms,
        finalize_on_words=finalize_on_words,
        max_words=max_words,
        keywords=keywords,
    )
