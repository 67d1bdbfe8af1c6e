"""``python -m benchmarks [TABLE ...] [--json FILE] [--quick]``: run benchmark tables, print them.

Each table prints within 120 columns (columns that do not fit follow in a further part); every
figure, row by row, also goes to ``--json FILE``. Progress (a line per clip or condition) goes
to stderr.

Tables, in the order they run (the default run: all but those marked "not in the default
run"):

- ``latency``: bridge overhead, audio-stop -> transcript, cloud finalizing instantly
- ``cost``: CPU per audio second and memory per open request, by VAD engine
- ``wait``: the user's wait with a 600 ms cloud finalization: early finalization, none, batch
- ``accuracy``: WER (Whisper) and audio sent per speech second, gate on vs off
- ``thirdparty``: wyoming-bench stt, streaming and non-streaming
- ``speech``: real human speech, WER straight to the service vs through the bridge per VAD engine
- ``slow``: real speech against a slow service (latency model, ``slow`` fault): sessions, audio
  billed, answer time
- ``hangover``: (not in the default run) what a shorter --hangover-ms buys and costs
- ``pause``: (not in the default run) the pause rule and re-recognition swept on real speech:
  WER, audio sent, the wait at HA's stop point
- ``pause-budget``: (not in the default run) where the ms go from the end of speech to the
  finalize: the VAD's lag, the old rule's rounding to gate frames, the audio-clock rule
- ``pause-wait``: (not in the default run) the wait after audio-stop against its floor over
  sockets, R = 0 and 150 ms, short and long commands
- ``noise``: (not in the default run) real speech in fan, hum, pink, brown and babble noise at
  0-20 dB SNR: WER straight vs through the bridge, and each word the gate loses by cause
- ``peers``: (not in the default run) the wait after HA's audio-stop at 0 / 50 / 150 ms round
  trip, beside wyoming-openai (batch, Realtime) and wyoming-faster-whisper, floors, 50 streams

Everything runs on loopback: the bridge and the emulator as subprocesses, the clients here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import accuracy, cost, hangover, human, latency, noise, pause, peers, thirdparty, wait
from .harness import Table, machine_description, progress

TableRun = Callable[[bool], Awaitable[Table]]

TABLES: dict[str, TableRun] = {
    "latency": lambda quick: latency.run(
        levels=(1, 10, 100) if quick else latency.LEVELS, scale=0.3 if quick else 1.0
    ),
    "cost": lambda quick: cost.run(seconds=5.0 if quick else 12.0),
    "wait": lambda quick: wait.run(reps=1 if quick else 2),
    "accuracy": lambda quick: accuracy.run(),
    "thirdparty": lambda quick: thirdparty.run(),
    "speech": lambda quick: human.run_speech(quick=quick),
    "slow": lambda quick: human.run_slow(quick=quick),
    "hangover": lambda quick: hangover.run(reps=1 if quick else 2),
    "pause": lambda quick: pause.run_sweep_async(quick),
    "pause-wait": lambda quick: pause.run_wait(quick),
    "pause-budget": lambda quick: asyncio.to_thread(pause.run_budget),
    "peers": lambda quick: peers.run(quick=quick),
    "noise": lambda quick: noise.run_async(quick),
}
DEFAULT = ("latency", "cost", "wait", "accuracy", "thirdparty", "speech", "slow")
ALIASES = {"overhead": "latency", "wyoming-bench": "thirdparty", "all": "all"}


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n\n".join((__doc__ or "").split("\n\n")[1:]),
    )
    parser.add_argument(
        "tables",
        nargs="*",
        metavar="TABLE",
        help=f"any of {', '.join(TABLES)} ('all': every one; default: {', '.join(DEFAULT)})",
    )
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    parser.add_argument("--quick", action="store_true", help="shorter runs, for a smoke test")
    args = parser.parse_args()
    names: list[str] = []
    for name in args.tables or DEFAULT:
        name = ALIASES.get(name, name)
        if name == "all":
            names += [n for n in TABLES if n not in names]
        elif name not in TABLES:
            parser.error(f"unknown table {name!r}; choose from {', '.join(TABLES)}")
        elif name not in names:
            names.append(name)
    machine = machine_description()
    print(
        "machine: "
        + ", ".join(f"{k} {v}" for k, v in machine.items())
        + f"; started {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        flush=True,
    )
    report: dict[str, Any] = {"machine": machine, "started": time.time(), "tables": {}}
    begin = time.monotonic()
    for name in names:
        started = time.monotonic()
        progress(f"table {name}: starting")
        table = asyncio.run(TABLES[name](args.quick))
        elapsed = time.monotonic() - started
        print(f"\n{table.render()}\n  ({elapsed:.0f} s)", flush=True)
        report["tables"][name] = {**table.as_json(), "elapsed_s": elapsed}
        if args.json:  # written after each table: a long run that fails keeps what it had
            args.json.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    total = time.monotonic() - begin
    report["elapsed_s"] = total
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=str), encoding="utf-8")
    print(f"\nall done in {total:.0f} s", file=sys.stderr)


if __name__ == "__main__":
    main()
