"""One Wyoming request, the way Home Assistant makes it, reading the answer while it sends."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass, field
from typing import Any

from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.event import Event

from wyoming_lightning.core.audio import PcmFormat
from wyoming_lightning.settings.cli import describe_failure
from wyoming_lightning.transcribe_cli.progress import Progress
from wyoming_lightning.transcribe_cli.status import EXIT_SERVER, ClientError
from wyoming_lightning.wyoming.client import wyoming_client


@dataclass
class Outcome:
    """What the server answered."""

    text: str | None = None
    language: str | None = None
    error_text: str | None = None
    error_code: str | None = None
    partials: list[str] = field(default_factory=list)


async def _read_answer(client: AsyncClient, progress: Progress, outcome: Outcome) -> None:
    while True:
        event = await client.read_event()
        if event is None:
            return
        data: dict[str, Any] = event.data or {}
        if event.type == "transcript-chunk":
            text = str(data.get("text") or "")
            outcome.partials.append(text)
            progress.partial(text)
        elif event.type == "transcript":
            outcome.text = str(data.get("text") or "")
            language = data.get("language")
            outcome.language = str(language) if language else None
            return
        elif event.type == "error":
            outcome.error_text = str(data.get("text") or "error")
            code = data.get("code")
            outcome.error_code = str(code) if code else None
            return


def _connect(uri: str) -> AsyncClient:
    try:
        return wyoming_client(uri)
    except ValueError as err:
        raise ClientError(f"bad --uri: {err}") from None


async def transcribe(
    uri: str,
    fmt: PcmFormat,
    blocks: AsyncIterable[bytes],
    *,
    language: str | None,
    progress: Progress,
    timeout_s: float,
    describe_stop: Callable[[], str] = lambda: "",
) -> Outcome:
    """One request: send ``blocks`` while reading the answer; stop sending on an early answer."""
    client = _connect(uri)
    try:
        await client.connect()
    except OSError as err:
        raise ClientError(f"cannot connect to {uri}: {describe_failure(err)}") from None
    outcome = Outcome()
    reader = asyncio.create_task(_read_answer(client, progress, outcome))
    try:
        events: list[Event] = [
            Transcribe(language=language).event(),
            AudioStart(rate=fmt.rate, width=fmt.width, channels=fmt.channels).event(),
        ]
        for event in events:
            await client.write_event(event)
        bytes_per_s = fmt.rate * fmt.frame_bytes
        stopped_early = False
        async for block in blocks:
            if reader.done():
                stopped_early = True
                break
            chunk = AudioChunk(rate=fmt.rate, width=fmt.width, channels=fmt.channels, audio=block)
            await client.write_event(chunk.event())
            progress.audio(len(block) / bytes_per_s)
        if not stopped_early:
            await client.write_event(AudioStop().event())
        early = "the server answered early" if outcome.text or outcome.error_text else "cut off"
        progress.audio_done(early if stopped_early else describe_stop())
    except (ConnectionError, OSError):
        # The server hung up while we were sending; its reason, if any, is in the answer.
        pass
    try:
        async with asyncio.timeout(timeout_s):
            await reader
    except TimeoutError:
        raise ClientError(f"no transcript from {uri} within {timeout_s:g} s", EXIT_SERVER) from None
    except (ConnectionError, OSError) as err:
        raise ClientError(
            f"connection to {uri} lost: {describe_failure(err)}", EXIT_SERVER
        ) from None
    finally:
        reader.cancel()
        with contextlib.suppress(BaseException):
            await reader
        with contextlib.suppress(Exception):
            await client.disconnect()
    return outcome
