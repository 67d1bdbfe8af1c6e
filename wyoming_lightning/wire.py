"""Reading and writing Wyoming events with limits a hostile or broken client cannot get past.

The ``wyoming`` library's reader trusts ``data_length`` and ``payload_length`` and tries to read
whatever they claim. Here every length is checked against a cap before a byte is allocated, and
every malformation becomes a :class:`WireError` with a message a client can be sent.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from wyoming.event import Event

MAX_HEADER_BYTES = 64 * 1024
MAX_DATA_BYTES = 256 * 1024
# One second of the widest audio we accept (48 kHz x 4 bytes x 8 channels) is 1.5 MB.
MAX_PAYLOAD_BYTES = 2 * 1024 * 1024
PROTOCOL_VERSION = "1.10.2"


class WireError(Exception):
    """The client sent something that is not a well-formed Wyoming event."""


def _length(header: dict[str, Any], key: str, cap: int) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise WireError(f"{key} must be a non-negative integer")
    if value > cap:
        raise WireError(f"{key} {value} is over the limit of {cap} bytes")
    return value


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event, or None at a clean end of stream. Raises WireError on bad input."""
    try:
        line = await reader.readline()
    except (asyncio.LimitOverrunError, ValueError) as err:
        raise WireError(f"event header longer than {MAX_HEADER_BYTES} bytes") from err
    if not line:
        return None
    if not line.endswith(b"\n"):
        return None  # the client went away mid-line
    try:
        header = json.loads(line)
    except ValueError as err:
        raise WireError("event header is not valid JSON") from err
    if not isinstance(header, dict):
        raise WireError("event header is not a JSON object")
    event_type = header.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise WireError("event header has no type")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise WireError("event data is not a JSON object")
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
    try:
        if data_length:
            extra = json.loads(await reader.readexactly(data_length))
            if not isinstance(extra, dict):
                raise WireError("event data is not a JSON object")
            data.update(extra)
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None  # the client went away mid-event
    except ValueError as err:
        raise WireError("event data is not valid JSON") from err
    return Event(type=event_type, data=data, payload=payload)


def encode_event(event: Event) -> bytes:
    """The bytes of one event, as the ``wyoming`` library writes them."""
    header: dict[str, Any] = {"type": event.type, "version": PROTOCOL_VERSION}
    data_bytes = b""
    if event.data:
        data_bytes = json.dumps(event.data, ensure_ascii=False).encode("utf-8")
        header["data_length"] = len(data_bytes)
    payload = event.payload or b""
    if payload:
        header["payload_length"] = len(payload)
    line = json.dumps(header, ensure_ascii=False).encode("utf-8") + b"\n"
    return line + data_bytes + payload
