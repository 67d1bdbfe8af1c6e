"""What silero's skip of quiet frames saves, offline: ``python -m benchmarks.cost_skip``.

The gate with silero as the server builds it (``--vad-skip-quiet-db``, default) against the
same gate asking the model for every frame (``skip_quiet_db=None``), on fixed audio in 20 ms
chunks, so the figures do not depend on the machine's load the way a bridge's do (a busy
machine batches a bridge's reads: docs/profile.md):

- the share of frames the model judged (the rest were judged silence by their level);
- the gate's CPU time per audio second (``time.process_time``, best of ``--time`` runs);
- whether the gate's decisions moved: segments whose start or end differ, and audio let out.

Stream sets: ``cost`` (the ``cost`` table's: the 12 commands of tests/data/speech with 0.5 s
of digital silence before and 1 s after), ``human`` (tests/data/human as Home Assistant sends
it) and the human set in fan and babble noise at 10 dB (tests.kit.noisy_speech). The words
the decisions cost or gain are measured by ``python -m benchmarks noise`` (``--set
skip_quiet_db=None`` for the reference).
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from tests.kit import human_speech as hs
from tests.kit import noisy_speech as ns
from tests.kit import speech_data as sd
from wyoming_lightning.core.vad.engines import create_engine
from wyoming_lightning.core.vad.events import SpeechEnd, SpeechStart
from wyoming_lightning.core.vad.gate import GateConfig, VadGate
from wyoming_lightning.services import gate_config
from wyoming_lightning.settings.config import Settings

from .harness import Table

CHUNK_BYTES = 640  # 20 ms


@dataclasses.dataclass
class Run:
    """One stream set through one gate configuration."""

    asked: float  # share of frames the model judged
    cpu_ms_per_s: float
    edges: list[list[tuple[str, int]]]
    out_s: float


def _streams(name: str) -> list[bytes]:
    if name == "cost":
        return [sd.with_silence(s.pcm, 0.5, 1.0) for s in sd.load_speech()]
    clips = hs.load_human_speech()
    if name == "human":
        return [hs.as_home_assistant_sends(c.pcm) for c in clips]
    noise, snr = name.split("-")
    condition = ns.Condition(noise, float(snr))  # type: ignore[arg-type]
    return [ns.noisy_stream(c, condition) for c in clips]


def _run(streams: list[bytes], config: GateConfig, repeats: int) -> Run:
    best = float("inf")
    edges: list[list[tuple[str, int]]] = []
    skipped = judged = out = 0.0
    for _ in range(repeats):
        edges, skipped, judged, out = [], 0.0, 0.0, 0.0
        cpu = 0.0
        for pcm in streams:
            gate = VadGate(create_engine("silero"), config)
            marks: list[tuple[str, int]] = []
            started = time.process_time()
            for i in range(0, len(pcm), CHUNK_BYTES):
                for event in gate.process(pcm[i : i + CHUNK_BYTES]):
                    if isinstance(event, SpeechStart):
                        marks.append(("start", event.start_sample))
                    elif isinstance(event, SpeechEnd):
                        marks.append(("end", round(gate.audio_in_ms)))
            gate.flush()
            cpu += time.process_time() - started
            edges.append(marks)
            skipped += gate.skipped_ms
            judged += gate.audio_in_ms
            out += gate.audio_out_ms
        best = min(best, cpu)
    seconds = sum(len(p) for p in streams) / (2 * hs.SAMPLE_RATE)
    return Run(1 - skipped / judged, 1000 * best / seconds, edges, out / 1000)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cost_skip")
    parser.add_argument("--sets", nargs="+", default=["cost", "human", "fan-10", "babble-10"])
    parser.add_argument("--time", type=int, default=3, help="best of N runs for the CPU time")
    args = parser.parse_args(argv)
    skipping = gate_config(dataclasses.replace(Settings(), vad="silero"))
    every = dataclasses.replace(skipping, skip_quiet_db=None)
    table = Table(
        "cost_skip",
        "silero's model asked only where a frame may be speech",
        [
            "streams",
            "audio s",
            "model asked %",
            "gate CPU ms / audio s: every frame",
            "skipping",
            "streams whose edges moved",
            "audio out s: every frame",
            "skipping",
        ],
    )
    for name in args.sets:
        streams = _streams(name)
        base = _run(streams, every, args.time)
        skip = _run(streams, skipping, args.time)
        moved = sum(a != b for a, b in zip(base.edges, skip.edges, strict=True))
        seconds = sum(len(p) for p in streams) / (2 * hs.SAMPLE_RATE)
        table.add(
            [
                name,
                f"{seconds:.0f}",
                f"{100 * skip.asked:.1f}",
                f"{base.cpu_ms_per_s:.2f}",
                f"{skip.cpu_ms_per_s:.2f}",
                f"{moved} / {len(streams)}",
                f"{base.out_s:.2f}",
                f"{skip.out_s:.2f}",
            ]
        )
    print(f"skip_quiet_db = {skipping.skip_quiet_db} dB; 20 ms chunks; best of {args.time}")
    print(table.render())


if __name__ == "__main__":
    main()
