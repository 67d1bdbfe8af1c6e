"""The shared test and benchmark kit: one percentile, one WAV reader, one import path, and
the ``slow`` marker on every Whisper-backed test (what keeps ``-m "not slow"`` fast)."""

from __future__ import annotations

import contextlib
import inspect
import math
import random
import re
import wave
from collections.abc import Iterator
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


#: What a test (or one of its fixtures) says when Whisper does its work: the emulator's Whisper
#: recognizer, or the bridge's local one (faster-whisper) as a fallback.
WHISPER_SIGNS = re.compile(
    r"whisper_emulator|recognizer=\"whisper\"|create_recognizer\(\"whisper\"\)|fallback=\"local\""
    r"|WhisperRecognizer\("
)
#: They name Whisper to show that it fails clearly, and never load it.
NOT_WHISPER_BACKED = frozenset(
    {
        "test_whisper_without_faster_whisper_fails_clearly",
        "test_whisper_with_a_missing_model_dir_fails_clearly",
    }
)


def _sources(item: pytest.Item) -> Iterator[str]:
    """The test function's source and those of the fixtures it uses."""
    function = getattr(item, "function", None)
    if function is not None:
        yield inspect.getsource(function)
    info = getattr(item, "_fixtureinfo", None)
    for defs in getattr(info, "name2fixturedefs", {}).values():
        for fixture in defs:
            with contextlib.suppress(OSError, TypeError):
                yield inspect.getsource(fixture.func)


def test_every_whisper_backed_test_is_marked_slow(request: pytest.FixtureRequest) -> None:
    """``-m "not slow"`` is the fast loop only while each Whisper-backed test carries ``slow``.
    Run by that loop, this sees the tests it kept: one that loads Whisper was not marked."""
    unmarked = [
        item.nodeid
        for item in request.session.items
        if item.get_closest_marker("slow") is None
        and item.name not in NOT_WHISPER_BACKED
        and any(WHISPER_SIGNS.search(source) for source in _sources(item))
    ]
    assert unmarked == [], "mark these @pytest.mark.slow (they run Whisper)"


# -- the noisy real-speech set (tests/kit/noisy_speech.py) -----------------------------------


def test_noisy_mixes_are_reproducible_and_at_their_snr() -> None:
    from tests.kit import human_speech as hs
    from tests.kit import noisy_speech as ns
    from tests.kit import speech_data as sd

    clip = hs.short_clips()[0]
    clean = ns.noisy_stream(clip, ns.CLEAN, 0.05)
    assert clean == hs.as_home_assistant_sends(clip.pcm, hs.HA_LEAD_S + 0.05)
    speech = ns.active_speech_power(clip.pcm)
    for kind in ns.NOISES:
        condition = ns.Condition(kind, 20)
        mix = ns.noisy_stream(clip, condition, 0.05)
        assert mix == ns.noisy_stream(clip, condition, 0.05), kind
        assert len(mix) == len(clean)
        noise = sd.to_array(mix) - sd.to_array(clean)  # no peak scaling at 20 dB
        snr = 10 * math.log10(speech / float(np.mean(noise**2)))
        assert snr == pytest.approx(20, abs=0.1), kind
    assert ns.noisy_stream(clip, ns.Condition("fan", 10)) != ns.noisy_stream(
        clip, ns.Condition("hum", 10)
    )


def test_word_alignment_pairs_substitutions_and_marks_the_rest() -> None:
    from tests.kit.wer import align, edit_distance

    ref, hyp = ["lock", "the", "front", "door"], ["walk", "the", "door"]
    assert align(ref, hyp) == [(0, 0), (1, 1), (2, None), (3, 2)]
    ref, hyp = ["turn", "up", "the", "volume"], ["turn", "up", "the", "the", "volume", "please"]
    pairs = align(ref, hyp)
    assert pairs == [(0, 0), (1, 1), (None, 2), (2, 3), (3, 4), (None, 5)]
    edits = sum(1 for r, h in pairs if r is None or h is None or ref[r] != hyp[h])
    assert edits == edit_distance(ref, hyp)
