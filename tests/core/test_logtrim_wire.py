"""The pure parts of issue 20: the log's rate limiter and clipping, the wire's depth scan and
field types. The servers that use them are tested over sockets in tests/bridge/test_hostile.py."""

from __future__ import annotations

import asyncio
import json
import logging

import pytest
from wyoming.event import Event

from tests.kit.clock import FakeClock
from wyoming_lightning.core.logtrim import LimitedLog, RateLimiter, clip
from wyoming_lightning.wyoming.wire import (
    MAX_NESTING,
    Memo,
    WireError,
    check_fields,
    encode_event,
    nesting_depth,
    read_event,
)


def test_clip_keeps_short_text_and_says_how_long_the_cut_one_was() -> None:
    assert clip("en") == "en"
    assert clip("x" * 64) == "x" * 64
    cut = clip("x" * 250_000)
    assert cut == "x" * 64 + "… (250000 characters)"
    assert clip(12345678, 4) == "1234… (8 characters)", "any value, as text"


def test_the_rate_limiter_lets_a_few_lines_through_and_counts_the_rest() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(clock, lines=2, interval=60.0)
    assert [limiter.admit("busy") for _ in range(5)] == [0, 0, None, None, None]
    assert limiter.admit("forbidden") == 0, "each kind has its own allowance"
    clock.now = 59.9
    assert limiter.admit("busy") is None
    clock.now = 60.0
    assert limiter.admit("busy") == 4, "the next line says how many were held back"
    assert limiter.admit("busy") == 0
    assert limiter.admit("busy") is None


def test_the_rate_limiter_remembers_a_bounded_number_of_kinds() -> None:
    clock = FakeClock(0.0)
    limiter = RateLimiter(clock, lines=1, capacity=3)
    for kind in "abcdef":
        assert limiter.admit(kind) == 0
    assert len(limiter._windows) == 3
    assert limiter.admit("a") == 0, "forgotten, so new again"


def test_the_limited_log_appends_the_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(0.0)
    log = LimitedLog(logging.getLogger("wyoming_lightning.test"), RateLimiter(clock, lines=1))
    with caplog.at_level(logging.WARNING, logger="wyoming_lightning.test"):
        for i in range(4):
            log.warning("busy", "refusing client %d", i)
        clock.now = 61.0
        log.warning("busy", "refusing client %d", 9)
    assert [r.getMessage() for r in caplog.records] == [
        "refusing client 0",
        "refusing client 9 (3 more like this not logged)",
    ]


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        (json.dumps({"type": "ping", "data": {"text": "[[[{{{"}}), 2),
        (json.dumps({"a": '\\"' + "[" * 50, "b": [[[1]]]}), 4),
        ("[" * 5000, 5000),
        ("[]" * 5000, 1),
    ],
)
def test_nesting_depth_ignores_brackets_in_strings(text: str, depth: int) -> None:
    found = nesting_depth(text.encode())
    assert found == depth or (depth <= MAX_NESTING and found <= MAX_NESTING)


def test_wrong_field_types_are_wire_errors() -> None:
    check_fields("transcribe", {"language": "en", "transcript_names": ["Anna"], "context": None})
    check_fields("audio-start", {"rate": "fast"})  # audio fields: the handler's bad_audio
    with pytest.raises(WireError, match="transcript_names must be a list of strings"):
        check_fields("transcribe", {"transcript_names": [1, 2]})
    with pytest.raises(WireError, match="language must be a string"):
        check_fields("transcribe", {"language": {"x": 1}})
    with pytest.raises(WireError, match="text must be a string"):
        check_fields("ping", {"text": ["x"]})


def _stream(*raw: bytes) -> asyncio.StreamReader:
    reader = asyncio.StreamReader()
    for part in raw:
        reader.feed_data(part)
    reader.feed_eof()
    return reader


def _chunk(data: dict[str, object], payload: bytes) -> bytes:
    return encode_event(Event("audio-chunk", data, payload))


async def test_a_repeated_event_is_read_the_same_with_the_memo_and_a_changed_one_in_full() -> None:
    fmt = {"rate": 16000, "width": 2, "channels": 1}
    other = {"rate": 8000, "width": 2, "channels": 1}
    raw = [_chunk(fmt, b"\x01\x00" * 160), _chunk(fmt, b"\x02\x00" * 160), _chunk(other, b"")]
    raw.append(_chunk(fmt, b"\x03\x00" * 160))
    memo = Memo()
    with_memo = _stream(*raw)
    without = _stream(*raw)
    for _ in raw:
        seen = await read_event(with_memo, memo)
        expected = await read_event(without)
        assert seen is not None and expected is not None
        assert (seen.type, seen.data, seen.payload) == (
            expected.type,
            expected.data,
            expected.payload,
        )
        seen.data["rate"] = 1  # the reader's to change: the next event must not see it
    assert memo.data == fmt, "the memo kept the last data text's parse, untouched"
    assert await read_event(with_memo, memo) is None


async def test_the_memo_never_lets_a_bad_event_through_after_a_good_one() -> None:
    fmt = {"rate": 16000, "width": 2, "channels": 1}
    good = encode_event(Event("transcribe", {"language": "en"}))
    bad = encode_event(Event("transcribe", {"language": ["en"]}))
    memo = Memo()
    reader = _stream(good, bad)
    assert (await read_event(reader, memo)) is not None
    with pytest.raises(WireError, match="language must be a string"):
        await read_event(reader, memo)
    nested = encode_event(Event("transcribe", {"transcript_names": ["a"]}))
    reader = _stream(_chunk(fmt, b"\x00\x00"), nested, nested)
    await read_event(reader, memo)
    first = await read_event(reader, memo)
    assert first is not None
    first.data["transcript_names"].append("b")
    second = await read_event(reader, memo)
    assert second is not None and second.data["transcript_names"] == ["a"], (
        "data holding a list is parsed again each time: nothing shared between events"
    )
