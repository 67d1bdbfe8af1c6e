"""The sans-I/O Wyoming decoder (issue 27) reads exactly what ``read_event`` reads.

The handler reads whatever the socket holds and decodes every event that arrived together;
``read_event`` (a ``StreamReader`` read per part) is the reference: the same events from the
same bytes however they are split, the same ``WireError`` for the same bad input, and the
events before a bad one still delivered. The handler over real sockets, with its hostile
clients, is tested in tests/bridge/test_hostile.py.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from wyoming.event import Event

from wyoming_lightning.wyoming.wire import (
    MAX_DATA_BYTES,
    MAX_HEADER_BYTES,
    MAX_NESTING,
    Decoder,
    WireError,
    encode_event,
    read_event,
)

FMT = {"rate": 16000, "width": 2, "channels": 1}


def _stream(raw: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=MAX_HEADER_BYTES)  # as server.py opens them
    reader.feed_data(raw)
    reader.feed_eof()
    return reader


async def _reference(raw: bytes) -> tuple[list[Event], str | None]:
    """What ``read_event`` makes of ``raw``: its events, and its error if one came."""
    reader = _stream(raw)
    events: list[Event] = []
    try:
        while (event := await read_event(reader)) is not None:
            events.append(event)
    except WireError as err:
        return events, str(err)
    return events, None


def _decode(raw: bytes, cuts: list[int]) -> tuple[list[Event], str | None]:
    decoder = Decoder()
    events: list[Event] = []
    for start, end in zip([0, *cuts], [*cuts, len(raw)], strict=True):
        events += decoder.feed(raw[start:end])
    return events, None if decoder.error is None else str(decoder.error)


def _request() -> bytes:
    events = [
        Event("describe"),
        Event("transcribe", {"language": "en", "transcript_names": ["Kitchen Lamp"]}),
        Event("audio-start", FMT),
        *(Event("audio-chunk", FMT, bytes([i]) * 320) for i in range(6)),
        Event("audio-chunk", {"rate": 8000, "width": 2, "channels": 1}, b"\x05\x00" * 80),
        Event("audio-chunk", FMT, b""),
        Event("audio-stop"),
    ]
    return b"".join(encode_event(e) for e in events)


def _same(got: list[Event], expected: list[Event]) -> None:
    assert [(e.type, e.data, e.payload) for e in got] == [
        (e.type, e.data, e.payload) for e in expected
    ]


@pytest.mark.parametrize("seed", range(4))
async def test_the_events_of_a_request_split_anywhere_are_the_reference_ones(seed: int) -> None:
    raw = _request()
    expected, error = await _reference(raw)
    assert error is None and len(expected) == 12
    rng = random.Random(seed)
    for every_byte in (False, True):
        cuts = list(range(1, len(raw))) if every_byte and seed == 0 else []
        cuts = cuts or sorted(rng.sample(range(1, len(raw)), rng.randint(1, 40)))
        got, error = _decode(raw, cuts)
        assert error is None
        _same(got, expected)


def test_a_partial_event_is_pending_until_its_last_byte() -> None:
    raw = encode_event(Event("audio-chunk", FMT, b"\x01\x00" * 160))
    decoder = Decoder()
    assert decoder.feed(raw[:-1]) == [] and decoder.pending
    (event,) = decoder.feed(raw[-1:])
    assert event.payload == b"\x01\x00" * 160 and not decoder.pending


def test_events_are_the_readers_to_change() -> None:
    chunk = encode_event(Event("audio-chunk", FMT, b"\x00\x00"))
    first, second = Decoder().feed(chunk + chunk)
    first.data["rate"] = 1
    assert second.data == FMT


BAD = {
    "header not JSON": b"{nope\n",
    "empty line": b"\n",
    "no type": b'{"data": {}}\n',
    "data not an object": b'{"type": "x", "data": [1]}\n',
    "long type": b'{"type": "' + b"t" * 100 + b'"}\n',
    "negative length": b'{"type": "x", "data_length": -1}\n',
    "length not an int": b'{"type": "x", "payload_length": "9"}\n',
    "data over the cap": b'{"type": "x", "data_length": %d}\n' % (MAX_DATA_BYTES + 1),
    "deep header": b'{"type": "x", "data": '
    + b"[" * (MAX_NESTING + 1)
    + b"]" * (MAX_NESTING + 1)
    + b"}\n",
    "data text not JSON": b'{"type": "x", "data_length": 3}\nabc',
    "data text not an object": b'{"type": "x", "data_length": 3}\n[1]',
    "wrong field type": encode_event(Event("transcribe", {"language": ["en"]})),
    "header too long": b'{"type": "' + b"x" * (MAX_HEADER_BYTES + 10) + b'"}\n',
    "header too long, no end": b'{"type": "' + b"x" * (MAX_HEADER_BYTES + 10),
}


@pytest.mark.parametrize("name", sorted(BAD))
async def test_bad_input_is_the_same_error_after_the_same_good_events(name: str) -> None:
    raw = encode_event(Event("describe")) + encode_event(Event("audio-start", FMT)) + BAD[name]
    raw += encode_event(Event("audio-stop"))  # never reached: nothing is read past an error
    expected, error = await _reference(raw)
    assert error is not None and len(expected) == 2
    for cuts in ([], [len(raw) // 3, len(raw) // 2], list(range(1, len(raw), 4096))):
        got, got_error = _decode(raw, cuts)
        assert got_error == error
        _same(got, expected)


@pytest.mark.parametrize("extra", [0, 1, 2])
async def test_the_header_limit_is_the_stream_readers(extra: int) -> None:
    """Around the limit: a header line exactly as long as ``readline`` allows, and longer."""
    filler = MAX_HEADER_BYTES - len(b'{"type": "x", "data": {"f": ""}}') + extra
    raw = b'{"type": "x", "data": {"f": "' + b"y" * filler + b'"}}\n'
    expected, error = await _reference(raw)
    got, got_error = _decode(raw, [])
    assert got_error == error
    _same(got, expected)


def test_nothing_is_decoded_after_an_error() -> None:
    decoder = Decoder()
    assert decoder.feed(b"{nope\n") == []
    assert decoder.error is not None
    assert decoder.feed(encode_event(Event("describe"))) == []


async def test_a_large_event_in_small_reads_is_the_reference_one() -> None:
    """A 2 MB payload (the cap) in 1 KiB reads, and a header at the limit a byte at a time."""
    big = encode_event(Event("audio-chunk", FMT, bytes(range(256)) * 8192))
    expected, error = await _reference(big)
    assert error is None
    decoder = Decoder()
    got: list[Event] = []
    for start in range(0, len(big), 1024):
        assert not got
        got += decoder.feed(big[start : start + 1024])
    _same(got, expected)
    assert not decoder.pending


def test_a_header_dribbled_a_byte_at_a_time_is_refused_past_the_limit() -> None:
    decoder = Decoder()
    header = b'{"type": "' + b"x" * (MAX_HEADER_BYTES + 10)
    for i in range(len(header)):
        decoder.feed(header[i : i + 1])
        if decoder.error is not None:
            break
    assert str(decoder.error) == f"event header longer than {MAX_HEADER_BYTES} bytes"
    assert i == MAX_HEADER_BYTES + 1  # the first byte past what readline allows
