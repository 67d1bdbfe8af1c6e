"""Level trackers that make an energy-based VAD independent of microphone gain and steady noise.

All levels are dBFS of the speech band of one frame (see ``band_energy_db``).
"""

from __future__ import annotations

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
    """

    LOW_HZ: Final = 200.0
    HIGH_HZ: Final = 4000.0

    def __init__(self, frame_samples: int) -> None:
        bins = np.fft.rfftfreq(frame_samples, 1 / SAMPLE_RATE)
        self._band = slice(
            int(np.searchsorted(bins, self.LOW_HZ)), int(np.searchsorted(bins, self.HIGH_HZ))
        )
        self._window = np.hanning(frame_samples).astype(np.float32)
        # Parseval with the window's power: a full-scale white signal reads its true band share.
        self._scale = 2.0 / (float(np.sum(self._window**2)) * frame_samples * _FULL_SCALE**2)

    def __call__(self, samples: npt.NDArray[np.float32]) -> float:
        """``samples``: one frame of int16 values as float32."""
        spectrum = np.fft.rfft(samples * self._window)[self._band]
        power = float(np.sum(spectrum.real**2 + spectrum.imag**2)) * self._scale
        return 10.0 * float(np.log10(power)) if power > 0.0 else _SILENCE_DB


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
        self._recent = np.full(max(1, round(window_s / frame_s)), FLOOR_MIN_DB)
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
        recent[self._index] = level_db
        self._index = (self._index + 1) % recent.size
        floor = max(floor, float(recent.min()), FLOOR_MIN_DB)
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
