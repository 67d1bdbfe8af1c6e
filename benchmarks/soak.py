"""Soak: many Home-Assistant-style requests, with cloud faults at random; memory over time.

    python -m benchmarks.soak [--vad silero|webrtc|off] [--audio speech|tones] [--speech-dir DIR]
                              [--seconds 180] [--streams 20] [--rss-every 30]
                              [--bursts N --burst-size 50]
                              [--fault-rate 0.2] [--seed 1] [--finalize-delay-ms 300]
                              [--client ha|reading] [--json out.json]

Three processes, loopback only:

- the emulator, run by this module in a child process (``--emulator-child``) so that its CPU
  does not starve the clients: the exact tones recognizer for ``--audio tones``, the benchmarks'
  cheap one (benchmarks/emulator.py) for speech, ``--finalize-delay-ms``. Before every
  handshake it holds one pending injection, drawn at random: with probability ``--fault-rate``
  a fault a retry can survive (drop, close-1011, close-1008, refuse-500, refuse-429, stall,
  invalid-json, duplicate-final, late-interim, error-status), or, for ``--auth-share`` of the
  faulted sessions, refuse-401, which must end its request with an ``auth`` error;
- the bridge, ``python -m wyoming_lightning`` with its defaults (timeouts, retries, the Pulse
  URL) but ``--vad`` (silero, the default, unless told); a subprocess so that its RSS, peak RSS
  (``VmHWM``) and CPU are its own. It serves ``--metrics-port``; at the end the soak scrapes it
  and checks that the bridge's own counts of requests by outcome and code and of service
  sessions equal the soak's and the emulator's;
- the clients, here: the harness's Home Assistant client and pacer, as in the other tables.
  Each request is a new connection, ``transcribe``, ``audio-start``,
  320-byte chunks paced at 10 ms in real time, ``audio-stop``, then read. ``--client ha``
  writes all audio before reading (Home Assistant 2026.2); ``--client reading`` reads while it
  writes and stops sending at the first answer (the newer Home Assistant client).

What a request says (``--audio``):

- ``speech`` (default): one or two spoken commands from ``--speech-dir`` (default the test
  set, tests/data/speech: any 16 kHz mono s16 WAVs), 0.2-0.6 s of silence first, 1.0-1.6 s
  between, 0.75 s after. Real speech is what the default silero VAD must judge, and what made
  it hold memory (issue 15). The emulator's tone reader cannot read speech, so a request counts
  as answered when it ends in a ``transcript`` (any text);
- ``tones``: one to three commands of tone words, so the exact transcript is known and checked
  (for ``--vad webrtc``: silero scores pure tones unreliably).

How the load arrives:

- by default ``--streams`` loops for ``--seconds``, each sending one request after another
  with 0.1-0.5 s between, as satellites do; bridge RSS is read every ``--rss-every`` seconds;
- ``--bursts N``: N bursts of ``--burst-size`` requests started at once (a house full of
  satellites woken together); each burst starts when the previous one is answered and the
  bridge has closed its connections, and RSS is read after every burst.

Memory is reported as RSS samples (seconds, requests answered, MiB) and as growth per thousand
requests: the least-squares slope over the samples from the baseline (the first burst, or the
warm-up, ``min(30 s, --seconds / 6)``) to the end, and the end minus the baseline. After a
burst and at the end, RSS is read once the bridge has closed every connection and ``QUIET_S``
(1 s) more, when it has collected and trimmed its heap (wyoming_lightning/ops/heap.py): what an
idle bridge keeps. In the streams mode the samples (and so the slope) are taken under load,
when the bridge is never idle; only the end is idle.

Each request names a unique tag in ``transcript_names``; the bridge forwards it as a keyword,
so the emulator's records say which sessions (and faults) belonged to which request. A request
is *survivable* when it met no refuse-401, at most two failing faults, and at most one stall
(a stalled session is replaced once per request: a second stall is answered with an error,
about 4.5 s after the first, rather than waiting on): every survivable request must end with
its transcript. The run is bounded (by ``--seconds`` or
``--bursts``, every request by a client timeout), stops by itself and kills what it started.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import signal
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from wyoming.asr import Transcribe

from benchmarks.emulator import FastToneRecognizer
from benchmarks.harness import (
    API_KEY,
    BRIDGE_ENV,
    Pacer,
    Proc,
    Script,
    free_port,
    ha_request,
)
from tests.kit.speech_data import SPEECH_DIR, read_wav
from tests.kit.stats import percentile
from wyoming_lightning.core.pipeline_format import BYTES_PER_SECOND
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer, Fault
from wyoming_lightning.emulator.tones import WORDS, encode_phrase, silence

PULSE_PATH = "/waves/v1/pulse/get_text"
SURVIVABLE = (
    "drop",
    "close-1011",
    "close-1008",
    "refuse-500",
    "refuse-429",
    "stall",
    "invalid-json",
    "duplicate-final",
    "late-interim",
    "error-status",
)
HARMLESS = frozenset({"duplicate-final", "late-interim"})  # the session still ends normally
AUTH_FAULT = "refuse-401"
MAX_FAILING_SURVIVABLE = 2
MAX_STALLS_SURVIVABLE = 1
CLIENT_TIMEOUT_S = 60.0
IDLE_WAIT_S = 15.0
SETTLE_S = 10.0  # after a burst: bridge connections close within their 2 s linger
QUIET_S = 1.0  # then RSS is read this long after the last one closed: what the idle bridge keeps


# ============================================================================ emulator child


def _random_fault(rng: random.Random, rate: float, auth_share: float) -> tuple[Fault, ...]:
    if rng.random() >= rate:
        return ()
    if rng.random() < auth_share:
        return (Fault(AUTH_FAULT),)
    name = rng.choice(SURVIVABLE)
    # Somewhere in the first two seconds of sent audio, or at the end signal if it comes first.
    return (Fault(name, after_bytes=rng.randrange(3200, 64000), retry_after_s=1),)


async def _emulator_child(args: argparse.Namespace) -> None:
    rng = random.Random(args.seed)
    config = EmulatorConfig(
        api_key=API_KEY, recognizer="tones", finalize_delay_ms=args.finalize_delay_ms
    )
    # Speech is not tone words: the cheap reader gives some text for it at a fiftieth of the CPU.
    recognizer = FastToneRecognizer() if args.audio == "speech" else None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with EmulatorServer(
        config, host="127.0.0.1", port=args.port, recognizer=recognizer
    ) as emu:

        async def keep_one_injection_pending() -> None:
            # Public API only: one injection (possibly empty) for the next handshake; renewed as
            # soon as a handshake has drawn it. A handshake that races the renewal draws none.
            while True:
                emu.inject(_random_fault(rng, args.fault_rate, args.auth_share), count=1)
                await emu.wait_for(_more_sessions_than(emu, len(emu.sessions)))

        injector = asyncio.create_task(keep_one_injection_pending())
        print("ready", flush=True)
        await stop.wait()
        injector.cancel()
        with contextlib.suppress(TimeoutError):
            await emu.wait_idle(IDLE_WAIT_S)
        records = [
            {
                "tag": _tag_of(r.params.get("keywords")),
                "faults": list(r.faults),
                "status": r.handshake_status,
                "close_code": r.close_code,
                "audio_bytes": r.audio_bytes_received,
            }
            for r in emu.sessions
        ]
        dump = {"open_sessions": emu.active_sessions, "sessions": records}
        Path(args.dump).write_text(json.dumps(dump), encoding="utf-8")


def _more_sessions_than(emu: EmulatorServer, seen: int) -> Callable[[], bool]:
    return lambda: len(emu.sessions) > seen


def _tag_of(keywords: str | None) -> str | None:
    if not keywords:
        return None
    return keywords.split(",")[0].rpartition(":")[0] or None


# ============================================================================ processes


# ============================================================================ clients


@dataclass
class Outcome:
    tag: str
    expected: str | None  # None: any transcript will do (speech the tone reader cannot read)
    utterances: int
    audio_s: float
    result: str = "no answer"  # ok | wrong | error:<code> | no answer | client timeout
    transcript: str | None = None
    latency_s: float | None = None  # audio-stop -> transcript


def _load_speech(directory: Path) -> list[bytes]:
    """Every WAV in ``directory`` (16 kHz mono s16), in name order; a one-line error if not."""
    try:
        clips = [read_wav(path) for path in sorted(directory.glob("*.wav"))]
    except (OSError, ValueError) as err:
        raise SystemExit(str(err)) from None
    if not clips:
        raise SystemExit(f"no .wav files in {directory}")
    return clips


def _make_speech_request(rng: random.Random, clips: Sequence[bytes]) -> tuple[bytes, None, int]:
    parts: list[bytes] = [silence(rng.randint(200, 600))]
    count = rng.choice((1, 1, 2))
    for i in range(count):
        parts.append(rng.choice(clips))
        if i < count - 1:
            parts.append(silence(rng.randint(1000, 1600)))
    parts.append(silence(750))  # Home Assistant stops 0.7 s after the speaker does
    return b"".join(parts), None, count


def _make_tone_request(rng: random.Random) -> tuple[bytes, str, int]:
    parts: list[bytes] = [silence(rng.randint(200, 600))]
    texts: list[str] = []
    count = rng.choice((1, 1, 2, 3))
    for i in range(count):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 5)))
        texts.append(words)
        parts.append(encode_phrase(words))
        if i < count - 1:
            parts.append(silence(rng.randint(1000, 1600)))
    parts.append(silence(750))  # Home Assistant stops 0.7 s after the speaker does
    return b"".join(parts), " ".join(texts), count


async def _request(
    port: int,
    rng: random.Random,
    tag: str,
    mode: str,
    clips: Sequence[bytes] | None,
    pacer: Pacer,
) -> Outcome:
    """One request through the harness's Home Assistant client, tagged for the emulator."""
    pcm: bytes
    expected: str | None
    if clips is None:
        pcm, expected, count = _make_tone_request(rng)
    else:
        pcm, expected, count = _make_speech_request(rng, clips)
    outcome = Outcome(tag, expected, count, len(pcm) / BYTES_PER_SECOND)
    transcribe = Transcribe(language="en", transcript_names=[tag]).event()
    script = Script.of(pcm, expected, tag, transcribe)
    result = await ha_request(
        port, script, pacer, timeout=script.seconds + CLIENT_TIMEOUT_S, client=mode
    )
    if result.text is not None:
        outcome.transcript = result.text
        outcome.result = "ok" if expected in (None, result.text) else "wrong"
        wait = result.wait
        outcome.latency_s = wait if wait is not None and wait >= 0 else None
    elif result.code is not None:
        outcome.result = f"error:{result.code}"
    elif result.error == "timeout":
        outcome.result = "client timeout"
    return outcome


