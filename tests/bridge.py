"""Test harness: a real bridge on loopback and a client that drives it as Home Assistant does.

Nothing is mocked: the bridge listens on a real socket, talks to the emulator over a real
WebSocket, and the client is the ``wyoming`` library's own ``AsyncTcpClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event

from wyoming_lightning.config import Secret, Settings
from wyoming_lightning.server import WyomingServer
from wyoming_lightning.services import Services

API_KEY = "test-key-3f9a0c"


@dataclass
class Answer:
    """Everything a client received for one request, in order, and whether the server hung up."""

    events: list[Event] = field(default_factory=list)
    closed: bool = False

    def of(self, kind: str) -> list[Event]:
        return [e for e in self.events if e.type == kind]

    @property
    def transcript(self) -> str | None:
        found = self.of("transcript")
        return found[-1].data.get("text") if found else None

    @property
    def error(self) -> Event | None:
        found = self.of("error")
        return found[-1] if found else None

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]


def bridge_settings(service_url: str, **overrides: object) -> Settings:
    base = Settings(
        uri="tcp://127.0.0.1:0",
        service_url=service_url,
        url_fixed=True,
        api_key=Secret(API_KEY),
        vad="off",
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_bridge(settings: Settings) -> AsyncIterator[WyomingServer]:
    server = WyomingServer(Services(settings))
    await server.start()
    task = asyncio.create_task(server.serve())
    try:
        yield server
    finally:
        server.stop()
        await asyncio.wait_for(task, 30)


def bridge_port(server: WyomingServer) -> int:
    return server.sockets[0][1]


async def read_answer(
    client: AsyncTcpClient, until: tuple[str, ...] = ("transcript-stop",)
) -> Answer:
    """Read until the server closes the connection (it does after answering) or a stop event."""
    answer = Answer()
    while True:
        event = await client.read_event()
        if event is None:
            answer.closed = True
            return answer
        answer.events.append(event)
        if event.type in until:
            # The server still closes after the answer; confirm it.
            tail = await client.read_event()
            while tail is not None:
                answer.events.append(tail)
                tail = await client.read_event()
            answer.closed = True
            return answer


async def transcribe(
    port: int,
    pcm: bytes,
    *,
    rate: int = 16000,
    width: int = 2,
    channels: int = 1,
    chunk_ms: int = 10,
    language: str | None = "en",
    transcribe_event: Transcribe | None = None,
    realtime: bool = False,
) -> Answer:
    """Send one request exactly as Home Assistant does: write everything, then read."""
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    try:
        await client.write_event((transcribe_event or Transcribe(language=language)).event())
        await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
        step = max(width * channels, rate * width * channels * chunk_ms // 1000)
        for i in range(0, len(pcm), step):
            chunk = AudioChunk(rate=rate, width=width, channels=channels, audio=pcm[i : i + step])
            await client.write_event(chunk.event())
            if realtime:
                await asyncio.sleep(chunk_ms / 1000)
        await client.write_event(AudioStop().event())
        return await read_answer(client, until=("transcript", "error"))
    finally:
        await client.disconnect()
