"""Real human speech for tests and benchmarks: recordings of people, with exact transcripts.

The set lives in tests/data/human/ (built by scripts/make_human_speech.py from registry
packages; what each clip is, who speaks, and its licence are in manifest.json and LICENSES.md
there). It holds read speech (audiobook sentences, a speech, voice prompts, commands) and
spontaneous speech with hesitations, fillers and restarts, from 1 to 26 s.

The espeak-ng commands of ``speech_data`` are clean and short; these are what a microphone
hears, and the long ones are what a service with a fixed per-final deadline gets wrong.

API (keep it stable; tests and ``benchmarks`` import it as ``tests.kit.human_speech``):

- ``load_human_speech() -> list[HumanClip]`` (manifest order; audio is 16 kHz mono s16le)
- ``short_clips()`` / ``long_clips()``: split at ``LONG_S``
- ``as_home_assistant_sends(pcm) -> bytes``: the clip with the silence around it that Home
  Assistant sends (a little before the speech; audio-stop 0.7 s after it ends)

Decoding needs PyAV (``av``, installed with faster-whisper in the ``local``/``dev`` extras).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Final, Literal

import numpy as np
import soxr

from tests.kit.paths import DATA_DIR

SAMPLE_RATE: Final = 16000
HUMAN_DIR: Final = DATA_DIR / "human"
#: Utterances at least this long are "long": past the bridge's old 5 s per-final deadline by far.
LONG_S: Final = 15.0
#: Home Assistant's own VAD ends the stream this long after speech ends.
HA_TRAIL_S: Final = 0.7
#: A little audio before the speech: the stream starts right after the wake word.
HA_LEAD_S: Final = 0.3

Kind = Literal["read", "spontaneous"]


@dataclass(frozen=True)
class HumanClip:
    """One recording: its words, its audio (16 kHz mono s16le) and where it came from."""

    name: str
    text: str
    pcm: bytes = field(repr=False)
    kind: Kind
    speaker: str
    source: str
    licence: str

    @property
    def seconds(self) -> float:
        return len(self.pcm) / (2 * SAMPLE_RATE)

    @property
    def is_long(self) -> bool:
        return self.seconds >= LONG_S


def load_human_speech() -> list[HumanClip]:
    """The whole set, in manifest order (a fresh list; the audio is decoded once)."""
    return list(_load_cached())


def short_clips() -> list[HumanClip]:
    return [c for c in _load_cached() if not c.is_long]


def long_clips() -> list[HumanClip]:
    return [c for c in _load_cached() if c.is_long]


def manifest() -> list[dict[str, object]]:
    entries: list[dict[str, object]] = json.loads(
        (HUMAN_DIR / "manifest.json").read_text(encoding="utf-8")
    )
    return entries


def decode_flac(path: Path) -> tuple[bytes, int]:
    """Mono s16le samples and their rate, exactly as stored."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = int(stream.rate)
        parts = [frame.to_ndarray().reshape(-1) for frame in container.decode(stream)]
    samples = np.concatenate(parts)
    if samples.dtype != np.int16:
        raise ValueError(f"{path.name}: expected 16-bit samples, got {samples.dtype}")
    return samples.astype("<i2").tobytes(), rate


def to_16k(pcm: bytes, rate: int) -> bytes:
    """s16le at ``rate`` -> 16 kHz, with the same resampler the bridge uses."""
    if rate == SAMPLE_RATE:
        return pcm
    samples = np.frombuffer(pcm, dtype="<i2")
    out = soxr.resample(samples, rate, SAMPLE_RATE, quality="HQ")
    return np.asarray(out, dtype="<i2").tobytes()


@lru_cache(maxsize=1)
def _load_cached() -> tuple[HumanClip, ...]:
    clips = []
    for entry in manifest():
        file_name = str(entry["file"])
        pcm, rate = decode_flac(HUMAN_DIR / file_name)
        kind = entry["kind"]
        if kind not in ("read", "spontaneous"):
            raise ValueError(f"{file_name}: unknown kind {kind!r}")
        clips.append(
            HumanClip(
                name=Path(file_name).stem,
                text=str(entry["transcript"]),
                pcm=to_16k(pcm, rate),
                kind=kind,
                speaker=str(entry["speaker"]),
                source=str(entry["source"]),
                licence=str(entry["licence"]),
            )
        )
    return tuple(clips)


def as_home_assistant_sends(pcm: bytes, lead_s: float = HA_LEAD_S) -> bytes:
    """Digital silence before (``lead_s``) and after (``HA_TRAIL_S``) the recording."""
    return lead(pcm, lead_s) + bytes(2 * round(HA_TRAIL_S * SAMPLE_RATE))


def lead(pcm: bytes, seconds: float) -> bytes:
    """``pcm`` after ``seconds`` of digital silence: the same recording placed later in a stream.

    Whisper's text for a recording moves with where it sits in the window (a 50 ms shift of
    silence changes a word or several in a long clip), so a WER compared to a fraction of a
    point is measured over several placements (``SHIFTS_S``), not one.
    """
    return bytes(2 * round(seconds * SAMPLE_RATE)) + pcm


#: Placements of each recording (extra lead silence) over which WER is averaged to compare two
#: ways of sending it: 50 ms apart, five of Whisper's 10 ms frames and no multiple of the gate's
#: 32 ms frame, so each placement gives both a different start.
SHIFTS_S: Final = (0.0, 0.05, 0.1, 0.15)
