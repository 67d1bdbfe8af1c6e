"""Real Home Assistant 2026.11 against the real server: the release users run today.

Home Assistant 2026.11.0 runs with Python 3.14 in a Debian forky root of its own
(``forky_env.py``, cached after the first build) and is booted in-process by the same
``ha_driver.py`` as the 2025.4.4 test, entered with ``chroot``; it shares loopback with the
emulator (Whisper tiny.en) and the servers started here. What 2026.11 does differently, and
what this module pins down:

- it reads ``requires_external_vad`` from ``describe``: with the server's ``--endpointing`` it
  runs no VAD of its own and the server ends the command (``endpointing``); by default its own
  VAD ends it (``lightning``);
- its Wyoming client reads while it writes, so a transcript that arrives before the audio runs
  out ends the upload;
- it logs the text of the server's ``error`` (so a refused key is named in HA's log too), while
  the user still sees only "speech-to-text failed".

2025.4.4, which writes all its audio before it reads and ignores ``requires_external_vad``,
keeps its own module (``test_home_assistant.py``): households upgrade late.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.forky_env import (
    HA_VERSION,
    WYOMING_PIN,
    ForkyEnv,
    forky_env_for,
)
from tests.deploy.ha_processes import lightning_server, run_driver, whisper_emulator, write_wav
from tests.kit.bridge import API_KEY
from tests.kit.net import free_port
from tests.kit.speech_data import load_speech, make_noise, with_silence
from tests.kit.wer import wer

DRIVER = Path(__file__).with_name("ha_driver.py")

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]

SPEECH_CASE_TIMEOUT_S = 180
FAILURE_CASE_TIMEOUT_S = 60
#: Commands Whisper tiny.en itself gets right on every run (see test_home_assistant.py).
ENTITY_SAMPLES = ("turn_on_kitchen_lights", "lock_front_door", "open_garage")
PIPELINE_SAMPLES = ("bedroom_fan_off", "timer_ten_minutes")
#: Seconds of room after the command: longer than either end-of-command rule needs, so the
#: file's end never ends a command; whoever ends it, ends it in the audio.
TRAILING_S = 4.0


def _cases(work: Path) -> tuple[list[dict[str, Any]], dict[str, str]]:
    samples = {sample.name: sample for sample in load_speech()}
    cases: list[dict[str, Any]] = []
    expected: dict[str, str] = {}
    for name in ENTITY_SAMPLES:
        sample = samples[name]
        wav = write_wav(work / f"{name}.wav", with_silence(sample.pcm, 1.0, 1.0))
        label = f"entity:{name}"
        cases.append({"label": label, "server": "lightning", "via": "entity", "wav": wav})
        expected[label] = sample.text
    for name in PIPELINE_SAMPLES:
        sample = samples[name]
        wav = write_wav(work / f"{name}-long.wav", with_silence(sample.pcm, 1.0, TRAILING_S))
        for server in ("lightning", "endpointing"):
            label = f"pipeline:{server}:{name}"
            # With HA's VAD, at a microphone's pace, as a satellite streams: the server's read
            # cadence meets the stream it is made for (test_speech_is_read_in_batches...).
            realtime = server == "lightning"
            cases.append(
                {
                    "label": label,
                    "server": server,
                    "via": "pipeline",
                    "wav": wav,
                    "realtime": realtime,
                }
            )
            expected[label] = sample.text
    # Nobody speaks: twelve seconds of a quiet room (longer than the server's no-speech rule).
    quiet = write_wav(work / "quiet-room.wav", make_noise(12.0, -60.0, "pink", seed=11))
    for server in ("lightning", "endpointing"):
        label = f"silence:{server}"
        cases.append({"label": label, "server": server, "via": "pipeline", "wav": quiet})
    for case in cases:
        case["timeout_s"] = SPEECH_CASE_TIMEOUT_S
    cases.append(
        {
            "label": "refused:pipeline",
            "server": "badkey",
            "via": "pipeline",
            "wav": cases[0]["wav"],
            "timeout_s": FAILURE_CASE_TIMEOUT_S,
        }
    )
    return cases, expected


async def run_everything(env: ForkyEnv, work: Path) -> dict[str, Any]:
    """Emulator and servers here; Home Assistant inside the root; its JSON report back."""
    cases, expected = _cases(work)
    for case in cases:
        case["wav"] = env.inside(Path(case["wav"]))
    driver = work / DRIVER.name
    shutil.copyfile(DRIVER, driver)
    async with (
        whisper_emulator() as (url, _emulator),
        lightning_server(url, API_KEY, "--debug") as (good_port, good),
        lightning_server(url, API_KEY, "--endpointing") as (ep_port, endpointing),
        lightning_server(url, "not-the-key-7d1e") as (bad_port, bad),
    ):
        config_dir = work / "ha-config"
        config_dir.mkdir()
        spec = {
            "config_dir": env.inside(config_dir),
            "http_port": free_port(),
            "servers": [
                {"label": "lightning", "port": good_port},
                {"label": "endpointing", "port": ep_port},
                {"label": "badkey", "port": bad_port},
            ],
            "cases": cases,
        }
        report = await run_driver(
            env.command(env.python, env.inside(driver), json.dumps(spec)), cases
        )
        logs = {"lightning": good.log, "endpointing": endpointing.log, "badkey": bad.log}
    report["expected"] = expected
    report["server_logs"] = logs
    return report


@pytest.fixture(scope="module")
def ha_report(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    env = forky_env_for(request.config)  # a first build says each step
    print(f"forky root {env.root}: {'built' if env.built else 'cached'} in {env.seconds} s")
    # The work directory lives inside the root, where Home Assistant can see its files.
    scratch = env.root / "tmp"
    scratch.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="wyoming-lightning-", dir=scratch))
    try:
        yield asyncio.run(run_everything(env, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


def failures(log: str) -> str:
    return "".join(line for line in log.splitlines(keepends=True) if "listening on" not in line)


def test_it_is_the_home_assistant_users_run_today(ha_report: dict[str, Any]) -> None:
    assert ha_report["ha_version"] == HA_VERSION
    assert ha_report["wyoming_version"] == WYOMING_PIN
    assert ha_report["python"].startswith("3.14."), ha_report["python"]
    assert {"wyoming", "wyoming.stt", "stt", "assist_pipeline"} <= set(ha_report["components"])


def test_config_flow_adds_both_servers(ha_report: dict[str, Any]) -> None:
    for label in ("lightning", "endpointing", "badkey"):
        added = ha_report["servers"][label]
        assert added["flow"] == "create_entry", (label, added)
        assert added["entry_state"] == "ConfigEntryState.LOADED", (label, added)
        assert "en" in added["languages"], (label, added)


def test_stt_entity_transcribes_real_speech(ha_report: dict[str, Any]) -> None:
    pairs = []
    for name in ENTITY_SAMPLES:
        label = f"entity:{name}"
        result = ha_report["cases"][label]
        assert result["state"] == "success", (label, result)
        pairs.append((ha_report["expected"][label], result["text"]))
    assert wer(pairs) <= 0.1, pairs


def test_by_default_home_assistants_own_vad_ends_the_command(ha_report: dict[str, Any]) -> None:
    pairs = []
    for name in PIPELINE_SAMPLES:
        label = f"pipeline:lightning:{name}"
        result = ha_report["cases"][label]
        assert result["state"] == "success", (label, result)
        assert result["audio_processing"]["requires_external_vad"] is True, result
        assert "stt-vad-end" in result["events"], (label, result)
        pairs.append((ha_report["expected"][label], result["text"]))
    assert wer(pairs) <= 0.2, pairs


def test_with_endpointing_the_server_ends_the_command(ha_report: dict[str, Any]) -> None:
    """HA 2026.11 honours ``requires_external_vad: false``: no VAD of its own, no audio-stop;
    the server hears the end of the command in the audio and answers before the file ends."""
    pairs = []
    for name in PIPELINE_SAMPLES:
        label = f"pipeline:endpointing:{name}"
        result = ha_report["cases"][label]
        assert result["state"] == "success", (label, result)
        assert result["audio_processing"]["requires_external_vad"] is False, result
        assert not {"stt-vad-start", "stt-vad-end"} & set(result["events"]), (label, result)
        pairs.append((ha_report["expected"][label], result["text"]))
    assert wer(pairs) <= 0.2, pairs
    log = ha_report["server_logs"]["endpointing"]
    ended = re.findall(r"end of command detected after", log)
    assert len(ended) == len(PIPELINE_SAMPLES), log


def test_speech_is_read_in_batches_when_home_assistants_vad_ends_the_command(
    ha_report: dict[str, Any],
) -> None:
    """With its own VAD, Home Assistant stops in a pause (the three entity requests first,
    1 s into theirs): the server learns it, and reads the pipeline's speech, streamed at a
    microphone's pace, a few chunks at a time, with the transcripts above. (Under the turn
    rule of --endpointing nothing is read late: tests/core/test_read_late.py.)"""
    read = r"read in (\d+) arrival\(s\), (\d+) after waiting for more"
    waits = [int(w) for _, w in re.findall(read, ha_report["server_logs"]["lightning"])]
    assert waits and max(waits) > 0, waits


def test_a_silent_request_ends_by_itself_either_way(ha_report: dict[str, Any]) -> None:
    for server in ("lightning", "endpointing"):
        result = ha_report["cases"][f"silence:{server}"]
        assert result["state"] == "error", (server, result)
        assert result["error"]["code"] == "stt-no-text-recognized", (server, result)
    # With endpointing the server's no-speech rule ended it, not HA's 15 s timeout.
    assert "no speech in" in ha_report["server_logs"]["endpointing"]


def test_a_refused_key_fails_the_run_and_both_logs_say_why(ha_report: dict[str, Any]) -> None:
    result = ha_report["cases"]["refused:pipeline"]
    assert result["state"] == "error", result
    log = ha_report["server_logs"]["badkey"]
    assert re.search(r"\b401\b|api key", failures(log), re.IGNORECASE), log
    # 2026.11 logs the server's error text (2025.4 dropped it); the key appears in neither log.
    assert re.search(r"401|api key|refused", ha_report["ha_stderr"], re.IGNORECASE), ha_report[
        "ha_stderr"
    ][-3000:]
    assert "not-the-key-7d1e" not in log
    assert "not-the-key-7d1e" not in ha_report["ha_stderr"]
