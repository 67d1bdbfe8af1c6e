"""Issue 15 in one process: silero engines built per stream grow RSS; pooled ones do not.

    python -m benchmarks.silero_heap [--mode new|pool] [--streams 20] [--rounds 8] [--frames 50]

Each round opens ``--streams`` silero engines at once (as concurrent requests do), feeds each
``--frames`` 32 ms frames of noise with small Python allocations in between (as a server
does), then ends them all. ``new`` builds every engine and drops it (the code before the
fix), ``pool`` borrows and returns them (``EnginePool``). RSS is read after every round.
Without ``--mode`` both run, each in a fresh process of its own.

Run it again with ``MALLOC_MMAP_THRESHOLD_=131072`` in the environment: that fixes glibc's
mmap threshold (no "dynamic threshold"), and ``new`` stays flat too, which is what shows the
mechanism (see wyoming_lightning/core/vad/pool.py).
"""

from __future__ import annotations

import argparse
import gc
import random
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from wyoming_lightning.core.vad.base import VadEngine
from wyoming_lightning.core.vad.engines import create_engine
from wyoming_lightning.core.vad.pool import EnginePool


def rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(mode: str, streams: int, rounds: int, frames: int) -> list[float]:
    rng = random.Random(1)
    noise = [rng.randbytes(1024) for _ in range(16)]
    pool = EnginePool(lambda: create_engine("silero"))
    readings = []
    for _ in range(rounds):
        engines: list[VadEngine] = [
            pool.acquire() if mode == "pool" else create_engine("silero") for _ in range(streams)
        ]
        chatter = []
        for f in range(frames):
            for engine in engines:
                engine.speech_probability(noise[f % len(noise)])
                chatter.append(bytearray(rng.randint(100, 5000)))
        if mode == "pool":
            for engine in engines:
                pool.release(engine)
        del engines, chatter
        gc.collect()
        readings.append(round(rss_mib(), 1))
    return readings


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.silero_heap", description=__doc__)
    parser.add_argument("--mode", choices=("new", "pool"))
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--frames", type=int, default=50)
    args = parser.parse_args(argv)
    if args.mode is None:
        sizes = ["--streams", str(args.streams), "--rounds", str(args.rounds)]
        sizes += ["--frames", str(args.frames)]
        for mode in ("new", "pool"):
            command = [sys.executable, "-m", "benchmarks.silero_heap", "--mode", mode, *sizes]
            subprocess.run(command, check=True)
        return 0
    readings = run(args.mode, args.streams, args.rounds, args.frames)
    print(f"{args.mode:>4}: RSS after each round (MiB): {' '.join(f'{r:g}' for r in readings)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
