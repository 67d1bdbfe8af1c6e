"""The Home Assistant add-on (config/addon/): its configuration against the documented add-on
schema, its options against the server's real flags, its run script, and the discovery message
it sends to a stand-in Supervisor.

The JSON Schema below is written from the Home Assistant developer documentation, "Add-on
configuration" (developers.home-assistant.io/docs/add-ons/configuration): the required keys, the
optional keys with their types, and the option types ``schema`` accepts.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import shutil
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
from bridge import bridge_port, bridge_settings, running_bridge
from test_deploy_docker import of, parse_dockerfile, replace_once

from wyoming_lightning.config import VAD_CHOICES, build_parser, load_settings
from wyoming_lightning.lightning.protocol import (
    DIALECT_CHOICES,
    LIGHTNING_LANGUAGES,
    PULSE_LANGUAGES,
)

ROOT = Path(__file__).resolve().parent.parent
ADDON = ROOT / "config" / "addon"
CONFIG = yaml.safe_load((ADDON / "config.yaml").read_text())
BUILD = yaml.safe_load((ADDON / "build.yaml").read_text())
TRANSLATIONS = yaml.safe_load((ADDON / "translations" / "en.yaml").read_text())
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]

ARCHES = ["armhf", "armv7", "aarch64", "amd64", "i386"]
BOOL = {"type": "boolean"}
STR = {"type": "string"}
STR_LIST = {"type": "array", "items": STR}

ADDON_CONFIG_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["name", "version", "slug", "description", "arch"],
    "additionalProperties": False,
    "properties": {
        "name": STR,
        "version": STR,
        "slug": {"type": "string", "pattern": r"^[a-z0-9_]+$"},
        "description": STR,
        "arch": {
            "type": "array",
            "items": {"enum": ARCHES},
            "minItems": 1,
            "uniqueItems": True,
        },
        "machine": STR_LIST,
        "url": {"type": "string", "pattern": r"^https?://"},
        "startup": {"enum": ["initialize", "system", "services", "application", "once"]},
        "webui": STR,
        "boot": {"enum": ["auto", "manual", "manual_only"]},
        "ports": {
            "type": "object",
            "propertyNames": {"pattern": r"^\d+/(tcp|udp)$"},
            "additionalProperties": {"type": ["integer", "null"]},
        },
        "ports_description": {"type": "object", "additionalProperties": STR},
        "host_network": BOOL,
        "host_ipc": BOOL,
        "host_dbus": BOOL,
        "host_pid": BOOL,
        "host_uts": BOOL,
        "devices": STR_LIST,
        "homeassistant": STR,
        "hassio_role": {"enum": ["default", "homeassistant", "backup", "manager", "admin"]},
        "hassio_api": BOOL,
        "homeassistant_api": BOOL,
        "docker_api": BOOL,
        "privileged": STR_LIST,
        "full_access": BOOL,
        "apparmor": {"type": ["boolean", "string"]},
        "map": {"type": "array"},
        "environment": {"type": "object", "additionalProperties": STR},
        "audio": BOOL,
        "video": BOOL,
        "gpio": BOOL,
        "usb": BOOL,
        "uart": BOOL,
        "udev": BOOL,
        "devicetree": BOOL,
        "kernel_modules": BOOL,
        "stdin": BOOL,
        "legacy": BOOL,
        "options": {"type": "object"},
        "schema": {"anyOf": [{"type": "object"}, {"const": False}]},
        "image": STR,
        "codenotary": STR,
        "timeout": {"type": "integer"},
        "tmpfs": BOOL,
        "discovery": STR_LIST,
        "services": STR_LIST,
        "auth_api": BOOL,
        "ingress": BOOL,
        "ingress_port": {"type": "integer"},
        "ingress_entry": STR,
        "ingress_stream": BOOL,
        "panel_icon": STR,
        "panel_title": STR,
        "panel_admin": BOOL,
        "backup": {"enum": ["hot", "cold"]},
        "backup_pre": STR,
        "backup_post": STR,
        "backup_exclude": STR_LIST,
        "advanced": BOOL,
        "stage": {"enum": ["stable", "experimental", "deprecated"]},
        "init": BOOL,
        "watchdog": STR,
        "realtime": BOOL,
        "journald": BOOL,
        "breaking_versions": STR_LIST,
        "ulimits": {"type": "object"},
    },
}

BUILD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "build_from": {
            "type": "object",
            "propertyNames": {"enum": ARCHES},
            "additionalProperties": STR,
        },
        "args": {"type": "object", "additionalProperties": {"type": ["string", "number"]}},
        "labels": {"type": "object"},
        "codenotary": {"type": "object"},
    },
}

#: The option types of the documentation, with an optional trailing "?".
OPTION_TYPE = re.compile(
    r"^(?P<type>str|bool|int|float|email|url|password|port|match|list|device)"
    r"(?:\((?P<arg>.*)\))?(?P<optional>\?)?$",
    re.DOTALL,
)


def option_type(spec: str) -> re.Match[str]:
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
    spec = importlib.util.spec_from_file_location("lightning_addon_run", ADDON / "run.py")
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


def test_config_follows_the_documented_schema() -> None:
    jsonschema.validate(CONFIG, ADDON_CONFIG_SCHEMA)


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
    assert set(choices("language")) == set(LIGHTNING_LANGUAGES) | set(PULSE_LANGUAGES)
    assert len(choices("language")) == len(set(choices("language")))
    assert tuple(choices("vad")) == VAD_CHOICES
    fallback = next(a for a in build_parser({})._actions if a.dest == "fallback")
    assert tuple(choices("fallback")) == tuple(fallback.choices or ())
    assert option_type(schema["endpointing"])["type"] == "bool"
    assert option_type(schema["debug"])["type"] == "bool"
    assert option_type(schema["service_url"]).group("type", "optional") == ("url", "?")
    assert choices("dialect") == list(DIALECT_CHOICES)


def test_translations_name_every_option_and_port() -> None:
    configuration = TRANSLATIONS["configuration"]
    assert set(configuration) == set(CONFIG["schema"])
    for name, text in configuration.items():
        assert text["name"].strip() and text["description"].strip(), name
    assert set(TRANSLATIONS["network"]) == set(CONFIG["ports"])


def test_build_config() -> None:
    jsonschema.validate(BUILD, BUILD_SCHEMA)
    assert set(BUILD["build_from"]) == set(CONFIG["arch"])
    for image in BUILD["build_from"].values():
        assert re.fullmatch(r"[a-z0-9]+/python:3\.11\.\d+-slim-[a-z]+", image), image
    assert str(BUILD["args"]["WYOMING_LIGHTNING_VERSION"]) == VERSION
    assert BUILD["args"]["EXTRAS"] == "local", "fallback: local needs the offline recognizer"


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
    "debug": False,
}


def test_every_option_becomes_a_real_flag() -> None:
    flags = server_flags()
    mapped = set(RUN.FLAGS) | set(RUN.SECRET_OPTIONS)
    assert mapped == set(CONFIG["schema"]), "an option the run script ignores, or vice versa"
    for flag in RUN.FLAGS.values():
        assert flag in flags, f"{flag} is not a wyoming-lightning flag"
        if flag in ("--endpointing", "--debug"):
            assert "--no-" + flag[2:] in flags
    argv, env = RUN.command(FULL_OPTIONS)
    assert argv[:3] == ["wyoming-lightning", "--uri", "tcp://0.0.0.0:10300"]
    assert all(a in flags for a in argv if a.startswith("--"))
    assert env == {"SMALLEST_API_KEY": "sk-test-0123"}
    assert "sk-test-0123" not in " ".join(argv), "the key must never be on the command line"
    settings = load_settings(argv[1:], env=env)
    assert settings.language == "de" and settings.vad == "webrtc"
    assert settings.endpointing and not settings.debug and settings.fallback == "local"
    assert settings.service_url == FULL_OPTIONS["service_url"] and settings.url_fixed
    assert settings.dialect == "lightning"
    assert [k.text for k in settings.keywords] == ["Ada Lovelace", "thermostat"]
    assert settings.api_key.reveal() == "sk-test-0123"


def test_defaults_and_omitted_optionals() -> None:
    argv, env = RUN.command(CONFIG["options"])
    assert "--lightning-url" not in argv and "--keywords" not in argv
    assert env == {}, "an empty key means no key (the offline recognizer)"
    settings = load_settings(argv[1:], env={})
    assert not settings.url_fixed and settings.vad == CONFIG["options"]["vad"]


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ADDON / "run.py"), *args],
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
    assert "invalid option: 'language' 'uk' is not offered" in result.stderr
    assert "set 'service_url' to wss://waves-api.smallest.ai/api/v1/lightning/" in result.stderr


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
        str(ADDON / "run.py"),
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


# ------------------------------------------------------------------------------- image


ADDON_STAGES = parse_dockerfile(ADDON / "Dockerfile")
ADDON_FINAL = ADDON_STAGES[-1]


def test_addon_dockerfile_runs_the_run_script() -> None:
    (first_from,) = [s[0] for s in ADDON_STAGES if s and s[0].keyword == "FROM"]
    assert first_from.args in ("${BUILD_FROM}", "$BUILD_FROM")
    copies = {c.args.split()[0]: c.args.split()[-1] for c in of(ADDON_FINAL, "COPY")}
    assert copies["run.py"] == "/usr/local/bin/lightning-addon"
    assert of(ADDON_FINAL, "CMD")[-1].exec_form() == ["python", "/usr/local/bin/lightning-addon"]
    assert [e.args for e in of(ADDON_FINAL, "EXPOSE")] == ["10300"]
    (check,) = of(ADDON_FINAL, "HEALTHCHECK")
    assert '"wyoming-lightning-healthcheck"' in check.args
    for source in copies:
        assert (ADDON / source).exists(), f"COPY {source}: not in the add-on directory"
    defaults = {
        a.args.split("=", 1)[0]: a.args.split("=", 1)[1]
        for stage in ADDON_STAGES
        for a in of(stage, "ARG")
        if "=" in a.args
    }
    assert defaults["WYOMING_LIGHTNING_VERSION"] == VERSION
    assert defaults["EXTRAS"] == BUILD["args"]["EXTRAS"]
    assert defaults["BUILD_FROM"] == BUILD["build_from"]["amd64"].split("/", 1)[1]


def test_addon_install_step_from_a_local_wheel(tmp_path: Path) -> None:
    """The add-on's pip step finds the package in wheels/ (how an unreleased checkout is built),
    at the version build.yaml names."""
    wheels = tmp_path / "wheels"
    source = tmp_path / "source"  # a copy: building in the checkout would leave build/ there
    shutil.copytree(
        ROOT, source, ignore=shutil.ignore_patterns(".git", "build", "*.egg-info", "__pycache__",
                                                    ".*_cache", "tests", "benchmarks"),
    )  # fmt: skip
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", str(wheels), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (run,) = [r.args for r in of(ADDON_FINAL, "RUN") if "pip install" in r.args]
    venv = tmp_path / "venv"
    command = replace_once(
        run, "python -m venv /opt/venv",
        f"{sys.executable} -m venv --system-site-packages --without-pip {venv}",
    )  # fmt: skip
    command = replace_once(
        command, "/opt/venv/bin/pip install",
        # --ignore-installed: the venv sees this checkout's own (editable) install, which would
        # otherwise satisfy the requirement and leave the venv without the package.
        f"{venv}/bin/python -m pip install --no-deps --no-index --ignore-installed",
    )  # fmt: skip
    command = replace_once(command, "--find-links /tmp/wheels", f"--find-links {wheels}")
    command = replace_once(command, "rm -rf /tmp/wheels", "true")
    command = command.replace("/opt/venv", str(venv))
    env = {
        **os.environ,
        "EXTRAS": str(BUILD["args"]["EXTRAS"]),
        "WYOMING_LIGHTNING_VERSION": str(BUILD["args"]["WYOMING_LIGHTNING_VERSION"]),
    }
    env.pop("PIP_FIND_LINKS", None)
    env["PIP_CONFIG_FILE"] = os.devnull  # this machine's pip configuration is not the image's
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == VERSION
    assert "does not provide the extra" not in result.stdout + result.stderr
