"""The props of ``python -m benchmarks peers``: the OpenAI-compatible stand-in over real
loopback sockets, the floor, the commands' shape, and the 3.11 port of wyoming-openai.

The peers themselves run only in the benchmark (their venv is built from PyPI)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest
from websockets.asyncio.client import connect

from benchmarks.harness import CHUNK_S, HA_STOP_AFTER_S, floor_ms
from benchmarks.openai_standin import StandIn
from benchmarks.peer_env import port_source
from benchmarks.peers import SETTLE_MS, SHORT_S, commands
from tests.kit import speech_data as sd

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def stand_in() -> AsyncIterator[tuple[StandIn, int]]:
    prop = StandIn(settle_s=0.0, rtt_s=0.0, text="lights on")
    server = await asyncio.start_server(prop.connection, "127.0.0.1", 0)
    async with server:
        yield prop, server.sockets[0].getsockname()[1]


async def _post(port: int, path: str, body: bytes, *, chunked: bool = False) -> tuple[str, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if chunked:
        framing = b"transfer-encoding: chunked\r\n\r\n"
        payload = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    else:
        framing = b"content-length: %d\r\n\r\n" % len(body)
        payload = body
    writer.write(b"POST %s HTTP/1.1\r\nhost: x\r\n" % path.encode() + framing + payload)
    head = await reader.readuntil(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    answer = await reader.readexactly(length)
    writer.close()
    await writer.wait_closed()
    return head.decode().split("\r\n")[0], answer


async def test_the_batch_endpoint_answers_its_fixed_text(stand_in: tuple[StandIn, int]) -> None:
    prop, port = stand_in
    status, body = await _post(port, "/v1/audio/transcriptions", b"--b\r\naudio\r\n--b--")
    assert status == "HTTP/1.1 200 OK"
    assert json.loads(body) == {"text": "lights on"}
    status, _ = await _post(port, "/v1/audio/transcriptions", b"x" * 5000, chunked=True)
    assert status == "HTTP/1.1 200 OK"
    assert prop.requests == 2


async def test_other_paths_are_refused(stand_in: tuple[StandIn, int]) -> None:
    status, body = await _post(stand_in[1], "/v1/chat/completions", b"{}")
    assert status.startswith("HTTP/1.1 404") and "no POST" in json.loads(body)["error"]["message"]


async def test_the_realtime_socket_answers_a_commit(stand_in: tuple[StandIn, int]) -> None:
    prop, port = stand_in
    async with connect(f"ws://127.0.0.1:{port}/v1/realtime?intent=transcription") as ws:
        assert json.loads(await ws.recv())["type"] == "session.created"
        await ws.send(json.dumps({"type": "session.update", "session": {"type": "transcription"}}))
        assert json.loads(await ws.recv())["type"] == "session.updated"
        await ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": "AAAA"}))
        await ws.send(json.dumps({"type": "input_audio_buffer.commit"}))
        done = json.loads(await ws.recv())
    assert done["type"] == "conversation.item.input_audio_transcription.completed"
    assert done["transcript"] == "lights on" and prop.requests == 1


def test_the_floor() -> None:
    assert floor_ms(200, 0, SETTLE_MS) == 100
    assert floor_ms(200, 150, SETTLE_MS) == 250
    assert floor_ms(700, 50, SETTLE_MS) == 650, "a design that acts at audio-stop waits C + R"
    assert floor_ms(0, 0, 100) == 0


def test_commands_stop_as_home_assistant_does() -> None:
    work = commands()
    assert {c.kind for c in work} == {"long", "short"}
    for command in work:
        assert command.script.seconds == pytest.approx(
            command.speech_end_s + HA_STOP_AFTER_S, abs=CHUNK_S
        )
        if command.kind == "short":
            assert SHORT_S[0] <= command.speech_s <= SHORT_S[1] + 0.01
    longs = [c.speech_s for c in work if c.kind == "long"]
    assert min(longs) > SHORT_S[1]
    assert len(longs) == len(sd.load_speech())


def test_the_port_rewrites_only_generic_signatures() -> None:
    source = "def parser[E: Enum](kind: type[E]) -> E:\n    return kind\n"
    ported = port_source(source)
    assert ported.startswith("from __future__ import annotations\n")
    assert "def parser(kind: type[E]) -> E:" in ported
    compile(ported, "utilities.py", "exec")  # valid on 3.11, where the original is not
    method = "    def task[T](self, coro: Coroutine[Any, Any, T]) -> Task[T]:\n        ...\n"
    assert "    def task(self, coro: Coroutine[Any, Any, T]) -> Task[T]:" in port_source(method)
    plain = "def plain(x: list[int]) -> int:\n    return x[0]\n"
    assert port_source(plain) == plain
