"""The tone-word vocabulary must decode exactly: every protocol test of the emulator rests on it."""

from __future__ import annotations

import wave
from pathlib import Path

import pytest

from wyoming_lightning.emulator import tones
from wyoming_lightning.emulator.audio import dbfs

ALL_WORDS = list(tones.WORDS)
RATES = [8000, 16000, 22050, 24000, 44100, 48000]


def words_of(pcm: bytes, rate: int = 16000) -> list[str]:
    return [t.word for t in tones.decode(pcm, rate)]


@pytest.mark.parametrize("rate", RATES)
def test_round_trip_at_every_documented_rate(rate: int) -> None:
    pcm = tones.encode(ALL_WORDS, rate)
    assert words_of(pcm, rate) == ALL_WORDS


def test_layout_is_200_ms_words_100_ms_apart_at_about_minus_10_dbfs() -> None:
    pcm = tones.encode(["five", "six"])
    assert len(pcm) == 2 * 16000 * (200 + 100 + 200) // 1000
    decoded = tones.decode(pcm)
    assert [round(t.start, 2) for t in decoded] == [0.0, 0.3]
    assert [round(t.end, 2) for t in decoded] == [0.2, 0.5]
    level = dbfs(pcm[: 2 * 3200])
    assert -16.0 < level < -8.0


def test_each_word_is_its_documented_frequency() -> None:
    assert [tones.frequency(w) for w in ALL_WORDS] == [400.0 + 100 * k for k in range(10)]


def test_phrase_helper_and_vocabulary_check() -> None:
    assert tones.encode_phrase("  One TWO three ") == tones.encode(["one", "two", "three"])
    with pytest.raises(ValueError, match="eleven"):
        tones.encode(["one", "eleven"])


def test_silence_decodes_to_nothing_and_pads_exactly() -> None:
    assert tones.silence(250) == bytes(8000)
    assert tones.silence(100, 8000) == bytes(1600)
    assert words_of(tones.silence(1000)) == []
    assert words_of(b"") == []


@pytest.mark.parametrize("rate", [8000, 16000, 48000])
def test_any_prefix_decodes_to_a_prefix_of_the_words(rate: int) -> None:
    """The emulator decodes growing buffers: a cut (even mid-sample) never invents a word."""
    phrase = ["nine", "zero", "four", "seven"]
    pcm = tones.encode(phrase, rate)
    for cut in range(0, len(pcm) + 1, 997):  # odd step: cuts inside samples and words
        decoded = words_of(pcm[:cut], rate)
        assert decoded == phrase[: len(decoded)], cut


def test_a_partial_word_counts_once_it_is_80_ms_long() -> None:
    pcm = tones.encode(["three"])
    assert words_of(pcm[: 2 * 16 * 70]) == []
    assert words_of(pcm[: 2 * 16 * 90]) == ["three"]


def test_a_word_cut_in_two_counts_once() -> None:
    """A finalize in the middle of a word must not make it appear in both segments."""
    pcm = tones.silence(50) + tones.encode(["two", "eight"]) + tones.silence(50)
    # Cuts every 10 ms across both words, avoiding the documented ~1 ms ambiguity near 80 ms.
    for ms in [*range(50, 250, 10), *range(350, 550, 10)]:
        into_word = (ms - 50) % 300
        if 78 <= into_word <= 83:
            continue
        cut = 2 * 16 * ms
        both = words_of(pcm[:cut]) + words_of(pcm[cut:])
        assert both == ["two", "eight"], ms


def test_out_of_vocabulary_bursts_are_ignored() -> None:
    import numpy as np

    from wyoming_lightning.emulator.audio import float_to_pcm

    t = np.arange(3200) / 16000
    off_grid = float_to_pcm((0.3 * np.sin(2 * np.pi * 450 * t)).astype(np.float32))  # 50 Hz off
    too_high = float_to_pcm((0.3 * np.sin(2 * np.pi * 2500 * t)).astype(np.float32))
    gap = tones.silence(100)
    pcm = tones.encode(["one"]) + gap + off_grid + gap + too_high + gap + tones.encode(["two"])
    assert words_of(pcm) == ["one", "two"]


def test_short_clicks_are_not_words() -> None:
    pcm = tones.encode(["six"])[: 2 * 16 * 40] + tones.silence(200) + tones.encode(["one"])
    assert words_of(pcm) == ["one"]


def test_command_line_writes_and_reads_wav(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "x.wav"
    code = tones.main(["encode", "four two", "-o", str(path), "--rate", "8000"])
    assert code == 0
    with wave.open(str(path), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (8000, 1, 2)
    assert tones.main(["decode", str(path)]) == 0
    assert capsys.readouterr().out.strip() == "four two"
