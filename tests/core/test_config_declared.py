"""Each setting is declared once (``Settings`` in config.py); these tests hold every declaration,
present and future, to the same promises: the flag and the variable set it alike, and a bad
value is a one-line error that names where it was given.

The example values are derived from each declaration (its type, choices and check); only a
free-text setting needs an entry below, and a new one without it fails here by name.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from wyoming_lightning.__main__ import _main as server_main
from wyoming_lightning.settings.config import (
    SETTINGS,
    ConfigError,
    Settings,
    build_parser,
    finite_non_negative,
    http_url,
    listen_host,
    load_settings,
    non_negative,
    port_number,
    positive,
    region_urls,
    settings_summary,
    websocket_url,
)
from wyoming_lightning.settings.declare import Kind, Setting

KEY = {"SMALLEST_API_KEY": "sk-declared-1"}

#: A good value for each free-text setting (others are derived from type, choices and check).
TEXT_EXAMPLES = {
    "uri": "tcp://127.0.0.1:10400",
    "service_url": "ws://127.0.0.1:9/api/v1/lightning/get_text",
    "language": "de",
    "keywords": "Anna:2,kitchen lights",
    "zeroconf": "kitchen",
    "allow": "10.0.0.0/8",
    "data_dir": "/var/lib/lightning",
    "metrics_host": "127.0.0.1",
    "log_format": "%(levelname)s %(message)s",
    "web_allow": "172.30.32.2",
    "hass_url": "http://127.0.0.1:8123",
    "hass_token_file": "/run/secrets/hass_token",
    "region_urls": "ws://127.0.0.1:9/waves/v1/stt/live,ws://127.0.0.1:10/waves/v1/stt/live",
}
#: A bad value for each free-text setting that can have one.
TEXT_BAD = {
    "uri": "garbage",
    "language": "xx",
    "keywords": "Anna:-1",
    "allow": "10.0.0.300",
    "web_allow": "172.30.32.0/33",
    "log_format": "%(nope)s",
}
#: Free text where any value is a good one.
ANY_TEXT = {"zeroconf", "data_dir", "hass_token_file"}
#: What breaks each check.
BREAKS = {
    non_negative: "-1",
    finite_non_negative: "nan",
    positive: "0",
    port_number: "70000",
    websocket_url: "https://x",
    http_url: "ws://x",
    listen_host: "not a host!",
    region_urls: "ws://127.0.0.1:9/only-one",
}

FLAGGED = [spec for spec in SETTINGS if spec.kind is not Kind.SECRET]


def example(spec: Setting) -> tuple[str, str]:
    """A value unlike the default, as a flag argument and as the variable's text."""
    if spec.kind is Kind.SWITCH:
        return ("--no-" + spec.flag[2:] if spec.default else spec.flag), (
            "no" if spec.default else "yes"
        )
    if spec.choices:
        return next(c for c in spec.choices if c != spec.default), ""
    if spec.name in TEXT_EXAMPLES:
        return TEXT_EXAMPLES[spec.name], ""
    if spec.parse is int:
        return str((spec.default if isinstance(spec.default, int) else 1000) + 1), ""
    if spec.parse is float:
        return str((spec.default if isinstance(spec.default, float) else 1.0) * 2 + 0.5), ""
    raise AssertionError(f"add an example for the free-text setting {spec.name} to TEXT_EXAMPLES")


def bad_values(spec: Setting) -> list[str]:
    found = []
    if spec.kind is Kind.SWITCH:
        return ["maybe"]
    if spec.choices:
        found.append("nope")
    if spec.parse in (int, float):
        found.append("many")
    if spec.check is not None:
        assert spec.check in BREAKS, f"add a value that breaks {spec.name}'s check to BREAKS"
        found.append(BREAKS[spec.check])
    if spec.name in TEXT_BAD:
        found.append(TEXT_BAD[spec.name])
    assert found or spec.name in ANY_TEXT, f"add a bad value for {spec.name} to TEXT_BAD"
    return found


def argv_for(spec: Setting, value: str) -> list[str]:
    return [value] if spec.kind is Kind.SWITCH else [spec.flag, value]


@pytest.mark.parametrize("spec", FLAGGED, ids=lambda spec: spec.flag)
def test_the_flag_and_the_variable_set_a_setting_alike(spec: Setting) -> None:
    flag_value, env_text = example(spec)
    by_flag = load_settings(argv_for(spec, flag_value), KEY)
    by_env = load_settings([], {**KEY, spec.env: env_text or flag_value})
    assert by_flag == by_env
    assert by_flag != load_settings([], KEY), f"{flag_value!r} is {spec.flag}'s default"
    changed = {f.name for f in dataclasses.fields(Settings)}
    changed = {n for n in changed if getattr(by_flag, n) != getattr(Settings(), n)}
    assert spec.name in changed, f"{spec.flag} did not set Settings.{spec.name}"
    if spec.default is not None:  # the flag wins over the variable
        switch = spec.kind is Kind.SWITCH
        default_text = ("yes" if spec.default else "no") if switch else str(spec.default)
        both = load_settings(argv_for(spec, flag_value), {**KEY, spec.env: default_text})
        assert both == by_flag


