"""Engines are lent from a pool bounded by peak concurrency (issue 15), reset between streams."""

from __future__ import annotations

import asyncio
import threading

import pytest
from wyoming.audio import AudioStop

from tests.kit import speech_data as sd
from tests.kit.bridge import (
    bridge_port,
    bridge_settings,
    read_answer,
    running_bridge,
    start_request,
)
from tests.kit.bridge import transcribe as send_request
from wyoming_lightning.core.vad import ENGINE_NAMES, VadEngine, create_engine
from wyoming_lightning.core.vad.pool import EnginePool
from wyoming_lightning.emulator import EmulatorServer


def probabilities(engine: VadEngine, pcm: bytes) -> list[float]:
    size = 2 * engine.frame_samples
    return [engine.speech_probability(pcm[i : i + size]) for i in range(0, len(pcm) - size, size)]


def webrtc_pool() -> EnginePool:
    return EnginePool(lambda: create_engine("webrtc"))


# -- the pool on its own --------------------------------------------------------------


def test_engines_are_built_on_demand_and_reused_once_released() -> None:
    pool = webrtc_pool()
    assert (pool.created, pool.idle, pool.lent) == (0, 0, 0)
    first = pool.acquire()
    second = pool.acquire()
    assert first is not second
    assert (pool.created, pool.idle, pool.lent) == (2, 0, 2)
    pool.release(first)
    assert (pool.created, pool.idle, pool.lent) == (2, 1, 1)
    assert pool.acquire() is first
    pool.release(second)
    for _ in range(50):
        pool.release(engine := pool.acquire())
    assert engine in (first, second)
    assert pool.created == 2


def test_an_engine_released_twice_or_not_lent_is_refused() -> None:
    pool = webrtc_pool()
    engine = pool.acquire()
    pool.release(engine)
    with pytest.raises(ValueError, match="released twice"):
        pool.release(engine)
    with pytest.raises(ValueError, match="not lent by this pool"):
        pool.release(create_engine("webrtc"))
    assert (pool.created, pool.idle, pool.lent) == (1, 1, 0)


def test_a_failing_factory_is_not_counted() -> None:
    def broken() -> VadEngine:
        raise OSError("model file missing")

    pool = EnginePool(broken)
    with pytest.raises(OSError, match="model file missing"):
        pool.acquire()
    assert (pool.created, pool.lent) == (0, 0)


@pytest.mark.parametrize("engine_name", ENGINE_NAMES)
def test_a_reused_engine_judges_audio_exactly_as_a_fresh_one(engine_name: str) -> None:
    """No state of the previous stream (recurrent state, noise floor, AGC) reaches the next."""
    speech = sd.load_speech()
    pcm = sd.mix_noise(sd.with_silence(speech[2].pcm, 0.3, 0.3), 10, "pink")
    other = sd.mix_noise(sd.with_silence(speech[5].pcm, 0.2, 0.0), 0, "brown", seed=3)
    fresh = probabilities(create_engine(engine_name), pcm)

    pool = EnginePool(lambda: create_engine(engine_name))
    engine = pool.acquire()
    probabilities(engine, other)  # ends mid-speech, in loud noise
    pool.release(engine)
    reused = pool.acquire()
    assert reused is engine
    assert probabilities(reused, pcm) == fresh


def test_threads_never_share_an_engine_and_build_no_more_than_run_at_once() -> None:
    pool = webrtc_pool()
    threads = 6
    start = threading.Barrier(threads)
    guard = threading.Lock()
    holders: dict[int, int] = {}  # id(engine) -> borrowers now
    shared: list[int] = []

    def work() -> None:
        start.wait()
        for _ in range(300):
            engine = pool.acquire()
            with guard:
                holders[id(engine)] = holders.get(id(engine), 0) + 1
                if holders[id(engine)] > 1:
                    shared.append(id(engine))
            with guard:
                holders[id(engine)] -= 1
            pool.release(engine)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert shared == []
    assert 1 <= pool.created <= threads
    assert (pool.idle, pool.lent) == (pool.created, 0)


# -- in the server --------------------------------------------------------------------


@pytest.mark.parametrize("vad", ENGINE_NAMES)
async def test_the_server_builds_engines_for_its_peak_concurrency_not_per_request(
    emulator: EmulatorServer, vad: str
) -> None:
    """Issue 15: one silero detector per request held ~2.8 MB each, for ever.

    Sequential requests share one engine; a burst of concurrent ones needs one each; more
    requests after it reuse those. Requests that never open a session (silence) and ones that
    end by the client leaving return their engine too. An engine goes back before the client
    sees the end of the answer, so a client's next request can always reuse it.
    """
    speech = sd.load_speech()
    async with running_bridge(bridge_settings(emulator.pulse_url, vad=vad)) as server:
        pool = server.services.vad_pool
        assert pool is not None and pool.created == 0
        port = bridge_port(server)
        for i in range(12):
            pcm = sd.with_silence(speech[i].pcm, 0.3, 0.8) if i % 3 == 0 else bytes(16000)
            answer = await send_request(port, pcm)
            assert answer.transcript is not None
        assert (pool.created, pool.idle, pool.lent) == (1, 1, 0)
        opened = len(emulator.sessions)

        # A burst: all open at once. Each opened its session, so each holds its engine.
        burst = 5
        clients = [
            await start_request(port, sd.with_silence(speech[i].pcm, 0.3, 0.0))
            for i in range(burst)
        ]
        await emulator.wait_for(lambda: len(emulator.sessions) >= opened + burst, timeout=60)
        assert (pool.created, pool.lent) == (burst, burst)
        for client in clients[:-1]:
            await client.write_event(AudioStop().event())
            assert (await read_answer(client, until=("transcript",))).transcript is not None
            await client.disconnect()
        await clients[-1].disconnect()  # leaves without audio-stop
        await emulator.wait_idle(30)

        for _ in range(12):
            answer = await send_request(port, bytes(8000))
            assert answer.transcript is not None
        await asyncio.gather(*(send_request(port, bytes(8000)) for _ in range(3)))
        assert (pool.created, pool.idle, pool.lent) == (burst, burst, 0)


async def test_without_a_vad_there_is_no_pool(emulator: EmulatorServer) -> None:
    async with running_bridge(bridge_settings(emulator.pulse_url, vad="off")) as server:
        assert server.services.vad_pool is None
        answer = await send_request(bridge_port(server), bytes(8000))
    assert answer.transcript is not None
