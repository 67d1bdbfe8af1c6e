#!/usr/bin/env python3
"""Home Assistant add-on entry point: the user's options become flags, then the server runs.

Written in Python rather than bashio so that the add-on needs no s6/bashio base image (the
add-on is the project's own Docker image; its entry point starts this script when the
Supervisor runs it) and so that the option-to-flag mapping and the discovery message are tested
with the project's test suite.

Start-up:
1. read ``/data/options.json`` (written by the Supervisor from the add-on's options);
2. turn it into ``wyoming-lightning`` flags and check them with the server's own parser, so a
   bad combination is reported in the add-on log in terms of the add-on's option names;
3. start the one-shot discovery helper (detached): it waits until the server answers
   ``describe``, then posts ``{"uri": "tcp://<this add-on's hostname>:10300"}`` for service
   ``wyoming`` to the Supervisor, which makes Home Assistant offer the integration;
4. ``exec`` the server, so it is the process the Supervisor stops with SIGTERM.

The status page listens on the ingress port for the Supervisor's proxy (172.30.32.2), and with
``sensors`` on the server posts today's usage to Home Assistant's API through the Supervisor
(``homeassistant_api: true`` gives the add-on a token that is valid there).

The API key is passed in the environment, never on the command line (``ps`` shows that).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

PORT = 10300
SERVER_URI = f"tcp://0.0.0.0:{PORT}"
CHECK_URI = f"tcp://127.0.0.1:{PORT}"
OPTIONS_PATH = Path("/data/options.json")
SUPERVISOR_URL = "http://supervisor"
DISCOVERY_WAIT_S = 120.0
SERVER = "wyoming-lightning"
INGRESS_PORT = 8099
INGRESS_PROXY = "172.30.32.2"

#: option name -> flag. Booleans become --flag / --no-flag.
FLAGS: dict[str, str] = {
    "language": "--language",
    "vad": "--vad",
    "endpointing": "--endpointing",
    "end_of_command_backstop_ms": "--turn-unfinished-ms",
    "service_url": "--lightning-url",
    "dialect": "--dialect",
    "keywords": "--keywords",
    "fallback": "--fallback",
    "allow": "--allow",
    "daily_audio_limit": "--daily-audio-limit",
    "show_text": "--web-show-text",
    "debug": "--debug",
}
#: Options that are not one flag: ``sensors`` and ``home_names`` turn on the Home Assistant
#: connection (the Supervisor's, with its token), each for its own use of it.
SWITCHES = ("sensors", "home_names")
#: The add-on's persistent volume: the usage table (requests, audio, cost per day) lives here.
DATA_DIR = "/data"
SECRET_OPTIONS = ("api_key",)


class AddonError(Exception):
    """A problem with the add-on's options, reported as one line in the add-on log."""


def log(message: str) -> None:
    print(f"[lightning add-on] {message}", file=sys.stderr, flush=True)


def load_options(path: Path) -> dict[str, Any]:
    try:
        options = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise AddonError(f"{path} not found: is this running as a Home Assistant add-on?") from None
    except (OSError, ValueError) as err:
        raise AddonError(f"cannot read {path}: {err}") from None
    if not isinstance(options, dict):
        raise AddonError(f"{path} does not hold an object")
    return options


def command(options: Mapping[str, Any]) -> tuple[list[str], dict[str, str]]:
    """The server's argv and the environment it needs on top of the add-on's own."""
    unknown = sorted(set(options) - set(FLAGS) - set(SECRET_OPTIONS) - set(SWITCHES))
    if unknown:
        log(f"ignoring unknown options: {', '.join(unknown)}")
    argv = [SERVER, "--uri", SERVER_URI, "--data-dir", DATA_DIR]
    argv += ["--web-port", str(INGRESS_PORT), "--web-allow", INGRESS_PROXY]
    for name, flag in FLAGS.items():
        value = options.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag.removeprefix("--"))
        else:
            argv += [flag, str(value)]
    env: dict[str, str] = {}
    key = str(options.get("api_key") or "").strip()
    if key:
        env["SMALLEST_API_KEY"] = key
    sensors, names = bool(options.get("sensors")), options.get("home_names", True) is True
    if sensors or names:
        token = os.environ.get("SUPERVISOR_TOKEN", "")
        if token:
            supervisor = os.environ.get("SUPERVISOR_API", SUPERVISOR_URL).rstrip("/")
            argv += ["--hass-url", f"{supervisor}/core"]
            argv += [] if sensors else ["--no-hass-sensors"]
            argv += [] if names else ["--no-hass-names"]
            env["HASS_TOKEN"] = token  # the environment, never the command line
        else:
            log("SUPERVISOR_TOKEN is not set: the usage sensors and the home's names are off")
    return argv, env


