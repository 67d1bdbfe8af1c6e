"""Table 3, the user's wait: audio-stop -> transcript when the cloud takes 600 ms to finalize.

One emulator (``--finalize-delay-ms 600``: every ``end`` is answered 600 ms late) serves three
designs in the same run, fed the same request at the same moment:

- the bridge with early finalization (default flags: silero VAD, 500 ms hangover): the
  utterance is settled when the speaker pauses, so the wait can be over before audio-stop;
- the bridge with ``--no-early-finalize``: it streams too, but sends ``end`` at audio-stop;
- the batch design (benchmarks/batch_bridge.py): everything is uploaded after audio-stop.

Audio: the real speech set, 0.5 s of silence before each command, 10 ms chunks in real time.
Session shapes: (a) 1.5-2 s of silence after the command before audio-stop (the issue's
acceptance); (b) Home-Assistant-like: audio-stop 0.7 s after the command ends, as HA's own
end-of-speech detection sends it. The emulator's recognizer is the tone reader, so the text
is whatever it makes of speech bursts: only the timing matters, and that every design gets the
same final text.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence
from typing import Any

from tests.kit import speech_data as sd

from .harness import (
    BRIDGE_ENV,
    HA_STOP_AFTER_S,
    LIGHTNING_PATH,
    Pacer,
    Proc,
    Result,
    Script,
    Table,
    bridge_args,
    emulator_args,
    free_port,
    ha_request,
    median,
    ms,
    percentile,
    running,
)

FINALIZE_DELAY_MS = 600
LEAD_S = 0.5


@dataclasses.dataclass(frozen=True)
class Design:
    name: str
    args: Sequence[str]  # the process's command line after "python"
    batch: bool = False


def shapes() -> dict[str, list[tuple[Script, float]]]:
    """Shape name -> [(script, seconds from the end of speech to audio-stop)]."""
    a: list[tuple[Script, float]] = []
    b: list[tuple[Script, float]] = []
    for index, sample in enumerate(sd.load_speech()):
        trail = 1.5 + 0.25 * (index % 3)
        a.append((Script.of(sd.with_silence(sample.pcm, LEAD_S, trail), None, sample.name), trail))
        b.append(
            (
                Script.of(sd.with_silence(sample.pcm, LEAD_S, HA_STOP_AFTER_S), None, sample.name),
                HA_STOP_AFTER_S,
            )
        )
    return {"(a) 1.5-2 s silence": a, "(b) HA: stop 0.7 s after": b}


async def run_designs(
    designs: dict[str, int],
    sessions: list[tuple[Script, float]],
    reps: int,
    parallel: int,
) -> dict[str, list[tuple[Result, float]]]:
    """Each session sent to every design at the same moment; ``parallel`` sessions at once."""
    loop = asyncio.get_running_loop()
    pacer = Pacer()
    pacer.start()
    out: dict[str, list[tuple[Result, float]]] = {name: [] for name in designs}
    work = [s for _ in range(reps) for s in sessions]
    try:
        for first in range(0, len(work), parallel):
            batch = work[first : first + parallel]
            base = loop.time() + 0.1
            jobs = []
            for offset, (script, after_speech) in enumerate(batch):
                start = base + 0.137 * offset  # spread the chunk phases
                for name, port in designs.items():
                    jobs.append((name, after_speech, ha_request(port, script, pacer, start=start)))
            results = await asyncio.gather(*(job for _, _, job in jobs))
            for (name, after_speech, _), result in zip(jobs, results, strict=True):
                out[name].append((result, after_speech))
    finally:
        await pacer.stop()
    return out


async def run(reps: int = 2, parallel: int = 4, hangover_ms: Sequence[int] = ()) -> Table:
    emulator_port = free_port()
    emulator = Proc(
        "emulator",
        emulator_args(emulator_port, finalize_delay_ms=FINALIZE_DELAY_MS),
        emulator_port,
    )
    url = f"ws://127.0.0.1:{emulator_port}{LIGHTNING_PATH}"
    designs = [
        Design("early finalization (default)", bridge_args(0, emulator_port)),
        Design("no early finalization", bridge_args(0, emulator_port, "--no-early-finalize")),
        Design(
            "batch upload at audio-stop",
            ["-m", "benchmarks.batch_bridge", "--lightning-url", url],
            batch=True,
        ),
    ]
    designs += [
        Design(
            f"early finalization, hangover {h} ms",
            bridge_args(0, emulator_port, "--hangover-ms", str(h)),
        )
        for h in hangover_ms
    ]
    procs: list[Proc] = []
    ports: dict[str, int] = {}
    for design in designs:
        port = free_port()
        args = list(design.args)
        if design.batch:
            args += ["--port", str(port)]
        else:
            args[args.index("--uri") + 1] = f"tcp://127.0.0.1:{port}"
        procs.append(Proc(design.name.split(",")[0].replace(" ", "-"), args, port, BRIDGE_ENV))
        ports[design.name] = port
    table = Table(
        "wait",
        f"Table 3. The user's wait: audio-stop -> transcript, cloud finalizing in "
        f"{FINALIZE_DELAY_MS} ms",
        [
            "session shape",
            "design",
            "median ms",
            "p90 ms",
            "max ms",
            "speech end -> transcript median ms",
            "requests",
            "errors",
            "same text",
        ],
    )
    table.notes += [
        "audio: the 12 commands of tests/data/speech, 0.5 s of silence before; 10 ms chunks in "
        f"real time; {reps} rounds, {parallel} commands at a time, every design fed each "
        "command at the same moment (same emulator, same run)",
        f"emulator: --finalize-delay-ms {FINALIZE_DELAY_MS} (end / finalize answered 600 ms "
        "late); its tone recognizer reads speech bursts as tone words: 'same text' counts the "
        "requests whose text equals the batch design's (all three reach the same final)",
        "bridge: default flags (silero VAD, hangover 500 ms, pre-roll 300 ms), Lightning dialect",
    ]
    async with running(emulator, *procs):
        for shape, sessions in shapes().items():
            results = await run_designs(ports, sessions, reps, parallel)
            reference = results["batch upload at audio-stop"]
            for design in designs:
                rows = results[design.name]
                same = sum(
                    1
                    for (r, _), (b, _) in zip(rows, reference, strict=True)
                    if r.error is None and r.text == b.text
                )
                ok = [(r, after) for r, after in rows if r.error is None and r.wait is not None]
                waits = [r.wait for r, _ in ok if r.wait is not None]
                from_speech = [r.wait + after for r, after in ok if r.wait is not None]
                errors = [r for r, _ in rows if r.error is not None]
                record: dict[str, Any] = {
                    "shape": shape,
                    "design": design.name,
                    "median_s": median(waits),
                    "p90_s": percentile(waits, 90),
                    "max_s": max(waits, default=float("nan")),
                    "speech_end_to_transcript_median_s": median(from_speech),
                    "requests": len(rows),
                    "errors": len(errors),
                    "first_error": errors[0].error if errors else None,
                    "empty_texts": sum(1 for r, _ in ok if not r.text),
                    "same_text_as_batch": same,
                    "texts": sorted({r.text or "" for r, _ in ok}),
                }
                table.add(
                    [
                        shape,
                        design.name,
                        ms(record["median_s"]),
                        ms(record["p90_s"]),
                        ms(record["max_s"]),
                        ms(record["speech_end_to_transcript_median_s"]),
                        len(rows),
                        len(errors),
                        f"{same}/{len(rows)}",
                    ],
                    **record,
                )
    return table
