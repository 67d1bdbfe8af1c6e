"""A ten-word "language" of tones that the emulator recognizes exactly.

Protocol tests need a recognizer whose output is known in advance and costs no CPU: each of
the words "zero".."nine" is a 200 ms tone at 400 + 100*k Hz, words are 100 ms apart. The same
module makes the audio (``encode``) and reads it back (``decode``).

Run ``python -m wyoming_lightning.emulator.tones encode "one two three" -o x.wav`` to write a
WAV file, ``... decode x.wav`` to read one.
"""

from __future__ import annotations

import math
import sys
import wave
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from wyoming_lightning.emulator.audio import (
    RECOGNIZER_RATE,
    FloatArray,
    float_to_pcm,
    pcm_to_float,
    resample,
)
from wyoming_lightning.settings.cli import Parser

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
BASE_HZ = 400.0
STEP_HZ = 100.0
WORD_MS = 200
GAP_MS = 100
FADE_MS = 5
FUNDAMENTAL_AMPLITUDE = 0.28
HARMONIC_AMPLITUDE = 0.08
"""Peak about -9 dBFS: loud enough to be speech to any energy detector, far from clipping."""

TOLERANCE_HZ = 40.0
MIN_BURST_MS = 80.0
MIN_LEADING_BURST_MS = 118.5
"""A burst that is already loud at the buffer's first samples is the rest of a cut word.

Encoded words ramp up over 5 ms, so only a cut (a finalize in the middle of a word) makes a
buffer start loud. If the cut left >= 80 ms before it, the previous segment counted the word
and the rest (< 120 ms) is ignored here; if it left < 80 ms, the rest is counted here. So a cut
word counts once, except within a millisecond or two of a cut 80 ms into it, where edge
measurement is not that precise and the word may be lost or doubled.
"""
_ACTIVE_AMPLITUDE = 0.05
_MAX_INNER_GAP = 80  # samples at 16 kHz (5 ms): longer than any zero-crossing dip of a tone
_LEADING_EDGE = 6  # samples at 16 kHz: a 5 ms onset ramp crosses the threshold later
_FFT_SIZE = 32768
_BAND_HZ = (50.0, 7900.0)  # the strongest component anywhere must be a vocabulary tone


@dataclass(frozen=True)
class Tone:
    """A decoded word; times in seconds from the start of the decoded buffer."""

    word: str
    start: float
    end: float
    confidence: float


def frequency(word: str) -> float:
    return BASE_HZ + STEP_HZ * WORDS.index(word)


def silence(ms: float, rate: int = RECOGNIZER_RATE) -> bytes:
    """Digital silence, handy to pad tone audio so the server's end of utterance fires."""
    return bytes(2 * round(rate * ms / 1000.0))


def encode(words: Sequence[str], rate: int = RECOGNIZER_RATE) -> bytes:
    """Mono s16le audio of ``words``: no silence before the first word or after the last."""
    unknown = [w for w in words if w not in WORDS]
    if unknown:
        raise ValueError(f"not in the tone vocabulary {WORDS}: {unknown}")
    count = round(rate * WORD_MS / 1000.0)
    t = np.arange(count, dtype=np.float64) / rate
    fade = min(count // 2, round(rate * FADE_MS / 1000.0))
    envelope = np.ones(count)
    ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
    envelope[:fade] = ramp
    envelope[count - fade :] = ramp[::-1]
    gap = silence(GAP_MS, rate)
    chunks: list[bytes] = []
    for i, word in enumerate(words):
        f = frequency(word)
        wave_ = FUNDAMENTAL_AMPLITUDE * np.sin(2 * math.pi * f * t)
        wave_ += HARMONIC_AMPLITUDE * np.sin(2 * math.pi * 2 * f * t)
        if i:
            chunks.append(gap)
        chunks.append(float_to_pcm((wave_ * envelope).astype(np.float32)))
    return b"".join(chunks)


def encode_phrase(phrase: str, rate: int = RECOGNIZER_RATE) -> bytes:
    """``encode("one two three".split())`` with case and spacing forgiven."""
    return encode(phrase.lower().split(), rate)


def decode(pcm: bytes, rate: int = RECOGNIZER_RATE) -> list[Tone]:
    """Words in mono s16le audio of any rate; bursts that match no word are skipped.

    Works on any prefix or slice of tone audio (the emulator decodes growing buffers), so a
    burst cut short by the end of the buffer counts once it is 80 ms long.
    """
    samples = pcm_to_float(pcm)
    if rate != RECOGNIZER_RATE:
        samples = resample(samples, rate, RECOGNIZER_RATE)
    active = np.flatnonzero(np.abs(samples) >= _ACTIVE_AMPLITUDE)
    if active.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(active) > _MAX_INNER_GAP)
    starts = np.concatenate(([active[0]], active[breaks + 1]))
    ends = np.concatenate((active[breaks], [active[-1]])) + 1
    tones: list[Tone] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        length_ms = (end - start) * 1000.0 / RECOGNIZER_RATE
        needed = MIN_LEADING_BURST_MS if start < _LEADING_EDGE else MIN_BURST_MS
        if length_ms < needed:
            continue
        tone = _classify(samples[start:end])
        if tone is not None:
            word, confidence = tone
            tones.append(Tone(word, start / RECOGNIZER_RATE, end / RECOGNIZER_RATE, confidence))
    return tones


