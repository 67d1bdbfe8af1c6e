"""The Home Assistant add-on: its configuration against the Supervisor's own rules, its options
against the server's real flags, its run script, and the discovery message it sends to a
stand-in Supervisor.

The add-on is the repository root: ``repository.yaml`` and ``config.yaml`` sit beside the
top-level ``Dockerfile``, so the Supervisor, which builds an add-on with its own directory as the
build context, builds it from this source. The run script is ``config/addon/run.py``.

The schemas below are transcribed from the Supervisor's source (home-assistant/supervisor,
``supervisor/apps/validate.py``: ``_SCHEMA_APP_CONFIG``, ``SCHEMA_APP_TRANSLATIONS``;
``supervisor/store/validate.py``: ``SCHEMA_REPOSITORY_CONFIG``; ``supervisor/apps/options.py``:
``RE_SCHEMA_ELEMENT``; ``supervisor/store/data.py``: how a repository's add-ons are found;
``supervisor/apps/build.py``: ``build.yaml`` is deprecated, the Dockerfile names its base; as of
August 2026). The Supervisor drops unknown keys silently; these schemas refuse them, so that a
misspelt key fails here instead of doing nothing on a user's device.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from tests.deploy.dockerfile import ENTRYPOINT_SCRIPT, FINAL, copy_instructions, of
from tests.kit.bridge import bridge_port, bridge_settings, running_bridge
from tests.kit.paths import ROOT
from wyoming_lightning.core.languages import LIGHTNING_LANGUAGES, PULSE_LANGUAGES
from wyoming_lightning.core.protocol import DEFAULT_URL, DIALECT_CHOICES
from wyoming_lightning.ops.access import AccessPolicy, Verdict
from wyoming_lightning.settings.config import VAD_CHOICES, build_parser, load_settings

ADDON = ROOT  # the add-on's directory, and so the Supervisor's build context
RUN_SCRIPT = ROOT / "config" / "addon" / "run.py"
CONFIG = yaml.safe_load((ADDON / "config.yaml").read_text())
REPOSITORY = yaml.safe_load((ROOT / "repository.yaml").read_text())
TRANSLATIONS = yaml.safe_load((ADDON / "translations" / "en.yaml").read_text())
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
CONFIG_SUFFIXES = (".json", ".yaml", ".yml")  # FILE_SUFFIX_CONFIGURATION

ARCHES = ["aarch64", "amd64"]  # ARCH_ALL
DEPRECATED_ARCHES = ["armhf", "armv7", "i386"]  # ARCH_DEPRECATED
BOOL = {"type": "boolean"}
STR = {"type": "string"}
STR_LIST = {"type": "array", "items": STR}
URL = {"type": "string", "pattern": r"^https?://[^\s/$.?#][^\s]*$"}
PORT = {"type": "integer", "minimum": 1, "maximum": 65535}  # network_port
DOCKER_PORT = r"^\d+(/(tcp|udp))?$"  # docker_port
VERSION_TAG = {"type": ["string", "number"]}  # version_tag: AwesomeVersion takes any

#: supervisor/apps/options.py RE_SCHEMA_ELEMENT, verbatim in meaning.
RE_SCHEMA_ELEMENT = re.compile(
    r"^(?:"
    r"|bool"
    r"|email"
    r"|url"
    r"|port"
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?"
    r"|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)

ADDON_CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["name", "version", "slug", "description", "arch"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "version": VERSION_TAG,
        "slug": {"type": "string", "pattern": r"^[-_.A-Za-z0-9]+$"},
        "description": STR,
        "arch": {"type": "array", "items": {"enum": ARCHES}, "minItems": 1, "uniqueItems": True},
        "machine": STR_LIST,
        "url": URL,
        "startup": {"enum": ["initialize", "system", "services", "application", "once"]},
        "boot": {"enum": ["auto", "manual", "manual_only"]},
        "init": BOOL,
        "stage": {"enum": ["stable", "experimental", "deprecated"]},
        "ports": {
            "type": "object",
            "propertyNames": {"pattern": DOCKER_PORT},
            "additionalProperties": {"anyOf": [PORT, {"type": "null"}]},
        },
        "ports_description": {
            "type": "object",
            "propertyNames": {"pattern": DOCKER_PORT},
            "additionalProperties": STR,
        },
        "watchdog": {
            "type": "string",
            "pattern": r"^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$",
        },
        "webui": {
            "type": "string",
            "pattern": r"^(?:https?|\[PROTO:\w+\]):\/\/\[HOST\]:\[PORT:\d+\].*$",
        },
        "ingress": BOOL,
        "ingress_port": {"anyOf": [PORT, {"const": 0}]},
        "ingress_entry": STR,
        "ingress_stream": BOOL,
        "panel_icon": STR,
        "panel_title": STR,
        "panel_admin": BOOL,
        "homeassistant": VERSION_TAG,
        "host_network": BOOL,
        "host_pid": BOOL,
        "host_ipc": BOOL,
        "host_uts": BOOL,
        "host_dbus": BOOL,
        "devices": STR_LIST,
        "udev": BOOL,
        "tmpfs": BOOL,
        "map": {"type": "array"},
        "environment": {"type": "object", "additionalProperties": STR},
        "privileged": STR_LIST,
        "apparmor": BOOL,
        "full_access": BOOL,
        "audio": BOOL,
        "video": BOOL,
        "gpio": BOOL,
        "usb": BOOL,
        "uart": BOOL,
        "devicetree": BOOL,
        "kernel_modules": BOOL,
        "realtime": BOOL,
        "hassio_api": BOOL,
        "hassio_role": {"enum": ["default", "homeassistant", "backup", "manager", "admin"]},
        "homeassistant_api": BOOL,
        "stdin": BOOL,
        "legacy": BOOL,
        "docker_api": BOOL,
        "auth_api": BOOL,
        "services": {
            "type": "array",
            "items": {"type": "string", "pattern": r"^(mqtt|mysql):(provide|want|need)$"},
        },
        "discovery": STR_LIST,
        "backup_exclude": STR_LIST,
        "backup_pre": STR,
        "backup_post": STR,
        "backup": {"enum": ["hot", "cold"]},
        "options": {"type": "object"},
        "schema": {"anyOf": [{"type": "object"}, {"const": False}]},
        "image": STR,
        "ulimits": {"type": "object"},
        "timeout": {"type": "integer", "minimum": 10, "maximum": 300},
        "journald": BOOL,
        "breaking_versions": {"type": "array", "items": VERSION_TAG},
        # Deprecated keys are left out on purpose (so refused): advanced (2026.03),
        # codenotary, snapshot*, auto_uart; and "build_from"-style keys belong to no file now.
    },
}

REPOSITORY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {"name": {"type": "string", "minLength": 1}, "url": URL, "maintainer": STR},
}

TRANSLATIONS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "configuration": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["name"],
                "additionalProperties": False,
                "properties": {
                    "name": STR,
                    "description": {"type": ["string", "null"]},
                    "fields": {"type": "object"},
                },
            },
        },
        "network": {"type": "object", "additionalProperties": STR},
    },
}

#: The option types of the documentation, with an optional trailing "?".
OPTION_TYPE = re.compile(
    r"^(?P<type>str|bool|int|float|email|url|password|port|match|list|device)"
    r"(?:\((?P<arg>.*)\))?(?P<optional>\?)?$",
    re.DOTALL,
)


def option_type(spec: str) -> re.Match[str]:
    assert RE_SCHEMA_ELEMENT.match(spec), f"the Supervisor refuses the option type {spec!r}"
    found = OPTION_TYPE.match(spec.strip())
    assert found, f"not an add-on option type: {spec!r}"
    kind, arg = found["type"], found["arg"]
    if kind in ("str", "int", "float") and arg is not None:
        assert re.fullmatch(r"-?[\d.]*,-?[\d.]*", arg), f"bad range in {spec!r}"
    if kind in ("bool", "email", "url", "password", "port"):
        assert arg is None, f"{kind} takes no argument: {spec!r}"
    if kind == "list":
        assert arg and all(arg.split("|")), f"empty choice in {spec!r}"
    if kind == "match":
        re.compile(arg or "")
    return found


def choices(name: str) -> list[str]:
    found = option_type(CONFIG["schema"][name])
    assert found["type"] == "list"
    return str(found["arg"]).split("|")


def accepts(spec: str, value: object) -> bool:
    """Does an option value satisfy its type (what the Supervisor checks before starting)?"""
    found = option_type(spec)
    kind, arg = found["type"], found["arg"]
    if kind == "bool":
        return isinstance(value, bool)
    if kind in ("str", "password", "email"):
        return isinstance(value, str)
    if kind == "url":
        return isinstance(value, str) and bool(urlsplit(value).scheme and urlsplit(value).netloc)
    if kind in ("int", "port"):
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "list":
        return value in str(arg).split("|")
    if kind == "match":
        return isinstance(value, str) and re.fullmatch(str(arg), value) is not None
    return False


def load_run_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lightning_addon_run", RUN_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


RUN = load_run_script()


def server_flags() -> set[str]:
    """Every flag ``wyoming-lightning --help`` shows, read from the command itself."""
    shown = subprocess.run(
        [sys.executable, "-m", "wyoming_lightning", "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(re.findall(r"(--[a-z][a-z-]*)", shown.stdout))


# ------------------------------------------------------------------------------- config.yaml


def find_app_configs(root: Path) -> list[Path]:
    """What the Supervisor takes for add-ons in a repository (store/data.py): every
    ``config.{json,yaml,yml}`` below it, outside hidden directories and ``rootfs``."""
    found = []
    for directory, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".") and d != "rootfs"]
        found += [
            Path(directory, f)
            for f in files
            if Path(f).stem == "config" and Path(f).suffix in CONFIG_SUFFIXES
        ]
    return sorted(found)


def test_config_follows_the_supervisors_schema() -> None:
    jsonschema.validate(CONFIG, ADDON_CONFIG_SCHEMA)
    assert not set(CONFIG["arch"]) & set(DEPRECATED_ARCHES)
    for name, spec in CONFIG["schema"].items():
        assert isinstance(spec, str) and RE_SCHEMA_ELEMENT.match(spec), name


def test_the_repository_can_be_added_and_holds_exactly_this_add_on() -> None:
    """Home Assistant adds a repository only if it has repository.{yaml,json} at its root that
    passes SCHEMA_REPOSITORY_CONFIG; every config.* file in it is read as an add-on."""
    repository_files = [ROOT / f"repository{suffix}" for suffix in CONFIG_SUFFIXES]
    assert [p for p in repository_files if p.exists()] == [ROOT / "repository.yaml"]
    jsonschema.validate(REPOSITORY, REPOSITORY_SCHEMA)
    assert find_app_configs(ROOT) == [ROOT / "config.yaml"]


def test_built_from_this_source_with_no_deprecated_build_file() -> None:
    """Supervisor 2026.04: build.yaml is deprecated, the Dockerfile names its base image. The
    Supervisor builds ``Dockerfile.<arch>`` if there is one, else ``Dockerfile``, with the
    add-on's directory (here the repository) as the context; the image installs the package
    from that context, not from an index."""
    assert not [p for p in ADDON.iterdir() if p.stem == "build" and p.suffix in CONFIG_SUFFIXES]
    assert not list(ADDON.glob("Dockerfile.*")), "an arch Dockerfile would win over Dockerfile"
    dockerfile = (ADDON / "Dockerfile").read_text()
    assert "BUILD_FROM" not in dockerfile
    assert "wyoming-lightning==" not in dockerfile and "--find-links" not in dockerfile
    assert 'pip install --no-cache-dir ".${EXTRAS:+[${EXTRAS}]}"' in dockerfile


def test_the_image_starts_the_run_script_as_an_add_on() -> None:
    """In a container the Supervisor started (its token, /data/options.json), the entry point
    runs the add-on script that the image copied from config/addon/run.py."""
    destinations = {tuple(sources): dest for sources, dest in copy_instructions(FINAL)}
    installed = destinations[("config/addon/run.py",)]
    script = ENTRYPOINT_SCRIPT.read_text()
    assert f"exec python {installed}\n" in script
    condition = script[: script.index(f"exec python {installed}")].rsplit("if ", 1)[1]
    assert "SUPERVISOR_TOKEN" in condition and "/data/options.json" in condition
    (check,) = of(FINAL, "HEALTHCHECK")
    assert '"wyoming-lightning-healthcheck"' in check.args


def test_what_home_assistant_needs_from_a_wyoming_add_on() -> None:
    assert CONFIG["discovery"] == ["wyoming"]
    assert CONFIG["ports"] == {"10300/tcp": None}
    assert {"amd64", "aarch64"} <= set(CONFIG["arch"])
    assert CONFIG["version"] == VERSION
    # No s6-overlay in this image: Docker's own init must stay on (the docs: init false is only
    # for images with their own init).
    assert CONFIG.get("init", True) is True
    assert CONFIG["watchdog"] == "tcp://[HOST]:[PORT:10300]"


def test_every_option_has_a_type_and_every_type_an_option_or_a_question_mark() -> None:
    options, schema = CONFIG["options"], CONFIG["schema"]
    assert set(options) <= set(schema), f"options without a schema: {set(options) - set(schema)}"
    for name, spec in schema.items():
        found = option_type(spec)
        if name not in options:
            assert found["optional"], f"{name} has no default and is not optional ('?')"
        else:
            assert not found["optional"], f"{name}: a default makes the '?' meaningless"
            assert accepts(spec, options[name]), f"default {options[name]!r} fails {spec!r}"


def test_option_types_match_the_server() -> None:
    schema = CONFIG["schema"]
    assert option_type(schema["api_key"])["type"] == "password"
    # Only what the service serves: the languages of the retired Lightning endpoint alone
    # (uk, pl, cs, ... multi) cannot be picked.
    assert tuple(choices("language")) == PULSE_LANGUAGES
    assert not set(choices("language")) & (set(LIGHTNING_LANGUAGES) - set(PULSE_LANGUAGES))
    assert tuple(choices("vad")) == VAD_CHOICES
    fallback = next(a for a in build_parser({})._actions if a.dest == "fallback")
    assert tuple(choices("fallback")) == tuple(fallback.choices or ())
    assert option_type(schema["endpointing"])["type"] == "bool"
    assert option_type(schema["debug"])["type"] == "bool"
    assert option_type(schema["service_url"]).group("type", "optional") == ("url", "?")
    assert choices("dialect") == list(DIALECT_CHOICES)


def test_the_guards_are_shown_with_defaults_a_home_lives_within() -> None:
    """Neither guard hides behind "Show unused optional configuration options"."""
    schema, options = CONFIG["schema"], CONFIG["options"]
    for name in ("allow", "daily_audio_limit"):
        assert name in options, f"{name} must have a default, so the form shows it"
        assert not option_type(schema[name])["optional"], f"{name} must not be optional"
    argv, env = RUN.command(options)
    settings = load_settings(argv[1:], env=env)
    allowed = AccessPolicy(settings.allow)
    for home in ("172.30.32.1", "172.30.33.254", "127.0.0.1", "192.168.1.20", "10.0.0.7", "::1"):
        assert allowed.decide(home) is Verdict.ALLOWED, f"{home}: a home's address is refused"
    for outside in ("8.8.8.8", "100.64.0.1", "2001:db8::1"):
        assert allowed.decide(outside) is Verdict.FORBIDDEN, f"{outside} is not a home's"
    assert settings.daily_audio_limit_min == 60
    docs = (ROOT / "DOCS.md").read_text()
    for name in ("allow", "daily_audio_limit"):
        assert f"`{name}`" in docs and "default" in docs.split(f"`{name}`", 1)[1][:400]


def test_the_page_is_behind_ingress_and_opens_no_port() -> None:
    assert CONFIG["ingress"] is True
    assert CONFIG["ports"] == {"10300/tcp": None}, "no port is published for the page"
    assert CONFIG["panel_icon"].startswith("mdi:")
    assert CONFIG["homeassistant_api"] is True
    argv, _env = RUN.command(CONFIG["options"])
    settings = load_settings(argv[1:], env={})
    assert settings.web_port == CONFIG["ingress_port"]
    page = AccessPolicy(settings.allow + settings.web_allow)
    assert page.decide(RUN.INGRESS_PROXY) is Verdict.ALLOWED


def test_sensors_use_the_supervisors_token_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUPERVISOR_TOKEN", "sup-token-42")
    monkeypatch.delenv("SUPERVISOR_API", raising=False)
    argv, env = RUN.command(CONFIG["options"])
    assert argv[argv.index("--hass-url") + 1] == "http://supervisor/core"
    assert env["HASS_TOKEN"] == "sup-token-42" and "sup-token-42" not in " ".join(argv)
    monkeypatch.delenv("SUPERVISOR_TOKEN")
    argv, env = RUN.command(CONFIG["options"])
    assert "--hass-url" not in argv and "HASS_TOKEN" not in env


def test_the_homes_names_are_on_by_default_and_each_use_can_be_turned_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SUPERVISOR_TOKEN", "sup-token-42")
    monkeypatch.delenv("SUPERVISOR_API", raising=False)
    argv, env = RUN.command(CONFIG["options"])
    settings = load_settings(argv[1:], env=env)
    assert settings.hass_url == "http://supervisor/core"
    assert settings.hass_names and settings.hass_sensors  # nothing to configure
    for sensors, names in ((True, False), (False, True)):
        options = dict(CONFIG["options"], sensors=sensors, home_names=names)
        argv, env = RUN.command(options)
        settings = load_settings(argv[1:], env=env)
        assert settings.hass_url == "http://supervisor/core", options
        assert (settings.hass_sensors, settings.hass_names) == (sensors, names)
    argv, env = RUN.command(dict(CONFIG["options"], sensors=False, home_names=False))
    assert "--hass-url" not in argv and "HASS_TOKEN" not in env


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path.name} is not a PNG"
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


def test_icon_and_logo_exist_in_the_sizes_the_store_shows() -> None:
    assert _png_size(ADDON / "icon.png") == (128, 128)
    assert _png_size(ADDON / "logo.png") == (250, 100)


def test_the_version_is_released_and_the_changelog_says_what_is_in_it() -> None:
    """The Supervisor offers an update when ``version`` changes: the newest changelog entry
    must be that version (no "Unreleased" on top), and the package must agree."""
    import wyoming_lightning

    headings = re.findall(r"^## (\S+)", (ADDON / "CHANGELOG.md").read_text(), re.MULTILINE)
    assert headings[0] == str(CONFIG["version"]) == VERSION == wyoming_lightning.__version__
    assert "Unreleased" not in headings[:1]
    assert len(headings) == len(set(headings))


def test_translations_name_every_option_and_port() -> None:
    configuration = TRANSLATIONS["configuration"]
    assert set(configuration) == set(CONFIG["schema"])
    for name, text in configuration.items():
        assert text["name"].strip() and text["description"].strip(), name
    assert set(TRANSLATIONS["network"]) == set(CONFIG["ports"])


def test_translations_follow_the_supervisors_schema() -> None:
    jsonschema.validate(TRANSLATIONS, TRANSLATIONS_SCHEMA)


# ------------------------------------------------------------------------------- run script


FULL_OPTIONS = {
    "api_key": "sk-test-0123",
    "language": "de",
    "vad": "webrtc",
    "endpointing": True,
    "service_url": "ws://asr.local:8080/api/v1/lightning/get_text",
    "dialect": "lightning",
    "keywords": "Ada Lovelace:2,thermostat",
    "fallback": "local",
    "allow": "172.30.32.0/23,192.168.1.0/24",
    "daily_audio_limit": 30,
    "sensors": False,
    "home_names": False,
    "show_text": True,
    "debug": False,
}


def test_every_option_becomes_a_real_flag() -> None:
    flags = server_flags()
    mapped = set(RUN.FLAGS) | set(RUN.SECRET_OPTIONS) | set(RUN.SWITCHES)
    assert mapped == set(CONFIG["schema"]), "an option the run script ignores, or vice versa"
    for flag in RUN.FLAGS.values():
        assert flag in flags, f"{flag} is not a wyoming-lightning flag"
        if flag in ("--endpointing", "--debug", "--web-show-text"):
            assert "--no-" + flag[2:] in flags
    argv, env = RUN.command(FULL_OPTIONS)
    assert argv[:3] == ["wyoming-lightning", "--uri", "tcp://0.0.0.0:10300"]
    assert all(a in flags for a in argv if a.startswith("--"))
    assert env == {"SMALLEST_API_KEY": "sk-test-0123"}
    assert "sk-test-0123" not in " ".join(argv), "the key must never be on the command line"
    settings = load_settings(argv[1:], env=env)
    assert settings.language == "de" and settings.vad == "webrtc"
    assert settings.endpointing and not settings.debug and settings.fallback == "local"
    assert settings.service_url == FULL_OPTIONS["service_url"]
    assert settings.dialect == "lightning"
    assert [k.text for k in settings.keywords] == ["Ada Lovelace", "thermostat"]
    assert settings.api_key.reveal() == "sk-test-0123"
    assert [str(n) for n in settings.allow] == ["172.30.32.0/23", "192.168.1.0/24"]
    assert settings.daily_audio_limit_min == 30 and settings.web_show_text
    assert settings.web_port == RUN.INGRESS_PORT == CONFIG["ingress_port"]
    assert [str(n) for n in settings.web_allow] == ["172.30.32.2/32"]
    assert settings.hass_url is None, "sensors: false, home_names: false"


def test_defaults_and_omitted_optionals() -> None:
    argv, env = RUN.command(CONFIG["options"])
    assert "--lightning-url" not in argv and "--keywords" not in argv
    assert env == {}, "an empty key means no key (the offline recognizer)"
    settings = load_settings(argv[1:], env={})
    assert settings.service_url == DEFAULT_URL and settings.vad == CONFIG["options"]["vad"]


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(RUN_SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )


def test_dry_run_prints_the_command_but_not_the_key(tmp_path: Path) -> None:
    options = tmp_path / "options.json"
    options.write_text(json.dumps(FULL_OPTIONS))
    result = run_script("--options", str(options), "--dry-run")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["argv"] == RUN.command(FULL_OPTIONS)[0]
    assert shown["env"] == ["SMALLEST_API_KEY"]
    assert "sk-test-0123" not in result.stdout + result.stderr


def test_a_bad_combination_is_explained_in_option_names(tmp_path: Path) -> None:
    options = tmp_path / "options.json"
    options.write_text(json.dumps({**CONFIG["options"], "language": "uk"}))
    result = run_script("--options", str(options), "--dry-run")
    assert result.returncode == 2
    assert "invalid option: 'language' 'uk' is not offered by the service" in result.stderr
    assert "waves-api" not in result.stderr, "no pointer at the retired endpoint"


def test_missing_options_file_is_one_line(tmp_path: Path) -> None:
    result = run_script("--options", str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert result.stderr.strip().endswith("is this running as a Home Assistant add-on?")
    assert "Traceback" not in result.stderr


# ------------------------------------------------------------------------------- discovery


class FakeSupervisor:
    """Answers ``POST /discovery`` like the Supervisor; records what it was sent."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[dict[str, Any]] = []
        self.received = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append(
                    {
                        "path": self.path,
                        "authorization": self.headers.get("Authorization"),
                        "content_type": self.headers.get("Content-Type"),
                        "body": json.loads(body),
                    }
                )
                answer = {"result": "ok", "data": {"uuid": "5c0ffee"}}
                if status != 200:
                    answer = {"result": "error", "message": "unauthorized"}
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                outer.received.set()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeSupervisor:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def supervisor() -> Iterator[FakeSupervisor]:
    with FakeSupervisor() as fake:
        yield fake


