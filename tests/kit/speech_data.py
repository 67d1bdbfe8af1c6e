"""Speech test set and deterministic audio doctoring for tests and benchmarks.

The set (tests/data/speech/, made by scripts/make_test_speech.sh) holds twelve
short home-assistant commands spoken by espeak-ng in several voices, as 16 kHz
mono s16le WAVs with no leading or trailing silence. The helpers below add
silence, noise and level changes so every test controls its conditions exactly.

Everything here is pure and deterministic: PCM is ``bytes`` of 16 kHz mono s16le,
noise comes from ``numpy.random.default_rng(seed)``, nothing writes files.
Other test modules and benchmarks import this module; keep its API stable:

- ``load_speech() -> list[SpeechSample]``
- ``with_silence(pcm, lead_s, trail_s) -> bytes``
- ``mix_noise(pcm, snr_db, kind="white", seed=0) -> bytes``
- ``noise_for(pcm, snr_db, kind="white", seed=0) -> bytes`` (the noise mix_noise adds, alone)
- ``make_noise(seconds, rms_dbfs, kind="white", seed=0) -> bytes``
- ``noise_array(samples, kind, seed) -> float64 array`` (unit RMS, for mixing by hand)
- ``make_clap(seed=0) -> bytes``, ``make_beep(freq_hz=1000, seconds=0.3, rms_dbfs=-23) -> bytes``
  (non-speech sounds in 2 s of quiet room)
- ``scale_to_peak(pcm, dbfs) -> bytes``
- ``concat_with_pause(a, b, pause_s) -> bytes``
- ``read_wav(path) -> bytes`` (16 kHz mono s16 only; anything else is a one-line ValueError)
- ``speech_frames(pcm) -> numpy bool array`` (the energy oracle, one value per 10 ms)

Import it as ``tests.kit.speech_data`` (tests and ``python -m benchmarks`` alike).
"""

from __future__ import annotations

import json
import wave
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from tests.kit.paths import DATA_DIR

SAMPLE_RATE: Final = 16000
SPEECH_DIR: Final = DATA_DIR / "speech"

#: The oracle judges 10 ms frames of the clean signal.
ORACLE_FRAME_SAMPLES: Final = 160
#: A clean frame is speech when its energy is within this many dB of the loudest frame.
ORACLE_RANGE_DB: Final = 40.0

NoiseKind = Literal["white", "pink", "brown", "hum"]
NOISE_KINDS: Final[tuple[NoiseKind, ...]] = ("white", "pink", "brown", "hum")

_FULL_SCALE: Final = 32768.0


@dataclass(frozen=True)
class SpeechSample:
    """One command: file stem, the words spoken, and its audio (16 kHz mono s16le)."""

    name: str
    text: str
    pcm: bytes

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * SAMPLE_RATE)


def load_speech() -> list[SpeechSample]:
    """The whole set, in manifest order (a fresh list; the audio is read once)."""
    return list(_load_speech_cached())


@lru_cache(maxsize=1)
def _load_speech_cached() -> tuple[SpeechSample, ...]:
    manifest = json.loads((SPEECH_DIR / "manifest.json").read_text(encoding="utf-8"))
    samples = []
    for file_name, text in manifest.items():
        samples.append(SpeechSample(Path(file_name).stem, text, read_wav(SPEECH_DIR / file_name)))
    return tuple(samples)


def read_wav(path: Path) -> bytes:
    """The frames of a 16 kHz mono s16 WAV; any other shape is a one-line ValueError."""
    try:
        with wave.open(str(path), "rb") as wav:
            shape = (wav.getframerate(), wav.getsampwidth(), wav.getnchannels())
            if shape != (SAMPLE_RATE, 2, 1):
                raise ValueError(f"{path}: expected 16 kHz mono s16, got {shape}")
            return wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as err:
        raise ValueError(f"{path}: not a WAV file ({err})") from None


def to_array(pcm: bytes) -> npt.NDArray[np.float64]:
    """s16le bytes -> float64 samples in [-1, 1)."""
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64) / _FULL_SCALE


def to_pcm(samples: npt.NDArray[np.float64]) -> bytes:
    """float samples in [-1, 1) -> s16le bytes, rounded and clipped."""
    scaled = np.clip(np.rint(samples * _FULL_SCALE), -32768, 32767)
    return scaled.astype("<i2").tobytes()


def silence(seconds: float) -> bytes:
    """Digital silence."""
    return bytes(2 * round(seconds * SAMPLE_RATE))


def with_silence(pcm: bytes, lead_s: float, trail_s: float) -> bytes:
    """Pad with digital silence before and after."""
    return silence(lead_s) + pcm + silence(trail_s)


def concat_with_pause(a: bytes, b: bytes, pause_s: float) -> bytes:
    """``a``, then ``pause_s`` of digital silence, then ``b``."""
    return a + silence(pause_s) + b


def scale_to_peak(pcm: bytes, dbfs: float) -> bytes:
    """Scale so the largest sample sits at ``dbfs`` (0 dBFS = full scale)."""
    samples = to_array(pcm)
    peak = float(np.max(np.abs(samples))) if samples.size else 0.0
    if peak == 0.0:
        return pcm
    return to_pcm(samples * (10 ** (dbfs / 20) / peak))


def frame_energy_db(
    pcm: bytes, frame_samples: int = ORACLE_FRAME_SAMPLES
) -> npt.NDArray[np.float64]:
    """Mean-square energy in dBFS of each whole frame (a trailing partial frame is ignored)."""
    samples = to_array(pcm)
    count = samples.size // frame_samples
    frames = samples[: count * frame_samples].reshape(count, frame_samples)
    energy: npt.NDArray[np.float64] = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    return energy


