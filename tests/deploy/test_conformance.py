"""The emulator's conformance suite: clients that nobody here wrote decide whether it is honest.

The vendor's SDK (``smallestai``), LiveKit's Smallest plugin and pipecat's Smallest STT service,
each unchanged but for its base URL, stream real speech (tests/data/speech, through the Whisper
recognizer) to the emulator and must get every word. They run in an environment of their own,
built once from tests/deploy/conformance/requirements.txt into the user's cache (its hash names the
directory), because their dependencies (LiveKit's alone is hundreds of megabytes) have no place
in the project's. Each client is driven by a small script (tests/deploy/conformance/drive_*.py) that
prints one JSON object; the emulator's session records show what went over the wire.

A machine that cannot build that environment fails these tests with the reason: CI reaches
the package registry, so a skip would only hide a broken suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import platform
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.side_env import cache_root, reuse_or_build, terminal
from tests.kit.bridge import API_KEY
from tests.kit.speech_data import SPEECH_DIR
from tests.kit.wer import normalise_words
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer, SessionRecord

HERE = Path(__file__).parent / "conformance"
REQUIREMENTS = HERE / "requirements.txt"
INSTALL_TIMEOUT_S = 1800
GUARD_S = 300.0  # bounds every wait on a client; never reached when the emulator is right
MANIFEST: dict[str, str] = json.loads((SPEECH_DIR / "manifest.json").read_text())

# Building the clients' environment the first time takes minutes; the per-test default would
# cut it short.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(INSTALL_TIMEOUT_S + 600)]


def _cache_dir() -> Path:
    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(f"{sys.version_info[:2]}-{platform.machine()}".encode())
    return cache_root() / f"conformance-{digest.hexdigest()[:16]}"


def _build(venv: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True)
    log = venv / "install.log"
    with log.open("w") as out:
        result = subprocess.run(
            [
                str(venv / "bin" / "python"),
                *("-m", "pip", "install", "--disable-pip-version-check", "--no-input"),
                *("-r", str(REQUIREMENTS)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    if result.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        pytest.fail(
            f"cannot install the third-party clients of {REQUIREMENTS.relative_to(HERE.parent)} "
            f"into {venv} (pip exit {result.returncode}); these tests need the package "
            f"registry once. pip said:\n{tail}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def clients_python(request: pytest.FixtureRequest) -> Path:
    """The interpreter of the clients' environment, built on first use and then reused."""
    venv = _cache_dir()
    say = terminal(request.config, "the vendor's, LiveKit's and pipecat's clients")
    try:
        reuse_or_build(venv, ".ready", REQUIREMENTS.read_text(), lambda: _build(venv), say)
    except (OSError, subprocess.SubprocessError) as err:
        pytest.fail(f"cannot build the clients' environment in {venv}: {err}", pytrace=False)
    return venv / "bin" / "python"


@pytest.fixture
async def speech_emulator() -> AsyncIterator[EmulatorServer]:
    """Today's Pulse as the spec describes it, with Whisper tiny.en behind it."""
    config = EmulatorConfig(api_key=API_KEY, recognizer="whisper")
    async with EmulatorServer(config, host="127.0.0.1", port=0) as emu:
        yield emu


@dataclass
class Run:
    """What a driver printed, and what it said on stderr (for failure messages)."""

    result: dict[str, Any]
    stderr: str


