"""A stand-in for an OpenAI-compatible speech-to-text service, so that peers can be timed.

``python -m benchmarks.openai_standin --port N [--settle-ms 600] [--rtt-ms 0] [--text T]``

A benchmark prop, not product: it answers only what ``wyoming-openai`` asks of a service, with
the same timing model as the emulator gives the bridge (a cloud that takes ``settle-ms`` from
the end of the audio to its answer, and ``rtt-ms`` of network round trip), and always the same
text: only the time matters here. On one port, as the OpenAI client expects:

- ``POST /v1/audio/transcriptions`` (batch): answered ``{"text": T}`` ``settle + rtt`` after
  the last byte of the upload arrived; a new TCP connection first costs one round trip;
- ``GET /v1/realtime?intent=transcription`` (the Realtime WebSocket): the upgrade is answered
  after two round trips (TCP, then the upgrade, as the emulator does), every message the
  server sends waits one round trip, and ``input_audio_buffer.commit`` is answered with
  ``conversation.item.input_audio_transcription.completed`` ``settle + rtt`` later.

The upload's transfer time over a real network is not modelled (loopback): that favours the
batch peer. Plain asyncio for HTTP, the ``websockets`` Sans-I/O protocol for the WebSocket.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections.abc import Sequence
from typing import Any

from websockets.frames import Frame, Opcode
from websockets.http11 import Request
from websockets.server import ServerProtocol

DEFAULT_TEXT = "turn on the kitchen lights"
MAX_BODY = 64 * 1024 * 1024


class StandIn:
    def __init__(self, settle_s: float, rtt_s: float, text: str) -> None:
        self.settle_s = settle_s
        self.rtt_s = rtt_s
        self.text = text
        self.requests = 0

    async def connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await asyncio.sleep(self.rtt_s)  # the TCP handshake
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    return
                method, path, headers = _parse_head(head)
                if headers.get("upgrade", "").lower() == "websocket":
                    await self._realtime(head, reader, writer)
                    return
                body = await _read_body(reader, headers)
                if method == "POST" and path.split("?")[0].endswith("/audio/transcriptions"):
                    self.requests += 1
                    await asyncio.sleep(self.settle_s + self.rtt_s)
                    _respond(writer, 200, {"text": self.text})
                else:
                    _respond(writer, 404, {"error": {"message": f"no {method} {path} here"}})
                del body
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    return
        except (OSError, ValueError, asyncio.LimitOverrunError):
            return
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _realtime(
        self, head: bytes, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        protocol = ServerProtocol()
        protocol.receive_data(head)
        (request,) = (e for e in protocol.events_received() if isinstance(e, Request))
        await asyncio.sleep(self.rtt_s)  # the upgrade's round trip (TCP's was paid already)
        protocol.send_response(protocol.accept(request))
        writer.write(b"".join(protocol.data_to_send()))
        lock = asyncio.Lock()
        pending: set[asyncio.Task[None]] = set()

        async def send_later(message: dict[str, Any], delay: float) -> None:
            await asyncio.sleep(delay)
            async with lock:
                protocol.send_text(json.dumps(message).encode())
                writer.write(b"".join(protocol.data_to_send()))

        def send(message: dict[str, Any], delay: float) -> None:
            task = asyncio.get_running_loop().create_task(send_later(message, delay))
            pending.add(task)
            task.add_done_callback(pending.discard)

        send({"type": "session.created", "session": {"type": "transcription"}}, self.rtt_s)
        item = 0
        while True:
            data = await reader.read(65536)
            if data:
                protocol.receive_data(data)
            else:
                protocol.receive_eof()
            for event in protocol.events_received():
                if not isinstance(event, Frame) or event.opcode is not Opcode.TEXT:
                    continue
                message = json.loads(bytes(event.data))
                kind = message.get("type")
                if kind == "session.update":
                    send({"type": "session.updated", "session": message.get("session")}, self.rtt_s)
                elif kind == "input_audio_buffer.commit":
                    item += 1
                    self.requests += 1
                    done = {
                        "type": "conversation.item.input_audio_transcription.completed",
                        "event_id": f"event_{item}",
                        "item_id": f"item_{item}",
                        "content_index": 0,
                        "transcript": self.text,
                    }
                    send(done, self.settle_s + self.rtt_s)
            async with lock:
                writer.write(b"".join(protocol.data_to_send()))
            if not data or protocol.close_expected():
                for task in list(pending):
                    task.cancel()
                return


def _parse_head(head: bytes) -> tuple[str, str, dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    method, path, _version = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    return method, path, headers


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append(await reader.readexactly(size))
            await reader.readexactly(2)
    length = int(headers.get("content-length", "0"))
    if length > MAX_BODY:
        raise ValueError("body too large")
    return await reader.readexactly(length)


def _respond(writer: asyncio.StreamWriter, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    reason = "OK" if status == 200 else "Not Found"
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )


async def serve(stand_in: StandIn, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(stand_in.connection, host, port)
    async with server:
        print(f"openai stand-in ready on {host}:{port}", flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.openai_standin")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--settle-ms", type=float, default=600.0)
    parser.add_argument("--rtt-ms", type=float, default=0.0)
    parser.add_argument("--text", default=DEFAULT_TEXT)
    args = parser.parse_args(argv)
    stand_in = StandIn(args.settle_ms / 1000.0, args.rtt_ms / 1000.0, args.text)
    asyncio.run(serve(stand_in, args.host, args.port))


if __name__ == "__main__":
    main()
