"""A local stand-in for Smallest.ai's streaming speech-to-text (Lightning / Pulse).

These machines cannot reach Smallest.ai, and a bridge must be tested against the failures of
a network service, so the project carries its own implementation of the documented protocol,
with deterministic tone words or offline Whisper behind it and named fault modes.
"""

from wyoming_lightning.emulator.config import Dialect, EmulatorConfig
from wyoming_lightning.emulator.faults import FAULT_NAMES, Fault
from wyoming_lightning.emulator.recognizers import (
    Recognizer,
    RecognizerUnavailable,
    Word,
    create_recognizer,
)
from wyoming_lightning.emulator.records import SessionRecord, SessionState
from wyoming_lightning.emulator.server import EmulatorServer

__all__ = [
    "FAULT_NAMES",
    "Dialect",
    "EmulatorConfig",
    "EmulatorServer",
    "Fault",
    "Recognizer",
    "RecognizerUnavailable",
    "SessionRecord",
    "SessionState",
    "Word",
    "create_recognizer",
]
