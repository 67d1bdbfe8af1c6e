"""DOCS.md's "speech-to-text failed" table stays true: every log line it quotes is what the
server really logs.

The causes that can be made on loopback (a refused key, an unreachable service, a client
outside --allow, the daily limit, a language the service does not offer, no speech) are made,
against the emulator, and the quoted line must be in the captured log. The rest (the vendor's
403 and 429, a timeout, a refused session) must be built from a real error code and message
text of the code, so a reworded message cannot leave the table behind.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.kit.bridge import bridge_settings, running_bridge, transcribe
from tests.kit.paths import ROOT
from wyoming_lightning.core.errors import ErrorCode
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.emulator.tones import encode_phrase, silence
from wyoming_lightning.settings.config import Secret
from wyoming_lightning.settings.networks import parse_network

DOCS = (ROOT / "DOCS.md").read_text(encoding="utf-8")
SOURCE = "\n".join(
    p.read_text(encoding="utf-8") for p in Path(ROOT / "wyoming_lightning").rglob("*.py")
)
SPEECH = silence(300) + encode_phrase("one two three") + silence(600)


def quoted_lines() -> list[str]:
    table = DOCS.split("<!-- failure-log:start -->", 1)[1].split("<!-- failure-log:end -->")[0]
    rows = [r for r in table.splitlines() if r.startswith("| `")]
    return [re.match(r"\| `([^`]+)`", row).group(1) for row in rows]  # type: ignore[union-attr]


def pattern(line: str) -> re.Pattern[str]:
    return re.compile(".+?".join(re.escape(part) for part in line.split("…")))


Scenario = Callable[[EmulatorServer], Awaitable[None]]


async def _refused_key(emulator: EmulatorServer) -> None:
    settings = bridge_settings(emulator.pulse_url, vad="webrtc", api_key=Secret("wrong-key"))
    async with running_bridge(settings) as server:
        await transcribe(server.sockets[0][1], SPEECH)


async def _unreachable(emulator: EmulatorServer) -> None:
    settings = bridge_settings("ws://127.0.0.1:9/waves/v1/stt/live", vad="webrtc", retries=0)
    async with running_bridge(settings) as server:
        await transcribe(server.sockets[0][1], SPEECH)


async def _outside_allow(emulator: EmulatorServer) -> None:
    allow = (parse_network("192.0.2.0/24"),)
    settings = bridge_settings(emulator.pulse_url, vad="webrtc", allow=allow)
    async with running_bridge(settings) as server:
        await transcribe(server.sockets[0][1], SPEECH)


async def _daily_limit(emulator: EmulatorServer) -> None:
    settings = bridge_settings(emulator.pulse_url, vad="webrtc", daily_audio_limit_min=0.0)
    async with running_bridge(settings) as server:
        await transcribe(server.sockets[0][1], SPEECH)


async def _language(emulator: EmulatorServer) -> None:
    settings = bridge_settings(emulator.pulse_url, vad="webrtc")
    async with running_bridge(settings) as server:
        await transcribe(server.sockets[0][1], SPEECH, language="uk")


async def _no_speech(emulator: EmulatorServer) -> None:
    settings = bridge_settings(emulator.pulse_url, vad="webrtc")
    async with running_bridge(settings) as server:
        await transcribe(server.sockets[0][1], silence(2000))


SCENARIOS: dict[str, Scenario] = {
    "request failed (auth)": _refused_key,
    "request failed (upstream): cannot reach": _unreachable,
    "refusing client": _outside_allow,
    "the daily audio limit of": _daily_limit,
    "language '": _language,
    "answered: 0 word(s)": _no_speech,
}


def test_the_table_quotes_every_cause_it_is_tested_for() -> None:
    lines = quoted_lines()
    assert len(lines) >= 8
    for start in SCENARIOS:
        assert any(line.startswith(start) for line in lines), f"DOCS.md lost {start!r}"


@pytest.mark.parametrize("start", list(SCENARIOS))
async def test_a_quoted_line_is_what_the_server_logs(
    start: str, emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    (line,) = [q for q in quoted_lines() if q.startswith(start)]
    caplog.set_level(logging.INFO, logger="wyoming_lightning")
    await SCENARIOS[start](emulator)
    logged = [r.getMessage() for r in caplog.records]
    assert any(pattern(line).search(message) for message in logged), (line, logged)


def test_the_other_quoted_lines_are_built_from_the_codes_messages() -> None:
    for line in quoted_lines():
        if any(line.startswith(start) for start in SCENARIOS):
            continue
        failed = re.fullmatch(r"request failed \((\w+)\): (.*)", line)
        assert failed is not None, f"{line!r}: neither made nor a request failure"
        assert failed.group(1) in {code.value for code in ErrorCode}, line
        for part in failed.group(2).split("…"):
            assert part.strip() in SOURCE, f"{part.strip()!r} is not in the code"
