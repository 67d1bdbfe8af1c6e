"""The ``wyoming-lightning-emulator`` command: flags, a real run, and no key in its logs."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer, RecognizerUnavailable
from wyoming_lightning.emulator.__main__ import build_parser, config_from_args
from wyoming_lightning.emulator.tones import encode_phrase

pytestmark = pytest.mark.timeout(60)

SECRET = "sk-emulator-cli-secret-0123"


def test_flags_map_onto_the_config() -> None:
    args = build_parser().parse_args(
        [
            "--api-key=abc",
            "--finalize-delay-ms=1600",
            "--eou-timeout-ms=500",
            "--region=us",
            "--max-sessions=3",
            "--fault=drop",
            "--fault=late-interim",
            "--fault-count=2",
            "--fault-rate=0.5",
            "--seed=9",
            "--fault-after-bytes=100",
            "--fault-delay-ms=10",
            "--fault-retry-after=4",
            "--no-from-finalize",
            "--text-field=alternate",
        ]
    )
    config = config_from_args(args)
    assert (config.from_finalize, config.text_field) == (False, "alternate")
    defaults = config_from_args(build_parser().parse_args([]))
    assert (defaults.from_finalize, defaults.text_field) == (True, "both")
    assert (config.api_key, config.finalize_delay_ms, config.eou_timeout_ms) == ("abc", 1600, 500)
    assert (config.region, config.max_sessions, config.recognizer) == ("us", 3, "tones")
    assert [f.name for f in config.faults] == ["drop", "late-interim"]
    assert {(f.after_bytes, f.delay_ms, f.retry_after_s) for f in config.faults} == {(100, 10, 4)}
    assert (config.fault_count, config.fault_rate, config.seed) == (2, 0.5, 9)
    assert "abc" not in repr(config)


def test_api_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMULATOR_API_KEY", "from-env")
    assert config_from_args(build_parser().parse_args([])).api_key == "from-env"
    monkeypatch.delenv("EMULATOR_API_KEY")
    assert config_from_args(build_parser().parse_args([])).api_key is None


@pytest.mark.parametrize(
    "argv", [["--fault=explode"], ["--region=eu"], ["--eou-timeout-ms=5"], ["--recognizer=x"]]
)
def test_bad_flags_exit_with_usage_error(argv: list[str]) -> None:
    from wyoming_lightning.emulator.__main__ import run

    with pytest.raises(SystemExit) as exited:
        run(argv)
    assert exited.value.code == 2


async def test_the_command_serves_and_stops_on_sigterm_without_logging_the_key() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wyoming_lightning.emulator",
        "--port=0",
        f"--api-key={SECRET}",
        "--debug",
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    log: list[str] = []
    try:
        async with asyncio.timeout(30):
            while not any("listening:" in line for line in log):
                log.append((await process.stderr.readline()).decode())
            match = re.search(r"(ws://\S+/api/v1/lightning/get_text)", log[-1])
            assert match is not None
            async with connect(
                match.group(1), additional_headers={"Authorization": f"Bearer {SECRET}"}
            ) as ws:
                await ws.send(encode_phrase("one two"))
                await ws.send(json.dumps({"type": "end"}))
                messages = [json.loads(m) async for m in ws]
            assert messages[-1]["transcript"] == "one two" and messages[-1]["is_last"]
            process.send_signal(signal.SIGTERM)
            rest = await process.stderr.read()
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    output = "".join(log) + rest.decode()
    assert SECRET not in output
    assert re.search(r"session \w+ lightning lang=en .* close=1000", output)


async def test_whisper_without_faster_whisper_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # makes the import fail
    config = EmulatorConfig(recognizer="whisper", model_dir=str(tmp_path))
    with pytest.raises(RecognizerUnavailable, match="faster-whisper"):
        async with EmulatorServer(config, port=0):
            pass


async def test_whisper_with_a_missing_model_dir_fails_clearly(tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper")
    config = EmulatorConfig(recognizer="whisper", model_dir=str(tmp_path / "nope"))
    with pytest.raises(RecognizerUnavailable, match="not found"):
        async with EmulatorServer(config, port=0):
            pass