def check(argv: Sequence[str], env: Mapping[str, str]) -> None:
    """Validate with the server's own parser; explain failures with the add-on's option names."""
    from wyoming_lightning.settings.config import ConfigError, load_settings

    try:
        load_settings(list(argv[1:]), env=dict(env))
    except ConfigError as err:
        text = str(err)
        for name, flag in FLAGS.items():
            text = text.replace(flag, f"'{name}'")
        raise AddonError(f"invalid option: {text}") from None


def discovery_payload(hostname: str, port: int = PORT) -> dict[str, Any]:
    """What the Supervisor's ``/discovery`` endpoint takes (as bashio::discovery sends it)."""
    return {"service": "wyoming", "config": {"uri": f"tcp://{hostname}:{port}"}}


def announce(
    supervisor_url: str, token: str, payload: Mapping[str, Any], timeout_s: float = 10.0
) -> str:
    """POST the discovery message; return the Supervisor's discovery uuid."""
    request = urllib.request.Request(
        supervisor_url.rstrip("/") + "/discovery",
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            answer = json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        raise AddonError(f"the Supervisor refused the discovery message: HTTP {err.code}") from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise AddonError(f"cannot reach the Supervisor at {supervisor_url}: {err}") from None
    if not isinstance(answer, dict) or answer.get("result") != "ok":
        raise AddonError(f"the Supervisor answered: {answer}")
    data = answer.get("data")
    return str(data.get("uuid", "")) if isinstance(data, dict) else ""


def wait_until_serving(uri: str, wait_s: float) -> None:
    """Until the server answers ``describe`` as Home Assistant will ask it; no fixed sleep."""
    from wyoming_lightning.healthcheck import Unhealthy, check

    deadline = time.monotonic() + wait_s
    while True:
        try:
            asyncio.run(check(uri, 2.0))
            return
        except Unhealthy as err:
            if time.monotonic() >= deadline:
                raise AddonError(f"the server did not come up within {wait_s:g} s: {err}") from None
        time.sleep(0.5)


def discover(check_uri: str, supervisor_url: str, token: str, hostname: str) -> int:
    try:
        wait_until_serving(check_uri, DISCOVERY_WAIT_S)
        uuid = announce(supervisor_url, token, discovery_payload(hostname))
    except AddonError as err:
        log(f"discovery failed: {err}")
        return 1
    log(f"sent discovery to Home Assistant: tcp://{hostname}:{PORT} (uuid {uuid or '?'})")
    return 0


def spawn_discovery(supervisor_url: str, token: str) -> None:
    """Double fork: the helper is adopted by the container's init (Supervisor runs add-ons with
    ``--init``), so it never lingers as a zombie under the server it outlives."""
    pid = os.fork()
    if pid:
        os.waitpid(pid, 0)
        return
    try:
        os.setsid()
        if os.fork():
            os._exit(0)
        code = discover(CHECK_URI, supervisor_url, token, socket.gethostname())
    except BaseException:  # a helper must never fall back into the parent's code
        code = 1
    os._exit(code)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--options", type=Path, default=OPTIONS_PATH)
    parser.add_argument(
        "--dry-run", action="store_true", help="print the command (never the key) and exit"
    )
    parser.add_argument(
        "--discover-only",
        metavar="CHECK_URI",
        help="only wait for the server at CHECK_URI and send the discovery message",
    )
    args = parser.parse_args(argv)
    token = os.environ.get("SUPERVISOR_TOKEN", "")
    supervisor = os.environ.get("SUPERVISOR_API", SUPERVISOR_URL)
    if args.discover_only:
        return discover(args.discover_only, supervisor, token, socket.gethostname())
    try:
        options = load_options(args.options)
        server_argv, extra_env = command(options)
        env = {**os.environ, **extra_env}
        check(server_argv, env)
    except AddonError as err:
        log(str(err))
        return 2
    if args.dry_run:
        shown = {"argv": server_argv, "env": sorted(extra_env)}
        print(json.dumps(shown))
        return 0
    if not extra_env.get("SMALLEST_API_KEY"):
        log("no API key set: only the local recognizer will transcribe")
    if token:
        spawn_discovery(supervisor, token)
    else:
        log("SUPERVISOR_TOKEN is not set: not sending discovery (add the server by hand)")
    log(f"starting: {' '.join(server_argv)}")
    os.execvpe(server_argv[0], server_argv, env)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
