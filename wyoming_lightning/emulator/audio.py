"""PCM helpers shared by the session logic and the recognizers.

Recognizers want 16 kHz; the service takes several rates. Linear interpolation is enough for
an emulator: speech and the tone vocabulary sit far below every Nyquist frequency involved.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

RECOGNIZER_RATE = 16000
FULL_SCALE = 32768.0

FloatArray = npt.NDArray[np.float32]


def pcm_to_float(pcm: bytes) -> FloatArray:
    """Signed 16-bit little-endian mono to floats in [-1, 1)."""
    usable = len(pcm) - len(pcm) % 2
    samples = np.frombuffer(pcm[:usable], dtype="<i2")
    return (samples.astype(np.float32) / np.float32(FULL_SCALE)).astype(np.float32)


def float_to_pcm(samples: FloatArray) -> bytes:
    clipped = np.clip(np.round(samples * FULL_SCALE), -32768, 32767)
    return clipped.astype("<i2").tobytes()


def resample(samples: FloatArray, src_rate: int, dst_rate: int) -> FloatArray:
    """Linear-interpolation resampling; the output covers the same span of time."""
    if src_rate == dst_rate or samples.size == 0:
        return samples
    count = samples.size * dst_rate // src_rate
    positions = np.arange(count, dtype=np.float64) * (src_rate / dst_rate)
    source = np.arange(samples.size, dtype=np.float64)
    return np.interp(positions, source, samples).astype(np.float32)


def to_recognizer_pcm(pcm: bytes, rate: int) -> bytes:
    """Any documented rate to the 16 kHz s16le that recognizers take."""
    if rate == RECOGNIZER_RATE:
        return pcm[: len(pcm) - len(pcm) % 2]
    return float_to_pcm(resample(pcm_to_float(pcm), rate, RECOGNIZER_RATE))


def dbfs(pcm: bytes) -> float:
    """RMS level relative to a full-scale square wave; ``-inf`` for digital silence."""
    samples = pcm_to_float(pcm)
    if samples.size == 0:
        return -math.inf
    rms = float(np.sqrt(np.mean(np.square(samples, dtype=np.float64))))
    return 20.0 * math.log10(rms) if rms > 0.0 else -math.inf
