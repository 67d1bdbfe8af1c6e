"""Is the command over? How it was said, judged by the smart-turn v3.2 acoustic model.

The templates (turn.py) know Home Assistant's commands; a request to an LLM agent ("tell me
why the sky is blue") or a command heard wrong ("open that") matches none, and then only the
silence timer decides, which cuts a speaker who pauses. smart-turn (BSD-2, by Daily) reads the
last 8 s of a speaker's audio and says how likely the turn is over, from intonation and the
shape of the last words. The segmenter asks it at most :data:`MAX_RUNS` times per request, at a
pause whose words no template decides, never per chunk (segmenter.py ``_sounds_unfinished``).

The weights are the ones the ``pipecat-ai`` wheel ships (the ``smart-turn`` extra); nothing is
downloaded. Without the wheel or onnxruntime, :func:`load_acoustic` returns ``None`` and the
segmenter does without. The features (Whisper's 80-band log-mel spectrogram of 8 s) are
computed here with numpy.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

RATE = 16000
WINDOW_S = 8
"""The model reads the last 8 s; shorter audio is preceded by silence."""
N_FFT = 400
HOP = 160
N_MELS = 80
FRAMES = WINDOW_S * RATE // HOP
MAX_RUNS = 4
"""Inferences per request at most (each is ~50-200 ms of CPU on a small machine): a request
pauses only a few times before it ends, and past that the silence timer decides alone."""
WEIGHTS = ("pipecat", "audio/turn/smart_turn/data/smart-turn-v3.2-cpu.onnx")
"""The package and the path in it of the model file."""


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear to 1 kHz (15 mels), logarithmic above (27 mels per 6.4x)."""
    log_part = 15.0 + np.log(np.maximum(hz, 1.0) / 1000.0) * (27.0 / np.log(6.4))
    return np.where(hz < 1000.0, hz * 3.0 / 200.0, log_part)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    log_part = 1000.0 * np.exp((mel - 15.0) * (np.log(6.4) / 27.0))
    return np.where(mel < 15.0, mel * 200.0 / 3.0, log_part)


@cache
def mel_bank() -> np.ndarray:
    """(N_MELS, N_FFT // 2 + 1): triangles evenly spaced in mels from 0 to 8 kHz, each scaled
    to unit area (Slaney normalisation), as Whisper's features use."""
    top = np.array([RATE / 2.0])
    edges = _mel_to_hz(np.linspace(0.0, float(_hz_to_mel(top)[0]), N_MELS + 2))
    bins = np.linspace(0.0, RATE / 2.0, N_FFT // 2 + 1)
    low, mid, high = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (bins[None, :] - low) / (mid - low)
    falling = (high - bins[None, :]) / (high - mid)
    triangles = np.clip(np.minimum(rising, falling), 0.0, None)
    return np.asarray(triangles * (2.0 / (high - low)))


@cache
def _window() -> np.ndarray:
    n = np.arange(N_FFT)
    return np.asarray(0.5 - 0.5 * np.cos(2.0 * np.pi * n / N_FFT))  # periodic Hann


def features(pcm: bytes) -> np.ndarray:
    """(N_MELS, FRAMES) float32: the log-mel spectrogram of the last 8 s of ``pcm`` (16 kHz
    mono s16le), preceded by silence when shorter; the waveform scaled to zero mean and unit
    variance first, the log clamped 8 decades below its peak and mapped to about [-1, 1]."""
    samples = np.frombuffer(pcm[len(pcm) % 2 :], "<i2")[-WINDOW_S * RATE :]
    audio = np.zeros(WINDOW_S * RATE, np.float32)
    if samples.size:
        audio[-samples.size :] = samples.astype(np.float32) / 32768.0
    audio = (audio - audio.mean()) / np.sqrt(audio.var() + 1e-7)
    half = N_FFT // 2
    padded = np.pad(audio.astype(np.float64), half, mode="reflect")
    starts = np.arange(FRAMES) * HOP  # the spectrogram's last frame is not used
    frames = padded[starts[:, None] + np.arange(N_FFT)[None, :]]
    power = np.abs(np.fft.rfft(frames * _window(), axis=1)) ** 2
    logmel = np.log10(np.maximum(mel_bank() @ power.T, 1e-10))
    logmel = np.maximum(logmel, logmel.max() - 8.0)
    scaled: np.ndarray = ((logmel + 4.0) / 4.0).astype(np.float32)
    return scaled


def weights_path() -> Path | None:
    """The model file inside the installed ``pipecat-ai`` wheel, found without importing the
    package (pipecat's own imports are heavy), or ``None``."""
    try:
        spec = importlib.util.find_spec(WEIGHTS[0])
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / WEIGHTS[1]
        if path.is_file():
            return path
    return None


class AcousticJudge:
    """smart-turn on one ONNX session: ``judge(pcm)`` is how likely the turn is over, 0-1."""

    def __init__(self, session: Any) -> None:
        self._session = session
        self._input = session.get_inputs()[0].name

    def __call__(self, pcm: bytes) -> float:
        batch = features(pcm)[None, :, :]
        (out,) = self._session.run(None, {self._input: batch})[:1]
        return float(np.asarray(out).reshape(-1)[0])


@cache
def load_acoustic() -> AcousticJudge | None:
    """The model, loaded once per process, or ``None`` without pipecat-ai's weights or
    onnxruntime (the ``smart-turn`` extra): the segmenter then does without it."""
    path = weights_path()
    if path is None:
        return None
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # one core: the machine serves other requests too
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(str(path), sess_options=options)
    return AcousticJudge(session)
