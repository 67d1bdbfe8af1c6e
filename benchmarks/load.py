"""Steady load for profiling: N streams through the bridge, optionally under py-spy.

``python -m benchmarks.load [--streams 100] [--vad webrtc] [--seconds 15] [--py-spy FILE]
[BRIDGE FLAG ...]``

Prints the audio-stop -> transcript wait (median, p90, p99), the bridge's CPU per audio second
per stream, and the CPU of the emulator, of this process and of everything else on the machine.
With ``--py-spy FILE`` (``pip install py-spy``) the bridge is sampled for the whole window into
FILE in py-spy's "raw" (collapsed stacks) format. This is the command the optimisations in
docs/benchmarks.md were measured with.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess

from wyoming_lightning.emulator.tones import encode_phrase, silence

from .harness import (
    BRIDGE_ENV,
    CpuWindow,
    Proc,
    Script,
    bridge_args,
    emulator_args,
    free_port,
    median,
    ms,
    percentile,
    py_spy,
    running,
    steady_load,
    summarize_errors,
)
from .latency import PHRASE


async def main(args: argparse.Namespace) -> None:
    script = Script.of(silence(300) + encode_phrase(PHRASE), PHRASE)
    emulator_port, bridge_port = free_port(), free_port()
    emulator = Proc("emulator", emulator_args(emulator_port), emulator_port)
    flags = ["--vad", args.vad, *args.bridge_flags]
    bridge = Proc(
        "bridge", bridge_args(bridge_port, emulator_port, *flags), bridge_port, BRIDGE_ENV
    )
    spy: subprocess.Popen[bytes] | None = None
    window = CpuWindow(bridge, emulator)

    def mark(start: bool) -> None:
        nonlocal spy
        window.mark(start)
        if start and args.py_spy:
            spy = py_spy(bridge.pid, args.seconds, args.py_spy)

    async with running(emulator, bridge):
        results, pacer = await steady_load(
            bridge_port, [script], args.streams, args.seconds, on_window=mark
        )
        if spy is not None:
            spy.wait(timeout=60)
    waits = [r.wait for r in results if r.correct and r.wait is not None]
    cpu = window.seconds("bridge")
    print(
        f"streams {args.streams}, vad {args.vad}: {len(results)} requests, "
        f"errors {summarize_errors(results)}; wait median {ms(median(waits))} ms, "
        f"p90 {ms(percentile(waits, 90))} ms, p99 {ms(percentile(waits, 99))} ms; "
        f"bridge CPU {100 * cpu / window.wall:.1f} % = "
        f"{1000 * cpu / window.wall / args.streams:.2f} ms per audio s per stream; "
        f"emulator {100 * window.seconds('emulator') / window.wall:.0f} %, "
        f"load generator {100 * window.seconds('benchmark') / window.wall:.0f} %, "
        f"other processes {window.others_percent():.0f} %; late pacer ticks {pacer.late_ticks}"
    )


def run() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.load")
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--vad", default="webrtc", choices=("off", "webrtc", "silero"))
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--py-spy", metavar="FILE", help="record the bridge with py-spy")
    parser.add_argument("bridge_flags", nargs=argparse.REMAINDER, help="more bridge flags")
    asyncio.run(main(parser.parse_args()))


if __name__ == "__main__":
    run()
