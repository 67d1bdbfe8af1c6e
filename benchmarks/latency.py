"""Table 1, bridge overhead: audio-stop -> transcript with a cloud that finalizes instantly.

N Home-Assistant streams (10 ms chunks, real time, requests back to back) of a tone phrase
through the bridge (each VAD engine in turn: webrtc, silero) to the emulator with
``--finalize-delay-ms 0``; and the same audio spoken straight to the emulator in the Lightning
protocol (the baseline), so that the difference is the bridge's own share. The phrase ends at
audio-stop (no trailing silence), so the bridge must settle the utterance after audio-stop: its
whole path is in the wait. Silero hears no speech in tones (it answers nothing), so its rows
use a spoken command from the speech set instead (0.3 s of silence, the command, audio-stop),
its text not checked: the emulator's tone recognizer makes no words of speech.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.kit import speech_data as sd
from wyoming_lightning.core.pipeline_format import BYTES_PER_SECOND
from wyoming_lightning.emulator.tones import encode_phrase, silence

from .harness import (
    BRIDGE_ENV,
    CpuWindow,
    Proc,
    Script,
    Table,
    bridge_args,
    emulator_args,
    free_port,
    median,
    ms,
    percentile,
    running,
    steady_direct,
    steady_load,
    summarize_errors,
)

PHRASE = "one two three four five six seven eight"
LEVELS = (1, 10, 100, 300)
ENGINES = ("webrtc", "silero")


def duration_for(streams: int, scale: float) -> float:
    return scale * (20.0 if streams == 1 else 15.0)


async def run(
    levels: tuple[int, ...] = LEVELS, scale: float = 1.0, engines: tuple[str, ...] = ENGINES
) -> Table:
    table = Table(
        "latency",
        "Table 1. Bridge overhead: audio-stop -> transcript, cloud finalizing instantly",
        [
            "VAD",
            "streams",
            "bridge median ms",
            "bridge p99 ms",
            "direct median ms",
            "direct p99 ms",
            "bridge share median ms",
            "bridge share p99 ms",
            "bridge CPU %",
            "other load %",
            "requests",
            "errors",
        ],
    )
    tones = silence(300) + encode_phrase(PHRASE)
    command = sd.load_speech()[0]
    spoken = sd.with_silence(command.pcm, 0.3, 0.0)
    table.notes += [
        f"audio: webrtc, 0.3 s silence + tone phrase '{PHRASE}' "
        f"({len(tones) / BYTES_PER_SECOND:.2f} s per request); silero, 0.3 s silence + the "
        f"spoken command '{command.name}' ({len(spoken) / BYTES_PER_SECOND:.2f} s, its text "
        "not checked); 10 ms chunks in real time; "
        "bridge --vad per row, defaults otherwise (Lightning dialect)",
        "direct: the same audio in 100 ms frames straight to the emulator, end -> is_last",
        "bridge share = bridge - direct; bridge CPU % is of one core, averaged over the window; "
        "other load % = CPU used meanwhile by processes other than the bridge, the emulator and "
        "this benchmark (the machine is shared), in % of one core",
    ]
    for engine in engines:
        if engine == "silero":
            pcm, script, expected = spoken, Script.of(spoken, None, command.name), None
        else:
            pcm, script, expected = tones, Script.of(tones, PHRASE, "phrase"), PHRASE
        await _run_engine(table, engine, pcm, script, expected, levels, scale)
    return table


async def _run_engine(
    table: Table,
    engine: str,
    pcm: bytes,
    script: Script,
    expected: str | None,
    levels: tuple[int, ...],
    scale: float,
) -> None:
    emulator_port, bridge_port = free_port(), free_port()
    emulator = Proc("emulator", emulator_args(emulator_port, finalize_delay_ms=0), emulator_port)
    bridge = Proc(
        "bridge", bridge_args(bridge_port, emulator_port, "--vad", engine), bridge_port, BRIDGE_ENV
    )
    async with running(emulator, bridge):
        for streams in levels:
            seconds = duration_for(streams, scale)
            window = CpuWindow(bridge, emulator)
            results, pacer = await steady_load(
                bridge_port, [script], streams, seconds, on_window=window.mark
            )
            await asyncio.sleep(1.0)
            direct = await steady_direct(emulator_port, pcm, expected, streams, seconds)
            await asyncio.sleep(1.0)
            waits = [r.wait for r in results if r.correct and r.wait is not None]
            base = [r.wait for r in direct if r.correct and r.wait is not None]
            busy = 100 * window.seconds("bridge") / window.wall
            record: dict[str, Any] = {
                "vad": engine,
                "streams": streams,
                "bridge_median_s": median(waits),
                "bridge_p99_s": percentile(waits, 99),
                "direct_median_s": median(base),
                "direct_p99_s": percentile(base, 99),
                "bridge_cpu_percent": busy,
                "emulator_cpu_percent": 100 * window.seconds("emulator") / window.wall,
                "benchmark_cpu_percent": 100 * window.seconds("benchmark") / window.wall,
                "others_cpu_percent": window.others_percent(),
                "requests": len(results),
                "direct_requests": len(direct),
                "errors": summarize_errors(results),
                "direct_errors": summarize_errors(direct),
                "pacer_late_ticks": pacer.late_ticks,
            }
            table.add(
                [
                    engine,
                    streams,
                    ms(record["bridge_median_s"]),
                    ms(record["bridge_p99_s"]),
                    ms(record["direct_median_s"]),
                    ms(record["direct_p99_s"]),
                    ms(record["bridge_median_s"] - record["direct_median_s"]),
                    ms(record["bridge_p99_s"] - record["direct_p99_s"]),
                    f"{busy:.0f}",
                    f"{record['others_cpu_percent']:.0f}",
                    f"{len(results)}/{len(direct)}",
                    f"{record['errors']}/{record['direct_errors']}",
                ],
                **record,
            )
