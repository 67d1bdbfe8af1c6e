"""Today's usage as sensors in a real Home Assistant (2025.4.4, its own venv: ha_env.py).

Home Assistant runs with its REST API and a long-lived access token made the way the profile
page makes one (``ha_sensors_driver.py``); the server runs in this process against the
emulator with ``--hass-url`` and ``--hass-token-file``, takes a real request, and Home Assistant
must then hold the four sensors with the values of the usage table. A wrong token is refused
with a message that names the problem and not the token.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.ha_env import HaEnvError, ensure_ha_env
from tests.deploy.ha_processes import end_driver
from tests.kit.bridge import bridge_port, bridge_settings, serving, transcribe
from tests.kit.net import free_port
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.emulator.tones import encode_phrase, silence
from wyoming_lightning.hass.connection import HassConnection, HassError
from wyoming_lightning.hass.publisher import start_publisher
from wyoming_lightning.hass.sensors import ENTITY_PREFIX
from wyoming_lightning.ops.quota import DayUsage
from wyoming_lightning.services import Services
from wyoming_lightning.settings.declare import Secret

DRIVER = Path(__file__).with_name("ha_sensors_driver.py")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]
BOOT_TIMEOUT_S = 300


class HomeAssistant:
    """The driver process: its port, the token file it wrote, and its view of the states."""

    def __init__(self, proc: asyncio.subprocess.Process, port: int, token_file: Path) -> None:
        self.proc = proc
        self.url = f"http://127.0.0.1:{port}"
        self.token_file = token_file

    async def states(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(b"states\n")
        await self.proc.stdin.drain()
        line = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        found: dict[str, Any] = json.loads(line)
        return found


@pytest.fixture
async def home_assistant(tmp_path: Path) -> AsyncIterator[HomeAssistant]:
    try:
        env = await asyncio.to_thread(ensure_ha_env)
    except HaEnvError as exc:
        pytest.fail(f"cannot build Home Assistant's environment: {exc}", pytrace=False)
    config_dir = tmp_path / "ha-config"
    config_dir.mkdir()
    token_file = tmp_path / "hass-token"
    spec = {"config_dir": str(config_dir), "http_port": free_port(), "token_file": str(token_file)}
    proc = await asyncio.create_subprocess_exec(
        str(env.python),
        str(DRIVER),
        json.dumps(spec),
        cwd=str(tmp_path),
        env={
            k: v
            for k, v in os.environ.items()
            if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")
        },
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), BOOT_TIMEOUT_S)
        assert line, "Home Assistant's driver exited before it was ready"
        ready = json.loads(line)
        yield HomeAssistant(proc, ready["ready"], token_file)
    finally:
        await end_driver(proc)


async def test_todays_usage_appears_as_sensors_after_a_real_request(
    home_assistant: HomeAssistant, emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = bridge_settings(
        emulator.pulse_url,
        vad="webrtc",
        hass_url=home_assistant.url,
        hass_token_file=str(home_assistant.token_file),
        daily_audio_limit_min=60.0,
    )
    token = home_assistant.token_file.read_text().strip()
    async with serving(Services(settings)) as server:
        publisher = start_publisher(server.services, HassConnection.from_settings(settings, {}))
        assert publisher is not None
        try:
            await publisher.caught_up()
            before = await home_assistant.states()
            assert before[f"{ENTITY_PREFIX}requests_today"]["state"] == "0"

            pcm = silence(300) + encode_phrase("one two three") + silence(600)
            answer = await transcribe(bridge_port(server), pcm)
            assert answer.transcript == "one two three"
            await publisher.caught_up()
            states = await home_assistant.states()
            guard = server.services.guard
            today = DayUsage.from_values(
                guard.ledger.today(), guard.store.day_values(guard.ledger.today())
            )
        finally:
            await publisher.stop()

    assert today.requests == 1 and today.sent_s > 0
    minutes = states[f"{ENTITY_PREFIX}audio_minutes_today"]
    assert minutes["state"] == f"{today.sent_s / 60:.2f}"
    assert minutes["attributes"]["unit_of_measurement"] == "min"
    assert minutes["attributes"]["daily_limit_min"] == 60.0
    assert minutes["attributes"]["day"] == today.day
    cost = states[f"{ENTITY_PREFIX}estimated_cost_today"]
    assert cost["state"] == f"{today.cost_usd:.4f}"
    assert cost["attributes"]["unit_of_measurement"] == "USD"
    assert states[f"{ENTITY_PREFIX}requests_today"]["state"] == "1"
    assert states[f"{ENTITY_PREFIX}errors_today"]["state"] == "0"
    assert token not in caplog.text


async def test_a_wrong_token_is_refused_with_a_clear_message(home_assistant: HomeAssistant) -> None:
    wrong = "not-a-token-" + "x" * 40
    connection = HassConnection(home_assistant.url, Secret(wrong))
    try:
        with pytest.raises(HassError) as refused:
            await connection.set_state(f"{ENTITY_PREFIX}requests_today", "1", {})
    finally:
        await connection.close()
    assert "refused the token (HTTP 401)" in str(refused.value)
    assert wrong not in str(refused.value)
    assert f"{ENTITY_PREFIX}requests_today" not in await home_assistant.states()
