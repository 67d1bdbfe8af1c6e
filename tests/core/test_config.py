"""Settings from flags, environment and files: validated once, secrets kept out of sight."""

from __future__ import annotations

from pathlib import Path

import pytest

from wyoming_lightning.core.languages import LIGHTNING_LANGUAGES, PULSE_LANGUAGES
from wyoming_lightning.core.protocol import (
    Dialect,
    Keyword,
)
from wyoming_lightning.settings.config import ConfigError, load_settings, parse_keywords


def test_environment_sets_every_option_and_flags_win() -> None:
    env = {
        "LIGHTNING_URL": "wss://api.smallest.ai/waves/v1/pulse/get_text",
        "LIGHTNING_VAD": "webrtc",
        "LIGHTNING_HANGOVER_MS": "250",
        "LIGHTNING_EARLY_FINALIZE": "false",
        "LIGHTNING_LANGUAGE": "de",
        "SMALLEST_API_KEY": " k-123 \n",
    }
    settings = load_settings(["--hangover-ms", "300"], env)
    assert settings.service_url.endswith("/pulse/get_text")
    assert settings.vad == "webrtc" and settings.hangover_ms == 300
    assert settings.early_finalize is False and settings.language == "de"
    assert settings.api_key.reveal() == "k-123"
    assert "k-123" not in repr(settings)


