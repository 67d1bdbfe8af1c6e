"""The shared test and benchmark kit: one percentile, one WAV reader, one import path."""

from __future__ import annotations

import math
import random
import re
import wave
from pathlib import Path

import numpy as np
import pytest

from tests.kit.paths import ROOT
from tests.kit.speech_data import SPEECH_DIR, read_wav
from tests.kit.stats import median, percentile


@pytest.mark.parametrize("size", [1, 2, 7, 100, 101])
@pytest.mark.parametrize("pct", [0, 10, 50, 90, 99, 100])
def test_percentile_is_numpys_linear_default(size: int, pct: float) -> None:
    values = [random.Random(size).uniform(0, 5) for _ in range(size)]
    assert percentile(values, pct) == pytest.approx(float(np.percentile(values, pct)))


def test_no_values_give_nan_not_an_exception() -> None:
    assert math.isnan(percentile([], 99)) and math.isnan(median([]))
    assert median([3.0, 1.0, 2.0]) == 2.0


def test_read_wav_reads_the_speech_set_and_rejects_other_shapes(tmp_path: Path) -> None:
    first = sorted(SPEECH_DIR.glob("*.wav"))[0]
    with wave.open(str(first), "rb") as wav:
        frames = wav.getnframes()
    assert len(read_wav(first)) == 2 * frames
    narrow = tmp_path / "8k.wav"
    with wave.open(str(narrow), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(bytes(1600))
    with pytest.raises(ValueError, match=r"8k\.wav: expected 16 kHz mono s16, got \(8000, 2, 1\)"):
        read_wav(narrow)
    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"RIFF1234")
    with pytest.raises(ValueError, match="not a WAV file") as caught:
        read_wav(garbage)
    assert "\n" not in str(caught.value)


def test_nothing_edits_sys_path() -> None:
    """Tests and benchmarks import ``tests.kit`` as a package; a path edit would hide a break."""
    edit = re.compile(r"sys\.path\.(insert|append|extend)|sys\.path\s*[+]?=")
    offenders = [
        str(path.relative_to(ROOT))
        for folder in ("tests", "benchmarks", "wyoming_lightning")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != Path(__file__).resolve() and edit.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
