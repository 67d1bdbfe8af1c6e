"""The Wyoming side misbehaving: malformed events, absurd lengths, wrong order, vanishing clients.

Each test sends the bad input over a real socket, checks what the client got back, and then
checks that the server still answers a normal request.
"""

from __future__ import annotations

import asyncio
import json

from wyoming.audio import AudioChunk, AudioStart
from wyoming.client import AsyncTcpClient

from tests.kit.bridge import (
    Answer,
    bridge_port,
    bridge_settings,
    read_raw_answer,
    running_bridge,
    start_request,
    transcribe,
)
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.emulator.tones import encode_phrase
from wyoming_lightning.wyoming.server import WyomingServer

PHRASE = "four five six"


async def raw_exchange(port: int, data: bytes) -> Answer:
    """Write raw bytes, then read whatever events come back until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    answer = await read_raw_answer(reader)
    writer.close()
    return answer


async def still_serves(server: WyomingServer) -> None:
    answer = await transcribe(bridge_port(server), encode_phrase(PHRASE))
    assert answer.transcript == PHRASE


def line(obj: object) -> bytes:
    return json.dumps(obj).encode() + b"\n"


BAD_INPUTS = {
    "not json": b"this is not json\n",
    "json array": b"[1, 2, 3]\n",
    "no type": line({"data": {}}),
    "data not object": line({"type": "transcribe", "data": [1]}),
    "negative length": line({"type": "audio-chunk", "payload_length": -5}),
    "string length": line({"type": "audio-chunk", "payload_length": "100"}),
    "absurd payload": line({"type": "audio-chunk", "payload_length": 10**12}),
    "absurd data": line({"type": "transcribe", "data_length": 10**9}),
    "bad data json": line({"type": "transcribe", "data_length": 5}) + b"{{{{{",
    "header too long": b'{"type": "' + b"x" * 200_000 + b'"}\n',
}


async def test_malformed_events_get_a_clear_error(emulator: EmulatorServer) -> None:
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        for name, data in BAD_INPUTS.items():
            answer = await raw_exchange(bridge_port(server), data)
            assert answer.closed, name
            assert answer.error is not None, name
            assert answer.error.data["code"] == "bad_request", name
            assert answer.error.data["text"].startswith("malformed event"), name
        await still_serves(server)
        assert server.active_connections <= 1


async def test_order_mistakes(emulator: EmulatorServer) -> None:
    chunk = AudioChunk(16000, 2, 1, bytes(320)).event()
    from wyoming_lightning.wyoming.wire import encode_event

    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        port = bridge_port(server)
        answer = await raw_exchange(port, encode_event(chunk))
        assert answer.error is not None and "before audio-start" in answer.error.data["text"]
        answer = await raw_exchange(port, line({"type": "audio-stop"}))
        assert answer.error is not None and "without audio-start" in answer.error.data["text"]
        start = AudioStart(16000, 2, 1).event()
        answer = await raw_exchange(port, encode_event(start) + encode_event(start))
        assert answer.error is not None and "twice" in answer.error.data["text"]
        answer = await raw_exchange(port, line({"type": "audio-start", "data": {"rate": "x"}}))
        assert answer.error is not None and answer.error.data["code"] == "bad_audio"
        await still_serves(server)
    assert emulator.sessions[:-1] == [] or len(emulator.sessions) == 1


async def test_transcribe_during_a_request_is_ignored(emulator: EmulatorServer) -> None:
    """A second ``transcribe``, even one naming a language nobody has, cannot change a request
    that has begun: the request machine ignores it and the answer is the audio's."""
    from wyoming.asr import Transcribe
    from wyoming.audio import AudioStop

    from tests.kit.bridge import read_answer

    pcm = encode_phrase(PHRASE)
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        client = await start_request(bridge_port(server), pcm)
        await client.write_event(Transcribe(language="xx-not-a-language").event())
        await client.write_event(AudioStop().event())
        answer = await read_answer(client, until=("transcript", "error"))
        await client.disconnect()
    assert answer.error is None
    assert answer.transcript == PHRASE


