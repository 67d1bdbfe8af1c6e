"""A plain WebSocket client's view of the emulator, shared by the emulator's own tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection

GUARD = 10.0  # seconds; only turns a hang into a failure, never decides a pass


async def read_json(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(GUARD):
        message: dict[str, Any] = json.loads(await ws.recv())
        return message


async def read_until_final(ws: ClientConnection) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    while not messages or not messages[-1].get("is_final"):
        messages.append(await read_json(ws))
    return messages
