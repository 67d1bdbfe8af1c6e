"""Real Home Assistant 2026.11 tells the server its home's names; the server sends them as keywords.

Home Assistant runs in its forky root (``forky_env.py``) under ``ha_names_driver.py``, holding
22 exposed devices with unusual names, aliases, areas and floors, and 3 devices not exposed to
Assist, all made through its own registries. Here, on the same loopback: the emulator (tone
recognizer: only the URL matters) and the server with ``--hass-url`` and a token file, exactly
the one setting a user outside the add-on gives. The module checks what reached the emulator's
session URL, that a rename is followed, and that a revoked token and a stopped Home Assistant
leave requests served (said once in the log and in the metrics).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.forky_env import ForkyEnv, forky_env_for
from tests.deploy.ha_processes import end_driver, lightning_server
from tests.kit.bridge import API_KEY, bridge_settings, serving, transcribe
from tests.kit.net import free_port
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.emulator.config import EmulatorConfig
from wyoming_lightning.emulator.tones import encode
from wyoming_lightning.hass.connection import HassConnection
from wyoming_lightning.hass.home_names import start_home_names
from wyoming_lightning.hass.names import NAME_WEIGHT, PLACE_WEIGHT
from wyoming_lightning.hass.sensors import Link
from wyoming_lightning.services import Services

DRIVER = Path(__file__).with_name("ha_names_driver.py")
HELPER = Path(__file__).with_name("ha_driver.py")
HOME = Path(__file__).with_name("ha_names_home.py")
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
STEP_TIMEOUT_S = 120.0


class Driver:
    """The HA driver process: one JSON line per command."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), STEP_TIMEOUT_S)
        if not raw:
            assert self.proc.stderr is not None
            err = await self.proc.stderr.read()
            raise AssertionError(f"the HA driver ended:\n{err.decode()[-4000:]}")
        answer: dict[str, Any] = json.loads(raw)
        return answer

    async def send(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command.encode() + b"\n")
        await self.proc.stdin.drain()
        return await self.line()


def _keywords(emulator: EmulatorServer) -> list[tuple[str, str]]:
    """The last session's keywords as the emulator received them: (text, intensifier)."""
    query = dict(emulator.sessions[-1].query)
    if "keywords" not in query:
        return []
    return [tuple(entry.rsplit(":", 1)) for entry in query["keywords"].split(",")]  # type: ignore[misc]


async def _until(names: Any, done: Any) -> None:
    async with asyncio.timeout(STEP_TIMEOUT_S):
        while not done():
            await names.next_read()


