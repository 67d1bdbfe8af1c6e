"""What every connection shares: settings, the ``info`` answer, the local recognizer, and the
recipe that turns a client's ``transcribe`` into one request's configuration."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, fields
from functools import partial
from typing import Any

from wyoming.asr import Transcribe
from wyoming.info import Info

from wyoming_lightning.cloud.region import REGIONS, RegionChoice, RegionProber, vendor_candidates
from wyoming_lightning.cloud.warm import WarmSessions
from wyoming_lightning.core.languages import resolve_language
from wyoming_lightning.core.protocol import Dialect, Keyword, SessionOptions, region_url
from wyoming_lightning.core.request import RequestConfig
from wyoming_lightning.core.smart_turn import AcousticJudge, load_acoustic
from wyoming_lightning.core.transcript import ServiceHabits
from wyoming_lightning.core.turn import TurnJudge, load_judge
from wyoming_lightning.core.vad.engines import create_engine
from wyoming_lightning.core.vad.gate import GateConfig, VadGate
from wyoming_lightning.core.vad.pool import EnginePool
from wyoming_lightning.info import build_info
from wyoming_lightning.local.recognizer import LocalRecognizer
from wyoming_lightning.ops.guard import Guard
from wyoming_lightning.ops.stop_habits import StopHabits
from wyoming_lightning.settings.config import VAD_LAG_MS, Settings

NAME_WEIGHT = 2.0
TERM_WEIGHT = 1.5
"""Intensifiers for the names and terms a client sends with ``transcribe``. The vendor's advice
is 1 to 3 (its default is 1; above 5 the model hallucinates the keyword). Names (people, rooms,
devices) are the words a general model gets wrong most and a command depends on, so they get
more than terms; both stay above a ``--keywords`` entry given without a weight (the default 1)
and leave room up to 3 for a user who wants one word boosted harder."""
USAGE_TAG_PREFIX = "wyoming-lightning-"
BRIDGE_EOU_TIMEOUT_MS = 10_000
"""Pulse's end-of-utterance timer as the bridge asks for it: the longest the service accepts.
The bridge's VAD ends every turn with ``finalize`` a few hundred ms after the speech, so a
server final after a pause within a turn (800 ms by default) would only split the turn into
more finals to settle; dictation keeps its pauses inside one turn on purpose."""
VAD_SENSITIVITY_MS = {"default": 700, "relaxed": 1250, "aggressive": 250}


def passed_settings(config: type[Any], settings: Settings) -> dict[str, Any]:
    """Every server setting that ``config`` (a dataclass) has a field of the same name for,
    with its value: how a request-level setting reaches the request without a hand-kept
    mirror here. Only what a request computes from settings (or from the client) is spelt
    out, in :meth:`Services.request_config`."""
    names = {f.name for f in fields(settings)}
    return {f.name: getattr(settings, f.name) for f in fields(config) if f.name in names}


def gate_config(settings: Settings) -> GateConfig:
    """The gate the server builds for a request from ``settings``; benchmarks that replay the
    server's gate offline build theirs here too, so they measure what the server runs."""
    return GateConfig(
        pre_roll_ms=settings.pre_roll_ms,
        hangover_ms=settings.hangover_ms,
        max_utterance_s=settings.max_utterance_s,
        # Only where the model is the cost: webrtc's engine must follow every frame.
        skip_quiet_db=(settings.vad_skip_quiet_db or None if settings.vad == "silero" else None),
    )


def bias_keywords(
    names: list[str] | None,
    terms: list[str] | None,
    configured: tuple[Keyword, ...],
    home: tuple[Keyword, ...] = (),
) -> tuple[Keyword, ...]:
    """Names first and weighted above terms, then the home's names from Home Assistant
    (already weighted and ranked: hass/names.py), then the server's own list; no repeats.

    Spelling and case are kept as given: the service matches keywords case-sensitively.
    """
    seen: set[str] = set()
    out: list[Keyword] = []
    candidates = [Keyword(n, NAME_WEIGHT) for n in names or []]
    candidates += [Keyword(t, TERM_WEIGHT) for t in terms or []]
    candidates += list(home) + list(configured)
    for keyword in candidates:
        text = " ".join(keyword.text.split())
        if text and text not in seen:
            seen.add(text)
            out.append(Keyword(text, keyword.weight))
    return tuple(out)


