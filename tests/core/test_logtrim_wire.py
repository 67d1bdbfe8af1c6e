"""The pure parts of issue 20: the log's rate limiter and clipping, the wire's depth scan and
field types. The servers that use them are tested over sockets in tests/bridge/test_hostile.py."""

from __future__ import annotations

import json
import logging

import pytest

from wyoming_lightning.logtrim import LimitedLog, RateLimiter, clip
from wyoming_lightning.wire import MAX_NESTING, WireError, check_fields, nesting_depth


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_clip_keeps_short_text_and_says_how_long_the_cut_one_was() -> None:
    assert clip("en") == "en"
    assert clip("x" * 64) == "x" * 64
    cut = clip("x" * 250_000)
    assert cut == "x" * 64 + "… (250000 characters)"
    assert clip(12345678, 4) == "1234… (8 characters)", "any value, as text"


def test_the_rate_limiter_lets_a_few_lines_through_and_counts_the_rest() -> None:
    clock = Clock()
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
    clock = Clock()
    limiter = RateLimiter(clock, lines=1, capacity=3)
    for kind in "abcdef":
        assert limiter.admit(kind) == 0
    assert len(limiter._windows) == 3
    assert limiter.admit("a") == 0, "forgotten, so new again"


def test_the_limited_log_appends_the_count(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
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