async def run_everything(env: ForkyEnv, work: Path, caplog: _Capture) -> dict[str, Any]:
    for script in (DRIVER, HELPER, HOME):
        shutil.copyfile(script, work / script.name)
    config_dir = work / "ha-config"
    config_dir.mkdir()
    token_file = work / "token"
    port = free_port()
    spec = {
        "config_dir": env.inside(config_dir),
        "http_port": port,
        "token_file": env.inside(token_file),
        "plain_token_file": env.inside(work / "plain-token"),
    }
    proc = await asyncio.create_subprocess_exec(
        *env.command(env.python, env.inside(work / DRIVER.name), json.dumps(spec)),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    driver = Driver(proc)
    out: dict[str, Any] = {}
    audio = encode(["one", "two"])
    try:
        out["home"] = home = await driver.line()
        async with EmulatorServer(EmulatorConfig(), port=0) as emulator:
            url = f"ws://127.0.0.1:{emulator.port}/waves/v1/pulse/get_text"
            # The one setting outside the add-on: the URL, and the token in a file.
            settings = bridge_settings(
                url, hass_url=f"http://127.0.0.1:{port}", hass_token_file=str(token_file)
            )
            services = Services(settings)
            names = start_home_names(services, HassConnection.from_settings(settings, env={}))
            assert names is not None
            try:
                async with serving(services) as server:
                    bridge = server.sockets[0][1]
                    await _until(names, lambda: services.home_keywords)
                    out["first_link"] = names.link
                    out["first"] = await _sent(bridge, audio, emulator)
                    # And as users run it: the server's own process, the one setting given.
                    async with lightning_server(
                        url,
                        API_KEY,
                        "--hass-url",
                        f"http://127.0.0.1:{port}",
                        "--hass-token-file",
                        str(token_file),
                        "--no-hass-sensors",
                    ) as (process_port, process):
                        await process.wait_for(r"\d+ names from Home Assistant as keywords")
                        out["process"] = await _sent(process_port, audio, emulator)
                    out["process_log"] = process.log
                    # A token of a user who is no administrator: no names, and the log says why.
                    plain = replace(settings, hass_token_file=str(work / "plain-token"))
                    plain_services = Services(plain)
                    plain_names = start_home_names(
                        plain_services, HassConnection.from_settings(plain, env={})
                    )
                    assert plain_names is not None
                    out["plain_link"] = await plain_names.next_read()
                    out["plain_keywords"] = plain_services.home_keywords
                    await plain_names.stop()
                    out["plain_log"] = caplog.text
                    # A token Home Assistant never issued: refused, and said so.
                    (work / "bad-token").write_text("not-a-token-3c9\n")
                    bad = replace(settings, hass_token_file=str(work / "bad-token"))
                    bad_names = start_home_names(
                        Services(bad), HassConnection.from_settings(bad, env={})
                    )
                    assert bad_names is not None
                    out["bad_link"] = await bad_names.next_read()
                    await bad_names.stop()
                    out["bad_log"] = caplog.text
                    renamed = await driver.send(f"rename {home['ids']['Ecobee']} Nest Cam")
                    out["renamed"] = renamed
                    await _until(
                        names, lambda: any(k.text == "Nest Cam" for k in services.home_keywords)
                    )
                    out["after_rename"] = await _sent(bridge, audio, emulator)
                    caplog.clear()
                    out["revoked"] = await driver.send("revoke")
                    await _until(names, lambda: names.link is Link.DOWN)
                    out["revoked_request"] = await _sent(bridge, audio, emulator)
                    out["stopped"] = await driver.send("stop")
                    for _ in range(2):  # two more failed reads, HA down now
                        await names.next_read()
                    out["down_request"] = await _sent(bridge, audio, emulator)
                    out["log"] = caplog.text
                    out["metrics"] = _metrics(services)
            finally:
                await names.stop()
            # A server started while Home Assistant is down serves without names.
            fresh = Services(settings)
            late = start_home_names(fresh, HassConnection.from_settings(settings, env={}))
            assert late is not None
            try:
                async with serving(fresh) as server:
                    out["fresh_link"] = await late.next_read()
                    out["fresh_request"] = await _sent(server.sockets[0][1], audio, emulator)
            finally:
                await late.stop()
        out["token"] = token_file.read_text().strip()
    finally:
        await end_driver(proc)
    return out


async def _sent(port: int, audio: bytes, emulator: EmulatorServer) -> dict[str, Any]:
    before = len(emulator.sessions)
    answer = await transcribe(port, audio)
    return {
        "answer": [e.type for e in answer.events],
        "new_sessions": len(emulator.sessions) - before,
        "keywords": _keywords(emulator),
    }


def _metrics(services: Services) -> dict[str, float]:
    registry = services.guard.metrics.registry
    names = ("hass_names", "hass_names_up", "hass_names_failures_total", "hass_names_changes_total")
    return {n: registry.get_sample_value(f"wyoming_lightning_{n}") or 0.0 for n in names}


@pytest.fixture(scope="module")
def report(request: pytest.FixtureRequest) -> Iterator[dict[str, Any]]:
    env = forky_env_for(request.config)  # a first build says each step
    scratch = env.root / "tmp"
    scratch.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="wyoming-lightning-names-", dir=scratch))
    handler = _Capture()
    logging.getLogger("wyoming_lightning").addHandler(handler)
    try:
        yield asyncio.run(run_everything(env, work, handler))
    finally:
        logging.getLogger("wyoming_lightning").removeHandler(handler)
        shutil.rmtree(work, ignore_errors=True)


