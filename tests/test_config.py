"""Settings from flags, environment and files: validated once, secrets kept out of sight."""

from __future__ import annotations

from pathlib import Path

import pytest

from wyoming_lightning.config import ConfigError, load_settings, parse_keywords
from wyoming_lightning.lightning.protocol import (
    LIGHTNING_LANGUAGES,
    PULSE_LANGUAGES,
    Dialect,
    Keyword,
)


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
    assert settings.service_url.endswith("/pulse/get_text") and settings.url_fixed
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
        (["--stall-timeout", "0"], {}, "--stall-timeout must be positive"),
        (["--no-speech-timeout", "-1"], {}, "--no-speech-timeout must be positive"),
        ([], {"LIGHTNING_MAX_COMMAND": "0"}, "--max-command must be positive"),
        ([], {"LIGHTNING_VAD": "magic"}, "--vad must be one of"),
        ([], {"LIGHTNING_FALLBACK": "cloud"}, "--fallback"),
        ([], {"LIGHTNING_ENDPOINTING": "maybe"}, "yes/no"),
        ([], {"LIGHTNING_DIALECT": "deepgram"}, "--dialect must be one of"),
        (["--dialect", "lightning", "--language", "ja"], {}, "not offered"),
        (["--keywords", "a:-1"], {}, "positive"),
    ],
)
def test_bad_settings_are_explained(argv: list[str], env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(argv, env)


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
    assert (on.request_config(None).no_speech_timeout_s, on.request_config(None).max_command_s) == (
        6.0,
        15.0,
    )
    off = Services(load_settings([], env)).request_config(None)
    assert (off.no_speech_timeout_s, off.max_command_s) == (None, None)
    assert (off.stall_timeout_s, off.final_timeout_s, off.response_timeout_s) == (2.0, 10.0, 30.0)