async def discover_process(check_uri: str, supervisor_url: str) -> tuple[int, str]:
    env = {**os.environ, "SUPERVISOR_API": supervisor_url, "SUPERVISOR_TOKEN": "tok-123"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(RUN_SCRIPT),
        "--discover-only",
        check_uri,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, err.decode()


async def test_discovery_is_sent_once_the_server_answers(supervisor: FakeSupervisor) -> None:
    async with running_bridge(bridge_settings("ws://127.0.0.1:9/")) as server:
        code, log = await discover_process(f"tcp://127.0.0.1:{bridge_port(server)}", supervisor.url)
    assert code == 0, log
    (request,) = supervisor.requests
    assert request["path"] == "/discovery"
    assert request["authorization"] == "Bearer tok-123"
    assert request["content_type"] == "application/json"
    assert request["body"] == {
        "service": "wyoming",
        "config": {"uri": f"tcp://{socket.gethostname()}:10300"},
    }
    assert "sent discovery to Home Assistant" in log and "5c0ffee" in log


async def test_discovery_waits_for_a_server_that_starts_late(supervisor: FakeSupervisor) -> None:
    """The helper starts with the server; it must not announce before describe is answered."""
    attempted = asyncio.Event()

    async def not_ready(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempted.set()  # a server still starting: the connection closes with no answer
        writer.close()

    placeholder = await asyncio.start_server(not_ready, "127.0.0.1", 0)
    port = placeholder.sockets[0].getsockname()[1]
    helper = asyncio.create_task(discover_process(f"tcp://127.0.0.1:{port}", supervisor.url))
    async with asyncio.timeout(60):
        await attempted.wait()
    assert supervisor.requests == [], "announced before the server answered describe"
    placeholder.close()
    await placeholder.wait_closed()
    settings = bridge_settings("ws://127.0.0.1:9/", uri=f"tcp://127.0.0.1:{port}")
    async with running_bridge(settings):
        code, log = await helper
    assert code == 0, log
    assert len(supervisor.requests) == 1


async def test_a_refused_discovery_is_logged_not_fatal() -> None:
    with FakeSupervisor(status=401) as refusing:
        async with running_bridge(bridge_settings("ws://127.0.0.1:9/")) as server:
            code, log = await discover_process(
                f"tcp://127.0.0.1:{bridge_port(server)}", refusing.url
            )
    assert code == 1
    assert "discovery failed: the Supervisor refused the discovery message: HTTP 401" in log


def test_payload_shape() -> None:
    assert RUN.discovery_payload("abc-wyoming-lightning") == {
        "service": "wyoming",
        "config": {"uri": "tcp://abc-wyoming-lightning:10300"},
    }
