"""``wyoming-lightning-healthcheck``, run as a process the way Docker's HEALTHCHECK runs it."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from wyoming.event import async_read_event, async_write_event
from wyoming.info import AsrProgram, Attribution, Info

from tests.kit.bridge import bridge_settings, running_bridge
from tests.kit.process import Ran, run_module
from wyoming_lightning import __version__
from wyoming_lightning.core.languages import PULSE_LANGUAGES
from wyoming_lightning.healthcheck import default_uri


async def healthcheck(*args: str) -> Ran:
    """Run the command without blocking the event loop that serves the checked server."""
    return await run_module("wyoming_lightning.healthcheck", *args)


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@asynccontextmanager
async def fake_server(handler: Handler) -> AsyncIterator[int]:
    """A TCP server that misbehaves on purpose; yields its port."""
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_healthy_server_passes() -> None:
    async with running_bridge(bridge_settings("ws://127.0.0.1:9/")) as server:
        port = server.sockets[0][1]
        result = await healthcheck("--uri", f"tcp://127.0.0.1:{port}")
    assert result.code == 0, result.stderr
    assert result.stdout.strip() == (
        # A URL whose path says nothing speaks Pulse, and advertises Pulse's languages.
        f"healthy: lightning {__version__}, {len(PULSE_LANGUAGES)} languages"
    )
    assert result.stderr == ""


async def test_healthy_server_on_a_unix_socket(tmp_path: Path) -> None:
    path = tmp_path / "stt.sock"
    async with running_bridge(bridge_settings("ws://127.0.0.1:9/", uri=f"unix://{path}")):
        result = await healthcheck("--uri", f"unix://{path}", "--quiet")
    assert result.code == 0, result.stderr
    assert result.stdout == ""


async def test_closed_port_fails_with_a_clear_message() -> None:
    # A bound socket that does not listen: connecting is refused, and the port stays ours.
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        port = holder.getsockname()[1]
        result = await healthcheck("--uri", f"tcp://127.0.0.1:{port}")
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        f"unhealthy: cannot connect to tcp://127.0.0.1:{port}: "
        "connection refused (is the server running?)"
    )


async def test_silent_server_times_out() -> None:
    release = asyncio.Event()

    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await release.wait()
        writer.close()

    async with fake_server(never_answer) as port:
        result = await healthcheck("--uri", f"tcp://127.0.0.1:{port}", "--timeout", "0.5")
        release.set()
    assert result.code == 1
    assert "no answer to describe" in result.stderr and "0.5 s" in result.stderr


async def test_server_without_an_installed_program_is_unhealthy() -> None:
    """Home Assistant ignores programs that are not installed, so the check must too."""
    attribution = Attribution(name="x", url="https://example.invalid")
    info = Info(asr=[AsrProgram("other", attribution, False, "", None, models=[])])

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        event = await async_read_event(reader)
        assert event is not None and event.type == "describe"
        await async_write_event(info.event(), writer)
        writer.close()

    async with fake_server(answer) as port:
        result = await healthcheck("--uri", f"tcp://127.0.0.1:{port}")
    assert result.code == 1
    assert "no installed speech-to-text program (programs: other)" in result.stderr


async def test_server_that_hangs_up_is_unhealthy() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    async with fake_server(hang_up) as port:
        result = await healthcheck("--uri", f"tcp://127.0.0.1:{port}")
    assert result.code == 1
    assert "closed the connection without answering describe" in result.stderr


async def test_stdio_uri_is_refused() -> None:
    result = await healthcheck("--uri", "stdio://")
    assert result.code == 1
    assert "stdio:// is not supported here; use tcp://HOST:PORT or unix://PATH" in result.stderr


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, "tcp://127.0.0.1:10300"),
        ({"LIGHTNING_URI": "tcp://0.0.0.0:10555"}, "tcp://127.0.0.1:10555"),
        ({"LIGHTNING_URI": "tcp://[::]:10556"}, "tcp://127.0.0.1:10556"),
        ({"LIGHTNING_URI": "tcp://192.0.2.7:10557"}, "tcp://192.0.2.7:10557"),
        ({"LIGHTNING_URI": "tcp://[fd00::7]:10558"}, "tcp://[fd00::7]:10558"),
        ({"LIGHTNING_URI": "unix:///run/stt.sock"}, "unix:///run/stt.sock"),
        ({"LIGHTNING_URI": "stdio://"}, "tcp://127.0.0.1:10300"),
        # Read by the server's own parser (cli.parse_uri): what the server accepts, it follows.
        ({"LIGHTNING_URI": "tcp://0.0.0.0"}, "tcp://127.0.0.1:10300"),
        ({"LIGHTNING_URI": "TCP://0.0.0.0:10559"}, "tcp://127.0.0.1:10559"),
        ({"LIGHTNING_URI": "tcp://0.0.0.0:port"}, "tcp://0.0.0.0:port"),  # main() says why
        (
            {"LIGHTNING_URI": "tcp://0.0.0.0:1", "LIGHTNING_HEALTHCHECK_URI": "tcp://h:2"},
            "tcp://h:2",
        ),
    ],
)
def test_default_uri_follows_the_servers_address(env: dict[str, str], expected: str) -> None:
    assert default_uri(env) == expected


async def test_the_containers_lightning_uri_is_checked_without_flags() -> None:
    """``docker run -e LIGHTNING_URI=tcp://0.0.0.0:PORT``: the built-in HEALTHCHECK (no flags)
    checks that port."""
    async with running_bridge(bridge_settings("ws://127.0.0.1:9/")) as server:
        port = server.sockets[0][1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTNING_")}
        env["LIGHTNING_URI"] = f"tcp://0.0.0.0:{port}"
        result = await run_module("wyoming_lightning.healthcheck", env=env)
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("healthy: lightning")


async def test_wait_retries_until_the_server_is_up() -> None:
    """``--wait``: a script can start the server and block until it answers."""
    attempted = asyncio.Event()

    async def starting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempted.set()  # still starting: hang up without an answer
        writer.close()

    placeholder = await asyncio.start_server(starting, "127.0.0.1", 0)
    port = placeholder.sockets[0].getsockname()[1]
    check = asyncio.create_task(healthcheck("--uri", f"tcp://127.0.0.1:{port}", "--wait", "60"))
    async with asyncio.timeout(60):
        await attempted.wait()
    assert not check.done()
    placeholder.close()
    await placeholder.wait_closed()
    settings = bridge_settings("ws://127.0.0.1:9/", uri=f"tcp://127.0.0.1:{port}")
    async with running_bridge(settings):
        result = await check
    assert result.code == 0, result.stderr
    assert result.stdout.startswith("healthy: lightning")
