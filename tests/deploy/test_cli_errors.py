"""Every console script, run as a user runs it, answers a mistake with one line and no traceback.

Each case starts the installed script in a subprocess and requires a non-zero exit, exactly one
line on stderr naming the problem, no "Traceback", and never the secret passed to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import wave
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.kit.bridge import bridge_settings, running_bridge
from tests.kit.net import free_port
from wyoming_lightning import __version__
from wyoming_lightning.emulator.tones import encode_phrase
from wyoming_lightning.services import Services
from wyoming_lightning.settings.cli import describe_failure, host_of
from wyoming_lightning.wyoming.server import ListenError, WyomingServer

SERVER = "wyoming-lightning"
EMULATOR = "wyoming-lightning-emulator"
CLIENT = "wyoming-lightning-client"
HEALTHCHECK = "wyoming-lightning-healthcheck"
TONES = "wyoming-lightning-tones"
SCRIPTS = (SERVER, EMULATOR, CLIENT, HEALTHCHECK, TONES)
SECRET = "sk-live-5ec7e7"
SERVICE = "ws://127.0.0.1:{closed}/api/v1/lightning/get_text"


def script(name: str) -> str:
    """The console script installed next to the interpreter running the tests."""
    found = shutil.which(name, path=str(Path(sys.executable).parent))
    assert found, f"{name} is not installed next to {sys.executable}: pip install -e '.[dev]'"
    return found


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LIGHTNING_", "SMALLEST_", "EMULATOR_", "PYTHON"))
    }
    return {**env, **extra}


@pytest.fixture
def places(tmp_path: Path) -> Iterator[dict[str, str]]:
    """What the cases refer to: files of each kind, a closed port and a port in use."""
    (tmp_path / "empty.key").write_text("")
    (tmp_path / "notes.txt").write_text("precious\n")
    # The 'local' extra, as missing as on a machine without it: its import fails.
    shadow = tmp_path / "shadow" / "faster_whisper"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('faster-whisper is not installed')\n")
    with wave.open(str(tmp_path / "tone.wav"), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(16000)
        wav.writeframes(encode_phrase("one"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield {
            "tmp": str(tmp_path),
            "closed": str(free_port()),
            "busy": str(busy.getsockname()[1]),
            "shadow": str(tmp_path / "shadow"),
        }


def fail_in_one_line(
    name: str, args: list[str], env: dict[str, str], cwd: str | None = None
) -> tuple[int, str]:
    result = subprocess.run(
        [script(name), *args],
        env=clean_env(**env),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert SECRET not in result.stderr + result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr:\n{result.stderr}"
    assert result.stdout == ""
    return result.returncode, lines[0]


CASES: list[tuple[str, list[str], dict[str, str], str]] = [
    # wyoming-lightning: where to listen, from the flag or the variable
    (SERVER, ["--uri", "garbage"], {}, "argument --uri: 'garbage' is not a URI"),
    (SERVER, ["--uri", "http://0.0.0.0:10300"], {}, "argument --uri: http:// is not supported"),
    (SERVER, ["--uri", "tcp://0.0.0.0:99999"], {}, "port 99999 in 'tcp://0.0.0.0:99999' is out"),
    (SERVER, [], {"LIGHTNING_URI": "garbage"}, "LIGHTNING_URI: 'garbage' is not a URI"),
    (SERVER, [], {"LIGHTNING_URI": "http://0.0.0.0:1"}, "LIGHTNING_URI: http:// is not supported"),
    (SERVER, [], {"LIGHTNING_URI": "tcp://0.0.0.0:99999"}, "LIGHTNING_URI: port 99999"),
    (SERVER, [], {"LIGHTNING_RETRIES": "many"}, "LIGHTNING_RETRIES='many' is not a whole number"),
    # logging, the key, the service URL
    (SERVER, ["--log-format", "%(nope)s"], {}, "argument --log-format: not a usable logging"),
    (SERVER, [], {"LIGHTNING_LOG_FORMAT": "%(nope)s"}, "LIGHTNING_LOG_FORMAT: not a usable"),
    (SERVER, ["--api-key", SECRET], {}, "there is no --api-key"),
    (SERVER, [f"--api-key={SECRET}"], {}, "there is no --api-key"),
    (SERVER, ["--api-key-file", "{tmp}/empty.key"], {}, "--api-key-file: the API key file "),
    (SERVER, [], {"SMALLEST_API_KEY_FILE": "{tmp}/empty.key"}, "SMALLEST_API_KEY_FILE: the API"),
    (
        SERVER,
        ["--lightning-url", f"https://me:{SECRET}@stt.example/v1?api_key={SECRET}&language=en"],
        {},
        "not 'https://me:***@stt.example/v1?api_key=***&language=en'",
    ),
    # start-up checks that used to pass and fail later
    (
        SERVER,
        ["--uri", "unix://{tmp}/notes.txt", "--lightning-url", SERVICE],
        {"SMALLEST_API_KEY": SECRET},
        "notes.txt exists and is not a socket; not replacing it",
    ),
    (
        SERVER,
        ["--fallback", "local", "--lightning-url", SERVICE],
        {"SMALLEST_API_KEY": SECRET, "PYTHONPATH": "{shadow}"},
        "--fallback local needs the local recognizer, which is not installed",
    ),
    (
        SERVER,
        ["--check-key", "--lightning-url", SERVICE],
        {"SMALLEST_API_KEY": SECRET},
        "API key check failed: cannot reach 127.0.0.1:{closed}: connection refused",
    ),
    (
        SERVER,
        ["--uri", "tcp://127.0.0.1:{busy}", "--lightning-url", SERVICE],
        {"SMALLEST_API_KEY": SECRET},
        "cannot listen on tcp://127.0.0.1:{busy}: address already in use",
    ),
    # wyoming-lightning-emulator
    (EMULATOR, ["--port", "99999"], {}, "argument --port: port 99999 is out of range"),
    (EMULATOR, ["--port", "{busy}"], {}, "cannot listen on 127.0.0.1:{busy}: address already"),
    (EMULATOR, ["--api-k", SECRET], {}, "unrecognized option(s) --api-k"),
    # wyoming-lightning-tones
    (TONES, ["encode", "one eleven", "-o", "{tmp}/x.wav"], {}, "unknown word(s) 'eleven'"),
    (TONES, ["encode", "one", "-o", "{tmp}/notes.txt/x.wav"], {}, "cannot write {tmp}/notes.txt"),
    (TONES, ["encode", "one", "-o", "{tmp}"], {}, "cannot write {tmp}: Is a directory"),
    (TONES, ["decode", "{tmp}/missing.wav"], {}, "cannot read {tmp}/missing.wav: No such file"),
    (TONES, ["decode", "{tmp}/notes.txt"], {}, "notes.txt is not a PCM WAV file"),
    # wyoming-lightning-client
    (CLIENT, ["{tmp}/tone.wav", "--uri", "garbage"], {}, "argument --uri: 'garbage' is not a URI"),
    (CLIENT, ["{tmp}/tone.wav", "--uri", "http://127.0.0.1:1"], {}, "http:// is not supported"),
    (CLIENT, ["{tmp}/tone.wav", "--uri", "tcp://127.0.0.1:99999"], {}, "port 99999 in"),
    (CLIENT, ["{tmp}/tone.wav", "--uri", "tcp://127.0.0.1"], {}, "needs a host and a port"),
    (CLIENT, ["{tmp}/missing.wav"], {}, "cannot read {tmp}/missing.wav"),
    (
        CLIENT,
        ["{tmp}/tone.wav", "--uri", "tcp://127.0.0.1:{closed}", "-q"],  # -q: no progress
        {},
        "cannot connect to tcp://127.0.0.1:{closed}: connection refused",
    ),
    # wyoming-lightning-healthcheck
    (HEALTHCHECK, ["--uri", "garbage"], {}, "argument --uri: 'garbage' is not a URI"),
    (HEALTHCHECK, ["--uri", "http://127.0.0.1:1"], {}, "http:// is not supported"),
    (HEALTHCHECK, ["--uri", "tcp://127.0.0.1:99999"], {}, "port 99999 in"),
    (HEALTHCHECK, [], {"LIGHTNING_URI": "garbage"}, "LIGHTNING_URI: 'garbage' is not a URI"),
    (HEALTHCHECK, [], {"LIGHTNING_URI": "tcp://0.0.0.0:99999"}, "LIGHTNING_URI: port 99999"),
    (HEALTHCHECK, [], {"LIGHTNING_HEALTHCHECK_URI": "http://h:1"}, "LIGHTNING_HEALTHCHECK_URI:"),
]


@pytest.mark.parametrize(
    ("name", "args", "env", "expected"),
    CASES,
    ids=[f"{name}:{' '.join(args) or next(iter(env))}" for name, args, env, _ in CASES],
)
def test_a_user_error_is_one_line(
    places: dict[str, str], name: str, args: list[str], env: dict[str, str], expected: str
) -> None:
    code, line = fail_in_one_line(
        name,
        [a.format(**places) for a in args],
        {k: v.format(**places) for k, v in env.items()},
    )
    assert expected.format(**places) in line, line
    logged = f" ERROR {name.replace('-', '_')}: "  # the server's log, in its default format
    assert line.startswith((f"{name}: ", "unhealthy: ")) or logged in line, line
    if name == HEALTHCHECK:
        assert code == 1  # Docker reserves 2 for health checks
    if name == SERVER and "--check-key" in args:
        assert code == 1  # as the README promises


def test_a_regular_file_in_the_way_of_the_socket_is_left_alone(places: dict[str, str]) -> None:
    notes = Path(places["tmp"]) / "notes.txt"
    fail_in_one_line(
        SERVER,
        ["--uri", f"unix://{notes}", "--lightning-url", SERVICE.format(**places)],
        {"SMALLEST_API_KEY": SECRET},
    )
    assert notes.read_text() == "precious\n"


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_script_has_version_and_shows_defaults(name: str) -> None:
    version = subprocess.run(
        [script(name), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (version.returncode, version.stdout) == (0, f"{__version__}\n")
    shown = subprocess.run(
        [script(name), "--help"], capture_output=True, text=True, timeout=60, check=False
    )
    assert shown.returncode == 0, shown.stderr
    if name != TONES:  # its options are on its subcommands
        assert "(default: " in shown.stdout, shown.stdout


def test_tones_subcommands_show_defaults() -> None:
    shown = subprocess.run(
        [script(TONES), "encode", "--help"], capture_output=True, text=True, timeout=60
    )
    assert "(default: 16000)" in shown.stdout


def sigint_as(disposition: signal.Handlers) -> Callable[[], None]:
    """A ``preexec_fn`` giving the child SIGINT as a user's shell would, whatever ours is.

    A child inherits an ignored SIGINT: pytest started in the background by a non-interactive
    shell (``cmd &``) has it ignored, and so had every health check it started, which then
    outlived its Ctrl-C (the "still running 60 s after Ctrl-C" failure under load)."""

    def set_sigint() -> None:
        signal.signal(signal.SIGINT, disposition)

    return set_sigint


@contextlib.asynccontextmanager
async def retrying_healthcheck(
    disposition: signal.Handlers,
) -> AsyncIterator[tuple[asyncio.subprocess.Process, Callable[[int], Awaitable[None]]]]:
    """A health check with --wait against a server that hangs up at once, so it retries;
    with a way to wait for its next N connections."""
    connections = 0
    arrived = asyncio.Condition()

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()
        async with arrived:
            arrived.notify_all()

    async def more(n: int) -> None:
        target = connections + n
        async with asyncio.timeout(60), arrived:
            await arrived.wait_for(lambda: connections >= target)

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    process = await asyncio.create_subprocess_exec(
        script(HEALTHCHECK),
        "--uri",
        f"tcp://127.0.0.1:{port}",
        "--wait",
        "120",
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=sigint_as(disposition),
    )
    try:
        yield process, more
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        server.close()
        await server.wait_closed()


async def test_ctrl_c_during_healthcheck_wait_is_one_line() -> None:
    """The check is retried while --wait lasts; Ctrl-C at any point ends it in one line."""
    async with retrying_healthcheck(signal.SIG_DFL) as (process, more):
        await more(2)  # it is retrying: inside the --wait loop
        process.send_signal(signal.SIGINT)
        async with asyncio.timeout(60):
            out, err = await process.communicate()
    assert process.returncode == 130
    assert err.decode() == f"{HEALTHCHECK}: interrupted\n"
    assert out == b""


async def test_an_ignored_sigint_stays_ignored_during_healthcheck_wait() -> None:
    """A background job of a non-interactive shell must survive the Ctrl-C meant for the
    foreground: the health check honours an inherited SIG_IGN as any Python program does."""
    async with retrying_healthcheck(signal.SIG_IGN) as (process, more):
        await more(1)
        process.send_signal(signal.SIGINT)
        # Two more connections: the second began after the first was hung up, so after the
        # signal had been discarded.
        await more(2)
        assert process.returncode is None


# ------------------------------------------------------------------------------- unix sockets


async def test_a_stale_socket_is_replaced_and_removed_on_exit(tmp_path: Path) -> None:
    path = tmp_path / "stt.sock"
    with socket.socket(socket.AF_UNIX) as dead:
        dead.bind(str(path))  # bound, never listening: what a killed server leaves
    async with running_bridge(bridge_settings("ws://127.0.0.1:9/", uri=f"unix://{path}")):
        with socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(path))  # the new server accepts there
    assert not path.exists(), "the socket file is left behind"


async def test_a_live_socket_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "stt.sock"
    settings = bridge_settings("ws://127.0.0.1:9/", uri=f"unix://{path}")
    async with running_bridge(settings):
        second = WyomingServer(Services(settings))
        with pytest.raises(ListenError, match="another server is listening on"):
            await second.start()
        assert path.exists()
    assert not path.exists()


async def test_a_regular_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "stt.sock"
    path.write_text("not a socket")
    server = WyomingServer(Services(bridge_settings("ws://x:9/", uri=f"unix://{path}")))
    with pytest.raises(ListenError, match="exists and is not a socket"):
        await server.start()
    assert path.read_text() == "not a socket"


# ------------------------------------------------------------------------------- wording


def test_failures_are_described_in_words_with_the_host() -> None:
    not_found = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    assert describe_failure(not_found) == "name not resolved"
    assert describe_failure(ConnectionRefusedError(111, "Connection refused")) == (
        "connection refused"
    )
    assert describe_failure(OSError(101, "Network is unreachable")) == "network is unreachable"
    assert host_of("wss://waves-api.smallest.ai/api/v1/lightning/get_text") == (
        "waves-api.smallest.ai"
    )
    assert host_of("ws://user:pw@127.0.0.1:8765/x") == "127.0.0.1:8765"
