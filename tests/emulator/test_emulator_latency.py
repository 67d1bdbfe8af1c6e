"""The emulator's latency model: a settle time that grows with the audio and has a long tail,
reproducible from a seed, and the flags that set it."""

from __future__ import annotations

import json
import random
import time

import pytest
from websockets.asyncio.client import connect

from tests.emulator.emulator_client import read_until_final
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer
from wyoming_lightning.emulator.__main__ import build_parser, config_from_args
from wyoming_lightning.emulator.latency import PRESETS, LatencyModel, remaining_s
from wyoming_lightning.emulator.recognizers import ToneRecognizer, Word
from wyoming_lightning.emulator.tones import encode_phrase


def test_off_by_default_so_tests_stay_exact() -> None:
    model = LatencyModel()
    assert model.settle_s(30.0, random.Random(1)) == 0.0
    assert model.rtt_s == 0.0 and model.handshake_s == 0.0


def test_settle_time_grows_with_the_audio_owed() -> None:
    model = LatencyModel(settle_ms=200, settle_ms_per_s=100)
    assert model.settle_s(0.0, random.Random(1)) == pytest.approx(0.2)
    assert model.settle_s(8.0, random.Random(1)) == pytest.approx(1.0)


def test_the_tail_is_long_and_seeded() -> None:
    model = LatencyModel(settle_ms=300, sigma=0.7)
    draws = [model.settle_s(1.0, random.Random(7)) for _ in range(3)]
    assert len(set(draws)) == 1, "one seed, one sequence"
    rng = random.Random(3)
    many = sorted(model.settle_s(1.0, rng) for _ in range(4000))
    median, p99 = many[len(many) // 2], many[int(len(many) * 0.99)]
    assert median == pytest.approx(0.3, rel=0.1)
    assert p99 > 3 * median, "a long tail, not a fixed delay"
    assert p99 == pytest.approx(model.quantile_settle_s(1.0, 0.99), rel=0.15)


def test_the_cloud_preset_matches_the_published_p99() -> None:
    """About 1.6 s p99 from end of speech to final for a short (2 s) command."""
    cloud = PRESETS["cloud"]
    assert cloud.quantile_settle_s(2.0, 0.99) == pytest.approx(1.6, abs=0.1)
    assert cloud.quantile_settle_s(2.0, 0.5) < 0.4
    assert cloud.rtt_ms > 0


@pytest.mark.parametrize("name", ["settle_ms", "settle_ms_per_s", "sigma", "rtt_ms"])
def test_bad_values_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        LatencyModel(**{name: -1.0})


def test_flags_pick_a_preset_and_override_it() -> None:
    args = build_parser().parse_args(["--latency=cloud", "--rtt-ms=5", "--latency-seed=4"])
    config = config_from_args(args)
    assert config.latency == LatencyModel(settle_ms=250, settle_ms_per_s=30, sigma=0.7, rtt_ms=5)
    assert config.latency_seed == 4
    plain = config_from_args(build_parser().parse_args(["--settle-ms=8000"]))
    assert plain.latency == LatencyModel(settle_ms=8000)


class _SlowFinals(ToneRecognizer):
    """The tone words, with each final taking at least ``compute_s`` to recognise."""

    blocking = True

    def __init__(self, compute_s: float) -> None:
        self.compute_s = compute_s

    def transcribe(
        self,
        pcm16k_mono_s16: bytes,
        language: str,
        *,
        word_times: bool = False,
        interim: bool = False,
    ) -> list[Word]:
        if not interim:
            time.sleep(self.compute_s)  # the recognizer's work, not synchronisation
        return super().transcribe(pcm16k_mono_s16, language, word_times=word_times)


async def _hold_after_finalize(settle_ms: int, compute_s: float) -> float:
    config = EmulatorConfig(finalize_delay_ms=settle_ms)
    recognizer = _SlowFinals(compute_s)
    async with (
        EmulatorServer(config, port=0, recognizer=recognizer) as server,
        connect(server.pulse_url, additional_headers={"Authorization": "Bearer k"}) as ws,
    ):
        await ws.send(encode_phrase("one"))
        await ws.send(json.dumps({"type": "finalize"}))
        assert [m["transcript"] for m in await read_until_final(ws) if m["is_final"]] == ["one"]
        (hold,) = server.sessions[-1].control_holds_s
        return hold


@pytest.mark.timeout(30)
async def test_the_settle_time_includes_recognition() -> None:
    """The real service's settle time runs from finalize to the answer, recognition inside
    it: what the recognizer spent is not waited again on top."""
    hold = await _hold_after_finalize(settle_ms=600, compute_s=0.25)
    assert 0.0 < hold <= 0.6 - 0.25  # the old model held the whole 0.6 s after recognising


@pytest.mark.timeout(30)
async def test_a_recognizer_slower_than_the_settle_time_answers_at_once() -> None:
    assert await _hold_after_finalize(settle_ms=100, compute_s=0.3) == 0.0


def test_what_remains_of_a_settle_time() -> None:
    assert remaining_s(0.6, 0.25) == pytest.approx(0.35)
    assert remaining_s(0.6, 0.9) == 0.0
    assert remaining_s(0.0, 0.01) == 0.0, "an instant service stays instant"
