"""Conversion of client PCM to 16 kHz mono s16le, and fixed-size framing."""

from __future__ import annotations

import random

import numpy as np
import numpy.typing as npt
import pytest

from wyoming_lightning.core import pipeline_format as pf
from wyoming_lightning.core.audio import (
    AudioConverter,
    AudioFormatError,
    Framer,
    PcmFormat,
)

RATES = (8000, 11025, 16000, 22050, 44100, 48000)
WIDTHS = (1, 2, 3, 4)
CHANNELS = (1, 2, 6)


def encode(samples: npt.NDArray[np.float64], width: int, channels: int) -> bytes:
    """float mono in [-1, 1) -> interleaved PCM, every channel the same signal."""
    interleaved = np.repeat(samples, channels)
    if width == 1:
        return np.clip(np.rint(interleaved * 128 + 128), 0, 255).astype(np.uint8).tobytes()
    if width == 2:
        return np.clip(np.rint(interleaved * 32768), -32768, 32767).astype("<i2").tobytes()
    as_int32 = np.clip(np.rint(interleaved * 2**31), -(2**31), 2**31 - 1).astype("<i4")
    if width == 4:
        return as_int32.tobytes()
    return as_int32.view(np.uint8).reshape(-1, 4)[:, 1:].tobytes()  # top 3 bytes: packed 24-bit


def sine(freq: float, rate: int, seconds: float, amplitude: float = 0.5) -> npt.NDArray[np.float64]:
    return amplitude * np.sin(2 * np.pi * freq * np.arange(round(rate * seconds)) / rate)


def decode_s16(data: bytes) -> npt.NDArray[np.float64]:
    return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768


def spectrum_peak_hz(samples: npt.NDArray[np.float64], rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(samples.size)))
    return float(np.fft.rfftfreq(samples.size, 1 / rate)[np.argmax(spectrum)])


def convert_all(fmt: PcmFormat, data: bytes, chunk: int | None = None) -> bytes:
    converter = AudioConverter(fmt)
    if chunk is None:
        return converter.convert(data) + converter.flush()
    parts = [converter.convert(data[i : i + chunk]) for i in range(0, len(data), chunk)]
    return b"".join(parts) + converter.flush()


# -- PcmFormat ------------------------------------------------------------------------


def test_target_constants() -> None:
    assert (pf.SAMPLE_RATE, pf.SAMPLE_WIDTH, pf.CHANNELS) == (16000, 2, 1)
    assert pf.BYTES_PER_SECOND == 32000


@pytest.mark.parametrize(
    "fmt",
    [PcmFormat(8000, 1, 1), PcmFormat(48000, 4, 8), PcmFormat(12345, 3, 5), PcmFormat(16000, 2, 1)],
)
def test_valid_formats_pass(fmt: PcmFormat) -> None:
    fmt.validate()
    AudioConverter(fmt)


@pytest.mark.parametrize(
    ("fmt", "mentions"),
    [
        (PcmFormat(7999, 2, 1), "sample rate 7999"),
        (PcmFormat(48001, 2, 1), "8000..48000"),
        (PcmFormat(0, 2, 1), "sample rate 0"),
        (PcmFormat(16000, 0, 1), "sample width 0"),
        (PcmFormat(16000, 5, 1), "24-bit"),
        (PcmFormat(16000, 2, 0), "channel count 0"),
        (PcmFormat(16000, 2, 9), "1..8"),
        (PcmFormat(16000.5, 2, 1), "sample rate 16000.5"),  # type: ignore[arg-type]
        (PcmFormat(True, 2, 1), "sample rate True"),
    ],
)
def test_invalid_formats_raise_with_what_is_supported(fmt: PcmFormat, mentions: str) -> None:
    with pytest.raises(AudioFormatError, match="unsupported audio format") as caught:
        AudioConverter(fmt)
    assert mentions in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(AudioFormatError) as caught:
        PcmFormat(1, 9, 99).validate()
    message = str(caught.value)
    assert "sample rate 1" in message
    assert "sample width 9" in message
    assert "channel count 99" in message


# -- AudioConverter -------------------------------------------------------------------