def _classify(burst: FloatArray) -> tuple[str, float] | None:
    size = max(_FFT_SIZE, 1 << (burst.size - 1).bit_length())
    spectrum = np.abs(np.fft.rfft(burst * np.hanning(burst.size), n=size))
    freqs = np.fft.rfftfreq(size, 1.0 / RECOGNIZER_RATE)
    band = (freqs >= _BAND_HZ[0]) & (freqs <= _BAND_HZ[1])
    peak = float(freqs[band][int(np.argmax(spectrum[band]))])
    k = round((peak - BASE_HZ) / STEP_HZ)
    if not 0 <= k < len(WORDS):
        return None
    error = abs(peak - (BASE_HZ + STEP_HZ * k))
    if error > TOLERANCE_HZ:
        return None
    return WORDS[k], round(1.0 - error / (2 * TOLERANCE_HZ), 3)


PROG = "wyoming-lightning-tones"


class ToneFileError(Exception):
    """A WAV file that cannot be written or read; the message says which and why."""


def _read_wav(path: str) -> tuple[bytes, int]:
    try:
        with open(path, "rb") as file, wave.open(file, "rb") as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                raise ToneFileError(f"{path}: need 16-bit mono PCM")
            return wav.readframes(wav.getnframes()), wav.getframerate()
    except OSError as err:
        raise ToneFileError(f"cannot read {path}: {err.strerror or err}") from None
    except (wave.Error, EOFError) as err:
        raise ToneFileError(f"{path} is not a PCM WAV file ({str(err) or 'truncated'})") from None


def _write_wav(path: str, pcm: bytes, rate: int) -> None:
    try:
        # The file first: a wave.open() that fails to create it prints an error when collected.
        with open(path, "wb") as file, wave.open(file, "wb") as wav:
            wav.setnchannels(1)
            wav.setsampwidth(2)
            wav.setframerate(rate)
            wav.writeframes(pcm)
    except OSError as err:
        raise ToneFileError(f"cannot write {path}: {err.strerror or err}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = Parser(prog=PROG, description="Write or read the emulator's tone-word audio.")
    parser.add_version()
    sub = parser.add_subparsers(dest="command", required=True)
    enc = sub.add_parser("encode", help="write a WAV file of tone words")
    enc.add_argument("phrase", help='words from "zero".."nine", e.g. "one two three"')
    enc.add_argument("-o", "--output", required=True, help="WAV file to write")
    enc.add_argument("--rate", type=int, default=RECOGNIZER_RATE, help="sample rate in Hz")
    enc.add_argument(
        "--trailing-silence-ms", type=float, default=0.0, help="silence after the last word"
    )
    dec = sub.add_parser("decode", help="print the tone words of a 16-bit mono WAV file")
    dec.add_argument("path", help="WAV file to read")
    args = parser.parse_args(argv)
    try:
        if args.command == "encode":
            words = args.phrase.lower().split()
            unknown = [w for w in words if w not in WORDS]
            if unknown or not words:
                what = f"unknown word(s) {' '.join(unknown)!r}" if unknown else "no words"
                parser.error(f"{what}: the tone words are {' '.join(WORDS)}")
            if not 1000 <= args.rate <= 384000 or args.trailing_silence_ms < 0:
                parser.error("--rate must be 1000..384000 Hz and --trailing-silence-ms >= 0")
            pcm = encode(words, args.rate) + silence(args.trailing_silence_ms, args.rate)
            _write_wav(args.output, pcm, args.rate)
            return 0
        pcm, rate = _read_wav(args.path)
    except ToneFileError as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 1
    print(" ".join(t.word for t in decode(pcm, rate)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
