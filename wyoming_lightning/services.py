"""What every connection shares: settings, the ``info`` answer, the local recognizer, and the
recipe that turns a client's ``transcribe`` into one request's configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from wyoming.asr import Transcribe
from wyoming.info import Info

from .config import Settings
from .info import build_info
from .languages import resolve_language
from .lightning.protocol import (
    US_ONLY_LANGUAGES,
    Keyword,
    SessionOptions,
    with_us_host,
)
from .local import LocalRecognizer
from .request import RequestConfig
from .vad.engines import create_engine
from .vad.gate import GateConfig, VadGate
from .vad.pool import EnginePool

NAME_WEIGHT = 8.0
TERM_WEIGHT = 5.0
VAD_SENSITIVITY_MS = {"default": 700, "relaxed": 1250, "aggressive": 250}


def bias_keywords(
    names: list[str] | None, terms: list[str] | None, configured: tuple[Keyword, ...]
) -> tuple[Keyword, ...]:
    """Names first and weighted above terms, then the server's own list; no repeats."""
    seen: set[str] = set()
    out: list[Keyword] = []
    candidates = [Keyword(n, NAME_WEIGHT) for n in names or []]
    candidates += [Keyword(t, TERM_WEIGHT) for t in terms or []]
    candidates += list(configured)
    for keyword in candidates:
        text = " ".join(keyword.text.split())
        if text and text.lower() not in seen:
            seen.add(text.lower())
            out.append(Keyword(text, keyword.weight))
    return tuple(out)


@dataclass
class Services:
    """Built once per process; each connection reads it."""

    settings: Settings
    info: Info = field(init=False)
    local: LocalRecognizer = field(default_factory=LocalRecognizer)
    vad_pool: EnginePool | None = field(init=False)
    """Lends each request its VAD engine (one built per request grew the C heap: vad/pool.py)."""

    def __post_init__(self) -> None:
        self.info = build_info(self.settings)
        vad = self.settings.vad
        self.vad_pool = None if vad == "off" else EnginePool(partial(create_engine, vad))

    def resolve_language(self, requested: str | None) -> str:
        return resolve_language(requested, self.settings.language, self.settings.languages)

    def request_config(self, transcribe: Transcribe | None) -> RequestConfig:
        """Per-request settings; raises LanguageError for a language the service lacks."""
        s = self.settings
        language = self.resolve_language(transcribe.language if transcribe else None)
        url = s.service_url
        if language in US_ONLY_LANGUAGES and not s.url_fixed:
            url = with_us_host(url)
        keywords = bias_keywords(
            transcribe.transcript_names if transcribe else None,
            transcribe.transcript_terms if transcribe else None,
            s.keywords,
        )
        endpoint_ms: int | None = None
        if s.endpointing:
            sensitivity = transcribe.vad_sensitivity if transcribe else None
            key = getattr(sensitivity, "value", sensitivity) or "default"
            endpoint_ms = VAD_SENSITIVITY_MS.get(str(key), VAD_SENSITIVITY_MS["default"])
        return RequestConfig(
            base_url=url,
            session=SessionOptions(language=language, keywords=keywords),
            response_language=None if language == "multi" else language,
            early_finalize=s.early_finalize,
            finalize_after_ms=s.finalize_after_ms or None,
            streaming=s.streaming,
            max_utterance_s=s.max_utterance_s,
            max_retries=s.retries,
            final_timeout_s=s.final_timeout_s,
            response_timeout_s=s.response_timeout_s,
            fallback_local=s.fallback == "local" or s.local_only,
            local_only=s.local_only,
            endpoint_silence_ms=endpoint_ms,
        )

    def new_gate(self) -> VadGate:
        """A gate for one request, with an engine lent by the pool: ``release_gate`` it."""
        s = self.settings
        config = GateConfig(
            pre_roll_ms=s.pre_roll_ms, hangover_ms=s.hangover_ms, max_utterance_s=s.max_utterance_s
        )
        config.validate()  # before borrowing, so that a bad setting cannot strand an engine
        engine = None if self.vad_pool is None else self.vad_pool.acquire()
        return VadGate(engine, config)

    def release_gate(self, gate: VadGate) -> None:
        """The request is over: its engine goes back to the pool, reset, for the next one."""
        if gate.engine is not None and self.vad_pool is not None:
            self.vad_pool.release(gate.engine)
