"""How well each VAD engine gates the speech test set, and what it costs.

Speech table: each command of tests/data/speech is padded with 1.5-2 s of
silence before and after, doctored (noise, level) and streamed through a fresh
VadGate in 10 ms chunks, as Home Assistant sends it. Per row:

- sent/speech: seconds of audio sent per second of speech (pre-roll and
  hangover alone add 0.8 s per command, 0.5 per speech second on this set);
- clipped %: speech frames (energy oracle on the clean signal) outside every segment;
- noise opened: noise-only sessions (the same noise, speech removed) that opened the gate;
- cpu ms/s: process CPU time (all threads) per second of audio, gate included.

Non-speech table: sessions of sound alone, and how much audio each sent.

Run: python -m benchmarks.vad_gate [--engines webrtc silero webrtc-raw]
("webrtc-raw" is plain webrtcvad without the level fix, for comparison.)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from tests.kit import speech_data as sd
from wyoming_lightning.core.pipeline_format import BYTES_PER_SECOND
from wyoming_lightning.core.vad import GateConfig, GateEvent, SpeechAudio, SpeechStart, VadGate
from wyoming_lightning.core.vad.engines import VadEngine, create_engine
from wyoming_lightning.core.vad.webrtc import WebRtcEngine

CHUNK_BYTES = 320  # 10 ms, as Home Assistant sends


@dataclass(frozen=True)
class Condition:
    name: str
    make: Callable[[bytes, int], bytes]  # (clean padded pcm, seed) -> doctored pcm
    noise_only: Callable[[bytes, int], bytes] | None  # the doctoring alone, no speech


def _noise(snr: float, kind: sd.NoiseKind) -> Condition:
    return Condition(
        f"{kind} {snr:g} dB",
        lambda pcm, seed: sd.mix_noise(pcm, snr, kind, seed),
        lambda pcm, seed: sd.noise_for(pcm, snr, kind, seed),
    )


def _level(name: str, dbfs: float) -> Condition:
    return Condition(name, lambda pcm, seed: sd.scale_to_peak(pcm, dbfs), None)


CONDITIONS: tuple[Condition, ...] = (
    Condition("clean", lambda pcm, seed: pcm, None),
    *(_noise(snr, "white") for snr in (20, 10, 5)),
    *(_noise(snr, "pink") for snr in (20, 10, 5)),
    _noise(10, "brown"),
    _noise(10, "hum"),
    _level("quiet (-40 dBFS pk)", -40),
    _level("loud (-1 dBFS pk)", -1),
    # Beyond the required conditions: where the engines' limits are.
    _noise(0, "white"),
    _noise(0, "pink"),
    _level("very quiet (-50 pk)", -50),
)


def _fan_switched_on() -> bytes:
    return sd.make_noise(1.0, -60, "pink", seed=6) + sd.make_noise(4.0, -30, "pink", seed=7)


NON_SPEECH: tuple[tuple[str, Callable[[int], bytes]], ...] = (
    *(
        (
            f"{kind} {level} dBFS",
            lambda seed, kind=kind, level=level: sd.make_noise(4.0, level, kind, seed),
        )
        for kind in sd.NOISE_KINDS
        for level in (-30, -20)
    ),
    ("clap", sd.make_clap),
    ("beep 1/1.1/1.2 kHz", lambda seed: sd.make_beep(1000 + 100 * seed)),
    ("fan switched on", lambda seed: _fan_switched_on()),
)

ENGINES: dict[str, Callable[[], VadEngine]] = {
    "webrtc": lambda: create_engine("webrtc"),
    "silero": lambda: create_engine("silero"),
    "webrtc-raw": lambda: WebRtcEngine(normalise=False),
}


@dataclass
class Row:
    speech_s: float = 0.0
    sent_s: float = 0.0
    speech_frames: int = 0
    clipped_frames: int = 0
    noise_sessions: int = 0
    noise_opened: int = 0
    audio_s: float = 0.0
    cpu_s: float = 0.0


def run_gate(engine: VadEngine, pcm: bytes) -> tuple[VadGate, npt.NDArray[np.bool_], float]:
    """Stream ``pcm`` through a fresh gate; return it, the per-sample 'sent' mask, CPU seconds."""
    gate = VadGate(engine, GateConfig())
    events: list[GateEvent] = []
    started = time.process_time()
    for offset in range(0, len(pcm), CHUNK_BYTES):
        events.extend(gate.process(pcm[offset : offset + CHUNK_BYTES]))
    events.extend(gate.flush())
    cpu = time.process_time() - started
    sent = np.zeros(len(pcm) // 2, dtype=np.bool_)
    position = 0
    for event in events:
        if isinstance(event, SpeechStart):
            position = event.start_sample
            samples = len(event.pre_roll) // 2
        elif isinstance(event, SpeechAudio):
            samples = len(event.data) // 2
        else:
            continue
        sent[position : position + samples] = True
        position += samples
    return gate, sent, cpu


def clipped(sent: npt.NDArray[np.bool_], oracle: npt.NDArray[np.bool_]) -> int:
    """Oracle speech frames (10 ms) not entirely sent."""
    frame = sd.ORACLE_FRAME_SAMPLES
    covered = sent[: oracle.size * frame].reshape(oracle.size, frame).all(axis=1)
    return int(np.count_nonzero(oracle & ~covered))


def padded_set() -> list[tuple[bytes, float]]:
    """(clean padded pcm, speech seconds) for each command, 1.5-2 s of silence each side."""
    result = []
    for index, sample in enumerate(sd.load_speech()):
        lead = 1.5 + 0.25 * (index % 3)
        trail = 2.0 - 0.25 * (index % 3)
        result.append((sd.with_silence(sample.pcm, lead, trail), sample.seconds))
    return result


def evaluate(factory: Callable[[], VadEngine], condition: Condition) -> Row:
    row = Row()
    for seed, (clean, speech_s) in enumerate(padded_set()):
        pcm = condition.make(clean, seed)
        gate, sent, cpu = run_gate(factory(), pcm)
        oracle = sd.speech_frames(clean)
        row.speech_s += speech_s
        row.sent_s += gate.audio_out_ms / 1000
        row.speech_frames += int(oracle.sum())
        row.clipped_frames += clipped(sent, oracle)
        row.audio_s += len(pcm) / BYTES_PER_SECOND
        row.cpu_s += cpu
        if condition.noise_only is not None:
            noise_gate, _, _ = run_gate(factory(), condition.noise_only(clean, seed))
            row.noise_sessions += 1
            row.noise_opened += noise_gate.segments > 0
    return row


def speech_table(engine_names: list[str]) -> Iterator[str]:
    yield (
        f"{'engine':<11} {'condition':<20} {'sent/speech':>11} {'clipped %':>9} "
        f"{'noise opened':>12} {'cpu ms/s':>8}"
    )
    for name in engine_names:
        for condition in CONDITIONS:
            row = evaluate(ENGINES[name], condition)
            noise = f"{row.noise_opened}/{row.noise_sessions}" if row.noise_sessions else "-"
            yield (
                f"{name:<11} {condition.name:<20} {row.sent_s / row.speech_s:>11.2f} "
                f"{100 * row.clipped_frames / row.speech_frames:>9.1f} {noise:>12} "
                f"{1000 * row.cpu_s / row.audio_s:>8.2f}"
            )


def non_speech_table(engine_names: list[str], sessions: int = 3) -> Iterator[str]:
    yield f"{'engine':<11} {'sound alone':<20} {'opened':>8} {'sent s/session':>14}"
    for name in engine_names:
        for label, make in NON_SPEECH:
            opened, sent_s = 0, 0.0
            for seed in range(sessions):
                gate, _, _ = run_gate(ENGINES[name](), make(seed))
                opened += gate.segments > 0
                sent_s += gate.audio_out_ms / 1000
            yield f"{name:<11} {label:<20} {f'{opened}/{sessions}':>8} {sent_s / sessions:>14.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=["webrtc", "silero"], choices=ENGINES)
    args = parser.parse_args()
    for line in speech_table(args.engines):
        print(line, flush=True)
    print()
    for line in non_speech_table(args.engines):
        print(line, flush=True)


if __name__ == "__main__":
    main()
