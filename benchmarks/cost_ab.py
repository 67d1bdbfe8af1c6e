"""Two versions of the bridge side by side under the same load: ``python -m benchmarks.cost_ab``.

The ``cost`` table's CPU per audio second falls as the machine gets busier (a bridge that waits
for the CPU finds several chunks of a stream in its socket and reads them in one wake-up), so
on a shared machine two runs one after the other compare the load more than the code. Here
this checkout's bridge and another checkout's (``--base``, e.g. ``git worktree add /tmp/base
main``) run at the same time, each fed N of the ``cost`` table's streams (the real speech set,
10 ms chunks in real time) by one load generator, against one emulator finalizing instantly:
whatever else the machine does, both see it. Printed per VAD engine and round: each bridge's
CPU per audio second (utime + stime from /proc over the same window), their ratio, and the
errors.

Usage::

    python -m benchmarks.cost_ab --base /tmp/base [--vad off webrtc silero] [--streams 50]
        [--seconds 15] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from .cost import speech_scripts
from .harness import (
    BRIDGE_ENV,
    CpuWindow,
    Proc,
    bridge_args,
    emulator_args,
    free_port,
    machine_description,
    running,
    steady_load,
    summarize_errors,
)


def _base_args(base: Path, port: int, emulator_port: int, engine: str) -> list[str]:
    """``python -m wyoming_lightning ...`` run from the other checkout's code: the process
    replaces itself (same PID, for /proc) with one whose working directory and PYTHONPATH are
    that checkout."""
    start = (
        f"import os, sys; os.chdir({str(base)!r}); os.execve(sys.executable, "
        "[sys.executable, '-m', 'wyoming_lightning', *sys.argv[1:]], "
        f"{{**os.environ, 'PYTHONPATH': {str(base)!r}}})"
    )
    return ["-c", start, *bridge_args(port, emulator_port, "--vad", engine)[2:]]


async def _round(base: Path, engine: str, streams: int, seconds: float, swap: bool) -> str:
    emulator_port, this_port, base_port = free_port(), free_port(), free_port()
    emulator = Proc("emulator", emulator_args(emulator_port), emulator_port)
    this = Proc(
        "this", bridge_args(this_port, emulator_port, "--vad", engine), this_port, BRIDGE_ENV
    )
    other = Proc("base", _base_args(base, base_port, emulator_port, engine), base_port, BRIDGE_ENV)
    scripts = speech_scripts()
    async with running(emulator, this, other):
        window = CpuWindow(this, other, emulator)
        marks = 0

        def mark(start: bool) -> None:  # one window for both: the first start, the last end
            nonlocal marks
            marks += 1
            if marks in (1, 4):
                window.mark(start)

        # Each tick the load generator sends to the first bridge first: which one that is
        # alternates from round to round, so that neither is always the one served first.
        loads = [
            steady_load(port, scripts, streams, seconds, on_window=mark)
            for port in ((base_port, this_port) if swap else (this_port, base_port))
        ]
        first, second = await asyncio.gather(*loads)
        (this_results, _), (base_results, _) = (second, first) if swap else (first, second)
    audio_s = streams * window.wall
    this_ms = 1000 * window.seconds("this") / audio_s
    base_ms = 1000 * window.seconds("base") / audio_s
    return (
        f"| {engine} | {this_ms:.2f} | {base_ms:.2f} | {this_ms / base_ms:.2f} | "
        f"{window.others_percent():.0f} | {summarize_errors(this_results)} / "
        f"{summarize_errors(base_results)} |"
    )


async def _main(args: argparse.Namespace) -> None:
    base = Path(args.base).resolve()
    if not (base / "wyoming_lightning" / "__main__.py").is_file():
        raise SystemExit(f"--base {base}: no wyoming_lightning package there")
    print(machine_description())
    print(f"{args.streams} streams per bridge, {args.seconds:g} s windows, base: {base}\n")
    print("| VAD | this: CPU ms per audio s | base | this / base | other load % | errors |")
    print("|---|---:|---:|---:|---:|---|")
    for round_ in range(args.rounds):
        for engine in args.vad:
            row = await _round(base, engine, args.streams, args.seconds, swap=round_ % 2 == 1)
            print(row, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="another checkout of this project")
    parser.add_argument("--vad", nargs="+", default=["off", "webrtc", "silero"])
    parser.add_argument("--streams", type=int, default=50, help="streams per bridge")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--rounds", type=int, default=1)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