class Driver:
    """One client in its own process; ``go()`` answers its wait_for_go()."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc

    async def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        await self.proc.stdin.drain()

    async def finish(self) -> Run:
        async with asyncio.timeout(GUARD_S):
            out, err = await self.proc.communicate()
        stderr = err.decode(errors="replace")
        tail = "\n".join(stderr.splitlines()[-30:])
        assert self.proc.returncode == 0, (
            f"the client failed (exit {self.proc.returncode}):\n{tail}"
        )
        lines = out.decode().strip().splitlines()
        assert lines, f"the client printed nothing:\n{tail}"
        print(lines[-1])  # what the client received: shown with pytest -s
        return Run(json.loads(lines[-1]), tail)


@contextlib.asynccontextmanager
async def driver(
    python: Path, name: str, emu: EmulatorServer, wavs: list[str]
) -> AsyncIterator[Driver]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = await asyncio.create_subprocess_exec(
        str(python),
        str(HERE / f"drive_{name}.py"),
        *("--url", emu.base_url, "--key", API_KEY),
        *(arg for wav in wavs for arg in ("--wav", str(SPEECH_DIR / wav))),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=HERE,
        env=env,
    )
    try:
        yield Driver(proc)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def words_of(wavs: list[str]) -> list[str]:
    return normalise_words(" ".join(MANIFEST[w] for w in wavs))


def only_session(emu: EmulatorServer) -> SessionRecord:
    (record,) = emu.sessions  # one session: the client never had to reconnect
    assert record.handshake_status == 101
    assert record.close_code == 1000, (record.close_code, record.close_reason)
    return record


async def test_vendor_sdk_with_a_finalize_mid_stream(
    clients_python: Path, speech_emulator: EmulatorServer
) -> None:
    wavs = ["turn_on_kitchen_lights.wav", "lock_front_door.wav"]
    async with driver(clients_python, "sdk", speech_emulator, wavs) as client:
        run = await client.finish()
    await speech_emulator.wait_idle(GUARD_S)
    assert normalise_words(" ".join(run.result["finals"])) == words_of(wavs), run
    record = only_session(speech_emulator)
    assert record.path == "/waves/v1/stt/live" and record.params["model"] == "pulse"
    assert record.params["keywords"] == "Kitchen,garage door", "keywords without weights"
    assert record.text_frames_received == ['{"type": "finalize"}', '{"type": "close_stream"}']
    assert run.result["from_finalize"][0] is True, "the mid-stream finalize was answered"
    assert run.result["is_last"][-1] is True and run.result["types"] == ["transcription"]


async def test_livekit_plugin_through_long_silences(
    clients_python: Path, speech_emulator: EmulatorServer
) -> None:
    """Between two turns the plugin sends nothing but its keepalive every 5 s; the emulator
    must answer each with pong and keep the session, or the plugin reconnects and loses
    speech. The test lets the second turn go once the emulator has seen two keepalives."""
    wavs = ["what_time.wav", "open_garage.wav"]

    def keepalives() -> int:
        frames = (f for s in speech_emulator.sessions for f in s.text_frames_received)
        return sum(1 for f in frames if json.loads(f).get("type") == "keepalive")

    async with driver(clients_python, "livekit", speech_emulator, wavs) as client:
        await speech_emulator.wait_for(lambda: keepalives() >= 2, GUARD_S)
        await client.go()
        run = await client.finish()
    await speech_emulator.wait_idle(GUARD_S)
    assert normalise_words(" ".join(run.result["finals"])) == words_of(wavs), run
    record = only_session(speech_emulator)
    kinds = [json.loads(f)["type"] for f in record.text_frames_received]
    assert kinds.count("keepalive") >= 2 and kinds.count("finalize") >= len(wavs)
    assert kinds[-1] == "close_stream"
    pongs = [m for m in record.messages_sent if m.get("type") == "pong"]
    assert len(pongs) == kinds.count("keepalive")
    assert "END_OF_SPEECH" in run.result["events"]


async def test_pipecat_service_in_a_pipeline(
    clients_python: Path, speech_emulator: EmulatorServer
) -> None:
    wavs = ["weather_tomorrow.wav", "milk_shopping_list.wav", "lock_front_door.wav"]
    async with driver(clients_python, "pipecat", speech_emulator, wavs) as client:
        run = await client.finish()
    await speech_emulator.wait_idle(GUARD_S)
    assert [normalise_words(t) for t in run.result["finals"]] == [
        normalise_words(MANIFEST[w]) for w in wavs
    ], run
    (record,) = speech_emulator.sessions
    assert record.path == "/waves/v1/stt/live" and record.params["model"] == "pulse"
    assert record.text_frames_received.count('{"type": "finalize"}') == len(wavs)
