"""Level trackers that make an energy-based VAD independent of microphone gain and steady noise.

All levels are dBFS of the speech band of one frame (see ``band_energy_db``).
"""

from __future__ import annotations

import functools
import math
from typing import Final

import numpy as np
import numpy.typing as npt

from wyoming_lightning.core.pipeline_format import SAMPLE_RATE

_FULL_SCALE: Final = 32768.0
_SILENCE_DB: Final = -120.0

#: Digital silence and 16-bit dither sit below this; a floor lower than it means nothing.
FLOOR_MIN_DB: Final = -100.0


class BandEnergy:
    """Mean-square energy of the 200-4000 Hz band of a frame, in dBFS.

    Below 200 Hz live hum, rumble and most of brown noise's power; speech
    carries little there. Above 4 kHz there is little but sibilance. Measuring
    the band keeps low-frequency noise from masking speech onsets.

    The band's bins of the windowed frame's DFT are one product with a fixed
    basis (the cosines and sines of those bins, windowed), not an FFT: a frame
    is measured for every 30 ms of every stream, and at that size numpy's FFT
    spends most of its time in Python around the transform (issue 27: 21 % of
    the bridge's CPU with webrtc). The levels equal the FFT's within 1e-5 dB
    (float32 either way), which no threshold decision has been seen to notice
    (tests/core/test_levels_basis.py, benchmarks.machine_trace).
    """

    LOW_HZ: Final = 200.0
    HIGH_HZ: Final = 4000.0

    def __init__(self, frame_samples: int) -> None:
        bins = np.fft.rfftfreq(frame_samples, 1 / SAMPLE_RATE)
        low = int(np.searchsorted(bins, self.LOW_HZ))
        high = int(np.searchsorted(bins, self.HIGH_HZ))
        window = np.hanning(frame_samples)
        phase = (2 * np.pi / frame_samples) * np.outer(
            np.arange(frame_samples), np.arange(low, high)
        )
        basis = np.concatenate([np.cos(phase), np.sin(phase)], axis=1) * window[:, None]
        self._basis = basis.astype(np.float32)
        # Parseval with the window's power: a full-scale white signal reads its true band share.
        power = float(np.sum(window.astype(np.float32) ** 2))
        self._scale = 2.0 / (power * frame_samples * _FULL_SCALE**2)
        self._last: tuple[bytes | None, float, npt.NDArray[np.float32]] = (
            None,
            _SILENCE_DB,
            np.zeros(frame_samples, np.float32),
        )

    def __call__(self, samples: npt.NDArray[np.float32]) -> float:
        """``samples``: one frame of int16 values as float32."""
        bins = samples @ self._basis
        power = float(np.dot(bins, bins)) * self._scale
        return 10.0 * math.log10(power) if power > 0.0 else _SILENCE_DB

    def of_frame(self, frame: bytes) -> float:
        """The level of one frame of s16le bytes; the same frame object asked again (the gate
        and its engine both measure each frame) is answered from the last measure."""
        last, level, _ = self._last
        if frame is last:
            return level
        samples = np.frombuffer(frame, dtype="<i2").astype(np.float32)
        level = self(samples)
        self._last = (frame, level, samples)  # one assignment: a reader never sees half of it
        return level

    def samples_of(self, frame: bytes) -> npt.NDArray[np.float32]:
        """The frame's samples as float32 (read-only use): the last frame measured is not
        converted again (the webrtc engine's gain works on the frame it has just measured)."""
        last, _, samples = self._last
        if frame is last:
            return samples
        return np.frombuffer(frame, dtype="<i2").astype(np.float32)


@functools.cache
def band_energy(frame_samples: int) -> BandEnergy:
    """The process's one measure for a frame size, shared by every gate and engine, so that
    a frame measured by the engine is not measured again by its gate (``of_frame``)."""
    return BandEnergy(frame_samples)


class NoiseFloor:
    """Tracks the background level under speech.

    Falls quickly towards quieter frames (speech always has gaps), creeps up
    slowly otherwise (so a long vowel does not become "background"), and jumps
    up to the quietest frame of the last ``window_frames`` when nothing quieter
    has been seen for that long (minimum statistics): a fan switched on
    mid-stream becomes background within that window instead of holding the
    gate open for half a minute.
    """

    def __init__(
        self,
        *,
        frame_s: float,
        fall: float = 0.3,
        rise_db_per_s: float = 1.5,
        window_s: float = 1.2,
    ) -> None:
        self._fall = fall
        self._rise_db = rise_db_per_s * frame_s
        # A plain list, and its minimum kept up to date: found again only when the frame that
        # leaves the window was it (numpy's ``min`` per frame cost more than the rest together).
        self._recent = [FLOOR_MIN_DB] * max(1, round(window_s / frame_s))
        self._recent_min = FLOOR_MIN_DB
        self._index = 0
        self._floor_db: float | None = None

    @property
    def floor_db(self) -> float | None:
        return self._floor_db

    def update(self, level_db: float) -> float:
        """Account for one frame; return the floor to judge it against."""
        floor = self._floor_db
        if floor is None:
            floor = level_db
        elif level_db < floor:
            floor += self._fall * (level_db - floor)
        else:
            floor += min(level_db - floor, self._rise_db)
        recent = self._recent
        leaving = recent[self._index]
        recent[self._index] = level_db
        self._index = (self._index + 1) % len(recent)
        if level_db <= self._recent_min:
            self._recent_min = level_db
        elif leaving == self._recent_min:
            self._recent_min = min(recent)
        floor = max(floor, self._recent_min, FLOOR_MIN_DB)
        self._floor_db = floor
        return floor


class SpeechPeak:
    """Level of recent speech peaks, for an AGC: instant attack, slow release."""

    def __init__(self, *, frame_s: float, release_db_per_s: float = 2.0) -> None:
        self._release_db = release_db_per_s * frame_s
        self._peak_db: float | None = None

    @property
    def peak_db(self) -> float | None:
        return self._peak_db

    def update(self, level_db: float) -> None:
        """Account for a frame that is clearly speech."""
        peak = self._peak_db
        if peak is None or level_db > peak:
            self._peak_db = level_db
        else:
            self._peak_db = max(level_db, peak - self._release_db)

    def gain_db(self, target_db: float, max_gain_db: float) -> float:
        """Gain (never negative) that brings speech peaks to ``target_db``."""
        if self._peak_db is None:
            return 0.0
        return min(max_gain_db, max(0.0, target_db - self._peak_db))
