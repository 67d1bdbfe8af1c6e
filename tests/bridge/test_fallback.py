"""The local recognizer: ``--fallback local`` when the cloud fails, and no API key at all.

Real speech (tests/data/speech) is transcribed by the bridge's own offline recognizer
(``wyoming_lightning/local/recognizer.py``, Whisper tiny.en); nothing is mocked. Whisper is slow on
a small machine, so each test uses one command only.
"""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from wyoming.audio import AudioStop

from tests.kit.bridge import (
    Answer,
    bridge_port,
    bridge_settings,
    describe,
    read_answer,
    running_bridge,
    server_process,
    start_request,
    transcribe,
)
from tests.kit.speech_data import SpeechSample, load_speech, with_silence
from wyoming_lightning.emulator import EmulatorServer, Fault

LOCAL_LOG = "transcript produced by the local recognizer"


def sample(name: str) -> SpeechSample:
    return next(s for s in load_speech() if s.name == name)


def words(text: str | None) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", (text or "").lower()))


def assert_local_transcript(answer: Answer, *key_words: str) -> None:
    assert answer.error is None, answer.events
    assert answer.closed
    assert set(key_words) <= words(answer.transcript), answer.transcript
    assert answer.types[-2:] == ["transcript", "transcript-stop"]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fault", "retries", "sessions"),
    [("refuse-500", 1, 2), ("refuse-401", 3, 1)],
)
async def test_fallback_local_when_the_cloud_refuses(
    whisper_emulator: EmulatorServer,
    caplog: pytest.LogCaptureFixture,
    fault: str,
    retries: int,
    sessions: int,
) -> None:
    """The cloud refuses every session: after the retries a passing fault deserves (none for a
    bad key), the speech already heard is transcribed locally instead of failing the request."""
    caplog.set_level(logging.INFO, logger="wyoming_lightning")
    speech = sample("turn_on_kitchen_lights" if fault == "refuse-500" else "milk_shopping_list")
    settings = bridge_settings(
        whisper_emulator.pulse_url,
        vad="silero",
        fallback="local",
        retries=retries,
        response_timeout_s=120.0,  # the first local transcription loads the model
    )
    async with running_bridge(settings) as server:
        whisper_emulator.inject(Fault(fault), count=None)
        answer = await transcribe(bridge_port(server), with_silence(speech.pcm, 0.5, 1.0))
    key = ("kitchen", "lights") if fault == "refuse-500" else ("milk", "shopping", "list")
    assert_local_transcript(answer, *key)
    assert [s.faults for s in whisper_emulator.sessions] == [(fault,)] * sessions
    assert all(s.handshake_status == int(fault[-3:]) for s in whisper_emulator.sessions)
    assert "transcribing with the local recognizer" in caplog.text
    assert LOCAL_LOG in caplog.text
    await whisper_emulator.wait_idle(10)


async def test_without_fallback_the_same_refusal_is_an_error(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The control for the test above: the default ``--fallback none`` reports the failure."""
    caplog.set_level(logging.INFO, logger="wyoming_lightning")
    speech = sample("turn_on_kitchen_lights")
    settings = bridge_settings(emulator.pulse_url, vad="silero", retries=0)
    async with running_bridge(settings) as server:
        emulator.inject(Fault("refuse-500"), count=None)
        answer = await transcribe(bridge_port(server), with_silence(speech.pcm, 0.5, 1.0))
    assert answer.types == ["error"] and answer.error is not None
    assert answer.error.data["code"] == "upstream"
    assert answer.closed
    assert [s.handshake_status for s in emulator.sessions] == [500]
    assert LOCAL_LOG not in caplog.text


@pytest.mark.slow
async def test_no_api_key_runs_local_only(emulator: EmulatorServer) -> None:
    """No key: a warning at start, the server listens, answers ``describe`` at once even while
    Whisper loads and runs, and transcribes speech locally; the cloud is never contacted."""
    speech = sample("lock_front_door")
    pcm = with_silence(speech.pcm, 0.5, 1.0)
    args = ("--lightning-url", emulator.pulse_url, "--vad", "silero")
    async with server_process(*args, key=None) as server:
        port = server.port
        log = "".join(server.log)
        assert "WARNING" in log and "no API key" in log and "local recognizer only" in log
        info = await describe(port)
        assert info.asr[0].installed and "local recognizer" in (info.asr[0].description or "")

        client = await start_request(port, pcm)
        await client.write_event(AudioStop().event())
        # The request is now with the local recognizer (the first one also loads the model).
        await server.read_until(r"audio received .* in 1 utterance")
        answering = asyncio.create_task(read_answer(client, until=("transcript", "error")))
        info = await describe(port)
        assert not answering.done(), "describe was answered while Whisper was still busy"
        answer = await answering
        await client.disconnect()
        await server.read_until(LOCAL_LOG)

    assert_local_transcript(answer, "front", "door")
    assert info.asr[0].models[0].installed
    assert emulator.sessions == [], "no key: the cloud is never contacted"
