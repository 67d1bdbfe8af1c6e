"""A stop that fits in Docker's and the Supervisor's stop timeout: a request that outlives
``--drain-timeout`` is answered ``error`` before the process exits (status 0, not a kill)."""

from __future__ import annotations

import signal

from tests.kit.bridge import read_answer, server_process, start_request
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.emulator.tones import encode_phrase
from wyoming_lightning.wyoming.server import STOPPING_TEXT


async def test_a_request_cut_by_the_drain_gets_an_error(emulator: EmulatorServer) -> None:
    async with server_process(
        "--lightning-url", emulator.lightning_url, "--vad", "off", "--drain-timeout", "0.2"
    ) as server:
        pcm = encode_phrase("one two")
        # A client that never sends audio-stop: only the drain can end its request.
        client = await start_request(server.port, pcm)
        await emulator.wait_for_audio(len(pcm) // 2)
        server.proc.send_signal(signal.SIGTERM)
        await server.read_until("stopping: waiting for 1 request")
        answer = await read_answer(client, until=("error",))
        await client.disconnect()
        assert await server.finish() == 0
    assert answer.error is not None, answer.types
    assert answer.error.data == {"text": STOPPING_TEXT, "code": "unavailable"}
    assert answer.transcript is None
    assert answer.closed, "the server hangs up after the error"
    log = "".join(server.log)
    assert "1 request(s) still running after 0.2 s are answered with an error" in log
    assert log.rstrip().endswith("stopped"), log


async def test_an_idle_server_stops_at_once_and_a_drain_of_zero_is_accepted() -> None:
    async with server_process("--drain-timeout", "0") as server:
        server.proc.send_signal(signal.SIGTERM)
        assert await server.finish() == 0
    assert "stopping: waiting" not in "".join(server.log)
