"""Table 5, a third-party client: ``wyoming-bench stt`` against the bridge and the emulator.

wyoming-bench (PyPI) benchmarks any Wyoming STT server. Its corpus is a directory of
``NAME.wav`` recordings with ``NAME.txt`` transcripts; here the speech set of tests/data/speech
is written to a temporary directory in that shape. It is run in both of its modes:

- ``non_streaming``: transcribe, audio-start, every chunk, audio-stop, then read (as Home
  Assistant 2026.2 does);
- ``streaming``: the same writes with a reader running alongside (Wyoming 1.7 streaming).

Its defaults apply: 1024-sample chunks written as fast as the socket takes them, 0.5 s of
silence appended, no silence before the speech, one warm-up and (here) one timed round. Its
"Total" is from the first write to the last event, so it holds the upload as well as the wait.
The bridge runs with default flags (silero VAD) against the emulator's Whisper recognizer.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import Any

from tests.kit import speech_data as sd
from wyoming_lightning.core.pipeline_format import CHANNELS, SAMPLE_RATE, SAMPLE_WIDTH

from .accuracy import SLOW_CLOUD
from .harness import (
    BRIDGE_ENV,
    Proc,
    Table,
    bridge_args,
    emulator_args,
    free_port,
    running,
)

STAT_ROW = re.compile(
    r"^\s+(Total \(ms\)|TTFT \(ms\)|RTF \(x\))\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)"
)
ACCURACY = re.compile(r"^\s+Accuracy\s+WER=(\S+)\s+CER=(\S+)\s+SAR=(\S+)")


def write_corpus(directory: Path) -> int:
    samples = sd.load_speech()
    for sample in samples:
        with wave.open(str(directory / f"{sample.name}.wav"), "wb") as wav:
            wav.setnchannels(CHANNELS)
            wav.setsampwidth(SAMPLE_WIDTH)
            wav.setframerate(SAMPLE_RATE)
            wav.writeframes(sample.pcm)
        (directory / f"{sample.name}.txt").write_text(sample.text + "\n", encoding="utf-8")
    return len(samples)


def parse(output: str) -> dict[str, dict[str, Any]]:
    """Per mode, from wyoming-bench's per-server block: counts, accuracy, Total / TTFT / RTF."""
    modes: dict[str, dict[str, Any]] = {}
    current: str | None = None
    for line in output.splitlines():
        if line.startswith("Summary") or line.startswith("====="):
            current = None
        header = re.match(r"^\[(non_streaming|streaming)\] ok=(\d+) fail=(\d+)", line)
        if header:
            current = header.group(1)
            modes[current] = {"ok": int(header.group(2)), "fail": int(header.group(3))}
            continue
        if current is None:
            continue
        stat = STAT_ROW.match(line)
        if stat:
            key = stat.group(1).split()[0].lower()
            minimum, mean, med, p95 = (float(v) for v in stat.groups()[1:])
            modes[current][key] = {"min": minimum, "mean": mean, "median": med, "p95": p95}
        accuracy = ACCURACY.match(line)
        if accuracy:
            modes[current].update(
                wer=accuracy.group(1), cer=accuracy.group(2), sar=accuracy.group(3)
            )
    return modes


async def run(rounds: int = 1) -> Table:
    table = Table(
        "thirdparty",
        "Table 5. A third-party client: wyoming-bench stt against the bridge + emulator (Whisper)",
        [
            "wyoming-bench mode",
            "ok",
            "fail",
            "WER",
            "CER",
            "sentences exact",
            "Total median ms",
            "Total p95 ms",
            "TTFT median ms",
            "RTF mean",
        ],
    )
    executable = shutil.which("wyoming-bench")
    if executable is None:
        table.notes.append("wyoming-bench is not installed: pip install wyoming-bench")
        return table
    version = subprocess.run(
        [executable, "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    emulator_port, bridge_port = free_port(), free_port()
    emulator = Proc("emulator", emulator_args(emulator_port, recognizer="whisper"), emulator_port)
    bridge = Proc(
        "bridge", bridge_args(bridge_port, emulator_port, *SLOW_CLOUD), bridge_port, BRIDGE_ENV
    )
    with tempfile.TemporaryDirectory(prefix="bench-corpus-") as corpus:
        count = write_corpus(Path(corpus))
        async with running(emulator, bridge):
            command = [
                executable,
                "stt",
                f"127.0.0.1:{bridge_port}",
                "--corpus",
                corpus,
                "--mode",
                "both",
                "--rounds",
                str(rounds),
                "--warmup",
                "1",
                "--timeout",
                "60",
            ]
            done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    output = done.stdout + (f"\n[stderr]\n{done.stderr}" if done.stderr.strip() else "")
    modes = parse(done.stdout)
    for mode in ("non_streaming", "streaming"):
        entry = modes.get(mode, {})
        total = entry.get("total", {})
        ttft = entry.get("ttft", {})
        rtf = entry.get("rtf", {})
        table.add(
            [
                mode,
                entry.get("ok", "-"),
                entry.get("fail", "-"),
                entry.get("wer", "-"),
                entry.get("cer", "-"),
                entry.get("sar", "-"),
                total.get("median", "-"),
                total.get("p95", "-"),
                ttft.get("median", "-"),
                rtf.get("mean", "-"),
            ],
            mode=mode,
            **entry,
        )
    table.notes += [
        f"{version or 'wyoming-bench'}: {' '.join(['wyoming-bench', *command[2:3]])} --corpus "
        f"DIR --mode both --rounds {rounds} --warmup 1 --timeout 60 (exit {done.returncode})",
        f"corpus: the {count} commands of tests/data/speech as WAV + TXT pairs (no padding); "
        "wyoming-bench appends 0.5 s of silence and writes 1024-sample chunks without pacing",
        f"bridge: default flags except {' '.join(SLOW_CLOUD)}; emulator: Whisper tiny.en",
        "Total = first write to the final event (upload included); TTFT = first "
        "transcript-chunk; RTF = Total / audio length",
        "wyoming-bench's own report follows:",
        *("    " + line for line in output.rstrip().splitlines()),
    ]
    table.records.append({"raw_output": output, "command": command, "parsed": modes})
    return table
