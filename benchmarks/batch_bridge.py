"""The batch design, for comparison: buffer the request, upload it all after ``audio-stop``.

This is how most Wyoming bridges to a cloud service work: audio is collected while the user
speaks and only at ``audio-stop`` is the WebSocket opened, every byte sent, ``end`` sent, and
``is_last`` awaited. The wait after ``audio-stop`` therefore holds the handshake, the upload
and the whole of the service's finalization.

``python -m benchmarks.batch_bridge --port N --lightning-url ws://HOST:PORT/api/v1/lightning/
get_text`` (key from ``SMALLEST_API_KEY``). 16 kHz mono 16-bit audio only; no VAD, no retries:
it is a yardstick, not a product.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
from collections.abc import Sequence
from urllib.parse import urlencode

from websockets.asyncio.client import connect
from wyoming.asr import Transcript
from wyoming.audio import AudioChunk, AudioStop
from wyoming.error import Error
from wyoming.event import async_read_event, async_write_event

from wyoming_lightning.core.pipeline_format import SAMPLE_RATE

FRAME_BYTES = 4096  # the service's recommended frame: 128 ms of 16 kHz 16-bit mono
QUERY = {"language": "en", "encoding": "linear16", "sample_rate": str(SAMPLE_RATE)}


async def transcribe(url: str, key: str, pcm: bytes) -> str:
    """Open a session, upload ``pcm``, send ``end``, join the finals until ``is_last``."""
    finals: list[str] = []
    async with connect(
        f"{url}?{urlencode(QUERY)}",
        additional_headers={"Authorization": f"Bearer {key}"},
        compression=None,
        open_timeout=10,
    ) as ws:
        for offset in range(0, len(pcm), FRAME_BYTES):
            await ws.send(pcm[offset : offset + FRAME_BYTES])
        await ws.send(json.dumps({"type": "end"}))
        async with asyncio.timeout(30):
            async for frame in ws:
                message = json.loads(frame)
                text = str(message.get("transcript") or "").strip()
                if message.get("is_final") and text:
                    finals.append(text)
                if message.get("is_last"):
                    break
    return " ".join(finals)


async def handle(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, url: str, key: str
) -> None:
    audio = bytearray()
    try:
        while (event := await async_read_event(reader)) is not None:
            if AudioChunk.is_type(event.type):
                audio += AudioChunk.from_event(event).audio
            elif AudioStop.is_type(event.type):
                try:
                    text = await transcribe(url, key, bytes(audio))
                    await async_write_event(Transcript(text=text).event(), writer)
                except (OSError, TimeoutError, ValueError) as err:
                    await async_write_event(Error(text=f"{type(err).__name__}").event(), writer)
                break
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def serve(port: int, url: str, key: str) -> None:
    server = await asyncio.start_server(
        lambda r, w: handle(r, w, url, key), "127.0.0.1", port, limit=1 << 20
    )
    async with server:
        await server.serve_forever()


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.batch_bridge")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--lightning-url", required=True)
    args = parser.parse_args(argv)
    key = os.environ.get("SMALLEST_API_KEY", "")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.lightning_url, key))


if __name__ == "__main__":
    main()
