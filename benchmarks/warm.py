"""Warm Pulse sessions (issue 14 item 1): new service connections per request, and the wait.

    python -m benchmarks.warm [--rtt-ms 0 150] [--streams 4] [--requests 8] [--json out.json]
    python -m benchmarks.warm --rtt-ms 0 --no-pong --gap-s 12   # a service ignoring keepalive

One emulator per round trip R (``--rtt-ms``: every message it sends waits R, its handshake 2 R;
``--finalize-delay-ms 600``: the cloud takes 600 ms to settle) serves two bridges side by side:
the default (warm sockets, ``--session-idle-timeout 30``) and ``--session-idle-timeout 0`` (a
new socket per request, as before), each request sent to both at the same moment, so that both
see the same load. The steady stream: ``--streams`` satellites,
each sending ``--requests`` requests one after another (0.2 s apart), Home-Assistant-style: 10 ms
chunks in real time, 0.5 s of silence, a tone command, audio-stop 0.7 s after it. Commands
alternate short ("two three", 0.5 s of tones: the issue's 0.3-0.6 s row) and long (six words,
1.7 s). The emulator's tone reader makes each answer exact, so every request is
also checked for its own words (isolation under load).

``--no-pong``: the emulator reads ``keepalive`` and never answers it (``--fault no-pong``;
``keepalive``/``pong`` are in none of the vendor's documents); with ``--gap-s`` above two
keepalive intervals (5 s each) an idle socket then misses pongs between requests, so the count
shows whether warm sockets survive without them.

Printed per bridge and R: requests answered correctly, new service connections (the bridge's
own ``wyoming_lightning_service_connections_total``), connections per request and per minute,
and the median wait after audio-stop for short and long commands beside the floor
max(0, F + R + C - 700) (F the bridge's default ``--finalize-after-ms``, C = 600 ms).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import urllib.request
from collections.abc import Sequence

from wyoming_lightning.emulator.config import LIVE_PATH
from wyoming_lightning.settings.config import Settings

from .harness import (
    BRIDGE_ENV,
    HA_STOP_AFTER_S,
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
    running,
)

FINALIZE_DELAY_MS = 600
FINALIZE_AFTER_MS = Settings().finalize_after_ms  # the bridges run with their defaults
SHORT, LONG = "two three", "one two three four five six"
GAP_S = 0.2


def scripts() -> dict[str, Script]:
    from wyoming_lightning.emulator.tones import encode_phrase, silence

    def script(phrase: str) -> Script:
        pcm = silence(500) + encode_phrase(phrase) + silence(HA_STOP_AFTER_S * 1000)
        return Script.of(pcm, phrase, phrase)

    return {"short": script(SHORT), "long": script(LONG)}


def scrape_connections(port: int) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith("wyoming_lightning_service_connections_total "):
            return float(line.split()[1])
    raise RuntimeError("the bridge's metrics have no service_connections_total")


async def stream(
    ports: Sequence[int],
    pacer: Pacer,
    work: dict[str, Script],
    n: int,
    first: int,
    gap_s: float = GAP_S,
) -> list[tuple[str, list[Result]]]:
    """One satellite: ``n`` requests in a row, each sent to every bridge at the same moment."""
    loop = asyncio.get_running_loop()
    out: list[tuple[str, list[Result]]] = []
    kinds = list(work)
    for i in range(n):
        kind = kinds[(first + i) % len(kinds)]
        start = loop.time() + 0.05
        results = await asyncio.gather(
            *(ha_request(port, work[kind], pacer, start=start) for port in ports)
        )
        out.append((kind, list(results)))
        await asyncio.sleep(gap_s)  # a benchmark's pacing, not synchronisation
    return out


def bridge(emulator_port: int, idle_timeout_s: float) -> tuple[Proc, int]:
    port, metrics_port = free_port(), free_port()
    args = bridge_args(
        port,
        emulator_port,
        "--lightning-url",
        f"ws://127.0.0.1:{emulator_port}{LIVE_PATH}",
        "--vad",
        "webrtc",
        "--session-idle-timeout",
        f"{idle_timeout_s:g}",
        "--metrics-port",
        str(metrics_port),
    )
    return Proc(f"bridge-idle-{idle_timeout_s:g}", args, port, env=BRIDGE_ENV), metrics_port


BRIDGES = (("warm (default)", 30.0), ("cold (--session-idle-timeout 0)", 0.0))


async def run(
    rtts: Sequence[float] = (0.0, 150.0),
    streams: int = 4,
    requests: int = 8,
    *,
    no_pong: bool = False,
    gap_s: float = GAP_S,
) -> Table:
    table = Table(
        "warm",
        "Warm sessions: new service connections per request and the wait after audio-stop "
        f"(C = {FINALIZE_DELAY_MS} ms, F = {FINALIZE_AFTER_MS} ms, {streams} streams x "
        f"{requests} requests {gap_s:g} s apart, each sent to both bridges at once"
        + ("; the service never answers keepalive)" if no_pong else ")"),
        [
            "R ms",
            "bridge",
            "correct",
            "new conns",
            "conns/request",
            "conns/min",
            "short wait ms (floor)",
            "long wait ms (floor)",
        ],
    )
    work = scripts()
    for rtt in rtts:
        emulator_port = free_port()
        emulator = Proc(
            "emulator",
            emulator_args(
                emulator_port,
                finalize_delay_ms=FINALIZE_DELAY_MS,
                extra=("--rtt-ms", f"{rtt:g}", *(("--fault", "no-pong") if no_pong else ())),
            ),
            emulator_port,
        )
        bridges = [bridge(emulator_port, idle) for _, idle in BRIDGES]
        floor = floor_ms(FINALIZE_AFTER_MS, rtt, FINALIZE_DELAY_MS)
        async with running(emulator, *(proc for proc, _ in bridges)):
            pacer = Pacer()
            pacer.start()
            started = time.perf_counter()
            try:
                ports = [proc.port for proc, _ in bridges]
                runs = await asyncio.gather(
                    *(stream(ports, pacer, work, requests, s, gap_s) for s in range(streams))
                )
            finally:
                await pacer.stop()
            elapsed = time.perf_counter() - started
            counts = [await asyncio.to_thread(scrape_connections, m) for _, m in bridges]
        for b, ((name, _idle), conns) in enumerate(zip(BRIDGES, counts, strict=True)):
            results = [(kind, rs[b]) for run in runs for kind, rs in run]
            correct = sum(r.correct for _, r in results)
            waits = {
                kind: [r.wait for k, r in results if k == kind and r.wait is not None]
                for kind in ("short", "long")
            }
            per_request = conns / max(1, len(results))
            per_minute = conns / (elapsed / 60)
            cells = [
                f"{rtt:g}",
                name,
                f"{correct}/{len(results)}",
                f"{conns:g}",
                f"{per_request:.3f}",
                f"{per_minute:.1f}",
                *(
                    f"{ms(median(w)) if w else '-'} ({floor:.0f})"
                    for w in (waits["short"], waits["long"])
                ),
            ]
            table.add(
                cells,
                rtt_ms=rtt,
                bridge=name,
                requests=len(results),
                correct=correct,
                connections=conns,
                connections_per_request=per_request,
                connections_per_minute=per_minute,
                short_wait_s=waits["short"],
                long_wait_s=waits["long"],
                floor_ms=floor,
            )
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.warm", description=__doc__)
    parser.add_argument("--rtt-ms", type=float, nargs="+", default=[0.0, 150.0])
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--requests", type=int, default=8, help="per stream")
    parser.add_argument("--json", help="also write the table here")
    parser.add_argument(
        "--no-pong", action="store_true", help="the emulator never answers keepalive"
    )
    parser.add_argument(
        "--gap-s", type=float, default=GAP_S, help="pause between a stream's requests"
    )
    args = parser.parse_args(argv)
    table = asyncio.run(
        run(args.rtt_ms, args.streams, args.requests, no_pong=args.no_pong, gap_s=args.gap_s)
    )
    print(table.render())
    if args.json:
        with open(args.json, "w") as out:
            json.dump(table.as_json(), out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
