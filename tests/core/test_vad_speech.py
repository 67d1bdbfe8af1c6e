"""Both VAD engines behind the gate, on the real speech set under noise and level changes.

Each session is one command with 1.5-2 s of silence before and after, streamed
in 10 ms chunks as Home Assistant sends it. The oracle for "speech" is frame
energy on the CLEAN signal (speech_data.speech_frames), so noise never moves
the goalposts. Results are cached per (engine, condition): several tests read
the same run, which keeps the silero part (about 20 ms of CPU per audio
second) within budget.

Where an engine genuinely fails a condition, that single case is an
xfail(strict=True) whose reason says where it fails, so it stays honest and
flags the day it starts passing.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

import numpy as np
import numpy.typing as npt
import pytest

from tests.kit import speech_data as sd
from wyoming_lightning.core.vad import (
    GateConfig,
    GateEvent,
    SpeechAudio,
    SpeechEnd,
    SpeechStart,
    VadGate,
    create_engine,
)

ENGINES = ("webrtc", "silero")
CHUNK = 320  # 10 ms
PRE_ROLL_S = 0.3
HANGOVER_S = 0.5

Doctor = Callable[[bytes, int], bytes]  # (clean padded pcm, seed) -> what the gate hears

CONDITIONS: dict[str, Doctor] = {
    "clean": lambda pcm, seed: pcm,
    "white 20 dB": lambda pcm, seed: sd.mix_noise(pcm, 20, "white", seed),
    "pink 10 dB": lambda pcm, seed: sd.mix_noise(pcm, 10, "pink", seed),
    "white 5 dB": lambda pcm, seed: sd.mix_noise(pcm, 5, "white", seed),
    "pink 5 dB": lambda pcm, seed: sd.mix_noise(pcm, 5, "pink", seed),
    "quiet -40 dBFS": lambda pcm, seed: sd.scale_to_peak(pcm, -40),
    "loud -1 dBFS": lambda pcm, seed: sd.scale_to_peak(pcm, -1),
}

# Beyond the required conditions: where the engines' limits are.
HARD_CONDITIONS: dict[str, Doctor] = {
    "white 0 dB": lambda pcm, seed: sd.mix_noise(pcm, 0, "white", seed),
    "pink 0 dB": lambda pcm, seed: sd.mix_noise(pcm, 0, "pink", seed),
    "very quiet -50 dBFS": lambda pcm, seed: sd.scale_to_peak(pcm, -50),
}

KNOWN_CLIPPING = {
    ("webrtc", "white 0 dB"): "webrtc: at 0 dB SNR (white) the weak onset of 'what time is it' "
    "stays within the noise floor's spread: the gate opens 320 ms late and 20 ms of speech "
    "is lost",
    ("webrtc", "pink 0 dB"): "webrtc: at 0 dB SNR (pink) the gate opens 320 ms late on "
    "'what time is it' (20 ms lost); with other noise draws a whole command can fail to open "
    "the gate (benchmarks/vad_gate.py, probe runs)",
    ("silero", "very quiet -50 dBFS"): "silero: speech peaking at -50 dBFS is mostly scored "
    "below 0.5 by the model (about a third of speech frames lost); the webrtc engine's AGC copes",
}


@dataclass(frozen=True)
class Session:
    clean: bytes
    heard: bytes
    speech_s: float
    events: tuple[GateEvent, ...]
    sent_s: float

    def sent_mask(self) -> npt.NDArray[np.bool_]:
        """Per sample of the stream: was it sent? Also checks contiguity within segments."""
        mask = np.zeros(len(self.heard) // 2, dtype=np.bool_)
        position = 0
        for event in self.events:
            if isinstance(event, SpeechStart):
                position = event.start_sample
                data = event.pre_roll
            elif isinstance(event, SpeechAudio):
                data = event.data
            else:
                continue
            samples = len(data) // 2
            assert data == self.heard[2 * position : 2 * (position + samples)], "not contiguous"
            assert not mask[position : position + samples].any(), "audio sent twice"
            mask[position : position + samples] = True
            position += samples
        return mask

    def clipped_frames(self) -> int:
        oracle = sd.speech_frames(self.clean)
        frame = sd.ORACLE_FRAME_SAMPLES
        sent = self.sent_mask()[: oracle.size * frame].reshape(oracle.size, frame).all(axis=1)
        return int(np.count_nonzero(oracle & ~sent))

    @property
    def segments(self) -> int:
        return sum(isinstance(event, SpeechStart) for event in self.events)


def stream(
    engine_name: str, pcm: bytes, config: GateConfig | None = None
) -> tuple[list[GateEvent], VadGate]:
    gate = VadGate(create_engine(engine_name), config or GateConfig())
    events: list[GateEvent] = []
    for offset in range(0, len(pcm), CHUNK):
        events += gate.process(pcm[offset : offset + CHUNK])
    return events + gate.flush(), gate


def padded(index: int, pcm: bytes) -> bytes:
    return sd.with_silence(pcm, 1.5 + 0.25 * (index % 3), 2.0 - 0.25 * (index % 3))


def commands_for(engine_name: str, condition: str) -> list[tuple[int, sd.SpeechSample]]:
    """Every command for webrtc; a half of them, alternating by condition, for silero.

    Silero costs 0.5-2 ms of CPU per 32 ms frame on this 2-core machine (ggml's
    thread pool is slow to synchronise under load), so it gets half the set per
    condition to keep the suite fast; every command is still heard by silero in
    some conditions, and benchmarks/vad_gate.py runs the full set.
    """
    indexed = list(enumerate(sd.load_speech()))
    if engine_name != "silero":
        return indexed
    half = list({**CONDITIONS, **HARD_CONDITIONS}).index(condition) % 2
    return [(index, sample) for index, sample in indexed if index % 2 == half]


@cache
def sessions(engine_name: str, condition: str) -> tuple[Session, ...]:
    doctor = {**CONDITIONS, **HARD_CONDITIONS}[condition]
    result = []
    for index, sample in commands_for(engine_name, condition):
        clean = padded(index, sample.pcm)
        heard = doctor(clean, index)
        events, gate = stream(engine_name, heard)
        result.append(
            Session(clean, heard, sample.seconds, tuple(events), gate.audio_out_ms / 1000)
        )
    return tuple(result)


def cases(conditions: dict[str, Doctor]) -> list[object]:
    params: list[object] = []
    for engine_name in ENGINES:
        for condition in conditions:
            reason = KNOWN_CLIPPING.get((engine_name, condition))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            params.append(
                pytest.param(engine_name, condition, marks=marks, id=f"{engine_name}-{condition}")
            )
    return params


# -- speech is kept, silence is not ---------------------------------------------------


@pytest.mark.parametrize(("engine_name", "condition"), cases(CONDITIONS))
def test_no_speech_frame_is_clipped(engine_name: str, condition: str) -> None:
    clipped = {s.speech_s: s.clipped_frames() for s in sessions(engine_name, condition)}
    assert sum(clipped.values()) == 0, f"clipped frames per command length: {clipped}"


@pytest.mark.parametrize(("engine_name", "condition"), cases(HARD_CONDITIONS))
def test_no_speech_frame_is_clipped_in_hard_conditions(engine_name: str, condition: str) -> None:
    assert sum(s.clipped_frames() for s in sessions(engine_name, condition)) == 0


@pytest.mark.parametrize("condition", ["white 0 dB", "pink 0 dB"])
def test_webrtc_at_0_db_loses_at_most_an_onset(condition: str) -> None:
    # Guards the noise-spread holdoff: when weak speech frames fed the spread estimate,
    # the threshold crept up during a slow sentence and its second half (1.4 s) was lost.
    clipped = [s.clipped_frames() for s in sessions("webrtc", condition)]
    assert sum(clipped) <= 5, clipped


@pytest.mark.parametrize(("engine_name", "condition"), cases(CONDITIONS))
def test_leading_and_trailing_silence_are_trimmed(engine_name: str, condition: str) -> None:
    runs = sessions(engine_name, condition)
    # Over the set: at most 1.3 x speech + 0.5 s per command. (A single 0.8 s command
    # cannot meet that alone: pre-roll plus hangover are 0.8 s by themselves.)
    speech = sum(s.speech_s for s in runs)
    assert sum(s.sent_s for s in runs) <= 1.3 * speech + 0.5 * len(runs)
    for session in runs:  # 3.25-3.5 s of silence per command, at most 1.2 s of it sent
        assert session.sent_s <= session.speech_s + PRE_ROLL_S + HANGOVER_S + 0.4


@pytest.mark.parametrize(("engine_name", "condition"), cases(CONDITIONS))
def test_each_command_is_one_segment_closed_by_silence(engine_name: str, condition: str) -> None:
    for session in sessions(engine_name, condition):
        assert session.segments == 1
        assert session.events[-1] == SpeechEnd("silence")


# -- noise alone ----------------------------------------------------------------------

STEADY_NOISE = [
    pytest.param(kind, level, id=f"{kind} {level} dBFS")
    for kind in sd.NOISE_KINDS
    for level in (-30, -20)
]


@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize(("kind", "level"), STEADY_NOISE)
def test_steady_noise_alone_opens_nothing(engine_name: str, kind: sd.NoiseKind, level: int) -> None:
    events, gate = stream(engine_name, sd.make_noise(3.0, level, kind, seed=-level))
    assert events == []
    assert gate.audio_out_ms == 0


def _fan_switched_on() -> bytes:
    """A quiet room, then a fan (pink noise at -30 dBFS) switched on."""
    return sd.make_noise(1.0, -60, "pink", seed=6) + sd.make_noise(4.0, -30, "pink", seed=7)


NON_SPEECH = {"clap": sd.make_clap, "beep": sd.make_beep, "fan switched on": _fan_switched_on}
KNOWN_FALSE_OPENS = {
    ("webrtc", "clap"): "webrtc: a clap rises far above the noise floor and webrtcvad "
    "accepts it; opens one ~0.9 s segment",
    ("webrtc", "beep"): "webrtc: a steady tone is loud, new and accepted by webrtcvad; "
    "opens one ~1.1 s segment",
    ("silero", "beep"): "silero: a 1 kHz tone scores up to 0.6 (440 Hz at -35 dBFS too; "
    "1.1-2 kHz stay below 0.45); opens one ~0.9 s segment",
    ("webrtc", "fan switched on"): "webrtc: the noise floor needs its 1.2 s minimum-statistics "
    "window to catch up with a sudden steady noise; opens one ~2 s segment",
}


@pytest.mark.parametrize("engine_name", ENGINES)
@pytest.mark.parametrize("sound", NON_SPEECH)
def test_non_speech_sounds_open_nothing(
    engine_name: str, sound: str, request: pytest.FixtureRequest
) -> None:
    reason = KNOWN_FALSE_OPENS.get((engine_name, sound))
    if reason:
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    events, _ = stream(engine_name, NON_SPEECH[sound]())
    assert events == []


# -- segment structure on real speech -------------------------------------------------


def _two_commands(pause_s: float) -> tuple[bytes, bytes, bytes]:
    speech = sd.load_speech()
    first, second = speech[3].pcm, speech[6].pcm
    return first, second, sd.with_silence(sd.concat_with_pause(first, second, pause_s), 1.5, 1.5)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_pause_shorter_than_hangover_keeps_one_segment(engine_name: str) -> None:
    _, _, pcm = _two_commands(0.25)
    events, _ = stream(engine_name, pcm)
    assert sum(isinstance(e, SpeechStart) for e in events) == 1


@pytest.mark.parametrize("engine_name", ENGINES)
def test_long_pause_separates_segments_and_pre_roll_is_the_audio_before_onset(
    engine_name: str,
) -> None:
    first, _, pcm = _two_commands(1.5)
    events, gate = stream(engine_name, pcm)
    starts = [e for e in events if isinstance(e, SpeechStart)]
    assert len(starts) == 2
    assert gate.segments == 2
    onsets = (1.5, 1.5 + len(first) / 32000 + 1.5)
    frame_s = create_engine(engine_name).frame_samples / sd.SAMPLE_RATE
    for start, onset_s in zip(starts, onsets, strict=True):
        begin = 2 * start.start_sample
        assert start.pre_roll == pcm[begin : begin + len(start.pre_roll)]
        assert len(start.pre_roll) == 2 * round(PRE_ROLL_S * sd.SAMPLE_RATE)
        # Speech was judged to start within 200 ms after the true onset (the frame
        # holding the onset may begin a little earlier), so the pre-roll holds the onset.
        judged_s = (start.start_sample + len(start.pre_roll) // 2) / sd.SAMPLE_RATE
        assert onset_s - frame_s < judged_s <= onset_s + 0.2


@pytest.mark.parametrize("engine_name", ENGINES)
def test_max_utterance_caps_continuous_speech(engine_name: str) -> None:
    speech = [s.pcm for s in sd.load_speech()[:4]]
    talk = speech[0]
    for more in speech[1:]:
        talk = sd.concat_with_pause(talk, more, 0.2)
    events, _ = stream(
        engine_name, sd.with_silence(talk, 1.0, 1.0), GateConfig(max_utterance_s=3.0)
    )
    ends = [e for e in events if isinstance(e, SpeechEnd)]
    assert ends[0] == SpeechEnd("max_utterance")
    first_segment = b""
    for event in events:
        if isinstance(event, SpeechStart):
            first_segment += event.pre_roll
        elif isinstance(event, SpeechAudio):
            first_segment += event.data
        else:
            break
    frame_s = create_engine(engine_name).frame_samples / sd.SAMPLE_RATE
    assert 3.0 <= len(first_segment) / 32000 < 3.0 + frame_s


@pytest.mark.parametrize("engine_name", ENGINES)
def test_any_chunking_gives_identical_events_on_real_speech(engine_name: str) -> None:
    pcm = sd.mix_noise(padded(0, sd.load_speech()[0].pcm), 10, "pink", seed=1)
    gate = VadGate(create_engine(engine_name))
    one_shot = gate.process(pcm) + gate.flush()
    rng = random.Random(engine_name)
    gate = VadGate(create_engine(engine_name))
    chunked: list[GateEvent] = []
    offset = 0
    while offset < len(pcm):
        size = rng.choice([1, 2, 161, 320, 1023, 4096])
        chunked += gate.process(pcm[offset : offset + size])
        offset += size
    chunked += gate.flush()
    assert chunked == one_shot
    assert any(isinstance(e, SpeechStart) for e in one_shot)


@pytest.mark.parametrize("engine_name", ENGINES)
def test_silence_ms_supports_endpointing(engine_name: str) -> None:
    pcm = sd.with_silence(sd.load_speech()[0].pcm, 1.0, 0.0)
    gate = VadGate(create_engine(engine_name))
    gate.process(pcm)
    assert gate.silence_ms is not None
    assert gate.silence_ms < 200  # speech has only just ended
    gate.process(sd.silence(1.0))
    assert gate.silence_ms is not None
    assert 1000 <= gate.silence_ms < 1300
