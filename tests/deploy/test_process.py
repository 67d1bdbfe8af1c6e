"""The server as a user runs it: a separate process, its log, signals, the key check."""

from __future__ import annotations

import asyncio
import signal
import sys

from wyoming.audio import AudioStop

from tests.kit.bridge import (
    API_KEY,
    clean_env,
    read_answer,
    server_process,
    start_request,
    transcribe,
)
from wyoming_lightning.emulator import EmulatorServer, Fault
from wyoming_lightning.emulator.tones import encode_phrase

PHRASE = "seven eight nine"


async def test_the_key_never_appears_in_logs_or_answers(emulator: EmulatorServer) -> None:
    faults = ["refuse-401", "error-status", "drop", "invalid-json", "close-1011", "refuse-500"]
    async with server_process(
        "--lightning-url",
        emulator.pulse_url,
        "--debug",
        "--vad",
        "off",
        "--retries",
        "1",
        "--final-timeout",
        "1",
        "--response-timeout",
        "3",
    ) as server:
        answers = []
        for name in faults:
            emulator.inject(Fault(name, after_bytes=3200), count=2)
            answers.append(await transcribe(server.port, encode_phrase(PHRASE)))
        answers.append(await transcribe(server.port, encode_phrase(PHRASE)))
        server.proc.send_signal(signal.SIGTERM)
        assert await server.finish() == 0
    log = "".join(server.log)
    assert "DEBUG" in log, "the test must run with --debug to mean anything"
    assert answers[0].error is not None and answers[0].error.data["code"] == "auth"
    assert answers[-1].transcript == PHRASE
    assert API_KEY not in log
    for answer in answers:
        for event in answer.events:
            assert API_KEY not in repr(event.data)


async def test_sigterm_lets_a_running_request_finish(emulator: EmulatorServer) -> None:
    async with server_process("--lightning-url", emulator.lightning_url, "--vad", "off") as server:
        pcm = encode_phrase(PHRASE)
        client = await start_request(server.port, pcm)
        await emulator.wait_for_audio(len(pcm) // 2)
        server.proc.send_signal(signal.SIGTERM)
        await server.read_until("stopping: waiting for 1 request")
        try:  # no new clients once stopping
            _r, w = await asyncio.open_connection("127.0.0.1", server.port)
            refused = await _r.read() == b""
            w.close()
        except ConnectionError:
            refused = True
        assert refused
        await client.write_event(AudioStop().event())
        answer = await read_answer(client, until=("transcript",))
        await client.disconnect()
        assert answer.transcript == PHRASE
        assert await server.finish() == 0


async def test_check_key_reports_a_rejected_key_at_start_up(emulator: EmulatorServer) -> None:
    env = clean_env("wrong-key-123")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wyoming_lightning",
        "--uri",
        "tcp://127.0.0.1:0",
        "--lightning-url",
        emulator.lightning_url,
        "--check-key",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await proc.communicate()
    assert proc.returncode == 1
    text = err.decode()
    assert "API key check failed" in text and "401" in text
    assert "wrong-key-123" not in text


async def test_check_key_accepts_a_good_key(emulator: EmulatorServer) -> None:
    async with server_process(
        "--lightning-url", emulator.lightning_url, "--check-key", "--vad", "webrtc"
    ) as server:
        assert any("API key accepted" in line for line in server.log)
        answer = await transcribe(server.port, encode_phrase(PHRASE))
        assert answer.transcript == PHRASE


async def test_bad_flags_are_explained() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wyoming_lightning",
        "--language",
        "klingon",
        stderr=asyncio.subprocess.PIPE,
    )
    _out, err = await proc.communicate()
    assert proc.returncode == 2
    assert "klingon" in err.decode() and "Traceback" not in err.decode()
