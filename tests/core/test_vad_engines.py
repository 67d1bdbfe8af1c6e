"""The engines on their own: registry, frame contract, state, and the webrtc level fix."""

from __future__ import annotations

import numpy as np
import pytest

from tests.kit import speech_data as sd
from wyoming_lightning.core.vad import ENGINE_NAMES, create_engine
from wyoming_lightning.core.vad.levels import FLOOR_MIN_DB, BandEnergy, NoiseFloor, SpeechPeak
from wyoming_lightning.core.vad.silero import SileroEngine
from wyoming_lightning.core.vad.webrtc import WebRtcEngine


def frames_of(pcm: bytes, frame_samples: int) -> list[bytes]:
    size = 2 * frame_samples
    return [pcm[i : i + size] for i in range(0, len(pcm) - size + 1, size)]


def probabilities(engine_name: str | WebRtcEngine, pcm: bytes) -> list[float]:
    engine = create_engine(engine_name) if isinstance(engine_name, str) else engine_name
    return [engine.speech_probability(f) for f in frames_of(pcm, engine.frame_samples)]


# -- registry and contract ------------------------------------------------------------


def test_registry() -> None:
    assert ENGINE_NAMES == ("webrtc", "silero")
    assert isinstance(create_engine("webrtc"), WebRtcEngine)
    assert isinstance(create_engine("silero"), SileroEngine)
    assert create_engine("webrtc").frame_samples == 480
    assert create_engine("silero").frame_samples == 512


@pytest.mark.parametrize("name", ["", "off", "WebRTC", "pyannote"])
def test_unknown_engine_names_are_rejected_with_the_choices(name: str) -> None:
    with pytest.raises(ValueError, match=r"unknown VAD engine.*webrtc, silero"):
        create_engine(name)


def test_webrtc_aggressiveness_is_validated() -> None:
    with pytest.raises(ValueError, match=r"0\.\.3"):
        WebRtcEngine(4)


@pytest.mark.parametrize("engine_name", ENGINE_NAMES)
def test_probabilities_are_within_0_and_1_and_see_speech(engine_name: str) -> None:
    pcm = sd.with_silence(sd.load_speech()[1].pcm, 0.5, 0.5)
    values = probabilities(engine_name, pcm)
    assert all(0.0 <= value <= 1.0 for value in values)
    assert max(values) > 0.9
    assert max(values[:10]) < 0.5  # leading digital silence


@pytest.mark.parametrize("engine_name", ENGINE_NAMES)
def test_reset_forgets_the_previous_stream(engine_name: str) -> None:
    pcm = sd.mix_noise(sd.with_silence(sd.load_speech()[2].pcm, 0.3, 0.3), 10, "pink")
    engine = create_engine(engine_name)
    first = probabilities_with(engine, pcm)
    engine.reset()
    assert probabilities_with(engine, pcm) == first
    fresh_after_other_audio = create_engine(engine_name)
    probabilities_with(fresh_after_other_audio, sd.make_noise(1.0, -20, "white"))
    assert probabilities_with(fresh_after_other_audio, pcm) != first  # state does carry over


def probabilities_with(engine: object, pcm: bytes) -> list[float]:
    frame_samples: int = engine.frame_samples  # type: ignore[attr-defined]
    return [engine.speech_probability(f) for f in frames_of(pcm, frame_samples)]  # type: ignore[attr-defined]


# -- the webrtc level fix -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "hum"])
def test_loud_steady_noise_holds_plain_webrtc_open_but_not_the_fixed_engine(
    kind: sd.NoiseKind,
) -> None:
    noise = sd.make_noise(3.0, -20, kind, seed=4)
    plain = probabilities(WebRtcEngine(normalise=False), noise)
    fixed = probabilities(WebRtcEngine(), noise)
    assert np.mean(plain[-50:]) > 0.9  # the problem the fix is for
    assert max(fixed[5:]) < 0.5


def test_quiet_speech_is_found_by_the_fixed_engine() -> None:
    found_plain = found_fixed = total = 0
    for sample in sd.load_speech():
        pcm = sd.with_silence(sd.scale_to_peak(sample.pcm, -40), 0.3, 0.3)
        clean_energy = sd.frame_energy_db(sd.with_silence(sample.pcm, 0.3, 0.3), 480)
        speech = clean_energy > clean_energy.max() - 30
        total += int(speech.sum())
        found_plain += int(
            (np.array(probabilities(WebRtcEngine(normalise=False), pcm)) > 0.5)[speech].sum()
        )
        found_fixed += int((np.array(probabilities(WebRtcEngine(), pcm)) > 0.5)[speech].sum())
    assert found_plain / total < 0.8  # plain webrtcvad misses a good part
    assert found_fixed / total > 0.9


# -- level trackers -------------------------------------------------------------------


def test_band_energy_measures_the_speech_band_only() -> None:
    measure = BandEnergy(480)
    t = np.arange(480) / 16000
    in_band = (0.5 * 32768 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    hum = (0.5 * 32768 * np.sin(2 * np.pi * 50 * t)).astype(np.float32)
    assert measure(in_band) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=0.5)
    assert measure(hum) < measure(in_band) - 40
    assert measure(np.zeros(480, dtype=np.float32)) < FLOOR_MIN_DB


def test_noise_floor_falls_fast_rises_slowly_and_catches_a_new_steady_noise() -> None:
    floor = NoiseFloor(frame_s=0.03)
    for _ in range(10):
        floor.update(-40.0)
    assert floor.floor_db == pytest.approx(-40.0)
    for _ in range(10):  # a vowel 30 dB above: the floor barely moves
        floor.update(-10.0)
    assert floor.floor_db is not None
    assert floor.floor_db < -39.0
    for _ in range(5):
        floor.update(-60.0)
    assert floor.floor_db < -55.0
    for _ in range(45):  # a fan switched on: within the 1.2 s window the floor follows
        floor.update(-30.0)
    assert floor.floor_db == pytest.approx(-30.0)


def test_noise_floor_never_drops_below_digital_silence() -> None:
    floor = NoiseFloor(frame_s=0.03)
    for _ in range(100):
        floor.update(-120.0)
    assert floor.floor_db == FLOOR_MIN_DB


def test_speech_peak_gain_has_instant_attack_and_slow_release() -> None:
    peak = SpeechPeak(frame_s=0.03, release_db_per_s=2.0)
    assert peak.gain_db(-15.0, 30.0) == 0.0  # nothing heard yet: no gain
    peak.update(-55.0)
    assert peak.gain_db(-15.0, 30.0) == 30.0  # capped
    peak.update(-35.0)
    assert peak.gain_db(-15.0, 30.0) == pytest.approx(20.0)
    for _ in range(100):  # 3 s of quieter speech: 6 dB of release
        peak.update(-60.0)
    assert peak.gain_db(-15.0, 30.0) == pytest.approx(26.0)
    peak.update(0.0)
    assert peak.gain_db(-15.0, 30.0) == 0.0  # never attenuates
