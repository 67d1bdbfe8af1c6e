"""The service protocol, without sockets: URLs, dialects, message parsing, failure classes."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, parse_qsl, quote_plus, urlsplit

import pytest

from wyoming_lightning.core.errors import ErrorCode
from wyoming_lightning.core.protocol import (
    DEFAULT_URL,
    LIGHTNING_URL,
    MAX_INTENSIFIER,
    MAX_URL_BYTES,
    PULSE_URL,
    Dialect,
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
    dialect_from_path,
    parse_message,
    region_url,
    with_model,
)


@pytest.mark.parametrize(
    ("url", "dialect"),
    [
        (DEFAULT_URL, Dialect.PULSE),
        (PULSE_URL, Dialect.PULSE),
        (LIGHTNING_URL, Dialect.LIGHTNING),
        ("wss://api.smallest.ai/waves/v1/stt/live", Dialect.PULSE),
        ("ws://127.0.0.1:8765/api/v1/lightning/get_text", Dialect.LIGHTNING),
        ("ws://127.0.0.1:8765/waves/v1/pulse/get_text/", Dialect.PULSE),
        ("ws://127.0.0.1:8765/", Dialect.PULSE),  # says nothing: today's service
    ],
)
def test_dialect_follows_the_path(url: str, dialect: Dialect) -> None:
    assert detect_dialect(url) is dialect


def test_default_url_is_todays_unified_endpoint() -> None:
    assert DEFAULT_URL == "wss://api.smallest.ai/waves/v1/stt/live?model=pulse"


@pytest.mark.parametrize("chosen", [Dialect.PULSE, Dialect.LIGHTNING])
def test_an_explicit_dialect_wins(chosen: Dialect) -> None:
    assert dialect_from_path("ws://proxy.local:9000/stt") is None
    assert detect_dialect("ws://proxy.local:9000/stt", chosen) is chosen
    assert detect_dialect(LIGHTNING_URL, chosen) is chosen
    assert Dialect.choice("auto") is None and Dialect.choice(chosen.value) is chosen


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("wss://api.smallest.ai/waves/v1/stt/live", "model=pulse"),
        ("wss://api.smallest.ai/waves/v1/stt/live/", "model=pulse"),
        ("wss://api.smallest.ai/waves/v1/stt/live?language=en", "model=pulse&language=en"),
        ("wss://api.smallest.ai/waves/v1/stt/live?model=pulse", "model=pulse"),
        ("wss://api.smallest.ai/waves/v1/stt/live?model=other", "model=other"),
        (PULSE_URL, ""),
        (LIGHTNING_URL, ""),
    ],
)
def test_model_is_added_only_where_the_live_path_lacks_it(given: str, expected: str) -> None:
    assert urlsplit(with_model(given)).query == expected


def test_every_session_url_on_the_live_path_names_the_model() -> None:
    url = build_url("wss://api.smallest.ai/waves/v1/stt/live", SessionOptions())
    assert parse_qsl(urlsplit(url).query)[0] == ("model", "pulse")


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


def test_keywords_are_encoded_per_dialect() -> None:
    words = [Keyword("Kitchen Lamp", 2), Keyword("thermostat"), Keyword("x", 0)]
    pulse = parse_qsl(urlsplit(build_url(PULSE_URL, SessionOptions(keywords=words))).query)
    assert [v for k, v in pulse if k == "keywords"] == ["Kitchen Lamp:2,thermostat"]

    lightning = parse_qsl(urlsplit(build_url(LIGHTNING_URL, SessionOptions(keywords=words))).query)
    assert [v for k, v in lightning if k == "keywords"] == ["Kitchen Lamp:2", "thermostat:1"]


def test_keyword_case_is_kept_and_only_exact_repeats_dropped() -> None:
    words = [Keyword("Ada"), Keyword("ada"), Keyword("Ada", 2)]
    (value,) = parse_qs(urlsplit(build_url(PULSE_URL, SessionOptions(keywords=words))).query)[
        "keywords"
    ]
    assert value == "Ada,ada"


def test_intensifiers_never_exceed_the_vendors_advice() -> None:
    url = build_url(PULSE_URL, SessionOptions(keywords=[Keyword("Dr. Who: the, show", 25)]))
    (value,) = parse_qs(urlsplit(url).query)["keywords"]
    assert value == f"Dr. Who the show:{MAX_INTENSIFIER:g}" and MAX_INTENSIFIER == 3


@pytest.mark.parametrize("base", [DEFAULT_URL, LIGHTNING_URL])
def test_keywords_stop_where_the_url_would_grow_too_long(base: str) -> None:
    words = [Keyword(f"Device Number {i}", 2) for i in range(2000)]
    url = build_url(base, SessionOptions(keywords=words))
    assert len(url) <= MAX_URL_BYTES
    sent = [v for k, v in parse_qsl(urlsplit(url).query) if k == "keywords"]
    entries = ",".join(sent).split(",")
    assert 100 < len(entries) < 2000
    # A prefix, in order: the first keywords are the ones kept.
    assert entries == [f"Device Number {i}:2" for i in range(len(entries))]
    # ... and the next one would not have fitted.
    separator = "%2C" if base == DEFAULT_URL else "&keywords="
    assert len(url) + len(separator + quote_plus(f"Device Number {len(entries)}:2")) > MAX_URL_BYTES


def test_eou_timeout_endpointing_and_usage_tag_only_for_pulse() -> None:
    options = SessionOptions(eou_timeout_ms=500, external_session_id="wyoming-lightning-ab12")
    lightning = parse_qs(urlsplit(build_url(LIGHTNING_URL, options)).query)
    assert not {"eou_timeout_ms", "endpointing", "external_session_id"} & set(lightning)
    pulse = parse_qs(urlsplit(build_url(DEFAULT_URL, options)).query)
    assert pulse["eou_timeout_ms"] == ["500"]
    assert pulse["endpointing"] == ["false"]
    assert pulse["external_session_id"] == ["wyoming-lightning-ab12"]
    on = SessionOptions(server_endpointing=True, external_session_id="bad tag!")
    query = parse_qs(urlsplit(build_url(DEFAULT_URL, on)).query)
    assert query["endpointing"] == ["true"] and "external_session_id" not in query


@pytest.mark.parametrize(
    ("base", "language", "host"),
    [
        (DEFAULT_URL, "ja", "api.us.smallest.ai"),
        (PULSE_URL, "multi-asian", "api.us.smallest.ai"),
        (DEFAULT_URL, "yue", "api.us.smallest.ai"),
        ("wss://api.us.smallest.ai/waves/v1/stt/live?model=pulse", "ta", "api.smallest.ai"),
        ("wss://api.us.smallest.ai/waves/v1/stt/live", "multi-south-indic", "api.smallest.ai"),
        ("wss://api.us.smallest.ai/waves/v1/stt/live?model=pulse", "en", "api.us.smallest.ai"),
        (DEFAULT_URL, "en", "api.smallest.ai"),
        (DEFAULT_URL, "kn", "api.smallest.ai"),
        ("ws://127.0.0.1:9/waves/v1/stt/live", "ko", "127.0.0.1"),
        ("wss://stt.example.com/waves/v1/stt/live", "zh", "stt.example.com"),
    ],
)
def test_regional_languages_go_to_the_host_that_serves_them(
    base: str, language: str, host: str
) -> None:
    routed = urlsplit(region_url(base, language))
    assert routed.hostname == host
    assert routed.path == urlsplit(base).path and routed.query == urlsplit(base).query


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
    "fields",
    [
        {"transcription": "turn it on"},
        {"transcript": "turn it on", "transcription": "turn it on"},
        {"transcript": "", "transcription": "turn it on"},
        {"transcript": "turn it on"},
    ],
)
def test_text_is_read_from_transcript_or_transcription(fields: dict[str, str]) -> None:
    frame = {"type": "transcription", "status": "success", "is_final": True, **fields}
    msg = parse_message(json.dumps(frame))
    assert isinstance(msg, Result) and msg.transcript == "turn it on"


def test_from_finalize_is_true_false_or_unsaid() -> None:
    def flag(extra: str) -> bool | None:
        msg = parse_message('{"transcription": "a", "is_final": true' + extra + "}")
        assert isinstance(msg, Result)
        return msg.from_finalize

    assert flag(', "from_finalize": true') is True
    assert flag(', "from_finalize": false') is False
    assert flag("") is None
    assert flag(', "from_finalize": "true"') is None


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
