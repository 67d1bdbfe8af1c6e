"""Emulator settings and the constants of the documented Lightning / Pulse service.

The constants mirror /work/shared/docs/lightning-api.md so that the emulator refuses what the
real service refuses: a client that passes against the emulator should pass against Smallest.ai.
The service's language tables are the bridge's own (:mod:`wyoming_lightning.core.languages`): one
copy of the vendor's list.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from wyoming_lightning.emulator.faults import Fault
from wyoming_lightning.emulator.latency import LatencyModel


class Dialect(StrEnum):
    """The two names the service has had; they differ in URL and control frames."""

    LIGHTNING = "lightning"
    PULSE = "pulse"


LIGHTNING_PATH = "/api/v1/lightning/get_text"
PULSE_PATH = "/waves/v1/pulse/get_text"
LIVE_PATH = "/waves/v1/stt/live"
HEALTH_PATH = "/waves/v1/health"
"""The control plane's liveness (documented): a plain GET, no key, no session."""
"""The May 2026 Pulse URL; it needs ``model=pulse`` in the query string."""

AUTO_LANGUAGE_REPORTED = {
    "multi": "en",
    "multi-asian": "en",
    "north_indic": "hi",
    "multi-south-indic": "ta",
}
"""What a final's ``language`` says for auto-detect requests (every one of
:data:`~wyoming_lightning.core.languages.AUTO_DETECT_LANGUAGES`): the emulator cannot detect."""

ENCODINGS = frozenset({"linear16", "linear32", "alaw", "mulaw", "opus", "ogg_opus"})
DECODABLE_ENCODINGS = frozenset({"linear16"})
SAMPLE_RATES = frozenset({8000, 16000, 22050, 24000, 44100, 48000})

REGIONS = frozenset({"default", "us"})
RECOGNIZERS = frozenset({"tones", "whisper"})
TEXT_FIELDS = ("both", "transcription", "transcript", "alternate")
"""Where Pulse results carry their text. The spec says both fields; its own examples carry only
``transcription``; ``alternate`` switches between the two single-field shapes result by result,
so that a client is tested against either in one session."""


@dataclass(frozen=True)
class EmulatorConfig:
    """Everything that shapes how the emulator behaves, independent of where it listens.

    ``api_key=None`` accepts any non-empty bearer key, which is what local development wants;
    set it to check that the client really sends the key it was given.
    """

    api_key: str | None = None
    recognizer: str = "tones"
    model_dir: str | None = None
    finalize_delay_ms: int = 0
    eou_timeout_ms: int = 800
    words_per_final: int = 10
    """``finalize_on_words`` (Pulse's default): most words in one final, as the live probe saw;
    fewer makes a stricter stand-in (the query's ``max_words`` still wins)."""
    region: str = "default"
    from_finalize: bool = True
    """Pulse finals say ``from_finalize``; False leaves the field out, as the live service did
    in the vendor's own probe."""
    text_field: str = "both"
    max_sessions: int = 100
    faults: tuple[Fault, ...] = ()
    fault_count: int | None = None
    fault_rate: float = 1.0
    seed: int | None = None
    latency: LatencyModel = field(default_factory=LatencyModel)
    latency_seed: int | None = None
    """Seeds the settle-time draws: the same seed gives every session the same delays."""
    silence_dbfs: float = -45.0
    max_message_bytes: int = 1 << 20
    open_timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if self.recognizer not in RECOGNIZERS:
            raise ValueError(
                f"unknown recognizer {self.recognizer!r}; use one of {sorted(RECOGNIZERS)}"
            )
        if self.region not in REGIONS:
            raise ValueError(f"unknown region {self.region!r}; use one of {sorted(REGIONS)}")
        if self.text_field not in TEXT_FIELDS:
            raise ValueError(f"unknown text field {self.text_field!r}; use one of {TEXT_FIELDS}")
        if self.finalize_delay_ms < 0:
            raise ValueError("finalize_delay_ms must be >= 0")
        if not 100 <= self.eou_timeout_ms <= 10000:
            raise ValueError("eou_timeout_ms must be within 100..10000, as the service documents")
        if self.words_per_final < 1:
            raise ValueError("words_per_final must be >= 1")
        if self.max_sessions < 1:
            raise ValueError("max_sessions must be >= 1")
        if self.fault_count is not None and self.fault_count < 0:
            raise ValueError("fault_count must be >= 0")
        if not 0.0 <= self.fault_rate <= 1.0:
            raise ValueError("fault_rate must be within 0..1")
        if self.api_key is not None and not self.api_key.strip():
            raise ValueError("api_key must not be blank; use None to accept any key")
        if self.max_message_bytes < 4096:
            raise ValueError("max_message_bytes must allow at least a 4096-byte audio frame")

    def __repr__(self) -> str:
        # The key must never reach logs or tracebacks, even through a repr.
        key = None if self.api_key is None else "***"
        return (
            f"EmulatorConfig(api_key={key}, recognizer={self.recognizer!r}, "
            f"model_dir={self.model_dir!r}, finalize_delay_ms={self.finalize_delay_ms}, "
            f"eou_timeout_ms={self.eou_timeout_ms}, words_per_final={self.words_per_final}, "
            f"region={self.region!r}, "
            f"from_finalize={self.from_finalize}, text_field={self.text_field!r}, "
            f"max_sessions={self.max_sessions}, faults={[f.name for f in self.faults]}, "
            f"fault_count={self.fault_count}, fault_rate={self.fault_rate}, seed={self.seed}, "
            f"latency={self.latency!r}, latency_seed={self.latency_seed})"
        )
