"""The one audio format inside the bridge: 16 kHz, 16-bit signed little-endian, mono.

Whatever a client sends is converted to this by :mod:`~wyoming_lightning.core.audio`; the VAD gate
and its engines judge it, the request machine frames and times it, the guard counts it and the
service is told it (``sample_rate``). It is a module of its own, free of numpy and soxr, so that
each of those (and the benchmarks) reads the same numbers instead of writing ``16000`` or ``32000``
again.
"""

from __future__ import annotations

from typing import Final

SAMPLE_RATE: Final = 16000
SAMPLE_WIDTH: Final = 2
"""Bytes per sample (s16le)."""
CHANNELS: Final = 1
BYTES_PER_SECOND: Final = SAMPLE_RATE * SAMPLE_WIDTH * CHANNELS
