"""The processes a real-Home-Assistant test runs beside HA, as users run them, on loopback.

Shared by the tests of every Home Assistant release the suite drives (``test_home_assistant.py``
for 2025.4.4, ``test_home_assistant_2026.py`` for 2026.11): the emulator and the server are
started from this interpreter with their logs read continuously, and each says when it listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from tests.kit.bridge import API_KEY, clean_env
from tests.kit.speech_data import SAMPLE_RATE


class LoggedProcess:
    """A child process whose stderr is read continuously (a full pipe would stall it)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []
        self._new_line = asyncio.Event()
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stderr is not None
        while raw := await self.proc.stderr.readline():
            self.lines.append(raw.decode(errors="replace"))
            self._new_line.set()
        self._new_line.set()

    async def wait_for(self, pattern: str, timeout: float = 120.0) -> re.Match[str]:
        """The first log line matching ``pattern``: the process says it is listening."""
        async with asyncio.timeout(timeout):
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if found := re.search(pattern, line):
                        return found
                seen = len(self.lines)
                if self._reader.done():
                    raise AssertionError("exited before ready:\n" + self.log)
                self._new_line.clear()
                await self._new_line.wait()

    @property
    def log(self) -> str:
        return "".join(self.lines)

    async def stop(self) -> None:
        if self.proc.returncode is None:
            self.proc.terminate()
            try:
                await asyncio.wait_for(self.proc.wait(), 20)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        await asyncio.wait_for(self._reader, 20)


@contextlib.asynccontextmanager
async def started(args: list[str], ready: str, env: dict[str, str]) -> AsyncIterator[LoggedProcess]:
    proc = await asyncio.create_subprocess_exec(
        *args, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    process = LoggedProcess(proc)
    try:
        await process.wait_for(ready)
        yield process
    finally:
        await process.stop()


@contextlib.asynccontextmanager
async def whisper_emulator(*extra: str) -> AsyncIterator[tuple[str, LoggedProcess]]:
    """The emulator with Whisper tiny.en behind it, on a port the kernel picks, with any
    ``extra`` flags (a latency model): its URL."""
    args = [
        sys.executable,
        *("-m", "wyoming_lightning.emulator", "--host", "127.0.0.1", "--port", "0"),
        *("--recognizer", "whisper", "--api-key", API_KEY, *extra),
    ]
    async with started(args, r"listening: (ws://\S+)", clean_env(None)) as emulator:
        yield (await emulator.wait_for(r"listening: (ws://\S+)")).group(1), emulator


@contextlib.asynccontextmanager
async def lightning_server(
    service_url: str, key: str, *extra: str
) -> AsyncIterator[tuple[int, LoggedProcess]]:
    """A server on a port the kernel picks, with generous waits (Whisper on shared cores is
    slow) and any ``extra`` flags."""
    args = [
        sys.executable,
        "-m",
        "wyoming_lightning",
        "--uri",
        "tcp://127.0.0.1:0",
        "--lightning-url",
        service_url,
        "--final-timeout",
        "60",
        "--response-timeout",
        "120",
        *extra,
    ]
    async with started(args, r"listening on tcp://127\.0\.0\.1:(\d+)", clean_env(key)) as proc:
        found = await proc.wait_for(r"listening on tcp://127\.0\.0\.1:(\d+)")
        yield int(found.group(1)), proc


def write_wav(path: Path, pcm: bytes) -> str:
    with wave.open(str(path), "wb") as wav:
        wav.setframerate(SAMPLE_RATE)
        wav.setsampwidth(2)
        wav.setnchannels(1)
        wav.writeframes(pcm)
    return str(path)


DRIVER_OVERHEAD_S = 300
"""Home Assistant's start-up and set-up, beyond the cases' own timeouts."""


async def run_driver(
    command: list[str], cases: list[dict[str, Any]], **popen: Any
) -> dict[str, Any]:
    """Run Home Assistant's driver script to the end within a budget made from its cases'
    timeouts; its report is the JSON on its last line of output, with its stderr added."""
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, **popen
    )
    budget = DRIVER_OVERHEAD_S + sum(c["timeout_s"] for c in cases)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), budget)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        raise AssertionError(f"Home Assistant's driver ran over {budget} s") from None
    lines = out.decode().strip().splitlines()
    assert proc.returncode == 0 and lines, (
        f"the HA driver failed (exit {proc.returncode}):\n{err.decode()[-4000:]}"
    )
    report: dict[str, Any] = json.loads(lines[-1])
    report["ha_stderr"] = err.decode()
    return report


async def end_driver(proc: asyncio.subprocess.Process) -> None:
    """End a driver that serves commands on its stdin: closing its input is its signal to stop
    Home Assistant and exit; one that has not within a minute is killed."""
    if proc.stdin is not None:
        proc.stdin.close()
    try:
        await asyncio.wait_for(proc.wait(), 60)
    except TimeoutError:
        proc.kill()
        await proc.wait()
