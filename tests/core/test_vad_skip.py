"""Silero's model asked only where a frame may be speech (issue 27: ``skip_quiet_db``).

While the gate is idle with no speech near, a frame within ``skip_quiet_db`` of the background
is judged silence by its level alone. These run the real silero model on the real speech set
(tests/data/speech) with digital silence around each command, as the ``cost`` table sends it.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from tests.kit import speech_data as sd
from wyoming_lightning.core.vad import SpeechEnd, SpeechStart, VadGate
from wyoming_lightning.core.vad.gate import GateConfig
from wyoming_lightning.core.vad.silero import SILERO_FRAME_SAMPLES, SileroEngine
from wyoming_lightning.services import gate_config
from wyoming_lightning.settings.config import ConfigError, Settings, load_settings

FRAME_BYTES = 2 * SILERO_FRAME_SAMPLES
SKIP = GateConfig(skip_quiet_db=1.5)


class CountingSilero(SileroEngine):
    """The real model, noting which frames it was asked about."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[bytes] = []

    def speech_probability(self, frame: bytes) -> float:
        self.asked.append(frame)
        return super().speech_probability(frame)


def _edges(pcm: bytes, config: GateConfig) -> tuple[list[tuple[str, int]], int]:
    """Segment starts (in samples) and ends (in bytes judged), and the frames the model judged."""
    engine = CountingSilero()
    gate = VadGate(engine, config)
    edges: list[tuple[str, int]] = []
    for i in range(0, len(pcm), 640):
        for event in gate.process(pcm[i : i + 640]):
            if isinstance(event, SpeechStart):
                edges.append(("start", event.start_sample))
            elif isinstance(event, SpeechEnd):
                edges.append(("end", round(gate.audio_in_ms)))
    return edges, len(engine.asked)


def test_the_quiet_around_a_command_is_not_asked_and_no_segment_shrinks() -> None:
    asked = frames = 0
    for sample in sd.load_speech():
        pcm = sd.with_silence(sample.pcm, 0.5, 1.0)
        every, _ = _edges(pcm, GateConfig())
        skipping, count = _edges(pcm, SKIP)
        asked += count
        frames += len(pcm) // FRAME_BYTES
        assert [kind for kind, _ in skipping] == [kind for kind, _ in every], sample.name
        for (kind, at), (_, before) in zip(skipping, every, strict=True):
            # Starts no later, ends no earlier: nothing the model-on-every-frame gate sent is lost.
            assert at <= before if kind == "start" else at >= before, (sample.name, kind)
    assert asked < 0.8 * frames  # measured: 66 %, the warm-up included


def test_a_frame_after_speech_is_always_asked_and_a_quiet_pause_is_not() -> None:
    pcm = sd.with_silence(sd.load_speech()[0].pcm, 0.5, 1.0)
    engine = CountingSilero()
    gate = VadGate(engine, SKIP)
    after_speech_unasked = skipped = skipped_open = 0
    was_speech = False
    for i in range(0, len(pcm) - FRAME_BYTES + 1, FRAME_BYTES):
        was_open, asked, speech_ms = gate.is_open, len(engine.asked), gate.speech_ms
        gate.process(pcm[i : i + FRAME_BYTES])  # one frame per call
        if len(engine.asked) == asked:
            skipped += 1
            skipped_open += was_open
            after_speech_unasked += was_speech
        was_speech = gate.speech_ms > speech_ms
    assert after_speech_unasked == 0
    assert skipped_open > 0  # the digital silence after the command, while the gate is open
    assert gate.skipped_ms == skipped * SILERO_FRAME_SAMPLES / 16


def test_a_stream_that_begins_inside_a_word_opens_where_it_did() -> None:
    for sample in sd.load_speech()[:4]:
        pcm = sd.with_silence(sample.pcm, 0.0, 1.0)
        every, _ = _edges(pcm, GateConfig())
        skipping, _ = _edges(pcm, SKIP)
        assert skipping[:1] == every[:1], sample.name


def test_the_server_skips_only_with_silero_and_only_when_asked() -> None:
    settings = Settings()
    assert gate_config(dataclasses.replace(settings, vad="silero")).skip_quiet_db == 1.5
    assert gate_config(dataclasses.replace(settings, vad="webrtc")).skip_quiet_db is None
    off = dataclasses.replace(settings, vad="silero", vad_skip_quiet_db=0.0)
    assert gate_config(off).skip_quiet_db is None


@pytest.mark.parametrize("margin", [-1.0, math.nan, math.inf])
def test_a_margin_that_is_no_number_of_db_is_refused_in_words(margin: float) -> None:
    with pytest.raises(ValueError, match="skip_quiet_db must be >= 0"):
        GateConfig(skip_quiet_db=margin).validate()


@pytest.mark.parametrize("value", ["-1", "nan", "inf"])
def test_the_setting_refuses_what_is_no_margin_at_start_up(value: str) -> None:
    with pytest.raises(ConfigError, match="--vad-skip-quiet-db must be a number >= 0"):
        load_settings(["--vad-skip-quiet-db", value], {"SMALLEST_API_KEY": "k"})
