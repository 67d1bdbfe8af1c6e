"""What every connection shares: settings, the ``info`` answer, the local recognizer, and the
recipe that turns a client's ``transcribe`` into one request's configuration."""

from __future__ import annotations

from dataclasses import dataclass, field

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

    def __post_init__(self) -> None:
        self.info = build_info(self.settings)

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
        no_speech_s: float | None = None
        max_command_s: float | None = None
        if s.endpointing:
            # The client relies on us to end the command (requires_external_vad: false), and
            # Home Assistant then drops its own no-speech timeout and 15 s cap: both are ours.
            no_speech_s, max_command_s = s.no_speech_timeout_s, s.max_command_s
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
            stall_timeout_s=s.stall_timeout_s,
            final_timeout_s=s.final_timeout_s,
            response_timeout_s=s.response_timeout_s,
            fallback_local=s.fallback == "local" or s.local_only,
            local_only=s.local_only,
            endpoint_silence_ms=endpoint_ms,
            no_speech_timeout_s=no_speech_s,
            max_command_s=max_command_s,
        )

    def new_gate(self) -> VadGate:
        s = self.settings
        engine = None if s.vad == "off" else create_engine(s.vad)
        config = GateConfig(
            pre_roll_ms=s.pre_roll_ms, hangover_ms=s.hangover_ms, max_utterance_s=s.max_utterance_s
        )
        return VadGate(engine, config)
