"""The real human recordings in steady noise: what a voice assistant hears in a kitchen, a
bedroom or a living room.

Each mix is a recording of tests/data/human placed as Home Assistant sends it (its lead
silence, the clip, 0.7 s to audio-stop; ``human_speech.as_home_assistant_sends``) with one of
these noises over the whole stream, at an SNR against the recording's active speech level:

- ``fan``: broadband noise falling 6 dB per octave above 300 Hz (a fan's air rush), its level
  drifting slowly (two slow sines, +-2 dB) and a faint blade-pass tone at 24 Hz and harmonics;
- ``hum``: mains hum, 50 Hz and its harmonics up to 1 kHz (odd ones stronger, as a
  transformer's buzz), over a faint hiss;
- ``pink`` and ``brown``: 1/f and 1/f^2 noise (``speech_data``'s);
- ``babble``: a television's chatter, five espeak-ng voices of tests/data/speech talking over
  each other, each a seeded random run of the commands with short gaps.

Everything is numpy with a seed derived from the clip's name and the noise (CRC-32), so a mix
is the same bytes on every machine and run; nothing is downloaded, no file is written. The
noise is made for the longest placement (``human_speech.SHIFTS_S``) and cut to the stream, so
the placements of one clip share the same noise under a speech shifted by 50 ms steps.

API (tests and benchmarks import it as ``tests.kit.noisy_speech``):

- ``NOISES``, ``SNRS_DB``: the conditions of the set; ``Condition`` one of them or clean
- ``conditions()``: clean, then every noise at every SNR
- ``make_noise(kind, samples, seed) -> float64 array`` (unit RMS)
- ``active_speech_power(pcm) -> float``: what an SNR is measured against
- ``noisy_stream(clip, condition, shift_s=0.0) -> bytes``: the stream Home Assistant sends
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from tests.kit import human_speech as hs
from tests.kit import speech_data as sd

NoiseKind = Literal["fan", "hum", "pink", "brown", "babble"]
NOISES: Final[tuple[NoiseKind, ...]] = ("fan", "hum", "pink", "brown", "babble")
SNRS_DB: Final = (0, 5, 10, 20)
SAMPLE_RATE: Final = hs.SAMPLE_RATE
#: Active speech: 10 ms frames within this many dB of the clip's loud frames (its 99th
#: percentile), so the recording's own room tone and pauses do not dilute the speech level.
ACTIVE_RANGE_DB: Final = 30.0
#: A mix whose peak would pass this (in full scale) is scaled down whole: no clipping.
PEAK_LIMIT: Final = 0.89
_LONGEST_SHIFT_S: Final = max(hs.SHIFTS_S)


@dataclass(frozen=True)
class Condition:
    """Clean (``noise is None``) or one noise at one SNR."""

    noise: NoiseKind | None = None
    snr_db: float = 0.0

    @property
    def label(self) -> str:
        return "clean" if self.noise is None else f"{self.noise} {self.snr_db:g} dB"


CLEAN: Final = Condition()


def conditions(
    noises: tuple[NoiseKind, ...] = NOISES, snrs_db: tuple[float, ...] = SNRS_DB
) -> list[Condition]:
    """Clean, then each noise at each SNR (highest SNR first)."""
    return [CLEAN] + [Condition(n, s) for n in noises for s in sorted(snrs_db, reverse=True)]


def _shaped(
    white: npt.NDArray[np.float64], power: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """White noise given a power spectrum (over rfft bins) and nothing below 20 Hz."""
    freqs = np.fft.rfftfreq(white.size, 1 / SAMPLE_RATE)
    gain = np.sqrt(np.where(freqs >= 20, power, 0.0))
    return np.fft.irfft(np.fft.rfft(white) * gain, n=white.size)


def _fan(samples: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    t = np.arange(samples) / SAMPLE_RATE
    freqs = np.fft.rfftfreq(samples, 1 / SAMPLE_RATE)
    power = np.asarray(1.0 / (1.0 + (freqs / 300.0) ** 2), dtype=np.float64)
    rush = _shaped(rng.standard_normal(samples), power)
    rush /= np.sqrt(np.mean(rush**2))
    drift_db = 1.2 * np.sin(2 * np.pi * 0.23 * t + rng.uniform(0, 2 * np.pi))
    drift_db += 0.8 * np.sin(2 * np.pi * 0.61 * t + rng.uniform(0, 2 * np.pi))
    blades = sum(
        0.08 / k * np.sin(2 * np.pi * 24.0 * k * t + rng.uniform(0, 2 * np.pi)) for k in (1, 2, 3)
    )
    out: npt.NDArray[np.float64] = rush * 10 ** (drift_db / 20) + blades
    return out


def _hum(samples: int, rng: np.random.Generator) -> npt.NDArray[np.float64]:
    t = np.arange(samples) / SAMPLE_RATE
    out = 0.01 * rng.standard_normal(samples)
    for k in range(1, 21):  # 50 Hz .. 1 kHz
        gain = (1.0 if k % 2 else 0.4) / k**0.7
        out += gain * np.sin(2 * np.pi * 50.0 * k * t + rng.uniform(0, 2 * np.pi))
    return out


def _babble(samples: int, rng: np.random.Generator, talkers: int = 5) -> npt.NDArray[np.float64]:
    commands = [sd.to_array(s.pcm) for s in sd.load_speech()]
    out = np.zeros(samples)
    for _ in range(talkers):
        voice = np.zeros(samples)
        at = int(rng.integers(0, SAMPLE_RATE))  # talkers start apart
        while at < samples:
            words = commands[int(rng.integers(len(commands)))]
            end = min(samples, at + words.size)
            voice[at:end] += words[: end - at]
            at = end + int(rng.uniform(0.05, 0.3) * SAMPLE_RATE)
        # Start over from the beginning so a short stream is not silent before a late talker.
        voice += np.roll(voice, -int(rng.integers(0, max(1, samples))))
        out += voice * 10 ** (rng.uniform(-3, 3) / 20)
    return out


def make_noise(kind: NoiseKind, samples: int, seed: int) -> npt.NDArray[np.float64]:
    """``samples`` of one noise at unit RMS (float, full scale 1.0), the same for one seed."""
    rng = np.random.default_rng(seed)
    if kind in ("pink", "brown"):
        noise = sd.noise_array(samples, kind, seed)
    elif kind == "fan":
        noise = _fan(samples, rng)
    elif kind == "hum":
        noise = _hum(samples, rng)
    elif kind == "babble":
        noise = _babble(samples, rng)
    else:
        raise ValueError(f"unknown noise {kind!r}; choose from {', '.join(NOISES)}")
    rms = float(np.sqrt(np.mean(noise**2))) if samples else 0.0
    return noise / rms if rms > 0 else noise


def active_speech_power(pcm: bytes) -> float:
    """Mean square (full scale 1.0) of the clip's active speech frames (see ``ACTIVE_RANGE_DB``)."""
    energy = sd.frame_energy_db(pcm)
    if energy.size == 0:
        raise ValueError("no audio to measure")
    active = energy > np.percentile(energy, 99) - ACTIVE_RANGE_DB
    return float(np.mean(10 ** (energy[active] / 10)))


def seed_for(name: str, kind: NoiseKind) -> int:
    return zlib.crc32(f"{name}/{kind}".encode())


def noisy_stream(clip: hs.HumanClip, condition: Condition, shift_s: float = 0.0) -> bytes:
    """The clip as Home Assistant sends it (``HA_LEAD_S + shift_s`` before it, the trail to
    audio-stop after), with the condition's noise over the whole stream."""
    stream = hs.as_home_assistant_sends(clip.pcm, hs.HA_LEAD_S + shift_s)
    if condition.noise is None:
        return stream
    longest = len(hs.as_home_assistant_sends(clip.pcm, hs.HA_LEAD_S + _LONGEST_SHIFT_S)) // 2
    noise = make_noise(condition.noise, longest, seed_for(clip.name, condition.noise))
    level = np.sqrt(active_speech_power(clip.pcm)) * 10 ** (-condition.snr_db / 20)
    mixed = sd.to_array(stream) + level * noise[: len(stream) // 2]
    peak = float(np.max(np.abs(mixed)))
    if peak > PEAK_LIMIT:
        mixed *= PEAK_LIMIT / peak
    return sd.to_pcm(mixed)
