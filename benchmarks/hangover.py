"""The hangover trade-off: what a shorter ``--hangover-ms`` buys (wait) and costs (clipping, WER).

With early finalization the bridge sends ``end`` once the gate has heard ``--hangover-ms`` of
non-speech after the last speech frame. When Home Assistant's own end-of-speech sends
audio-stop 0.7 s after the speech ends, the wait after audio-stop is about
hangover + VAD lag + cloud finalization - 0.7 s; a shorter hangover shortens it, but closes
segments sooner: word tails the engine judged silence, and pauses inside a command, may be cut
(a pause longer than the hangover splits the command into two utterances, each finalized alone).

Per hangover (silero VAD, everything else default):

- wait: shape (b) of Table 3 (audio-stop 0.7 s after the command, cloud finalizing in 600 ms);
- clipped %: benchmarks/vad_gate.py's method (speech frames of the energy oracle outside every
  segment), the gate alone on the padded speech set, clean and with pink noise at 10 dB SNR;
- segments / command: how often a command is split;
- WER and audio sent: Table 4's method (Whisper in the emulator) through the bridge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import numpy as np

from tests.kit import speech_data as sd

from . import accuracy, wait
from .harness import (
    BRIDGE_ENV,
    Proc,
    Table,
    bridge_args,
    emulator_args,
    free_port,
    median,
    ms,
    percentile,
    running,
)
from .vad_gate import CHUNK_BYTES, clipped, padded_set

HANGOVERS = (500, 300, 200, 100)
PAUSES_S = (0.15, 0.25, 0.4)


def split_rate(hangover_ms: int, pause_s: float) -> float:
    """Fraction of two-command utterances, joined by a pause of ``pause_s``, the gate splits."""
    from wyoming_lightning.core.vad import GateConfig, VadGate
    from wyoming_lightning.core.vad.engines import create_engine

    samples = sd.load_speech()
    split = 0
    for i, first in enumerate(samples):
        second = samples[(i + 1) % len(samples)]
        pcm = sd.with_silence(sd.concat_with_pause(first.pcm, second.pcm, pause_s), 1.0, 1.0)
        gate = VadGate(create_engine("silero"), GateConfig(hangover_ms=hangover_ms))
        for offset in range(0, len(pcm), CHUNK_BYTES):
            gate.process(pcm[offset : offset + CHUNK_BYTES])
        gate.flush()
        split += gate.segments > 1
    return split / len(samples)


def gate_alone(hangover_ms: int, noisy: bool) -> dict[str, float]:
    from wyoming_lightning.core.vad import GateConfig, SpeechAudio, SpeechStart, VadGate
    from wyoming_lightning.core.vad.engines import create_engine

    speech_frames = clipped_frames = segments = 0
    sent_s = speech_s = 0.0
    for seed, (clean, seconds) in enumerate(padded_set()):
        pcm = sd.mix_noise(clean, 10, "pink", seed) if noisy else clean
        gate = VadGate(create_engine("silero"), GateConfig(hangover_ms=hangover_ms))
        events = []
        for offset in range(0, len(pcm), CHUNK_BYTES):
            events += gate.process(pcm[offset : offset + CHUNK_BYTES])
        events += gate.flush()
        sent = np.zeros(len(pcm) // 2, dtype=np.bool_)
        position = 0
        for event in events:
            if isinstance(event, SpeechStart):
                position, samples = event.start_sample, len(event.pre_roll) // 2
            elif isinstance(event, SpeechAudio):
                samples = len(event.data) // 2
            else:
                continue
            sent[position : position + samples] = True
            position += samples
        oracle = sd.speech_frames(clean)
        speech_frames += int(oracle.sum())
        clipped_frames += clipped(sent, oracle)
        segments += gate.segments
        sent_s += gate.audio_out_ms / 1000
        speech_s += seconds
    count = len(padded_set())
    return {
        "clipped_percent": 100 * clipped_frames / speech_frames,
        "segments_per_command": segments / count,
        "sent_per_speech": sent_s / speech_s,
    }


async def waits(hangovers: Sequence[int], reps: int, parallel: int) -> dict[int, list[float]]:
    emulator_port = free_port()
    emulator = Proc(
        "emulator",
        emulator_args(emulator_port, finalize_delay_ms=wait.FINALIZE_DELAY_MS),
        emulator_port,
    )
    ports = {h: free_port() for h in hangovers}
    bridges = [
        Proc(
            "bridge",
            bridge_args(ports[h], emulator_port, "--hangover-ms", str(h)),
            ports[h],
            BRIDGE_ENV,
        )
        for h in hangovers
    ]
    sessions = wait.shapes()["(b) HA: stop 0.7 s after"]
    async with running(emulator, *bridges):
        results = await wait.run_designs(
            {str(h): ports[h] for h in hangovers}, sessions, reps, parallel
        )
    return {
        h: [r.wait for r, _ in results[str(h)] if r.error is None and r.wait is not None]
        for h in hangovers
    }


async def run(hangovers: Sequence[int] = HANGOVERS, reps: int = 2, parallel: int = 4) -> Table:
    table = Table(
        "hangover",
        "The hangover trade-off (silero VAD, early finalization, cloud finalizing in 600 ms)",
        [
            "hangover ms",
            "wait (b) median ms",
            "wait (b) p90 ms",
            "clipped % clean",
            "clipped % pink 10 dB",
            "segments / command",
            *(f"split at {int(p * 1000)} ms pause %" for p in PAUSES_S),
            "WER %",
            "sent s / speech s",
            "requests within limit",
        ],
    )
    wait_by = await waits(hangovers, reps, parallel)
    configs = {f"hangover {h} ms": ["--vad", "silero", "--hangover-ms", str(h)] for h in hangovers}
    wer_table = await accuracy.run(configs)
    by_name = {r["gate"]: r for r in wer_table.records}
    for h in hangovers:
        clean = await asyncio.to_thread(gate_alone, h, False)
        noisy = await asyncio.to_thread(gate_alone, h, True)
        splits = [await asyncio.to_thread(split_rate, h, p) for p in PAUSES_S]
        acc = by_name[f"hangover {h} ms"]
        record: dict[str, Any] = {
            "hangover_ms": h,
            "wait_median_s": median(wait_by[h]),
            "wait_p90_s": percentile(wait_by[h], 90),
            "clean": clean,
            "pink_10db": noisy,
            "split_rate_by_pause": dict(zip(PAUSES_S, splits, strict=True)),
            "wer": acc["wer"],
            "sent_per_speech": acc["sent_per_speech"],
            "within_limit": acc["within_limit"],
            "utterances": [r["utterances"] for r in acc["rows"]],
            "hypotheses": [r["hypothesis"] for r in acc["rows"]],
        }
        table.add(
            [
                h,
                ms(record["wait_median_s"]),
                ms(record["wait_p90_s"]),
                f"{clean['clipped_percent']:.1f}",
                f"{noisy['clipped_percent']:.1f}",
                f"{clean['segments_per_command']:.2f}",
                *(f"{100 * v:.0f}" for v in splits),
                f"{100 * acc['wer']:.1f}",
                f"{acc['sent_per_speech']:.2f}",
                f"{acc['within_limit']}/{len(acc['rows'])}",
            ],
            **record,
        )
    table.notes += [
        "wait (b): audio-stop 0.7 s after the command, as Home Assistant's end-of-speech sends "
        f"it; {reps} rounds of the 12 commands",
        "clipped %: speech frames (energy oracle, clean signal) outside every segment, "
        "gate alone, padded set of benchmarks/vad_gate.py; segments / command on the clean set",
        "split at N ms pause: two commands joined by N ms of digital silence (a hesitation), "
        "share the gate cuts into two utterances",
        "WER and sent: through the bridge to Whisper tiny.en, as Table 4 (WER of tiny.en moves "
        "by a few points between runs on its own)",
    ]
    return table