def test_target_format_is_passed_through_untouched() -> None:
    converter = AudioConverter(PcmFormat(16000, 2, 1))
    chunk = bytes(range(256)) + bytes(64)
    assert converter.convert(chunk) is chunk  # zero-copy hot path
    assert converter.convert(bytearray(b"\x01\x02")) == b"\x01\x02"
    assert converter.flush() == b""
    assert converter.dropped_bytes == 0


def test_target_format_keeps_odd_bytes_across_chunks() -> None:
    data = np.arange(-500, 500, dtype="<i2").tobytes()
    converter = AudioConverter(PcmFormat(16000, 2, 1))
    out = converter.convert(data[:321]) + converter.convert(data[321:641])
    out += converter.convert(data[641:])
    assert out == data


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("channels", CHANNELS)
def test_sine_round_trip(rate: int, width: int, channels: int) -> None:
    seconds = 0.5
    data = encode(sine(1000, rate, seconds), width, channels)
    out = decode_s16(convert_all(PcmFormat(rate, width, channels), data))
    assert abs(out.size - pf.SAMPLE_RATE * seconds) <= 1
    assert spectrum_peak_hz(out, pf.SAMPLE_RATE) == pytest.approx(1000, abs=10)
    reference = sine(1000, pf.SAMPLE_RATE, out.size / pf.SAMPLE_RATE)
    middle = slice(400, -400)  # the resampler's filter settles at the edges
    error = out[middle] - reference[middle]
    # 8-bit input carries ~-50 dB quantisation noise; the others are near-exact.
    tolerance = 0.01 if width == 1 else 0.001
    assert np.sqrt(np.mean(error**2)) < tolerance


def test_stereo_24bit_44k1_keeps_energy_at_1khz() -> None:
    data = encode(sine(1000, 44100, 1.0), 3, 2)
    out = decode_s16(convert_all(PcmFormat(44100, 3, 2), data))
    assert abs(out.size - 16000) <= 1
    spectrum = np.abs(np.fft.rfft(out * np.hanning(out.size))) ** 2
    freqs = np.fft.rfftfreq(out.size, 1 / 16000)
    near = spectrum[np.abs(freqs - 1000) <= 20].sum()
    assert near / spectrum.sum() > 0.999


def test_downmix_averages_channels() -> None:
    left = sine(440, 16000, 0.1, amplitude=0.5)
    right = np.zeros_like(left)
    stereo = np.stack([left, right], axis=1).reshape(-1)
    data = np.rint(stereo * 32768).astype("<i2").tobytes()
    out = decode_s16(convert_all(PcmFormat(16000, 2, 2), data))
    np.testing.assert_allclose(out, left / 2, atol=1.5 / 32768)


def test_unsigned_8bit_silence_is_zero() -> None:
    out = convert_all(PcmFormat(16000, 1, 1), bytes([128]) * 1600)
    assert out == bytes(3200)


def test_24bit_sign_extension() -> None:
    # -1 (0xFFFFFF), full-scale negative (0x800000), full-scale positive (0x7FFFFF).
    data = bytes.fromhex("ffffff000080ffff7f")
    out = np.frombuffer(convert_all(PcmFormat(16000, 3, 1), data), dtype="<i2")
    assert out.tolist() == [0, -32768, 32767]


@pytest.mark.parametrize(("rate", "tone"), [(48000, 12000), (44100, 10000), (22050, 9000)])
def test_out_of_band_tone_is_filtered_not_aliased(rate: int, tone: int) -> None:
    # Dropping samples would fold a 12 kHz tone at 48 kHz down to 4 kHz at full strength.
    data = encode(sine(tone, rate, 1.0, amplitude=0.9), 2, 1)
    out = decode_s16(convert_all(PcmFormat(rate, 2, 1), data))
    in_rms = 0.9 / np.sqrt(2)
    out_rms = np.sqrt(np.mean(out[200:-200] ** 2)) + 1e-9
    assert 20 * np.log10(in_rms / out_rms) > 40