def test_key_file_wins_over_the_variable(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    env = {"SMALLEST_API_KEY": "from-env", "SMALLEST_API_KEY_FILE": str(key_file)}
    assert load_settings([], env).api_key.reveal() == "from-file"
    with pytest.raises(ConfigError, match="cannot read the API key file"):
        load_settings(["--api-key-file", str(tmp_path / "missing")], {})


def test_no_key_means_local_only_and_english() -> None:
    settings = load_settings([], {})
    assert settings.local_only and settings.languages == ("en",)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--language", "xx"], {}, "not offered"),
        (["--lightning-url", "https://x"], {}, "ws://"),
        (["--hangover-ms", "-1"], {}, "cannot be negative"),
        (["--response-timeout", "0"], {}, "must be positive"),
        (["--keywords", "a:-1"], {}, "^--keywords: keyword weight must be positive"),
        ([], {"LIGHTNING_KEYWORDS": "a:-1"}, "^LIGHTNING_KEYWORDS: keyword weight"),
        # A value from the environment is blamed on its variable: that is where to fix it.
        ([], {"LIGHTNING_VAD": "magic"}, "^LIGHTNING_VAD='magic': choose one of silero"),
        ([], {"LIGHTNING_FALLBACK": "cloud"}, "^LIGHTNING_FALLBACK='cloud': choose one of"),
        ([], {"LIGHTNING_ENDPOINTING": "maybe"}, "^LIGHTNING_ENDPOINTING: not a yes/no value"),
        ([], {"LIGHTNING_RETRIES": "abc"}, "^LIGHTNING_RETRIES='abc' is not a whole number"),
        ([], {"LIGHTNING_RETRIES": "-1"}, "^LIGHTNING_RETRIES cannot be negative"),
        (["--retries", "-1"], {"LIGHTNING_RETRIES": "2"}, "^--retries cannot be negative"),
        ([], {"LIGHTNING_IDLE_TIMEOUT": "0"}, "^LIGHTNING_IDLE_TIMEOUT must be positive"),
        ([], {"LIGHTNING_URI": "garbage"}, "^LIGHTNING_URI: 'garbage' is not a URI"),
        ([], {"LIGHTNING_URI": "http://h:1"}, "^LIGHTNING_URI: http:// is not supported"),
        ([], {"LIGHTNING_URI": "tcp://0.0.0.0:99999"}, "^LIGHTNING_URI: port 99999 .* range"),
        ([], {"LIGHTNING_URL": "https://x"}, "^LIGHTNING_URL must start with ws://"),
        ([], {"LIGHTNING_LOG_FORMAT": "%(nope)s"}, "^LIGHTNING_LOG_FORMAT: not a usable"),
        ([], {"LIGHTNING_DIALECT": "deepgram"}, "LIGHTNING_DIALECT"),
        (["--stall-timeout", "0"], {}, "--stall-timeout must be positive"),
        (["--no-speech-timeout", "-1"], {}, "--no-speech-timeout must be positive"),
        ([], {"LIGHTNING_MAX_COMMAND": "0"}, "^LIGHTNING_MAX_COMMAND must be positive"),
        (["--dialect", "lightning", "--language", "ja"], {}, "not offered"),
        # NaN passes every comparison test by failing it: "nan" parses as a float.
        (["--dictation-after", "nan"], {}, "^--dictation-after must be a number"),
        ([], {"LIGHTNING_RESPONSE_TIMEOUT": "nan"}, "^LIGHTNING_RESPONSE_TIMEOUT must be a num"),
    ],
)
def test_bad_settings_are_explained(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(argv, env)


def test_a_bad_service_url_is_shown_whole_without_its_secrets() -> None:
    url = "https://user:hunter2@stt.example/v1/get_text?api_key=sk-live-1&language=en"
    with pytest.raises(ConfigError) as caught:
        load_settings(["--lightning-url", url], {})
    message = str(caught.value)
    assert "'https://user:***@stt.example/v1/get_text?api_key=***&language=en'" in message
    assert "hunter2" not in message and "sk-live-1" not in message


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--uri", "garbage"], "argument --uri: 'garbage' is not a URI"),
        (["--uri", "tcp://0.0.0.0:99999"], "port 99999 in 'tcp://0.0.0.0:99999' is out of range"),
        (["--log-format", "%(asctime)s %(nope)s"], "argument --log-format: not a usable"),
        (["--log-format", "%(message)d"], "argument --log-format: not a usable"),
        (["--vad", "magic"], "argument --vad: invalid choice"),
    ],
)
def test_bad_flags_are_refused_when_parsed(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        load_settings(argv, {})
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err


def test_no_abbreviations_and_a_key_given_as_a_flag_is_never_echoed(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """``--api-key KEY`` once passed as ``--api-key-file KEY`` and printed the key."""
    for argv in (["--api-key", "sk-live-77"], ["--api-key=sk-live-77"], ["--api-k", "sk-live-77"]):
        with pytest.raises(SystemExit):
            load_settings(argv, {})
        err = capsys.readouterr().err
        assert "sk-live-77" not in err
        assert err.count("\n") == 1
    with pytest.raises(SystemExit):
        load_settings(["--api-key", "sk-live-77"], {})
    assert "SMALLEST_API_KEY" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        load_settings(["--hang", "100"], {})  # an abbreviation of --hangover-ms: refused
    assert "unrecognized option(s) --hang" in capsys.readouterr().err


def test_an_empty_key_file_is_an_error_not_no_key(tmp_path: Path) -> None:
    empty = tmp_path / "key"
    empty.write_text(" \n")
    with pytest.raises(ConfigError, match=r"^--api-key-file: the API key file .* is empty$"):
        load_settings(["--api-key-file", str(empty)], {})
    with pytest.raises(ConfigError, match=r"^SMALLEST_API_KEY_FILE: .* is empty$"):
        load_settings([], {"SMALLEST_API_KEY_FILE": str(empty)})
    with pytest.raises(ConfigError, match=r"^LIGHTNING_API_KEY_FILE: .* is empty$"):
        load_settings([], {"LIGHTNING_API_KEY_FILE": str(empty)})
    empty.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="is not text"):
        load_settings(["--api-key-file", str(empty)], {})


def test_keywords() -> None:
    assert parse_keywords("Anna:8, kitchen lights , x:2.5,,") == [
        Keyword("Anna", 8.0),
        Keyword("kitchen lights"),  # no weight: the service's default
        Keyword("x", 2.5),
    ]


def test_the_default_is_todays_pulse_endpoint() -> None:
    settings = load_settings([], {"SMALLEST_API_KEY": "k"})
    assert settings.service_url == "wss://api.smallest.ai/waves/v1/stt/live?model=pulse"
    assert settings.service_dialect is Dialect.PULSE
    assert settings.languages == PULSE_LANGUAGES and "multi" not in settings.languages


@pytest.mark.parametrize(
    ("argv", "env", "dialect"),
    [
        (["--lightning-url", "ws://10.0.0.5:8080/api/v1/lightning/get_text"], {}, "lightning"),
        (["--lightning-url", "ws://proxy:9000/asr"], {}, "pulse"),
        (["--lightning-url", "ws://proxy:9000/asr", "--dialect", "lightning"], {}, "lightning"),
        (
            [],
            {"LIGHTNING_URL": "ws://proxy:9000/asr", "LIGHTNING_DIALECT": "lightning"},
            "lightning",
        ),
        (["--dialect", "pulse"], {"LIGHTNING_DIALECT": "lightning"}, "pulse"),
    ],
)
def test_the_dialect_comes_from_the_flag_else_the_url(
    argv: list[str], env: dict[str, str], dialect: str
) -> None:
    settings = load_settings(argv, {**env, "SMALLEST_API_KEY": "k"})
    assert settings.service_dialect is Dialect(dialect)
    expected = LIGHTNING_LANGUAGES if dialect == "lightning" else PULSE_LANGUAGES
    assert settings.languages == expected, "advertise the languages of the dialect in use"


def test_endpointing_brings_the_no_speech_timeout_and_the_command_cap() -> None:
    """Only a server that ends commands itself needs them; the client ends them otherwise."""
    from wyoming_lightning.services import Services

    env = {"SMALLEST_API_KEY": "k"}
    on = Services(load_settings(["--endpointing", "--no-speech-timeout", "6"], env))
    config = on.request_config(None, "en")
    assert (config.no_speech_timeout_s, config.max_command_s) == (6.0, 15.0)
    off = Services(load_settings([], env)).request_config(None, "en")
    assert (off.no_speech_timeout_s, off.max_command_s) == (None, None)
    assert (off.stall_timeout_s, off.final_timeout_s, off.response_timeout_s) == (2.0, 10.0, 30.0)


@pytest.mark.parametrize(
    ("argv", "lag_ms"),
    [
        ([], 48),
        (["--vad", "webrtc"], 16),
        (["--vad", "off"], 0),
        (["--vad-lag-ms", "0"], 0),
        (["--vad", "webrtc", "--vad-lag-ms", "30"], 30),
    ],
)
def test_the_vad_lag_is_the_chosen_vads_own_unless_set(argv: list[str], lag_ms: int) -> None:
    from wyoming_lightning.services import Services

    services = Services(load_settings(argv, {"SMALLEST_API_KEY": "k"}))
    assert services.request_config(None, "en").vad_lag_ms == lag_ms


def test_a_negative_vad_lag_is_refused() -> None:
    with pytest.raises(ConfigError, match="--vad-lag-ms cannot be negative"):
        load_settings(["--vad-lag-ms", "-5"], {"SMALLEST_API_KEY": "k"})
