"""The emulator as the benchmarks run it: a subprocess, optionally with a cheaper tone decoder.

``python -m benchmarks.emulator --port N [--recognizer fast-tones|tones|whisper]
[--finalize-delay-ms N] [--latency none|cloud] [--settle-ms N] [--rtt-ms N] [--latency-seed N]
[--fault slow --fault-delay-ms 8000] [--max-sessions N] [--log-level info]``

The stock ``tones`` recognizer finds each word's pitch with a 32768-point FFT and the emulator
re-decodes the whole segment for an interim every 100 ms of audio: about 11 ms of CPU for one
decode of a 2.3 s phrase, some 60 ms of CPU per audio second per stream, so that at 100 streams
the emulator alone would need several cores of this two-core machine and the bridge would be
measured starved. ``fast-tones`` reads the same words from zero crossings (about 50 times
cheaper) and gives the same text on tone audio; interims keep the stock cadence. The
protocol, the finalize delay and everything else are the emulator's own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import logging
import signal
from collections.abc import Sequence

import numpy as np

from wyoming_lightning.emulator import FAULT_NAMES, EmulatorConfig, EmulatorServer, Fault
from wyoming_lightning.emulator import tones as t
from wyoming_lightning.emulator.latency import PRESETS
from wyoming_lightning.emulator.recognizers import Recognizer, ToneRecognizer, create_recognizer

RECOGNIZERS = ("fast-tones", "tones", "whisper")


def fast_decode(pcm: bytes, rate: int = 16000) -> list[t.Tone]:
    """``tones.decode`` for 16 kHz audio, with the pitch taken from zero crossings."""
    if rate != 16000:
        raise ValueError("the fast tone reader reads 16 kHz audio only")
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    threshold = int(t._ACTIVE_AMPLITUDE * 32768)
    active = np.flatnonzero(np.abs(samples.astype(np.int32)) >= threshold)
    if active.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(active) > t._MAX_INNER_GAP)
    starts = np.concatenate(([active[0]], active[breaks + 1]))
    ends = np.concatenate((active[breaks], [active[-1]])) + 1
    found: list[t.Tone] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        length_ms = (end - start) * 1000.0 / rate
        needed = t.MIN_LEADING_BURST_MS if start < t._LEADING_EDGE else t.MIN_BURST_MS
        if length_ms < needed:
            continue
        burst = samples[start:end]
        signs = np.signbit(burst)
        crossings = np.flatnonzero(signs[1:] != signs[:-1])
        if crossings.size < 2:
            continue
        # Whole periods between the first and the last crossing: no edge bias.
        span = (crossings[-1] - crossings[0]) / rate
        hz = (crossings.size - 1) / (2 * span)
        k = round((hz - t.BASE_HZ) / t.STEP_HZ)
        if not 0 <= k < len(t.WORDS):
            continue
        error = abs(hz - (t.BASE_HZ + t.STEP_HZ * k))
        if error > t.TOLERANCE_HZ:
            continue
        confidence = round(1.0 - error / (2 * t.TOLERANCE_HZ), 3)
        found.append(t.Tone(t.WORDS[k], start / rate, end / rate, confidence))
    return found


class FastToneRecognizer(ToneRecognizer):
    """The tone words, read cheaply (see the module docstring)."""

    decode = staticmethod(fast_decode)


def make_recognizer(name: str) -> Recognizer:
    if name == "fast-tones":
        return FastToneRecognizer()
    return create_recognizer(name)


async def serve(config: EmulatorConfig, recognizer: Recognizer, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with EmulatorServer(config, host=host, port=port, recognizer=recognizer):
        print(f"emulator ready on {host}:{port}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.emulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--recognizer", choices=RECOGNIZERS, default="fast-tones")
    parser.add_argument("--finalize-delay-ms", type=int, default=0)
    parser.add_argument("--latency", choices=sorted(PRESETS), default="none")
    parser.add_argument("--settle-ms", type=float, help="the preset's settle time, overridden")
    parser.add_argument("--rtt-ms", type=float, help="the preset's round trip, overridden")
    parser.add_argument("--latency-seed", type=int)
    parser.add_argument("--fault", action="append", choices=FAULT_NAMES, default=[])
    parser.add_argument("--fault-delay-ms", type=int, default=3000)
    parser.add_argument("--max-sessions", type=int, default=2000)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    recognizer_name = "tones" if args.recognizer == "fast-tones" else args.recognizer
    config = EmulatorConfig(
        recognizer=recognizer_name,
        finalize_delay_ms=args.finalize_delay_ms,
        max_sessions=args.max_sessions,
        latency=dataclasses.replace(
            PRESETS[args.latency],
            **{
                k: v
                for k, v in (("settle_ms", args.settle_ms), ("rtt_ms", args.rtt_ms))
                if v is not None
            },
        ),
        latency_seed=args.latency_seed,
        faults=tuple(Fault(name, delay_ms=args.fault_delay_ms) for name in args.fault),
    )
    asyncio.run(serve(config, make_recognizer(args.recognizer), args.host, args.port))


if __name__ == "__main__":
    main()