async def _stream(
    port: int,
    index: int,
    seed: int,
    deadline: float,
    mode: str,
    clips: Sequence[bytes] | None,
    out: list[Outcome],
    pacer: Pacer,
) -> None:
    rng = random.Random(seed * 1000 + index)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(rng.uniform(0, 1.0))  # stagger the streams
    n = 0
    while loop.time() < deadline:
        n += 1
        out.append(await _request(port, rng, f"soak{index}x{n}", mode, clips, pacer))
        await asyncio.sleep(rng.uniform(0.1, 0.5))


async def _burst(
    port: int,
    number: int,
    size: int,
    seed: int,
    mode: str,
    clips: Sequence[bytes] | None,
    pacer: Pacer,
) -> list[Outcome]:
    """``size`` requests started together; returns when every one has ended."""
    requests = [
        _request(
            port,
            random.Random(seed * 1_000_003 + number * 1000 + i),
            f"b{number}x{i}",
            mode,
            clips,
            pacer,
        )
        for i in range(size)
    ]
    return list(await asyncio.gather(*requests))


# ============================================================================ report


def _pct(values: Sequence[float], pct: float) -> float | None:
    """The tables' percentile (tests/kit/stats.py); None rather than NaN for the JSON."""
    return percentile(values, pct) if values else None


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.0f} ms"


