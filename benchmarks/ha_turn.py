"""Speech end -> transcript in Home Assistant 2026.11, by who ends the command:
``python -m benchmarks.ha_turn [--repeat N]``.

One run of real Home Assistant 2026.11.0 (the Debian forky root of tests/deploy/forky_env.py,
booted by tests/deploy/ha_driver.py, its assist pipeline's speech-to-text stage) against three
servers in front of one emulator (Whisper tiny.en, Pulse dialect, ``--finalize-delay-ms 600``:
C = 600 ms, R = 0 on loopback), the audio fed in real time (10 ms chunks at a microphone's
pace):

- ``ha-vad``: the server's defaults; Home Assistant's own VAD ends the command (audio-stop);
- ``timer``: ``--endpointing --no-turn-intents``: today's 700 ms silence timer;
- ``intents``: ``--endpointing``: the end of the turn judged by what was said (turn.py).

Clips: the 12 espeak-ng commands of tests/data/speech (1 s before, 4 s of silence after) and
the spliced pause set at 900 ms (tests/kit/pause_set.py). The speech end is known from the clip
(where its last sample above -40 dBFS is); the driver stamps when the transcript reached the
pipeline (``stt-end``). Columns: median / p90 of speech end -> transcript over the commands a
template matches and over those none does (cut ones left out), commands cut (the transcript
reached HA before the speech ended, or, for a paused command, has no word of the part after the
pause), WER of the 12 commands against their text.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from tests.deploy.forky_env import ForkyEnv, ensure_forky_env
from tests.deploy.ha_processes import lightning_server, run_driver, whisper_emulator, write_wav
from tests.kit import pause_set as ps
from tests.kit.bridge import API_KEY
from tests.kit.net import free_port
from tests.kit.speech_data import load_speech, with_silence
from tests.kit.wer import normalise_words, wer
from wyoming_lightning.core.turn import TurnVerdict, load_judge

from .harness import Table

DRIVER = Path(__file__).resolve().parents[1] / "tests" / "deploy" / "ha_driver.py"
C_MS = 600
RULES = {
    "ha-vad": (),
    "timer": ("--endpointing", "--no-turn-intents"),
    "intents": ("--endpointing",),
}
LOUD = 327  # -40 dBFS


def speech_end_s(pcm: bytes) -> float:
    samples = np.abs(np.frombuffer(pcm, "<i2").astype(np.int32))
    loud = np.flatnonzero(samples > LOUD)
    return float(loud[-1] + 1) / 16000 if len(loud) else 0.0


def clips() -> list[Clip]:
    """(name, text, pcm, speech end s)."""
    out = []
    for sample in load_speech():
        pcm = with_silence(sample.pcm, 1.0, 4.0)
        out.append((sample.name, sample.text, pcm, 1.0 + speech_end_s(sample.pcm)))
    for clip in ps.spliced_clips():
        if clip.pause_ms == 900:
            pcm = clip.pcm[: 2 * int(16000 * (clip.speech_end_s + 3.0))]
            out.append((clip.name, clip.text, pcm, clip.speech_end_s))
    return out


Clip = tuple[str, str, bytes, float]


async def run_ha(repeat: int) -> tuple[dict[str, Any], list[Clip]]:
    env = ensure_forky_env(lambda line: print(line, file=sys.stderr))
    scratch = env.root / "tmp"
    scratch.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ha-turn-", dir=scratch))  # seen from inside the root
    try:
        return await _run(env, work, repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def _run(env: ForkyEnv, work: Path, repeat: int) -> tuple[dict[str, Any], list[Clip]]:
    chosen = clips()
    cases = []
    for name, _text, pcm, _end in chosen:
        wav = write_wav(work / f"{name}.wav", pcm)
        for rule in RULES:
            for n in range(repeat):
                cases.append(
                    {
                        "label": f"{rule}|{name}|{n}",
                        "server": rule,
                        "via": "pipeline",
                        "wav": env.inside(Path(wav)),
                        "timeout_s": 120,
                        "realtime": True,
                    }
                )
    driver = work / DRIVER.name
    shutil.copyfile(DRIVER, driver)
    async with (
        whisper_emulator("--finalize-delay-ms", str(C_MS)) as (url, _emulator),
        lightning_server(url, API_KEY, *RULES["ha-vad"]) as (p1, _a),
        lightning_server(url, API_KEY, *RULES["timer"]) as (p2, _b),
        lightning_server(url, API_KEY, *RULES["intents"]) as (p3, _c),
    ):
        config_dir = work / "ha-config"
        config_dir.mkdir()
        spec = {
            "config_dir": env.inside(config_dir),
            "http_port": free_port(),
            "servers": [
                {"label": "ha-vad", "port": p1},
                {"label": "timer", "port": p2},
                {"label": "intents", "port": p3},
            ],
            "cases": cases,
        }
        report = await run_driver(
            env.command(env.python, env.inside(driver), json.dumps(spec)), cases
        )
    return report, chosen


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"{statistics.median(values):.0f} / {p90:.0f} (n={len(values)})"


def table(report: dict[str, Any], chosen: list[Clip]) -> Table:
    judge = load_judge("en")
    assert judge is not None, "pip install '.[intents]'"
    by_name = {name: (text, end) for name, text, _pcm, end in chosen}
    manifest = json.loads((ps.PAUSES_DIR / "manifest.json").read_text())
    rest = {key: set(normalise_words(e["parts"][1])) for key, e in manifest.items()}
    t = Table(
        "ha_turn",
        f"HA {report.get('ha_version')}: speech end -> transcript, C = {C_MS} ms, R = 0",
        ["rule", "matched ms (med / p90)", "other ms", "cut", "WER commands %", "failed"],
    )
    for rule in RULES:
        waits: dict[bool, list[float]] = {True: [], False: []}
        cut = total = failed = 0
        pairs: list[tuple[str, str]] = []
        for label, case in report["cases"].items():
            r, name, _n = label.split("|")
            if r != rule:
                continue
            text, end = by_name[name]
            total += 1
            said = case.get("text") or ""
            if case.get("state") != "success" or "stt_end_s" not in case:
                failed += 1
                continue
            heard = set(normalise_words(said))
            if case["stt_end_s"] < end or ("@" in name and not heard & rest[name.split("@")[0]]):
                cut += 1  # answered before the speech ended, or without the pause's last part
                continue  # its wait measures nothing
            matched = judge(text) is TurnVerdict.COMPLETE
            waits[matched].append(1000 * (case["stt_end_s"] - end))
            if "@" not in name:
                pairs.append((text, said))
        t.add(
            [
                rule,
                _cell(waits[True]),
                _cell(waits[False]),
                f"{cut}/{total}",
                f"{100 * wer(pairs):.1f}" if pairs else "-",
                str(failed),
            ]
        )
    return t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="each clip this many times")
    parser.add_argument("--json", help="also write the driver's report here")
    parser.add_argument("--report", help="only tabulate a report written by --json")
    args = parser.parse_args()
    if args.report:
        print(table(json.loads(Path(args.report).read_text()), clips()).render())
        return
    started_at = time.monotonic()
    report, chosen = asyncio.run(run_ha(args.repeat))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    print(table(report, chosen).render())
    print(f"({time.monotonic() - started_at:.0f} s)")


if __name__ == "__main__":
    main()
