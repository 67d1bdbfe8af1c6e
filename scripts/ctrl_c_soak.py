"""Press Ctrl-C on ``wyoming-lightning-healthcheck --wait`` at random moments, many times.

A soak, not a test: it hunts a race (a SIGINT that arrives at an unlucky instant and is lost,
so the check goes on retrying for the whole ``--wait``). Each round starts the health check
against a server that hangs up at once (so it retries), waits until it is inside its retry
loop, sleeps a random fraction of a retry, sends one SIGINT and gives it ``--grace`` seconds to
exit with 130 and the one-line "interrupted". It prints every round that did not, then a count.

    python scripts/ctrl_c_soak.py --rounds 300 --jobs 2
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

PROG = "wyoming-lightning-healthcheck"


async def one_round(
    port: int, retries_seen: asyncio.Condition, count: list[int], grace_s: float
) -> str | None:
    """One health check interrupted at a random moment; None if it ended as it should."""
    exe = shutil.which(PROG, path=str(Path(sys.executable).parent))
    assert exe, f"{PROG} is not installed next to {sys.executable}"
    proc = await asyncio.create_subprocess_exec(
        exe,
        "--uri",
        f"tcp://127.0.0.1:{port}",
        "--wait",
        "120",
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        # As a terminal gives it, even if this soak runs as a background job (SIGINT ignored).
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        # Its startup is slow and varies; a connection says it is in the loop.
        async with retries_seen:
            await asyncio.wait_for(retries_seen.wait(), 60)
        await asyncio.sleep(random.uniform(0.0, 0.6))
        proc.send_signal(signal.SIGINT)
        before = count[0]
        try:
            out, err = await asyncio.wait_for(proc.communicate(), grace_s)
        except TimeoutError:
            return (
                f"still running {grace_s:g} s after SIGINT, "
                f"{count[0] - before} more connections since"
            )
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    if proc.returncode != 130 or err.decode() != f"{PROG}: interrupted\n" or out:
        return f"exit {proc.returncode}, stderr {err.decode()[-300:]!r}"
    return None


async def worker(rounds: int, grace_s: float, failures: list[str]) -> None:
    retries_seen = asyncio.Condition()
    count = [0]

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        count[0] += 1
        async with retries_seen:
            retries_seen.notify_all()
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        for n in range(rounds):
            failure = await one_round(port, retries_seen, count, grace_s)
            if failure:
                print(f"round {n}: {failure}", flush=True)
                failures.append(failure)


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="rounds per job")
    parser.add_argument("--jobs", type=int, default=2, help="rounds run side by side (load)")
    parser.add_argument("--grace", type=float, default=10.0, help="seconds allowed to exit")
    args = parser.parse_args()
    failures: list[str] = []
    await asyncio.gather(*(worker(args.rounds, args.grace, failures) for _ in range(args.jobs)))
    print(f"{len(failures)} of {args.rounds * args.jobs} interrupts not honoured")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