@pytest.mark.parametrize(
    "fmt",
    [PcmFormat(44100, 3, 2), PcmFormat(48000, 2, 1), PcmFormat(8000, 1, 3), PcmFormat(16000, 4, 2)],
)
def test_chunking_does_not_change_the_output(fmt: PcmFormat) -> None:
    rng = np.random.default_rng(1)
    data = encode(rng.uniform(-0.5, 0.5, fmt.rate // 4), fmt.width, fmt.channels)
    one_shot = convert_all(fmt, data)
    for chunk in (1, 7, 320, 4097):
        assert convert_all(fmt, data, chunk) == one_shot
    random.seed(2)
    converter = AudioConverter(fmt)
    parts, offset = [], 0
    while offset < len(data):
        size = random.randint(0, 3000)
        parts.append(converter.convert(data[offset : offset + size]))
        offset += size
    assert b"".join(parts) + converter.flush() == one_shot


@pytest.mark.parametrize(
    ("fmt", "extra"), [(PcmFormat(44100, 3, 2), 5), (PcmFormat(16000, 2, 1), 1)]
)
def test_partial_trailing_frame_is_dropped_and_counted(fmt: PcmFormat, extra: int) -> None:
    whole = encode(sine(500, fmt.rate, 0.1), fmt.width, fmt.channels)
    converter = AudioConverter(fmt)
    out = converter.convert(whole + b"\x01" * extra) + converter.flush()
    assert out == convert_all(fmt, whole)
    assert converter.dropped_bytes == extra


def test_converter_is_reusable_after_flush() -> None:
    fmt = PcmFormat(48000, 2, 2)
    data = encode(sine(700, 48000, 0.2), 2, 2)
    converter = AudioConverter(fmt)
    first = converter.convert(data) + converter.flush()
    second = converter.convert(data) + converter.flush()
    assert first == second


def test_resampler_latency_is_bounded() -> None:
    # The streaming filter may hold back some output, but not more than ~50 ms.
    converter = AudioConverter(PcmFormat(48000, 2, 1))
    produced = sum(len(converter.convert(bytes(960))) for _ in range(100))  # 1 s in 10 ms chunks
    assert produced >= 2 * (16000 - 800)


# -- Framer ---------------------------------------------------------------------------


def test_framer_cuts_and_keeps_remainder() -> None:
    framer = Framer(4)
    assert framer.push(b"abc") == []
    assert framer.pending == 3
    assert framer.push(b"defghij") == [b"abcd", b"efgh"]
    assert framer.push(b"k") == []
    assert framer.push(b"lm") == [b"ijkl"]
    assert framer.flush() == b"m"
    assert framer.flush() == b""


def test_framer_frames_filled_exactly_are_bytes_of_their_own() -> None:
    """Chunks that fill a frame exactly (10 ms chunks into a 30 ms frame): each frame is its
    own ``bytes``, untouched by what is pushed after it."""
    framer = Framer(6)
    assert framer.push(b"ab") == [] and framer.push(bytearray(b"cd")) == []
    frames = framer.push(memoryview(b"ef"))
    assert frames == [b"abcdef"] and type(frames[0]) is bytes
    assert framer.pending == 0
    assert framer.push(b"ghijkl") == [b"ghijkl"]
    assert framer.push(b"mn") == [] and framer.push(b"opqrstu") == [b"mnopqr"]
    assert frames == [b"abcdef"] and framer.flush() == b"stu"


def test_framer_exact_frames_are_zero_copy() -> None:
    framer = Framer(320)
    chunk = bytes(range(256)) + bytes(64)
    frames = framer.push(chunk)
    assert frames == [chunk]
    assert frames[0] is chunk


@pytest.mark.parametrize("frame_bytes", [1, 2, 960, 1024])
def test_framer_any_chunking_gives_the_same_frames(frame_bytes: int) -> None:
    data = np.random.default_rng(3).integers(0, 256, 20000, dtype=np.uint8).tobytes()
    random.seed(frame_bytes)
    framer = Framer(frame_bytes)
    frames: list[bytes] = []
    offset = 0
    while offset < len(data):
        size = random.choice([0, 1, 3, 320, 999, 5000])
        frames += framer.push(memoryview(data)[offset : offset + size])
        offset += size
    rest = framer.flush()
    assert all(len(frame) == frame_bytes for frame in frames)
    assert b"".join(frames) + rest == data
    assert len(rest) == len(data) % frame_bytes


def test_framer_rejects_nonpositive_size() -> None:
    with pytest.raises(ValueError, match="positive"):
        Framer(0)
