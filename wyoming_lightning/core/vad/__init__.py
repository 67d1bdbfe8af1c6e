"""Voice-activity gate: only speech (plus padding) goes to the cloud.

``VadGate`` (gate.py) turns a 16 kHz mono s16le stream into SpeechStart /
SpeechAudio / SpeechEnd events (events.py) using a pluggable engine
(engines.py: "webrtc" in webrtc.py, "silero" in silero.py).
"""

from wyoming_lightning.core.vad.base import VadEngine
from wyoming_lightning.core.vad.engines import ENGINE_NAMES, create_engine
from wyoming_lightning.core.vad.events import (
    EndReason,
    GateEvent,
    SpeechAudio,
    SpeechEnd,
    SpeechStart,
)
from wyoming_lightning.core.vad.gate import GateConfig, VadGate

__all__ = [
    "ENGINE_NAMES",
    "EndReason",
    "GateConfig",
    "GateEvent",
    "SpeechAudio",
    "SpeechEnd",
    "SpeechStart",
    "VadEngine",
    "VadGate",
    "create_engine",
]