@dataclass
class Services:
    """Built once per process; each connection reads it."""

    settings: Settings
    info: Info = field(init=False)
    local: LocalRecognizer = field(default_factory=LocalRecognizer)
    guard: Guard = field(init=False)
    """Access, limits, usage and metrics (issue 12)."""
    vad_pool: EnginePool | None = field(init=False)
    """Lends each request its VAD engine (one built per request grew the C heap: vad/pool.py)."""
    warm: WarmSessions = field(init=False)
    """Pulse sockets kept open between requests (lightning/pool.py, lightning/warm.py)."""
    region: RegionChoice | None = field(init=False)
    """``--region auto``: which host is nearer (lightning/region.py); None: the URL as given."""
    _region_prober: RegionProber | None = field(init=False)
    habits: ServiceHabits = field(default_factory=ServiceHabits)
    """What every request has learnt of the service (transcript.ServiceHabits)."""
    stop_habits: StopHabits = field(default_factory=StopHabits)
    """How each client ends its audio: whose speech may be read in batches (stop_habits.py)."""
    _usage_tag: str = field(init=False)
    home_keywords: tuple[Keyword, ...] = field(default=(), init=False)
    """The home's names as last read from Home Assistant (hass/home_names.py replaces the
    tuple whole); a request takes it as it is when it starts and never waits for a read."""
    _turn_judges: dict[tuple[str, tuple[str, ...]], TurnJudge | None] = field(
        default_factory=dict, init=False
    )
    """End-of-turn judges by language and the names they were built with (turn.py)."""

    def __post_init__(self) -> None:
        self.info = build_info(self.settings)
        self.guard = Guard(self.settings)
        vad = self.settings.vad
        self.vad_pool = None if vad == "off" else EnginePool(partial(create_engine, vad))
        self.warm = WarmSessions.with_timeout(
            self.settings.session_idle_timeout_s, self.guard.metrics
        )
        self._usage_tag = USAGE_TAG_PREFIX + uuid.uuid4().hex[:12]
        self.region = self._region_prober = None
        if self.settings.region == "auto":
            given = self.settings.region_urls
            candidates = (
                dict(zip(REGIONS, (u.strip() for u in given.split(",")), strict=True))
                if given
                else vendor_candidates(self.settings.service_url)
            )
            self.region = RegionChoice(candidates)
            self._region_prober = RegionProber(self.region, self._region_measured)

    def _region_measured(self, choice: RegionChoice) -> None:
        metrics = self.guard.metrics
        for region in REGIONS:
            if region in choice.rtt_s:
                metrics.region_rtt.labels(region=region).set(choice.rtt_s[region])
            metrics.region_chosen.labels(region=region).set(int(region == choice.nearest))

    async def start_probes(self) -> None:
        """``--region auto``: measure both hosts now (the first request then goes to the nearer),
        and again every 10 minutes."""
        if self._region_prober is not None:
            await self._region_prober.measure()
            self._region_prober.start()

    async def stop_probes(self) -> None:
        if self._region_prober is not None:
            await self._region_prober.stop()

    @property
    def keeps_sessions(self) -> bool:
        """Pulse sockets outlive their request (``--session-idle-timeout`` above 0)."""
        return self.warm.enabled and self.settings.service_dialect is Dialect.PULSE

    def resolve_language(self, requested: str | None) -> str:
        """The service's code for a request's language; raises LanguageError if it has none."""
        return resolve_language(requested, self.settings.language, self.settings.languages)

    def request_config(self, transcribe: Transcribe | None, language: str) -> RequestConfig:
        """Per-request settings, for a ``language`` already resolved by :meth:`resolve_language`.

        The handler resolves it once, when ``transcribe`` arrives (so a bad language is refused
        before any audio); it is not resolved again here.
        """
        s = self.settings
        dialect = s.service_dialect
        url = (
            region_url(s.service_url, language)
            if self.region is None
            else self.region.url_for(language)
        )
        keywords = bias_keywords(
            transcribe.transcript_names if transcribe else None,
            transcribe.transcript_terms if transcribe else None,
            s.keywords,
            self.home_keywords,
        )
        endpoint_ms: int | None = None
        judge: TurnJudge | None = None
        acoustic: AcousticJudge | None = None
        no_speech_s: float | None = None
        max_command_s: float | None = None
        if s.endpointing:
            # The client relies on us to end the command (requires_external_vad: false), and
            # Home Assistant then drops its own no-speech timeout and 15 s cap: both are ours.
            no_speech_s, max_command_s = s.no_speech_timeout_s, s.max_command_s
            sensitivity = transcribe.vad_sensitivity if transcribe else None
            key = getattr(sensitivity, "value", sensitivity) or "default"
            endpoint_ms = VAD_SENSITIVITY_MS.get(str(key), VAD_SENSITIVITY_MS["default"])
            judge = self.turn_judge(language) if s.turn_intents else None
            if judge is not None and s.smart_turn:
                acoustic = load_acoustic()
        derived: dict[str, object] = dict(
            base_url=url,
            session=SessionOptions(
                language=language,
                keywords=keywords,
                # Pulse: word times let the bridge tell a repeated final from a new one by
                # position; the bridge's own VAD ends turns (see SessionOptions).
                word_timestamps=dialect is Dialect.PULSE,
                server_endpointing=False,
                # The bridge ends each turn itself with finalize: the service's own finals
                # (every few words, after each 800 ms pause, by default) only add finals to
                # settle. Asked off here; settling stays right if a service ignores it (README).
                finalize_on_words=False if dialect is Dialect.PULSE else None,
                eou_timeout_ms=BRIDGE_EOU_TIMEOUT_MS if dialect is Dialect.PULSE else None,
                # The tag is part of the URL, so a socket kept warm for the next request
                # must carry a tag that request shares: one per server then, else per request.
                external_session_id=self._usage_tag
                if self.keeps_sessions
                else USAGE_TAG_PREFIX + uuid.uuid4().hex[:12],
            ),
            dialect_choice=Dialect.choice(s.dialect),
            response_language=None if language == "multi" else language,
            finalize_after_ms=s.finalize_after_ms or None,
            vad_lag_ms=VAD_LAG_MS.get(s.vad, 0) if s.vad_lag_ms is None else s.vad_lag_ms,
            dictation_after_s=s.dictation_after_s or None,
            max_retries=s.retries,
            fallback_local=s.fallback == "local" or s.local_only,
            local_only=s.local_only,
            endpoint_silence_ms=endpoint_ms,
            turn_judge=judge,
            turn_acoustic=acoustic,
            no_speech_timeout_s=no_speech_s,
            max_command_s=max_command_s,
            keep_session=self.keeps_sessions,
            habits=self.habits,
            # Lightning: one session per utterance, so nothing to keep; the first one's
            # handshake with the first chunk instead of at speech (no audio before speech:
            # nothing billed).
            connect_at_start=dialect is Dialect.LIGHTNING,
        )
        return RequestConfig(**{**passed_settings(RequestConfig, s), **derived})

    def turn_judge(self, language: str) -> TurnJudge | None:
        """The end-of-turn judge for ``language`` (turn.py), built on first use with the home's
        names as they are then (None without the optional packages or templates)."""
        names = tuple(k.text for k in self.home_keywords)
        key = (language, names)
        if key not in self._turn_judges:
            # Judges built with other names are stale.
            self._turn_judges = {k: v for k, v in self._turn_judges.items() if k[1] == names}
            self._turn_judges[key] = load_judge(language, names or None)
        return self._turn_judges[key]

    def new_gate(self) -> VadGate:
        """A gate for one request, with an engine lent by the pool: ``release_gate`` it."""
        config = gate_config(self.settings)
        config.validate()  # before borrowing, so that a bad setting cannot strand an engine
        engine = None if self.vad_pool is None else self.vad_pool.acquire()
        return VadGate(engine, config)

    def release_gate(self, gate: VadGate) -> None:
        """The request is over: its engine goes back to the pool, reset, for the next one."""
        if gate.engine is not None and self.vad_pool is not None:
            self.vad_pool.release(gate.engine)
