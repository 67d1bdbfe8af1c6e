"""The speech-band level without an FFT per frame decides exactly as it did with one (issue 27).

``BandEnergy`` projects a frame on a fixed basis instead of running numpy's FFT, and the gate
and the webrtc engine share one measure per frame. The FFT below is the level's definition
(the code before the change, kept here as the reference): on real speech, clean and in noise,
every level agrees to 1e-4 dB, and a gate measuring with it produces the same events as the
gate measuring with the definition, for both engines.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pytest

from tests.kit import speech_data as sd
from wyoming_lightning.core.vad import GateEvent, SpeechAudio, SpeechEnd, SpeechStart, VadGate
from wyoming_lightning.core.vad import gate as gate_module
from wyoming_lightning.core.vad import webrtc as webrtc_module
from wyoming_lightning.core.vad.engines import create_engine
from wyoming_lightning.core.vad.levels import FLOOR_MIN_DB, BandEnergy, NoiseFloor, band_energy


class FftBandEnergy(BandEnergy):
    """The level as it was computed before: numpy's FFT of the windowed frame, the band summed."""

    def __init__(self, frame_samples: int) -> None:
        super().__init__(frame_samples)
        bins = np.fft.rfftfreq(frame_samples, 1 / sd.SAMPLE_RATE)
        self._fft_band = slice(
            int(np.searchsorted(bins, self.LOW_HZ)), int(np.searchsorted(bins, self.HIGH_HZ))
        )
        self._fft_window = np.hanning(frame_samples).astype(np.float32)
        self._fft_scale = 2.0 / (float(np.sum(self._fft_window**2)) * frame_samples * 32768.0**2)

    def __call__(self, samples: npt.NDArray[np.float32]) -> float:
        spectrum = np.fft.rfft(samples * self._fft_window)[self._fft_band]
        power = float(np.sum(spectrum.real**2 + spectrum.imag**2)) * self._fft_scale
        return 10.0 * math.log10(power) if power > 0.0 else -120.0


def _streams() -> list[bytes]:
    """The speech set with silence around it, clean and in each kind of noise at 5 and 15 dB."""
    out = []
    for i, sample in enumerate(sd.load_speech()):
        pcm = sd.with_silence(sample.pcm, 0.5, 1.0)
        out.append(pcm)
        kind = sd.NOISE_KINDS[i % len(sd.NOISE_KINDS)]
        out.append(sd.mix_noise(pcm, 5.0 + 10.0 * (i % 2), kind, seed=i))
    return out


@pytest.mark.parametrize("frame_samples", [480, 512])
def test_every_level_of_real_speech_agrees_with_the_fft(frame_samples: int) -> None:
    fast, reference = BandEnergy(frame_samples), FftBandEnergy(frame_samples)
    size = 2 * frame_samples
    worst = 0.0
    frames = 0
    for pcm in _streams():
        for start in range(0, len(pcm) - size + 1, size):
            samples = np.frombuffer(pcm[start : start + size], dtype="<i2").astype(np.float32)
            worst = max(worst, abs(fast(samples) - reference(samples)))
            frames += 1
    assert frames > 2000
    assert worst < 1e-4


def test_the_same_frame_is_measured_once_and_a_new_one_anew() -> None:
    measure = BandEnergy(480)
    beep = sd.make_beep(seconds=0.03, rms_dbfs=-20.0)
    loud = beep[2 * sd.SAMPLE_RATE : 2 * sd.SAMPLE_RATE + 960]  # the beep, 1 s in
    quiet = beep[:960]  # the quiet room before it
    first = measure.of_frame(loud)
    assert measure.of_frame(loud) == first
    assert measure.of_frame(quiet) < first - 25  # not the remembered answer
    assert measure.of_frame(bytes(loud)) == pytest.approx(first)  # equal bytes, new object


def _events(vad: str, pcm: bytes) -> list[tuple[str, int, int]]:
    gate = VadGate(create_engine(vad))
    events: list[GateEvent] = []
    for i in range(0, len(pcm), 320):  # 10 ms chunks, as the benchmarks send
        events += gate.process(pcm[i : i + 320])
    events += gate.flush()
    out = []
    for event in events:
        if isinstance(event, SpeechStart):
            out.append(("start", event.start_sample, len(event.pre_roll)))
        elif isinstance(event, SpeechAudio):
            out.append(("audio", len(event.data), 0))
        elif isinstance(event, SpeechEnd):
            out.append(("end", 0, 0))
    return out


@pytest.mark.parametrize("vad", ["webrtc", "silero"])
def test_the_gate_decides_as_it_did_with_the_fft(vad: str, monkeypatch: pytest.MonkeyPatch) -> None:
    streams = _streams()
    now = [_events(vad, pcm) for pcm in streams]
    monkeypatch.setattr(gate_module, "band_energy", FftBandEnergy)
    monkeypatch.setattr(webrtc_module, "band_energy", FftBandEnergy)
    before = [_events(vad, pcm) for pcm in streams]
    assert sum(e[0] == "start" for events in now for e in events) >= len(streams)
    assert now == before


def test_one_measure_per_frame_size_is_shared() -> None:
    assert band_energy(480) is band_energy(480)
    assert band_energy(512) is not band_energy(480)


def test_the_noise_floor_keeps_the_window_minimum_as_a_full_scan_would() -> None:
    """The window's minimum is kept up to date instead of scanned per frame: the same floor as
    the scan (the code before) on levels that repeat, rise, fall and sit below the minimum."""
    rng = np.random.default_rng(7)
    levels = np.concatenate(
        [
            np.round(rng.normal(-50, 8, 600)),  # rounded: equal levels leave the window too
            np.linspace(-90, -20, 200),  # a rise: the minimum leaves the window every frame
            np.full(100, -120.0),
            rng.normal(-40, 3, 300),
        ]
    )
    floor = NoiseFloor(frame_s=0.03)
    window = [FLOOR_MIN_DB] * 40
    reference: float | None = None
    for i, level in enumerate(levels.tolist()):
        window[i % 40] = level
        if reference is None:
            reference = level
        elif level < reference:
            reference += 0.3 * (level - reference)
        else:
            reference += min(level - reference, 1.5 * 0.03)
        reference = max(reference, min(window), FLOOR_MIN_DB)
        assert floor.update(level) == reference
