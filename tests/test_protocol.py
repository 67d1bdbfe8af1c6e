"""The service protocol, without sockets: URLs, dialects, message parsing, failure classes."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, parse_qsl, urlsplit

import pytest

from wyoming_lightning.lightning.protocol import (
    DEFAULT_URL,
    PULSE_URL,
    Dialect,
    ErrorCode,
    Keyword,
    Result,
    ServiceError,
    SessionOptions,
    SpeechEvent,
    Unreadable,
    build_url,
    classify_close,
    classify_error_frame,
    classify_http_status,
    detect_dialect,
    parse_message,
    with_us_host,
)


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        (DEFAULT_URL, Dialect.LIGHTNING),
        (PULSE_URL, Dialect.PULSE),
        ("wss://api.smallest.ai/waves/v1/stt/live?model=pulse", Dialect.PULSE),
        ("ws://127.0.0.1:8765/api/v1/lightning/get_text", Dialect.LIGHTNING),
        ("ws://127.0.0.1:8765/waves/v1/pulse/get_text/", Dialect.PULSE),
    ],
)
def test_dialect_follows_the_path(url: str, dialect: Dialect) -> None:
    assert detect_dialect(url) is dialect


def test_end_messages_differ_by_dialect() -> None:
    assert json.loads(Dialect.LIGHTNING.end_message) == {"type": "end"}
    assert json.loads(Dialect.PULSE.end_message) == {"type": "close_stream"}
    assert Dialect.PULSE.can_finalize and not Dialect.LIGHTNING.can_finalize


def test_url_spells_booleans_and_keeps_base_query() -> None:
    url = build_url(
        "wss://api.smallest.ai/waves/v1/stt/live?model=pulse",
        SessionOptions(language="de", word_timestamps=True, eou_timeout_ms=500),
    )
    query = parse_qs(urlsplit(url).query)
    assert query["model"] == ["pulse"]
    assert query["language"] == ["de"]
    assert query["sample_rate"] == ["16000"]
    assert query["encoding"] == ["linear16"]
    assert query["word_timestamps"] == ["true"]
    assert query["eou_timeout_ms"] == ["500"]
    assert "keywords" not in query


def test_keywords_are_encoded_per_dialect_and_capped() -> None:
    words = [Keyword(f"name{i}", 8) for i in range(120)] + [Keyword("x", 0)]
    pulse = parse_qsl(urlsplit(build_url(PULSE_URL, SessionOptions(keywords=words))).query)
    pulse_keywords = [v for k, v in pulse if k == "keywords"]
    assert len(pulse_keywords) == 1
    entries = pulse_keywords[0].split(",")
    assert len(entries) == 100 and entries[0] == "name0:8"

    lightning = parse_qsl(
        urlsplit(build_url(DEFAULT_URL, SessionOptions(keywords=words[:3]))).query
    )
    assert [v for k, v in lightning if k == "keywords"] == ["name0:8", "name1:8", "name2:8"]


def test_keyword_separators_cannot_break_the_list() -> None:
    url = build_url(PULSE_URL, SessionOptions(keywords=[Keyword("Dr. Who: the, show", 25)]))
    (value,) = parse_qs(urlsplit(url).query)["keywords"]
    assert value == "Dr. Who the show:20"  # Pulse caps weights at 20


def test_eou_timeout_only_for_pulse() -> None:
    url = build_url(DEFAULT_URL, SessionOptions(eou_timeout_ms=500))
    assert "eou_timeout_ms" not in parse_qs(urlsplit(url).query)


def test_us_host_for_asian_languages() -> None:
    assert with_us_host(PULSE_URL) == "wss://api.us.smallest.ai/waves/v1/pulse/get_text"
    assert with_us_host(DEFAULT_URL).startswith("wss://api.us.smallest.ai/waves/v1/pulse/")
    assert with_us_host("ws://127.0.0.1:9/waves/v1/pulse/get_text") == (
        "ws://127.0.0.1:9/waves/v1/pulse/get_text"
    )


def test_parse_results() -> None:
    msg = parse_message(
        json.dumps(
            {
                "session_id": "s",
                "transcript": "hello there",
                "is_final": True,
                "is_last": False,
                "from_finalize": True,
                "language": "en",
                "word_timestamps": [{"word": "hello", "start": 0.1, "end": 0.4}],
            }
        )
    )
    assert isinstance(msg, Result)
    assert msg.transcript == "hello there" and msg.is_final and msg.from_finalize
    assert msg.language == "en" and msg.session_id == "s"
    assert msg.end_time == pytest.approx(0.4)

    interim = parse_message('{"session_id": "s", "transcript": "hel", "is_final": false}')
    assert isinstance(interim, Result) and not interim.is_final and not interim.is_last

    last = parse_message(
        '{"session_id": "s", "transcript": null, "is_final": true, "is_last": true}'
    )
    assert isinstance(last, Result) and last.is_last and last.transcript == ""

    detected = parse_message('{"transcript": "hola", "is_final": true, "languages": ["es"]}')
    assert isinstance(detected, Result) and detected.language == "es"


@pytest.mark.parametrize(
    ("frame", "message", "code"),
    [
        (
            {"type": "error", "error_code": "LANGUAGE_NOT_ENABLED_IN_REGION", "message": "no"},
            "no",
            "LANGUAGE_NOT_ENABLED_IN_REGION",
        ),
        ({"type": "error", "status": "error", "message": "bad"}, "bad", None),
        ({"status": "error", "error": {"message": "old", "code": "E1"}}, "old", "E1"),
    ],
)
def test_parse_every_error_shape(frame: dict[str, object], message: str, code: str | None) -> None:
    parsed = parse_message(json.dumps(frame))
    assert parsed == ServiceError(message=message, code=code)


def test_speech_events_and_garbage() -> None:
    assert parse_message('{"type": "speech_started", "session_id": "s", "timestamp": 1.5}') == (
        SpeechEvent("speech_started", 1.5)
    )
    assert isinstance(parse_message("not json"), Unreadable)
    assert isinstance(parse_message("[1, 2]"), Unreadable)
    assert isinstance(parse_message('{"hello": 1}'), Unreadable)
    assert isinstance(parse_message('{"transcript": 5, "is_final": true}'), Unreadable)
    assert isinstance(parse_message(b"\xff\xfe"), Unreadable)


def test_failure_classes() -> None:
    assert classify_http_status(401).code is ErrorCode.AUTH
    assert not classify_http_status(401).retryable
    assert not classify_http_status(403).retryable
    limited = classify_http_status(429, 2.5)
    assert limited.code is ErrorCode.RATE_LIMITED and limited.retryable
    assert limited.retry_after == 2.5
    assert classify_http_status(500).retryable
    assert not classify_http_status(400).retryable
    assert classify_close(1008).code is ErrorCode.RATE_LIMITED
    assert classify_close(1006).retryable
    assert classify_close(None).code is ErrorCode.UPSTREAM
    language = classify_error_frame(ServiceError("x", "LANGUAGE_NOT_ENABLED_IN_REGION"))
    assert language.code is ErrorCode.LANGUAGE and not language.retryable
    assert classify_error_frame(ServiceError("x")).retryable
