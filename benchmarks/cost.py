"""Table 2, cost per stream: CPU per audio second and memory per open request, per VAD engine.

CPU: N Home-Assistant streams of the real speech set (0.5 s of silence, the command, 1 s of
silence; 10 ms chunks in real time, requests back to back) through the bridge, with the
emulator finalizing instantly; the bridge process's utime + stime over the window, divided by
the audio seconds streamed in it. Streams per core = 1 / that.

Memory: a fresh bridge (before the CPU run), warmed by a few requests, then N requests opened
at once, each sent 0.3 s of silence and a command (no audio-stop: the request, its utterance
and its service session stay open). RSS growth / N is the cost of an open request; the audio
it must keep (everything sent of the open utterance, for replay) is read from the bridge's own
log ("sent ... s") when the requests are closed, and subtracted.
"""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

from tests.kit import speech_data as sd
from wyoming_lightning.core.pipeline_format import BYTES_PER_SECOND

from .harness import (
    BRIDGE_ENV,
    HEAD,
    STOP,
    CpuWindow,
    Proc,
    Script,
    Table,
    bridge_args,
    chunk_events,
    emulator_args,
    free_port,
    read_wyoming_event,
    running,
    steady_load,
    summarize_errors,
)

ENGINES = ("off", "webrtc", "silero")
SENT = re.compile(r"audio received [\d.]+ s, sent ([\d.]+) s")


def speech_scripts(lead_s: float = 0.5, trail_s: float = 1.0) -> list[Script]:
    return [
        Script.of(sd.with_silence(s.pcm, lead_s, trail_s), None, s.name) for s in sd.load_speech()
    ]


async def measure_cpu(
    bridge: Proc, emulator: Proc, port: int, streams: int, seconds: float
) -> dict[str, Any]:
    window = CpuWindow(bridge, emulator)
    results, pacer = await steady_load(
        port, speech_scripts(), streams, seconds, on_window=window.mark
    )
    audio_s = streams * window.wall
    cpu_s = window.seconds("bridge")
    return {
        "cpu_s_per_audio_s": cpu_s / audio_s,
        "bridge_cpu_percent": 100 * cpu_s / window.wall,
        "emulator_cpu_percent": 100 * window.seconds("emulator") / window.wall,
        "others_cpu_percent": window.others_percent(),
        "requests": len(results),
        "errors": summarize_errors(results),
        "pacer_late_ticks": pacer.late_ticks,
    }


async def _open_request(port: int, pcm: bytes) -> tuple[asyncio.StreamReader, Any]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(HEAD + b"".join(chunk_events(pcm)))
    await writer.drain()
    return reader, writer


async def _close_request(reader: asyncio.StreamReader, writer: Any) -> bool:
    writer.write(STOP)
    try:
        async with asyncio.timeout(30):
            while (event := await read_wyoming_event(reader)) is not None:
                if event.type in ("transcript", "error"):
                    return event.type == "transcript"
        return False
    finally:
        writer.close()


async def measure_memory(bridge: Proc, port: int, count: int) -> dict[str, Any]:
    samples = sd.load_speech()
    audio = [sd.with_silence(s.pcm, 0.3, 0.0) for s in samples]
    for pcm in audio[:4]:  # warm up: imports, models, first connections
        await _close_request(*await _open_request(port, pcm))
    await asyncio.sleep(1.0)
    before = bridge.memory_kb()
    log_mark = len(bridge.log_text())
    held = [await _open_request(port, audio[i % len(audio)]) for i in range(count)]
    await asyncio.sleep(2.0)
    during = bridge.memory_kb()
    threads = bridge.threads()
    closed = await asyncio.gather(*(_close_request(r, w) for r, w in held))
    await asyncio.sleep(0.5)
    sent = [float(m.group(1)) for m in SENT.finditer(bridge.log_text()[log_mark:])]
    kept_bytes = sum(sent) / max(1, len(sent)) * BYTES_PER_SECOND
    growth_kb = (during["VmRSS"] - before["VmRSS"]) / count
    return {
        "rss_before_mb": before["VmRSS"] / 1024,
        "rss_open_mb": during["VmRSS"] / 1024,
        "hwm_mb": during["VmHWM"] / 1024,
        "per_request_kb": growth_kb,
        "audio_kept_kb": kept_bytes / 1024,
        "beyond_audio_kb": growth_kb - kept_bytes / 1024,
        "threads": threads,
        "answered": sum(closed),
    }


async def run(
    engines: tuple[str, ...] = ENGINES,
    streams: int = 100,
    seconds: float = 15.0,
    open_requests: int = 100,
) -> Table:
    table = Table(
        "cost",
        "Table 2. Cost per stream: bridge process CPU and memory, by VAD engine",
        [
            "VAD",
            "streams",
            "CPU ms per audio s",
            "streams per core",
            "bridge CPU %",
            "other load %",
            "RSS idle MB",
            f"RSS {open_requests} open MB",
            "per request kB",
            "audio kept kB",
            "beyond audio kB",
            "errors",
        ],
    )
    table.notes += [
        "audio: the 12 commands of tests/data/speech with 0.5 s silence before and 1 s after, "
        "10 ms chunks in real time; emulator finalizes instantly (fast-tones recognizer)",
        "CPU: utime+stime of the bridge process (all threads) from /proc/PID/stat; "
        "streams per core = 1 / (CPU s per audio s)",
        f"memory: VmRSS growth with {open_requests} requests open (0.3 s silence + a command, "
        "no audio-stop) / requests; 'audio kept' = the replay buffer (bridge log 'sent')",
    ]
    for engine in engines:
        emulator_port, bridge_port = free_port(), free_port()
        emulator = Proc("emulator", emulator_args(emulator_port), emulator_port)
        bridge = Proc(
            "bridge",
            bridge_args(bridge_port, emulator_port, "--vad", engine),
            bridge_port,
            BRIDGE_ENV,
        )
        async with running(emulator, bridge):
            started = time.monotonic()
            # Memory first, in a fresh process: memory freed by earlier requests and kept by
            # the allocator would otherwise be reused and hide part of the growth.
            memory = await measure_memory(bridge, bridge_port, open_requests)
            await asyncio.sleep(1.0)
            cpu = await measure_cpu(bridge, emulator, bridge_port, streams, seconds)
            record = {"vad": engine, "streams": streams, **cpu, **memory}
            record["streams_per_core"] = 1 / cpu["cpu_s_per_audio_s"]
            record["elapsed_s"] = time.monotonic() - started
        table.add(
            [
                engine,
                streams,
                f"{1000 * cpu['cpu_s_per_audio_s']:.2f}",
                f"{record['streams_per_core']:.0f}",
                f"{cpu['bridge_cpu_percent']:.0f}",
                f"{cpu['others_cpu_percent']:.0f}",
                f"{memory['rss_before_mb']:.0f}",
                f"{memory['rss_open_mb']:.0f}",
                f"{memory['per_request_kb']:.0f}",
                f"{memory['audio_kept_kb']:.0f}",
                f"{memory['beyond_audio_kb']:.0f}",
                f"{cpu['errors']}",
            ],
            **record,
        )
    return table