class _Capture(logging.Handler):
    """caplog for a module-scoped fixture: the server's log lines, from a point on."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")

    def clear(self) -> None:
        self.lines.clear()

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def test_the_homes_names_reach_the_service_as_keywords(report: dict[str, Any]) -> None:
    home = report["home"]
    first = report["first"]
    assert report["first_link"] is Link.UP
    assert "transcript" in first["answer"], first
    sent = dict(first["keywords"])
    assert len(home["exposed"]) >= 20
    for name in home["exposed"]:
        assert sent.get(name) == f"{NAME_WEIGHT:g}", (name, sent)
    for alias in home["aliases"]:
        assert sent.get(alias) == f"{NAME_WEIGHT:g}", (alias, sent)
    used = {v for k, v in home["areas"].items() if k != "panic_room"}
    for place in [*used, *home["area_aliases"], *home["floors"], *home["floor_aliases"]]:
        assert sent.get(place) == f"{PLACE_WEIGHT:g}", (place, sent)
    # Device names come first: a cut never drops one for a room.
    texts = [text for text, _w in first["keywords"]]
    assert set(texts[: len(home["exposed"])]) == set(home["exposed"])


def test_the_server_process_sends_them_with_one_setting(report: dict[str, Any]) -> None:
    assert report["process"]["keywords"] == report["first"]["keywords"]
    assert report["token"] not in report["process_log"]


def test_a_token_of_a_user_who_is_no_administrator_is_named_as_the_cause(
    report: dict[str, Any],
) -> None:
    assert report["plain_link"] is Link.DOWN
    assert report["plain_keywords"] == ()
    assert "must belong to an administrator" in report["plain_log"], report["plain_log"]


def test_a_token_home_assistant_never_issued_is_refused_and_said(
    report: dict[str, Any],
) -> None:
    assert report["bad_link"] is Link.DOWN
    assert "refused the token" in report["bad_log"], report["bad_log"]
    assert "not-a-token-3c9" not in report["bad_log"]


def test_nothing_unexposed_leaves_the_house(report: dict[str, Any]) -> None:
    home = report["home"]
    texts = {text for text, _w in report["first"]["keywords"]}
    assert not texts & set(home["hidden"]), texts
    assert not texts & set(home["hidden_aliases"]), texts
    assert home["areas"]["panic_room"] not in texts
    assert not any(text.startswith("input_boolean.") for text in texts)


def test_a_rename_in_home_assistant_reaches_the_next_request(report: dict[str, Any]) -> None:
    assert report["renamed"]["friendly_name"] == "Nest Cam"
    before = {t for t, _w in report["first"]["keywords"]}
    after = {t for t, _w in report["after_rename"]["keywords"]}
    assert before - after == {"Ecobee"} and after - before == {"Nest Cam"}


def test_a_revoked_token_or_a_stopped_home_assistant_leaves_requests_served(
    report: dict[str, Any],
) -> None:
    for step in ("revoked_request", "down_request"):
        result = report[step]
        assert "transcript" in result["answer"], (step, result)
        # The names read before stay in use: they were true, and no request waits.
        assert ("Nest Cam", f"{NAME_WEIGHT:g}") in result["keywords"], (step, result)
    log = report["log"]
    # Said once for the whole outage (revoked, then down), naming the cause, not the token.
    assert log.count("cannot read the home's names") == 1, log
    assert "refused the token" in log or "closed the websocket" in log, log
    assert report["token"] not in log
    metrics = report["metrics"]
    assert metrics["hass_names_up"] == 0.0
    assert metrics["hass_names_failures_total"] >= 3
    assert metrics["hass_names_changes_total"] == 2  # the first list, the rename


def test_a_server_started_with_home_assistant_down_serves_without_names(
    report: dict[str, Any],
) -> None:
    assert report["fresh_link"] is Link.DOWN
    result = report["fresh_request"]
    assert "transcript" in result["answer"], result
    assert result["keywords"] == []
