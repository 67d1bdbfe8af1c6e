"""What the gate tells its caller: where speech segments start, their audio, and why they end."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

EndReason: TypeAlias = Literal["silence", "max_utterance", "flush"]


@dataclass(frozen=True)
class SpeechStart:
    """A segment opens.

    ``pre_roll`` is the audio just before the first speech frame (up to
    ``GateConfig.pre_roll_ms``), so a word onset the engine judged too late is
    not lost. ``start_sample`` locates the first pre-roll sample in the gate's
    input stream (16 kHz samples since the first byte), for logs and tests.

    ``gap`` is the rest of the pause since the last segment closed: the audio
    between that segment's last byte and the pre-roll's first, when the gate
    still holds all of it (a pause up to ``GateConfig.gap_max_ms``), else
    empty. The gate sends none of it; a caller that keeps an utterance open
    over the pause (dictation) may, so the recognizer hears the pause whole.
    """

    pre_roll: bytes
    start_sample: int = 0
    gap: bytes = b""


@dataclass(frozen=True)
class SpeechAudio:
    """Audio inside the open segment, contiguous with what came before it."""

    data: bytes


@dataclass(frozen=True)
class SpeechEnd:
    """The segment closes; ``reason`` is "silence", "max_utterance" or "flush"."""

    reason: EndReason


GateEvent: TypeAlias = SpeechStart | SpeechAudio | SpeechEnd