@dataclass
class RssSample:
    """Bridge RSS at one moment of the run."""

    seconds: float  # since the first request started
    requests: int  # answered (or failed) so far
    rss_mib: float


def _growth_per_1000(samples: Sequence[RssSample]) -> float | None:
    """Least-squares slope of RSS against requests answered, in MiB per thousand requests."""
    if len(samples) < 2:
        return None
    xs = [float(s.requests) for s in samples]
    ys = [s.rss_mib for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    spread = sum((x - mean_x) ** 2 for x in xs)
    if spread == 0:
        return None
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return 1000 * slope


@dataclass
class Report:
    command: str
    vad: str
    audio: str
    seconds: float
    streams: int
    bursts: int
    burst_size: int
    fault_rate: float
    seed: int
    finalize_delay_ms: int
    client: str
    requests: int = 0
    correct: int = 0
    errors_by_code: dict[str, int] = field(default_factory=dict)
    auth_expected: int = 0
    auth_answered: int = 0
    auth_results: dict[str, int] = field(default_factory=dict)
    survivable: int = 0
    survivable_faulted: int = 0
    lost_or_wrong: int = 0
    lost_or_wrong_examples: list[dict[str, Any]] = field(default_factory=list)
    beyond_budget: dict[str, int] = field(default_factory=dict)
    latency_p50_s: float | None = None
    latency_p99_s: float | None = None
    latency_max_s: float | None = None
    clean_latency_p50_s: float | None = None
    clean_latency_p99_s: float | None = None
    faulted_latency_p99_s: float | None = None
    sessions: int = 0
    faults_injected: dict[str, int] = field(default_factory=dict)
    untagged_sessions: int = 0
    bridge_peak_rss_mib: float = 0.0
    bridge_rss_idle_mib: float = 0.0  # listening, before the first request
    bridge_rss_baseline_mib: float = 0.0  # after the first burst, or after the warm-up
    bridge_rss_end_mib: float = 0.0  # after the last request, its connection closed
    rss_samples: list[RssSample] = field(default_factory=list)
    rss_growth_per_1000_mib: float | None = None  # slope of the samples from the baseline on
    rss_end_minus_baseline_mib: float = 0.0
    bridge_cpu_percent: float = 0.0
    emulator_cpu_percent: float = 0.0
    clients_cpu_percent: float = 0.0
    bridge_warnings: int = 0
    open_sessions_at_end: int = -1
    bridge_sockets_left: int = -1
    bridge_exit_code: int | None = None
    # The bridge's own Prometheus counts (--metrics-port), scraped at the end, beside the above.
    metrics_requests: dict[str, int] = field(default_factory=dict)
    metrics_sessions: int = -1
    metrics_agree: bool | None = None


def _scrape(port: int) -> dict[str, float]:
    """The bridge's /metrics as ``name{label=value,...}`` -> value (a few families only)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}"] = sample.value
    return out


def _compare_metrics(report: Report, outcomes: list[Outcome], scraped: dict[str, float]) -> None:
    """The bridge's counts of requests by outcome/code and of sessions, against the soak's."""
    prefix = "wyoming_lightning_requests_total{"
    by_outcome: dict[str, int] = {}
    for key, value in scraped.items():
        if key.startswith(prefix) and value:
            labels = dict(kv.split("=", 1) for kv in key[len(prefix) : -1].split(","))
            name = labels["outcome"] + (f":{labels['code']}" if labels.get("code") else "")
            by_outcome[name] = by_outcome.get(name, 0) + round(value)
    report.metrics_requests = dict(sorted(by_outcome.items()))
    report.metrics_sessions = round(scraped.get("wyoming_lightning_service_sessions_total{}", -1))
    soak: Counter[str] = Counter()
    for o in outcomes:
        if o.result in ("ok", "wrong"):
            soak["transcript"] += 1
        elif o.result.startswith("error:"):
            soak["error:" + o.result.removeprefix("error:")] += 1
        else:
            soak["abandoned"] += 1  # no answer / client timeout: the client left first
    report.metrics_agree = dict(soak) == by_outcome and report.metrics_sessions == report.sessions


def _score(report: Report, outcomes: list[Outcome], dump: dict[str, Any]) -> None:
    by_tag: dict[str, list[dict[str, Any]]] = {}
    for record in dump["sessions"]:
        if record["tag"] is None:
            report.untagged_sessions += 1
        else:
            by_tag.setdefault(record["tag"], []).append(record)
        for name in record["faults"]:
            report.faults_injected[name] = report.faults_injected.get(name, 0) + 1
    report.sessions = len(dump["sessions"])
    report.open_sessions_at_end = int(dump["open_sessions"])
    errors: Counter[str] = Counter()
    beyond: Counter[str] = Counter()
    auth: Counter[str] = Counter()
    latencies: list[float] = []
    clean: list[float] = []
    faulted: list[float] = []
    for o in outcomes:
        report.requests += 1
        sessions = by_tag.get(o.tag, [])
        names = [n for s in sessions for n in s["faults"]]
        failing = sum(1 for s in sessions if any(n not in HARMLESS for n in s["faults"]))
        stalls = sum(1 for s in sessions if "stall" in s["faults"])
        if o.result == "ok":
            report.correct += 1
        elif o.result.startswith("error:"):
            errors[o.result.removeprefix("error:")] += 1
        if o.latency_s is not None and o.result == "ok":
            latencies.append(o.latency_s)
            (faulted if names else clean).append(o.latency_s)
        if AUTH_FAULT in names:
            report.auth_expected += 1
            report.auth_answered += o.result == "error:auth"
            auth[o.result] += 1
        elif failing <= MAX_FAILING_SURVIVABLE and stalls <= MAX_STALLS_SURVIVABLE:
            report.survivable += 1
            report.survivable_faulted += bool(names)
            if o.result != "ok":
                report.lost_or_wrong += 1
                if len(report.lost_or_wrong_examples) < 10:
                    report.lost_or_wrong_examples.append({**asdict(o), "sessions": sessions})
        else:
            beyond[o.result] += 1
    report.errors_by_code = dict(errors)
    report.beyond_budget = dict(beyond)
    report.auth_results = dict(auth)
    report.latency_p50_s = _pct(latencies, 50)
    report.latency_p99_s = _pct(latencies, 99)
    report.latency_max_s = max(latencies) if latencies else None
    report.clean_latency_p50_s = _pct(clean, 50)
    report.clean_latency_p99_s = _pct(clean, 99)
    report.faulted_latency_p99_s = _pct(faulted, 99)


def _load_text(report: Report) -> str:
    shape = (
        f"{report.bursts} bursts of {report.burst_size} requests started at once"
        if report.bursts
        else f"{report.streams} real-time streams for {report.seconds:g} s"
    )
    return (
        f"{shape}, --vad {report.vad}, {report.audio} audio, fault rate "
        f"{report.fault_rate:g}/session, finalize delay {report.finalize_delay_ms} ms, "
        f"client {report.client}"
    )


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1f}"


def _print(report: Report) -> None:
    errors = ", ".join(f"{k} {v}" for k, v in sorted(report.errors_by_code.items())) or "none"
    beyond = ", ".join(f"{k} {v}" for k, v in sorted(report.beyond_budget.items())) or "none"
    faults = ", ".join(f"{k} {v}" for k, v in sorted(report.faults_injected.items()))
    rows = [
        ("command", report.command),
        ("load", _load_text(report)),
        ("requests served", str(report.requests)),
        (
            "answered ok" if report.audio == "speech" else "transcripts correct",
            str(report.correct) + (" (any transcript: speech)" if report.audio == "speech" else ""),
        ),
        ("ended in error, by code", errors),
        (
            "refuse-401 requests -> auth",
            f"{report.auth_answered} of {report.auth_expected} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(report.auth_results.items()))})",
        ),
        (
            "survivable requests",
            f"{report.survivable} ({report.survivable_faulted} met a fault)",
        ),
        ("LOST OR WRONG (survivable)", str(report.lost_or_wrong)),
        ("beyond the retry budget", beyond),
        (
            "latency stop->transcript",
            f"p50 {_ms(report.latency_p50_s)}, p99 {_ms(report.latency_p99_s)}, "
            f"max {_ms(report.latency_max_s)}",
        ),
        (
            "  without / with faults",
            f"p50 {_ms(report.clean_latency_p50_s)}, p99 {_ms(report.clean_latency_p99_s)} / "
            f"p99 {_ms(report.faulted_latency_p99_s)}",
        ),
        ("service sessions", f"{report.sessions} ({report.untagged_sessions} untagged)"),
        ("faults injected", faults),
        (
            "bridge RSS (MiB)",
            f"idle {report.bridge_rss_idle_mib:.1f}, baseline {report.bridge_rss_baseline_mib:.1f}"
            f" ({'after the first burst' if report.bursts else 'after the warm-up'}), at end "
            f"{report.bridge_rss_end_mib:.1f}, peak (VmHWM) {report.bridge_peak_rss_mib:.1f}",
        ),
        (
            "RSS growth",
            f"{_signed(report.rss_growth_per_1000_mib)} MiB per 1000 requests (slope of the "
            f"samples{'' if report.bursts else ', under load'}); idle end - baseline "
            f"{report.rss_end_minus_baseline_mib:+.1f} MiB",
        ),
        (
            "CPU (of one core)",
            f"bridge {report.bridge_cpu_percent:.0f}%, emulator "
            f"{report.emulator_cpu_percent:.0f}%, clients {report.clients_cpu_percent:.0f}%",
        ),
        (
            "RSS samples (requests: MiB)",
            " ".join(f"{s.requests}:{s.rss_mib:g}" for s in report.rss_samples),
        ),
        ("bridge warnings logged", str(report.bridge_warnings)),
        ("open sessions at end", str(report.open_sessions_at_end)),
        ("bridge sockets left open", str(report.bridge_sockets_left)),
        ("bridge exit code (SIGTERM)", str(report.bridge_exit_code)),
        (
            "bridge metrics: requests",
            f"{sum(report.metrics_requests.values())} ("
            + ", ".join(f"{k} {v}" for k, v in report.metrics_requests.items())
            + f"); service sessions {report.metrics_sessions}",
        ),
        ("metrics agree with the soak", str(report.metrics_agree)),
    ]
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    for example in report.lost_or_wrong_examples:
        print("  lost/wrong:", json.dumps(example))


# ============================================================================ main


async def run(args: argparse.Namespace) -> Report:
    report = Report(
        command=" ".join(["python -m benchmarks.soak", *sys.argv[1:]]),
        vad=args.vad,
        audio=args.audio,
        seconds=args.seconds,
        streams=args.streams,
        bursts=args.bursts,
        burst_size=args.burst_size,
        fault_rate=args.fault_rate,
        seed=args.seed,
        finalize_delay_ms=args.finalize_delay_ms,
        client=args.client,
    )
    clips = _load_speech(Path(args.speech_dir)) if args.audio == "speech" else None
    emulator_port, bridge_port, metrics_port = free_port(), free_port(), free_port()
    dump_path = Path(tempfile.mkdtemp(prefix="soak-")) / "emulator.json"
    emulator = Proc(
        "emulator",
        [
            "-m",
            "benchmarks.soak",
            "--emulator-child",
            "--port",
            str(emulator_port),
            "--dump",
            str(dump_path),
            "--audio",
            args.audio,
            "--fault-rate",
            str(args.fault_rate),
            "--auth-share",
            str(args.auth_share),
            "--seed",
            str(args.seed),
            "--finalize-delay-ms",
            str(args.finalize_delay_ms),
        ],
        emulator_port,
    )
    bridge: Proc | None = None
    pacer = Pacer()  # one clock writes every request's audio, as in the other tables
    try:
        await emulator.wait_for_log("ready", 60)
        # Readiness from the log, not a probe connection: the bridge's metrics must count
        # exactly the soak's requests.
        bridge = Proc(
            "bridge",
            [
                "-m",
                "wyoming_lightning",
                "--uri",
                f"tcp://127.0.0.1:{bridge_port}",
                "--lightning-url",
                f"ws://127.0.0.1:{emulator_port}{PULSE_PATH}",
                "--vad",
                args.vad,
                "--metrics-port",
                str(metrics_port),
                # Each request names a unique tag as a keyword, which is part of the session
                # URL: no socket could be reused, so none is kept warm (benchmarks/warm.py
                # measures reuse).
                "--session-idle-timeout",
                "0",
                # All streams come from 127.0.0.1, as satellites do through Home Assistant.
                "--max-requests-per-client",
                str(max(10, args.streams, args.burst_size)),
            ],
            bridge_port,
            BRIDGE_ENV,
        )
        await bridge.wait_for_log("listening on", 60)
        sockets_idle = bridge.sockets()
        report.bridge_rss_idle_mib = _rss_mib(bridge)
        cpu0 = (bridge.cpu_seconds(), emulator.cpu_seconds(), time.process_time())
        loop = asyncio.get_running_loop()
        began = loop.time()
        outcomes: list[Outcome] = []
        pacer.start()

        def sample() -> RssSample:
            rss = RssSample(round(loop.time() - began, 1), len(outcomes), _rss_mib(bridge))
            report.rss_samples.append(rss)
            done = sum(1 for o in outcomes if o.result == "ok")
            print(
                f"[{rss.seconds:5.0f} s] requests {rss.requests}, ok {done}, "
                f"bridge RSS {rss.rss_mib:.1f} MiB",
                file=sys.stderr,
                flush=True,
            )
            return rss

        if args.bursts:
            for number in range(args.bursts):
                outcomes += await _burst(
                    bridge_port, number, args.burst_size, args.seed, args.client, clips, pacer
                )
                # Every connection closed (they linger up to 2 s): what stays is what is kept.
                await _settle(bridge, sockets_idle)
                sample()
            baseline = report.rss_samples[0]
        else:
            deadline = began + args.seconds
            streams = [
                asyncio.create_task(
                    _stream(
                        bridge_port, i, args.seed, deadline, args.client, clips, outcomes, pacer
                    )
                )
                for i in range(args.streams)
            ]
            await asyncio.sleep(min(30.0, args.seconds / 6))  # warm-up
            baseline = sample()
            last_sample = loop.time()
            while not all(t.done() for t in streams):
                await asyncio.wait(streams, timeout=min(10.0, args.rss_every))
                if loop.time() - last_sample >= args.rss_every:
                    last_sample = loop.time()
                    sample()
            for task in streams:
                task.result()  # a client bug must not pass silently
        elapsed = loop.time() - began
        cpu1 = (bridge.cpu_seconds(), emulator.cpu_seconds(), time.process_time())
        report.bridge_cpu_percent = 100 * (cpu1[0] - cpu0[0]) / elapsed
        report.emulator_cpu_percent = 100 * (cpu1[1] - cpu0[1]) / elapsed
        report.clients_cpu_percent = 100 * (cpu1[2] - cpu0[2]) / elapsed
        report.bridge_sockets_left = await _settle(bridge, sockets_idle)
        scraped = await asyncio.to_thread(_scrape, metrics_port)
        status = bridge.memory_kb()
        report.bridge_peak_rss_mib = status.get("VmHWM", 0) / 1024
        report.bridge_rss_end_mib = status.get("VmRSS", 0) / 1024
        report.bridge_rss_baseline_mib = baseline.rss_mib
        report.rss_end_minus_baseline_mib = report.bridge_rss_end_mib - baseline.rss_mib
        from_baseline = report.rss_samples[report.rss_samples.index(baseline) :]
        report.rss_growth_per_1000_mib = _growth_per_1000(from_baseline)
        await emulator.stop(timeout=IDLE_WAIT_S + 10)  # it waits for idle, then dumps
        dump = json.loads(dump_path.read_text(encoding="utf-8"))
        _score(report, outcomes, dump)
        _compare_metrics(report, outcomes, scraped)
        report.bridge_warnings = bridge.warnings()
        report.bridge_exit_code = await bridge.stop(timeout=20)
    finally:
        await pacer.stop()
        if bridge is not None:
            await bridge.stop(timeout=20)
        await emulator.stop(timeout=20)
    return report


def _rss_mib(proc: Proc) -> float:
    return round(proc.memory_kb().get("VmRSS", 0) / 1024, 1)


async def _settle(bridge: Proc, sockets_idle: int) -> int:
    """Wait (bounded) until the bridge has closed every client connection, then ``QUIET_S``
    more (it collects garbage and trims its heap as its last connection ends, just after the
    socket closes); return the sockets left open."""
    left = bridge.sockets() - sockets_idle
    for _ in range(round(SETTLE_S / 0.1)):
        if left <= 0:
            break
        await asyncio.sleep(0.1)
        left = bridge.sockets() - sockets_idle
    await asyncio.sleep(QUIET_S)
    return left


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--vad", choices=("silero", "webrtc", "off"), default="silero", help="the bridge's --vad"
    )
    parser.add_argument(
        "--audio", choices=("speech", "tones"), default="speech", help="what requests say"
    )
    parser.add_argument(
        "--speech-dir", default=str(SPEECH_DIR), help="16 kHz mono s16 WAVs for --audio speech"
    )
    parser.add_argument("--seconds", type=float, default=180.0, help="how long to start requests")
    parser.add_argument("--streams", type=int, default=20, help="concurrent real-time clients")
    parser.add_argument("--rss-every", type=float, default=30.0, help="seconds between readings")
    parser.add_argument(
        "--bursts", type=int, default=0, help="run N bursts instead of streams for --seconds"
    )
    parser.add_argument("--burst-size", type=int, default=50, help="requests per burst")
    parser.add_argument("--fault-rate", type=float, default=0.2, help="faulted share of sessions")
    parser.add_argument(
        "--auth-share", type=float, default=0.05, help="share of faults that are refuse-401"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--finalize-delay-ms", type=int, default=300)
    parser.add_argument("--client", choices=("ha", "reading"), default="ha")
    parser.add_argument("--json", help="also write the figures to this file")
    # The emulator child process (internal).
    parser.add_argument("--emulator-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--dump", help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.emulator_child:
        asyncio.run(_emulator_child(args))
        return 0
    if (
        args.streams < 1
        or args.seconds <= 0
        or args.rss_every <= 0
        or args.bursts < 0
        or args.burst_size < 1
        or not 0 <= args.fault_rate <= 1
    ):
        raise SystemExit(
            "--streams >= 1, --seconds > 0, --rss-every > 0, --bursts >= 0, --burst-size >= 1 "
            "and --fault-rate within 0..1"
        )
    report = asyncio.run(run(args))
    _print(report)
    if args.json:
        Path(args.json).write_text(json.dumps(asdict(report), indent=1), encoding="utf-8")
    ok = (
        report.lost_or_wrong == 0
        and report.open_sessions_at_end == 0
        and report.auth_answered == report.auth_expected
        and report.requests > 0
        and report.metrics_agree is not False
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
