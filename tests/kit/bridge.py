"""Test harness: a real bridge on loopback and a client that drives it as Home Assistant does.

Nothing is mocked: the bridge listens on a real socket, talks to the emulator over a real
WebSocket, and the client is the ``wyoming`` library's own ``AsyncTcpClient``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import re
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info

from wyoming_lightning.services import Services
from wyoming_lightning.settings.config import Secret, Settings
from wyoming_lightning.wyoming.server import WyomingServer

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
        api_key=Secret(API_KEY),
        vad="off",
        # A socket per request, as these tests were written for: warm sessions (the server's
        # default) have their own tests in test_warm_sessions.py, which turn them on.
        session_idle_timeout_s=0.0,
        # A split stays a split, its text streamed as it settles, as these tests were written
        # for: a rejoin (the server's default) has its own tests, which turn it on.
        rejoin=False,
    )
    return dataclasses.replace(base, **overrides)  # type: ignore[arg-type]


@contextlib.asynccontextmanager
async def running_bridge(settings: Settings) -> AsyncIterator[WyomingServer]:
    async with serving(Services(settings)) as server:
        yield server


@contextlib.asynccontextmanager
async def serving(services: Services) -> AsyncIterator[WyomingServer]:
    """``running_bridge`` for services a test built itself (a guard with a fake clock, say)."""
    server = WyomingServer(services)
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


async def read_raw_answer(reader: asyncio.StreamReader) -> Answer:
    """Every event the server writes on a raw socket, until it closes the connection (for a
    client that writes bytes no Wyoming client would)."""
    answer = Answer()
    while True:
        line = await reader.readline()
        if not line:
            answer.closed = True
            return answer
        header = json.loads(line)
        data_length = header.get("data_length") or 0
        extra = json.loads(await reader.readexactly(data_length)) if data_length else {}
        payload_length = header.get("payload_length") or 0
        if payload_length:
            await reader.readexactly(payload_length)
        answer.events.append(Event(header["type"], {**header.get("data", {}), **extra}))


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


async def describe(port: int) -> Info:
    """Ask ``describe`` on a fresh connection, as Home Assistant does when it adds a server."""
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    try:
        await client.write_event(Describe().event())
        event = await client.read_event()
        assert event is not None and event.type == "info", event
        return Info.from_event(event)
    finally:
        await client.disconnect()


async def start_request(
    port: int, pcm: bytes, transcribe_event: Transcribe | None = None
) -> AsyncTcpClient:
    """Open a request and send its audio in 10 ms chunks, without audio-stop: the caller goes on."""
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    await client.write_event((transcribe_event or Transcribe(language="en")).event())
    await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
    for i in range(0, len(pcm), 320):
        await client.write_event(AudioChunk(16000, 2, 1, pcm[i : i + 320]).event())
    return client


class ServerProcess:
    """A running ``python -m wyoming_lightning`` and everything it has logged so far."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.log: list[str] = []
        self.port = 0

    async def read_until(self, pattern: str, timeout: float = 60.0) -> re.Match[str]:
        assert self.proc.stderr is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.proc.stderr.readline()
                if not raw:
                    raise AssertionError("the server exited; log:\n" + "".join(self.log))
                text = raw.decode()
                self.log.append(text)
                found = re.search(pattern, text)
                if found:
                    return found

    async def finish(self) -> int:
        """Wait for the exit (after a signal), keeping the rest of the log."""
        assert self.proc.stderr is not None
        rest = await self.proc.stderr.read()
        self.log.append(rest.decode())
        return await self.proc.wait()


def clean_env(key: str | None) -> dict[str, str]:
    """The environment without our own settings, plus the API key if one is given."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTNING_", "SMALLEST_"))}
    if key is not None:
        env["SMALLEST_API_KEY"] = key
    return env


@contextlib.asynccontextmanager
async def server_process(*args: str, key: str | None = API_KEY) -> AsyncIterator[ServerProcess]:
    """The server as a user runs it, on a port the kernel picks (read back from its log)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "wyoming_lightning",
        "--uri",
        "tcp://127.0.0.1:0",
        *args,
        env=clean_env(key),
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    process = ServerProcess(proc)
    try:
        found = await process.read_until(r"listening on tcp://127\.0\.0\.1:(\d+)")
        process.port = int(found.group(1))
        yield process
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