def speech_frames(pcm: bytes) -> npt.NDArray[np.bool_]:
    """The oracle: which 10 ms frames of a CLEAN signal hold speech.

    A frame is speech when its energy is within ORACLE_RANGE_DB of the loudest
    frame. Run it on the clean (padded) signal, then judge a gate fed the noisy
    or rescaled version against it.
    """
    energy = frame_energy_db(pcm)
    if energy.size == 0:
        return np.zeros(0, dtype=np.bool_)
    return np.asarray(energy > energy.max() - ORACLE_RANGE_DB, dtype=np.bool_)


def speech_power(pcm: bytes) -> float:
    """Mean-square power of the oracle's speech frames (what an SNR is measured against)."""
    mask = speech_frames(pcm)
    if not mask.any():
        raise ValueError("no speech found to measure")
    samples = to_array(pcm)
    frames = samples[: mask.size * ORACLE_FRAME_SAMPLES].reshape(mask.size, -1)
    return float(np.mean(frames[mask] ** 2))


def noise_array(samples: int, kind: NoiseKind, seed: int) -> npt.NDArray[np.float64]:
    """Unit-RMS noise of the requested colour."""
    rng = np.random.default_rng(seed)
    if kind == "hum":
        # Mains hum: 50 Hz and odd-heavy harmonics, as a transformer buzz has.
        t = np.arange(samples) / SAMPLE_RATE
        harmonics = ((50, 1.0), (100, 0.5), (150, 0.6), (250, 0.3), (350, 0.15))
        noise = sum(
            (gain * np.sin(2 * np.pi * freq * t + rng.uniform(0, 2 * np.pi)))
            for freq, gain in harmonics
        )
        noise = np.asarray(noise, dtype=np.float64)
    else:
        white = rng.standard_normal(samples)
        if kind == "white":
            noise = white
        else:
            exponent = {"pink": 0.5, "brown": 1.0}.get(kind)
            if exponent is None:
                raise ValueError(f"unknown noise kind {kind!r}; choose from {NOISE_KINDS}")
            spectrum = np.fft.rfft(white)
            freqs = np.fft.rfftfreq(samples, 1 / SAMPLE_RATE)
            # 1/f (pink) or 1/f^2 (brown) power; below 20 Hz nothing a mic would pass.
            shaping = np.zeros_like(freqs)
            audible = freqs >= 20
            shaping[audible] = freqs[audible] ** -exponent
            noise = np.fft.irfft(spectrum * shaping, n=samples)
    rms = float(np.sqrt(np.mean(noise**2)))
    return noise / rms if rms > 0 else noise


def make_noise(seconds: float, rms_dbfs: float, kind: NoiseKind = "white", seed: int = 0) -> bytes:
    """Noise alone at an RMS level in dBFS (0 dBFS = RMS of a full-scale square wave)."""
    samples = round(seconds * SAMPLE_RATE)
    return to_pcm(noise_array(samples, kind, seed) * 10 ** (rms_dbfs / 20))


def mix_noise(pcm: bytes, snr_db: float, kind: NoiseKind = "white", seed: int = 0) -> bytes:
    """Add steady noise over the whole signal at ``snr_db`` below the speech.

    The SNR is measured against the power of the speech frames only (per the
    oracle), so padding the speech with silence does not change the noise level.
    """
    return to_pcm(to_array(pcm) + _scaled_noise(pcm, snr_db, kind, seed))


def noise_for(pcm: bytes, snr_db: float, kind: NoiseKind = "white", seed: int = 0) -> bytes:
    """Exactly the noise ``mix_noise`` would add to ``pcm``, alone (for noise-only sessions)."""
    return to_pcm(_scaled_noise(pcm, snr_db, kind, seed))


def _scaled_noise(pcm: bytes, snr_db: float, kind: NoiseKind, seed: int) -> npt.NDArray[np.float64]:
    noise_rms = float(np.sqrt(speech_power(pcm))) * 10 ** (-snr_db / 20)
    return noise_array(len(pcm) // 2, kind, seed) * noise_rms


def make_clap(seed: int = 0) -> bytes:
    """2 s of quiet room (-60 dBFS white) with a hand clap at 1 s.

    The clap is a broadband burst peaking near -10 dBFS that decays over 30 ms.
    """
    rng = np.random.default_rng(seed)
    room = _quiet_room(2.0, seed)
    burst = 0.3 * rng.standard_normal(1600) * np.exp(-np.arange(1600) / (0.03 * SAMPLE_RATE))
    room[SAMPLE_RATE : SAMPLE_RATE + burst.size] += burst
    return to_pcm(room)


def make_beep(freq_hz: float = 1000.0, seconds: float = 0.3, rms_dbfs: float = -23.0) -> bytes:
    """An appliance beep (a pure tone) at 1 s into 2 s plus the beep of quiet room."""
    room = _quiet_room(2.0 + seconds, seed=1)
    t = np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = np.sqrt(2) * 10 ** (rms_dbfs / 20) * np.sin(2 * np.pi * freq_hz * t)
    room[SAMPLE_RATE : SAMPLE_RATE + tone.size] += tone
    return to_pcm(room)


def _quiet_room(seconds: float, seed: int) -> npt.NDArray[np.float64]:
    """Quiet-room background: white noise at -60 dBFS, as float samples."""
    return noise_array(round(seconds * SAMPLE_RATE), "white", seed) * 10 ** (-60 / 20)
