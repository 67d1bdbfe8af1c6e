"""The contract every VAD engine meets, so the gate can stay engine-agnostic."""

from __future__ import annotations

from typing import Protocol


class VadEngine(Protocol):
    """Judges fixed-size frames of 16 kHz mono s16le audio.

    Engines are stateful (noise trackers, recurrent models): feed frames of one
    stream in order and ``reset`` between streams.
    """

    @property
    def frame_samples(self) -> int:
        """Samples per decision; ``speech_probability`` gets exactly this many."""
        ...

    def speech_probability(self, frame: bytes) -> float:
        """Return 0..1, how likely the frame holds speech."""
        ...

    def reset(self) -> None:
        """Forget everything learned from the previous stream."""
        ...
