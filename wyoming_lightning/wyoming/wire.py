"""Reading and writing Wyoming events with limits a hostile or broken client cannot get past.

The ``wyoming`` library's reader trusts ``data_length`` and ``payload_length`` and tries to read
whatever they claim. Here every length is checked against a cap before a byte is allocated, and
every malformation becomes a :class:`WireError` with a message a client can be sent.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from typing import Any

from wyoming.event import Event

MAX_HEADER_BYTES = 64 * 1024
MAX_DATA_BYTES = 256 * 1024
# One second of the widest audio we accept (48 kHz x 4 bytes x 8 channels) is 1.5 MB.
MAX_PAYLOAD_BYTES = 2 * 1024 * 1024
MAX_TYPE_CHARS = 64
PROTOCOL_VERSION = "1.10.2"
MAX_NESTING = 32
"""JSON nesting a header or its data may have. Wyoming's events are two or three levels deep;
the JSON parser recurses once per level and a few thousand ``[`` raise ``RecursionError``, so
the depth is measured on the bytes before they are parsed."""
_JSON_TOKENS = re.compile(rb'\\.|["\[\]{}]', re.DOTALL)

FIELD_TYPES: dict[str, dict[str, str]] = {
    "transcribe": {
        "name": "string",
        "language": "string",
        "context": "object",
        "vad_sensitivity": "string",
        "transcript_names": "list of strings",
        "transcript_terms": "list of strings",
    },
    "ping": {"text": "string"},
    "select-program": {"name": "string"},
}
"""The types of the fields this server reads, by event type. A field of another type (a list
of numbers where names go, an object where a language goes) is the client's error, told as
``bad_request`` here at the edge, never an exception deep inside a request. ``None`` (JSON
``null``) stands for an absent field, as the ``wyoming`` library writes it. The audio events'
fields are checked by the handler, which answers ``bad_audio``."""
_IS: dict[str, Callable[[object], bool]] = {
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "list of strings": lambda v: isinstance(v, list) and all(isinstance(i, str) for i in v),
}


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


def nesting_depth(raw: bytes) -> int:
    """How deeply the JSON text ``raw`` nests arrays and objects, without parsing it.

    Brackets inside strings (escapes included) do not count. Text that is not JSON gets some
    number; the parser then rejects it.
    """
    if raw.count(b"[") + raw.count(b"{") <= MAX_NESTING:
        return 0  # cannot nest deeper than there are openers: the common case, at C speed
    depth = deepest = 0
    in_string = False
    for match in _JSON_TOKENS.finditer(raw):
        token = match.group()
        if token == b'"':
            in_string = not in_string
        elif in_string or len(token) == 2:
            continue
        elif token in (b"[", b"{"):
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def _parse_object(raw: bytes, what: str) -> dict[str, Any]:
    if nesting_depth(raw) > MAX_NESTING:
        raise WireError(f"event {what} nests deeper than {MAX_NESTING} levels")
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise WireError(f"event {what} is not valid JSON") from err
    if not isinstance(value, dict):
        raise WireError(f"event {what} is not a JSON object")
    return value


def check_fields(event_type: str, data: dict[str, Any]) -> None:
    """Raise WireError when a field this server reads has the wrong type (see FIELD_TYPES)."""
    for name, kind in FIELD_TYPES.get(event_type, {}).items():
        value = data.get(name)
        if value is not None and not _IS[kind](value):
            raise WireError(f"{event_type}: {name} must be a {kind}")


class Memo:
    """The last header line and data text one connection sent, parsed and checked.

    A stream of audio repeats one header and one data text a hundred times a second
    (``audio-chunk``, the same lengths, the same format); parsing and checking them again
    was a third of the per-chunk cost. A repeat of the bytes last seen reuses what they
    parsed to (the data as a fresh copy, since an event's data is the reader's to change);
    anything else is parsed and checked in full. Only data whose values are all scalars is
    kept (a shallow copy of it is a whole one). One per connection.
    """

    __slots__ = ("data", "data_text", "header", "line")

    def __init__(self) -> None:
        self.line = b""
        self.header: tuple[str, dict[str, Any], int, int] | None = None
        self.data_text = b""
        self.data: dict[str, Any] | None = None


async def read_event(reader: asyncio.StreamReader, memo: Memo | None = None) -> Event | None:
    """The next event, or None at a clean end of stream. Raises WireError on bad input.

    One event from a stream, for a caller that reads a single one (a refused client's only
    event); a connection that is served reads through :class:`Decoder`, which this is the
    reference for (tests/core/test_wire_decoder.py). ``memo``: the connection's :class:`Memo`.
    """
    first = await reader.read(1)
    if not first:
        return None
    return await _read_rest(reader, first, memo)


def _flat(data: dict[str, Any]) -> bool:
    """No value in ``data`` can be changed in place: a copy of the dict is a copy of it all."""
    return all(v is None or isinstance(v, str | int | float) for v in data.values())


def _parse_header(line: bytes) -> tuple[str, dict[str, Any], int, int]:
    """A header line's type, inline data, data length and payload length, checked."""
    header = _parse_object(line, "header")
    event_type = header.get("type")
    if not isinstance(event_type, str) or not event_type:
        raise WireError("event header has no type")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise WireError("event data is not a JSON object")
    if len(event_type) > MAX_TYPE_CHARS:
        raise WireError(f"event type longer than {MAX_TYPE_CHARS} characters")
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
    return event_type, data, data_length, payload_length


def _header_of(line: bytes, memo: Memo | None) -> tuple[str, dict[str, Any], int, int]:
    """A header line checked, through the memo when it repeats the last one."""
    if memo is not None and memo.header is not None and line == memo.line:
        return memo.header
    header = _parse_header(line)
    if memo is not None and _flat(header[1]):
        memo.line, memo.header = line, header
    return header


def _event_of(
    event_type: str, inline: dict[str, Any], text: bytes, payload: bytes | None, memo: Memo | None
) -> Event:
    """The event of a checked header, its data text and its payload."""
    data = dict(inline) if inline else {}
    if text:
        if memo is not None and memo.data is not None and text == memo.data_text:
            data.update(memo.data)
        else:
            parsed = _parse_object(text, "data")
            data.update(parsed)
            if memo is not None and _flat(parsed):
                memo.data_text, memo.data = text, parsed
    if event_type in FIELD_TYPES:  # not audio: nothing to check in a chunk's data
        check_fields(event_type, data)
    return Event(type=event_type, data=data, payload=payload)


async def _read_rest(
    reader: asyncio.StreamReader, first: bytes, memo: Memo | None = None
) -> Event | None:
    try:
        line = first if first == b"\n" else first + await reader.readline()
    except (asyncio.LimitOverrunError, ValueError) as err:
        raise WireError(_HEADER_TOO_LONG) from err
    if not line.endswith(b"\n"):
        return None  # the client went away mid-line
    event_type, inline, data_length, payload_length = _header_of(line, memo)
    try:
        text = await reader.readexactly(data_length) if data_length else b""
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None  # the client went away mid-event
    return _event_of(event_type, inline, text, payload, memo)


_HEADER_TOO_LONG = f"event header longer than {MAX_HEADER_BYTES} bytes"


class Decoder:
    """Wyoming events from the bytes of one connection as they arrive (sans-I/O).

    The adapter reads whatever the socket holds and feeds it here, and gets every event it
    completes, checked exactly as :func:`read_event` checks one (the same limits, the same
    :class:`WireError` messages, the connection's :class:`Memo`). Reading an event through
    ``StreamReader`` took a read per part and four coroutine frames, per audio chunk; here a
    chunk is a few slices of bytes, and the chunks that arrived together are decoded together.

    An error does not discard the events before it: they are returned, and the error waits in
    :attr:`error` (nothing more is decoded after it), so the caller answers them first.
    """

    __slots__ = ("_need", "_parts", "_size", "error", "memo")

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        """The bytes of an event begun and not complete, as they came (joined once, when it
        is: an event of 2 MB arriving in small reads is not copied at every read)."""
        self._size = 0
        self._need = 0
        """The length of the pending event, once its header is whole (else 0)."""
        self.memo = Memo()
        self.error: WireError | None = None

    @property
    def pending(self) -> bool:
        """Part of an event has arrived and not the rest."""
        return self._size > 0

    def feed(self, data: bytes) -> list[Event]:
        """The events ``data`` completes, in order; see :attr:`error`."""
        if self.error is not None or not data:
            return []
        if self._parts:
            self._parts.append(data)
            self._size += len(data)
            if self._size < self._need:
                return []
            if not self._need and b"\n" not in data:  # still in the header line
                if self._size - 1 > MAX_HEADER_BYTES:
                    self.error = WireError(_HEADER_TOO_LONG)
                    self._parts, self._size = [], 0
                return []
            buf = b"".join(self._parts)
            self._parts, self._size, self._need = [], 0, 0
        else:
            buf = data
        events: list[Event] = []
        memo = self.memo
        pos, size = 0, len(buf)
        need = 0
        try:
            while pos < size:
                newline = buf.find(b"\n", pos)
                # As StreamReader.readline with limit=MAX_HEADER_BYTES after the first byte.
                if newline - pos - 1 > MAX_HEADER_BYTES or (
                    newline == -1 and size - pos - 1 > MAX_HEADER_BYTES
                ):
                    raise WireError(_HEADER_TOO_LONG)
                if newline == -1:
                    break
                event_type, inline, data_length, payload_length = _header_of(
                    buf[pos : newline + 1], memo
                )
                start = newline + 1
                end = start + data_length + payload_length
                if end > size:
                    need = end - pos
                    break
                middle = start + data_length
                text = buf[start:middle]
                payload = buf[middle:end] if payload_length else None
                events.append(_event_of(event_type, inline, text, payload, memo))
                pos = end
        except WireError as err:
            self.error = err
            pos = size
        if pos < size:
            self._parts, self._size, self._need = [buf[pos:]], size - pos, need
        return events


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
