"""Hostile clients (issue 20): the six figures of the issue, measured on this checkout.

    python -m benchmarks.hostile [--crashes 50] [--concurrent 10] [--refused 25]
                                 [--idle-metrics 300] [--flood 100] [--busy 2000]

One server in this process (the real one, on loopback) against the emulator, also here; the
clients are raw sockets and the ``wyoming`` library's. Each figure runs on a fresh server:

1. crashes: ``--crashes`` requests, each broken mid-stream by an event nested 20,000 arrays
   deep, from one address with ``--max-requests-per-client 1``: the service sockets and file
   descriptors still open afterwards, and whether the next request from that address is served;
2. the daily limit: ``--concurrent`` requests of 6.6 s at once against a 3 s limit, and one
   120 s request against a 6 s limit: the seconds of audio the emulator received;
3. slots: ``--refused`` connections from 127.0.0.2 (outside ``--allow 127.0.0.1/32``), each
   sending ``ping`` and staying open, against ``--max-connections 20``: the connections the
   server holds for them and what an allowed client then gets;
4. metrics: threads before and with ``--idle-metrics`` idle connections to the metrics port;
   the address it binds with ``--uri tcp://127.0.0.1:0``;
5. the log: bytes the server logs for ``--flood`` requests with a 250 KB language, then
   ``--busy`` connections refused as busy;
6. IPv4 on ``tcp://[::]:PORT``: whether an IPv4 client is served (and admitted by
   ``--allow 127.0.0.1/32``).

Settings this checkout does not have (``--header-timeout``, ``--max-request``) are left out,
so the script measures the code before issue 20 as well as after (run it in a checkout of the
older commit). No figure depends on timing, except where a figure is itself a wait: the loads
are fixed counts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import os
import socket
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import async_read_event, async_write_event
from wyoming.ping import Ping

from tests.kit.bridge import bridge_port, bridge_settings, running_bridge
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.emulator.tones import encode_phrase, silence
from wyoming_lightning.settings.config import Settings
from wyoming_lightning.settings.networks import parse_network

PCM = silence(200) + encode_phrase("one two three") + silence(800)
BPS = 32000
OTHER = "127.0.0.2"
ALLOW_HERE = (parse_network("127.0.0.1/32"),)
WAIT = 60.0


def settings(emulator: EmulatorServer, **overrides: Any) -> Settings:
    """The test settings, with only the overrides this checkout knows."""
    known = {f.name for f in dataclasses.fields(Settings)}
    return bridge_settings(emulator.pulse_url, **{k: v for k, v in overrides.items() if k in known})


async def request(
    port: int,
    pcm: bytes = PCM,
    *,
    source: str = "127.0.0.1",
    to: str = "127.0.0.1",
    language: str = "en",
) -> list[str]:
    """One request as Home Assistant sends it; the event types (``error:code``) it got."""
    reader, writer = await asyncio.open_connection(to, port, local_addr=(source, 0))
    got: list[str] = []
    try:
        with contextlib.suppress(ConnectionError):
            await async_write_event(Transcribe(language=language).event(), writer)
            await async_write_event(AudioStart(16000, 2, 1).event(), writer)
            for i in range(0, len(pcm), 3200):
                await async_write_event(AudioChunk(16000, 2, 1, pcm[i : i + 3200]).event(), writer)
            await async_write_event(AudioStop().event(), writer)
        async with asyncio.timeout(WAIT):
            with contextlib.suppress(ConnectionError):
                while (event := await async_read_event(reader)) is not None:
                    got.append(
                        f"error:{event.data.get('code')}" if event.type == "error" else event.type
                    )
    except TimeoutError:
        got.append("(no answer)")
    finally:
        writer.close()
    return got


def answer_of(events: list[str]) -> str:
    if "transcript" in events:
        return "transcript"
    errors = [e for e in events if e.startswith("error")]
    return errors[-1] if errors else "(none)"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def crashes(emulator: EmulatorServer, n: int) -> dict[str, Any]:
    nested = b'{"type": "audio-chunk", "data": {"x": ' + b"[" * 20000 + b"]" * 20000 + b"}}\n"
    async with running_bridge(settings(emulator, max_requests_per_client=1)) as server:
        port = bridge_port(server)
        fds = open_fds()
        answers = []
        for _ in range(n):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            await async_write_event(Transcribe(language="en").event(), writer)
            await async_write_event(AudioStart(16000, 2, 1).event(), writer)
            await async_write_event(AudioChunk(16000, 2, 1, PCM[:9600]).event(), writer)
            writer.write(nested)
            got: list[str] = []
            with contextlib.suppress(TimeoutError, ConnectionError):
                async with asyncio.timeout(5):
                    while (event := await async_read_event(reader)) is not None:
                        got.append(f"error:{event.data.get('code')}")
            answers.append(answer_of(got))
            writer.close()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(10):
                await server.wait_idle()
                await emulator.wait_idle()
        leaked_fds = open_fds() - fds
        sockets = emulator.active_sessions
        after = answer_of(await request(port))
    return {
        "answers": {a: answers.count(a) for a in set(answers)},
        "service sockets open after": sockets,
        "file descriptors added": leaked_fds,
        "next request from the address": after,
    }


async def daily_limit(emulator: EmulatorServer, concurrent: int) -> dict[str, Any]:
    long_pcm = PCM * 4  # 7.2 s
    out: dict[str, Any] = {}
    async with running_bridge(settings(emulator, daily_audio_limit_min=3 / 60)) as server:
        port = bridge_port(server)
        answers = await asyncio.gather(*(request(port, long_pcm) for _ in range(concurrent)))
        await server.wait_idle()
        await emulator.wait_idle(timeout=WAIT)
    sent = sum(r.audio_bytes_received for r in emulator.sessions) / BPS
    outcomes = [answer_of(a) for a in answers]
    out[f"{concurrent} x {len(long_pcm) / BPS:.1f} s against 3 s: audio sent s"] = round(sent, 2)
    out["answers"] = {a: outcomes.count(a) for a in set(outcomes)}
    emulator.sessions.clear()
    minutes = 6 / 60
    async with running_bridge(settings(emulator, daily_audio_limit_min=minutes)) as server:
        answer = await request(bridge_port(server), PCM * 67)  # 120.6 s
        await server.wait_idle()
        await emulator.wait_idle(timeout=WAIT)
    sent = sum(r.audio_bytes_received for r in emulator.sessions) / BPS
    out["1 x 120.6 s against 6 s: audio sent s"] = round(sent, 2)
    out["its answer"] = answer_of(answer)
    emulator.sessions.clear()
    return out


async def slots(emulator: EmulatorServer, refused: int) -> dict[str, Any]:
    cfg = settings(emulator, allow=ALLOW_HERE, max_connections=20)
    async with running_bridge(cfg) as server:
        port = bridge_port(server)
        held = []
        for _ in range(refused):
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(OTHER, 0))
            await async_write_event(Ping(text="hi").event(), writer)
            with contextlib.suppress(ConnectionError, TimeoutError):
                async with asyncio.timeout(5):
                    await async_read_event(reader)
            held.append(writer)
        holding = server.active_connections
        allowed = answer_of(await request(port))
        for writer in held:
            writer.close()
    dribbled = await dribbler(emulator)
    return {
        f"slots held by {refused} refused clients (of 20)": holding,
        "an allowed client then gets": allowed,
        "a client dribbling a byte a second is closed after s": dribbled,
    }


async def dribbler(emulator: EmulatorServer) -> float | str:
    """Seconds until the server closes a connection that sends a header a byte a second
    (default settings: the figure is the header timeout, or the idle timeout and linger)."""
    header = b'{"type": "describe", "data": {"padding": "' + b"x" * 200 + b'"}}\n'
    async with running_bridge(settings(emulator)) as server:
        reader, writer = await asyncio.open_connection("127.0.0.1", bridge_port(server))
        loop = asyncio.get_running_loop()
        start = loop.time()
        closed = asyncio.create_task(reader.read())
        try:
            for byte in header:
                writer.write(bytes([byte]))
                await asyncio.sleep(1.0)  # the load itself: one byte a second
                if closed.done():
                    break
                if loop.time() - start > 120:
                    return "still open after 120 s"
            await asyncio.wait_for(closed, 60)
            return round(loop.time() - start, 1)
        except (ConnectionError, TimeoutError):
            return round(loop.time() - start, 1)
        finally:
            writer.close()


async def metrics(emulator: EmulatorServer, idle: int) -> dict[str, Any]:
    async with running_bridge(settings(emulator, metrics_port=0)) as server:
        port = server.services.guard.metrics_port
        assert port
        before = threading.active_count()
        conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(idle)]
        await asyncio.sleep(0.5)  # a figure, not a synchronisation: let threads start if any
        during = threading.active_count()
        try:
            _r, w = await asyncio.open_connection(OTHER, port)
            w.close()
            other = "accepted"
        except OSError:
            other = "refused"
        for _, writer in conns:
            writer.close()
    return {
        f"threads before / with {idle} idle connections": f"{before} / {during}",
        "metrics port reached on 127.0.0.2 (server on 127.0.0.1)": other,
    }


class _Bytes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.total = 0
        self.lines = 0
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.total += len(self.format(record)) + 1
        self.lines += 1


@contextlib.contextmanager
def counting_log() -> Iterator[_Bytes]:
    handler = _Bytes()
    logger = logging.getLogger("wyoming_lightning")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


async def log_flood(emulator: EmulatorServer, flood: int, busy: int) -> dict[str, Any]:
    language = "x" * 250_000
    out: dict[str, Any] = {}
    async with running_bridge(settings(emulator, max_connections=1)) as server:
        port = bridge_port(server)
        with counting_log() as log:
            for _ in range(flood):
                await request(port, b"", language=language)
                await server.wait_idle()
        out[f"{flood} requests with a 250 KB language: log bytes, lines"] = (log.total, log.lines)
        _r, holder = await asyncio.open_connection("127.0.0.1", port)
        await async_write_event(Transcribe(language="en").event(), holder)
        await emulator.wait_for(lambda: server.active_connections == 1, timeout=WAIT)

        async def knock() -> None:
            with contextlib.suppress(OSError):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                with contextlib.suppress(ConnectionError):
                    await reader.read()
                writer.close()

        with counting_log() as log:
            for _ in range(busy // 50):
                await asyncio.gather(*(knock() for _ in range(50)))
        out[f"{busy} busy refusals: log bytes, lines"] = (log.total, log.lines)
        holder.close()
    return out


async def dual_stack(emulator: EmulatorServer) -> dict[str, Any]:
    cfg = settings(emulator, uri="tcp://[::]:0", allow=ALLOW_HERE)
    try:
        async with running_bridge(cfg) as server:
            got = answer_of(await request(bridge_port(server), to="127.0.0.1"))
    except OSError as err:  # the code before issue 20: IPv6 only, the connection is refused
        got = f"failed: {err}"
    return {"IPv4 client on tcp://[::] with --allow 127.0.0.1/32": got}


async def main(args: argparse.Namespace) -> None:
    logging.basicConfig(level=logging.CRITICAL, handlers=[logging.NullHandler()])
    runs: list[tuple[str, Callable[[EmulatorServer], Awaitable[dict[str, Any]]]]] = [
        ("1 crashes", lambda emulator: crashes(emulator, args.crashes)),
        ("2 daily limit", lambda emulator: daily_limit(emulator, args.concurrent)),
        ("3 slots", lambda emulator: slots(emulator, args.refused)),
        ("4 metrics", lambda emulator: metrics(emulator, args.idle_metrics)),
        ("5 log", lambda emulator: log_flood(emulator, args.flood, args.busy)),
        ("6 dual stack", dual_stack),
    ]
    for name, run in runs:
        async with EmulatorServer() as emulator:  # a fresh one: no figure sees another's leaks
            try:
                result = await run(emulator)
            except Exception as err:
                result = {"failed": f"{type(err).__name__}: {err}"}
        for key, value in result.items():
            print(f"{name}: {key}: {value}", flush=True)
    has_v6 = socket.has_ipv6
    print(f"(IPv6: {has_v6}; load: {os.getloadavg()[0]:.2f})")


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m benchmarks.hostile", description=__doc__)
    p.add_argument("--crashes", type=int, default=50)
    p.add_argument("--concurrent", type=int, default=10)
    p.add_argument("--refused", type=int, default=25)
    p.add_argument("--idle-metrics", type=int, default=300)
    p.add_argument("--flood", type=int, default=100)
    p.add_argument("--busy", type=int, default=2000)
    return p.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse(sys.argv[1:])))