async def test_order_mistakes_after_a_transcribe_and_late_audio(emulator: EmulatorServer) -> None:
    """The order rules hold whatever came first: ``audio-stop`` right after ``transcribe`` is
    ``bad_audio``, and audio after ``audio-stop`` does not change the answer."""
    from wyoming.asr import Transcribe
    from wyoming.audio import AudioStop

    from wyoming_lightning.wyoming.wire import encode_event

    pcm = encode_phrase(PHRASE)
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        port = bridge_port(server)
        data = encode_event(Transcribe(language="en").event()) + line({"type": "audio-stop"})
        answer = await raw_exchange(port, data)
        assert answer.error is not None and answer.error.data["code"] == "bad_audio"
        assert "without audio-start" in answer.error.data["text"]
        request = [AudioStart(16000, 2, 1).event()]
        request += [
            AudioChunk(16000, 2, 1, pcm[i : i + 3200]).event() for i in range(0, len(pcm), 3200)
        ]
        request += [AudioStop().event(), AudioChunk(16000, 2, 1, encode_phrase("nine")).event()]
        answer = await raw_exchange(port, b"".join(encode_event(e) for e in request))
        assert answer.error is None and answer.transcript == PHRASE


async def test_odd_and_empty_chunks(emulator: EmulatorServer) -> None:
    """Zero-length and odd-length PCM chunks are absorbed: samples split across chunks rejoin."""
    pcm = encode_phrase(PHRASE)
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        client = AsyncTcpClient("127.0.0.1", bridge_port(server))
        await client.connect()
        await client.write_event(AudioStart(16000, 2, 1).event())
        await client.write_event(AudioChunk(16000, 2, 1, b"").event())
        for i in range(0, len(pcm), 333):  # odd sizes: every other chunk ends mid-sample
            await client.write_event(AudioChunk(16000, 2, 1, pcm[i : i + 333]).event())
        from wyoming.audio import AudioStop

        from tests.kit.bridge import read_answer

        await client.write_event(AudioStop().event())
        answer = await read_answer(client, until=("transcript",))
        await client.disconnect()
    assert answer.transcript == PHRASE
    assert emulator.sessions[0].audio_bytes_received == len(pcm)


async def test_client_vanishing_mid_stream_releases_the_service_session(
    emulator: EmulatorServer,
) -> None:
    async with running_bridge(bridge_settings(emulator.pulse_url)) as server:
        pcm = encode_phrase(PHRASE)
        client = await start_request(bridge_port(server), pcm)
        await emulator.wait_for_audio(len(pcm) // 2)
        assert emulator.active_sessions == 1
        await client.disconnect()  # gone, without audio-stop
        await emulator.wait_idle(timeout=10)
        assert emulator.active_sessions == 0
        await still_serves(server)


async def test_idle_connections_do_not_block_service(emulator: EmulatorServer) -> None:
    settings = bridge_settings(emulator.lightning_url, max_connections=400)
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        idle = [await asyncio.open_connection("127.0.0.1", port) for _ in range(300)]
        await still_serves(server)
        for _reader, writer in idle:
            writer.close()


async def test_idle_clients_are_disconnected(emulator: EmulatorServer) -> None:
    settings = bridge_settings(emulator.lightning_url, idle_timeout_s=0.3)
    async with running_bridge(settings) as server:
        # Silent before any request: closed without a word.
        answer = await raw_exchange(bridge_port(server), b"")
        assert answer.closed and answer.events == []
        # Silent in the middle of a request: told why.
        start = AudioStart(16000, 2, 1).event()
        from wyoming_lightning.wyoming.wire import encode_event

        answer = await raw_exchange(bridge_port(server), encode_event(start))
        assert answer.error is not None and answer.error.data["code"] == "timeout"
        assert "no event from the client" in answer.error.data["text"]


async def test_connection_limit_refuses_politely(emulator: EmulatorServer) -> None:
    settings = bridge_settings(emulator.lightning_url, max_connections=2)
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
        # A describe round trip on each proves both are being served before the third arrives.
        from wyoming.info import Describe

        from wyoming_lightning.wyoming.wire import encode_event

        for reader, writer in held:
            writer.write(encode_event(Describe().event()))
            await writer.drain()
            assert json.loads(await reader.readline())["type"] == "info"
        answer = await raw_exchange(port, b"")
        assert answer.error is not None and answer.error.data["code"] == "busy"
        for _reader, writer in held:
            writer.close()
            await writer.wait_closed()
        await server.wait_idle()
        await still_serves(server)


async def test_an_early_error_survives_a_client_that_writes_everything_first(
    emulator: EmulatorServer,
) -> None:
    """Home Assistant 2026.2 writes all its audio before it reads: the error must still arrive."""
    from wyoming_lightning.emulator import Fault

    emulator.inject(Fault("refuse-401"), count=1)
    pcm = encode_phrase(PHRASE) + bytes(4 * 32000)  # the refusal comes with ~4 s still to send
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        # Paced like a live microphone (the pacing models the client; it synchronises nothing).
        answer = await transcribe(bridge_port(server), pcm, chunk_ms=100, realtime=True)
        assert answer.error is not None and answer.error.data["code"] == "auth"
        assert answer.closed
        await still_serves(server)