@pytest.mark.parametrize("spec", FLAGGED, ids=lambda spec: spec.flag)
def test_a_bad_value_is_one_line_naming_the_flag_or_the_variable(
    spec: Setting, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in [n for n in os.environ if n.startswith(("LIGHTNING_", "SMALLEST_"))]:
        monkeypatch.delenv(name)
    for bad in bad_values(spec):
        with pytest.raises(ConfigError) as from_env:
            load_settings([], {spec.env: bad})
        message = str(from_env.value)
        assert message.startswith(spec.env) and "\n" not in message, message
        # The server's own entry point prints it as one line and exits 2 (refused: it never
        # gets as far as listening).
        monkeypatch.setenv(spec.env, bad)
        assert server_main([]) == 2
        assert capsys.readouterr().err == f"wyoming-lightning: {message}\n"
        monkeypatch.delenv(spec.env)
        given = [f"{spec.flag}={bad}"] if spec.kind is Kind.SWITCH else [spec.flag, bad]
        try:
            load_settings(given, {})
        except ConfigError as err:
            message = str(err)
            assert message.startswith(spec.flag) and "\n" not in message, message
        except SystemExit as exit_:  # refused by the parser: argparse's one line on stderr
            assert exit_.code == 2
            err_text = capsys.readouterr().err
            assert err_text.count("\n") == 1 and f"argument {spec.flag}" in err_text, err_text
        else:
            raise AssertionError(f"{spec.flag} {bad!r} was accepted")


def test_every_default_passes_its_own_check() -> None:
    defaults = load_settings([], {})
    for spec in FLAGGED:
        value = getattr(defaults, spec.name)
        assert value == getattr(Settings(), spec.name), spec.name
        if spec.check is not None and value is not None:
            assert spec.check(value) is None, spec.name


def test_flags_and_variables_are_unique_and_all_in_the_parser() -> None:
    flags = [spec.flag for spec in FLAGGED] + [s.file_flag for s in SETTINGS if s.file_flag]
    names = [spec.env for spec in SETTINGS] + [s.file_env for s in SETTINGS if s.file_flag]
    assert len(set(flags)) == len(flags) and len(set(names)) == len(names)
    parsed = {f for a in build_parser({})._actions for f in a.option_strings}
    assert set(flags) <= parsed
    assert parsed - set(flags) - {"-h", "--help", "--version"} == {
        "--no-" + s.flag[2:] for s in FLAGGED if s.kind is Kind.SWITCH
    }


@pytest.mark.parametrize("how", ["flag", "flag variable", "file variable", "variable"])
def test_the_key_from_each_of_its_sources_alike_and_never_shown(
    how: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("sk-declared-2\n")
    argv, env = {
        "flag": (["--api-key-file", str(key_file)], {}),
        "flag variable": ([], {"LIGHTNING_API_KEY_FILE": str(key_file)}),
        "file variable": ([], {"SMALLEST_API_KEY_FILE": str(key_file)}),
        "variable": ([], {"SMALLEST_API_KEY": " sk-declared-2 "}),
    }[how]
    settings = load_settings(argv, env)
    assert settings.api_key.reveal() == "sk-declared-2"
    assert "sk-declared-2" not in repr(settings) + str(settings)
    with pytest.raises(SystemExit):
        load_settings(["--help"], {"SMALLEST_API_KEY": "sk-declared-2"})
    assert "sk-declared-2" not in capsys.readouterr().out


def test_the_log_summary_shows_what_changed_and_never_a_secret() -> None:
    url = "wss://me:hunter2@stt.example/v1/get_text?api_key=sk-in-url&language=en"
    argv = ["--lightning-url", url, "--vad", "webrtc", "--no-streaming", "--keywords", "Anna:2,b"]
    settings = load_settings([*argv, "--allow", "10.0.0.1"], {"SMALLEST_API_KEY": "sk-declared-3"})
    line = settings_summary(settings)
    for secret in ("sk-declared-3", "hunter2", "sk-in-url"):
        assert secret not in line
    assert line == (
        "--lightning-url wss://me:***@stt.example/v1/get_text?api_key=***&language=en, "
        "SMALLEST_API_KEY set, --vad webrtc, --no-streaming, --keywords Anna:2,b, "
        "--allow 10.0.0.1/32"
    )
    assert settings_summary(load_settings([], {})) == "SMALLEST_API_KEY unset"


def test_every_field_is_a_declared_setting_or_a_named_derived_fact() -> None:
    """A plain field would silently have no flag, variable or README row."""
    declared = {spec.name for spec in SETTINGS}
    plain = {f.name for f in dataclasses.fields(Settings)} - declared
    assert plain == set(), "declare it with setting(); a derived fact is a property"
