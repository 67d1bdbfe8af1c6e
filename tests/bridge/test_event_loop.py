"""The event loop the server runs on (``--event-loop``, ``wyoming_lightning/event_loop.py``).

uvloop is the default where it is installed: the server as a user runs it serves a request on
it, and on asyncio's loop when asked; without uvloop, ``auto`` falls back and ``uvloop`` asked
for by name is a clear error. The read side's defences (issue 20's hostile clients and the
idle, dribbling and early-error cases) are run again here on uvloop in process, since the
other modules' in-process servers run on asyncio's loop.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest
import uvloop

from tests.bridge.test_client_faults import (
    test_an_early_error_survives_a_client_that_writes_everything_first,
    test_connection_limit_refuses_politely,
    test_idle_clients_are_disconnected,
    test_malformed_events_get_a_clear_error,
)
from tests.bridge.test_cost_access import PCM, PHRASE
from tests.bridge.test_hostile import (
    test_clients_outside_allow_cannot_take_the_connection_slots,
    test_malformed_events_mid_request_free_the_slot_and_the_service_socket,
    test_silent_and_dribbling_connections_are_closed_after_the_header_timeout,
)
from tests.kit.bridge import clean_env, server_process, transcribe
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.event_loop import EventLoopError, choose_loop, run_on

__all__ = [  # collected again in this module, where the loop is uvloop's
    "test_an_early_error_survives_a_client_that_writes_everything_first",
    "test_clients_outside_allow_cannot_take_the_connection_slots",
    "test_connection_limit_refuses_politely",
    "test_idle_clients_are_disconnected",
    "test_malformed_events_get_a_clear_error",
    "test_malformed_events_mid_request_free_the_slot_and_the_service_socket",
    "test_silent_and_dribbling_connections_are_closed_after_the_header_timeout",
]
pytestmark = pytest.mark.filterwarnings(
    # pytest-asyncio's per-item hook would parametrize every test under its conftest; this
    # module's override is the one place that needs another loop (test_this_module_runs_on_uvloop
    # fails if a later version ignores it).
    'ignore:Overriding the "event_loop_policy" fixture:pytest.PytestDeprecationWarning'
)
HIDE_UVLOOP = "import sys; sys.modules['uvloop'] = None; "
"""Run first in a child: ``import uvloop`` then fails as on a platform without its wheel."""


@pytest.fixture(scope="session")
def event_loop_policy() -> asyncio.AbstractEventLoopPolicy:
    """This module's in-process tests run on uvloop (pytest-asyncio's policy fixture)."""
    return uvloop.EventLoopPolicy()


async def test_this_module_runs_on_uvloop() -> None:
    assert isinstance(asyncio.get_running_loop(), uvloop.Loop)


@pytest.mark.parametrize(("flag", "named"), [(None, "uvloop"), ("asyncio", "asyncio")])
async def test_the_server_serves_on_the_chosen_loop(
    emulator: EmulatorServer, flag: str | None, named: str
) -> None:
    args = ["--lightning-url", emulator.pulse_url, "--vad", "webrtc"]
    if flag is not None:
        args += ["--event-loop", flag]
    async with server_process(*args) as server:
        assert f"; event loop {named}" in "".join(server.log)
        assert (await transcribe(server.port, PCM)).transcript == PHRASE
        server.proc.send_signal(signal.SIGTERM)
        assert await server.finish() == 0


async def _run_without_uvloop(*args: str) -> tuple[int, str]:
    code = HIDE_UVLOOP + "from wyoming_lightning.__main__ import run; run()"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        code,
        "--uri",
        "tcp://127.0.0.1:0",
        *args,
        env=clean_env("test-key"),
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    assert proc.stderr is not None
    log = ""
    async with asyncio.timeout(60):  # a hang is a failure, not a threshold
        while line := (await proc.stderr.readline()).decode():
            log += line
            if "listening on" in line:
                proc.send_signal(signal.SIGTERM)
        return await proc.wait(), log


async def test_without_uvloop_auto_falls_back_and_uvloop_by_name_is_a_clear_error(
    emulator: EmulatorServer,
) -> None:
    status, log = await _run_without_uvloop("--lightning-url", emulator.pulse_url)
    assert status == 0 and "; event loop asyncio" in log, log
    status, log = await _run_without_uvloop(
        "--lightning-url", emulator.pulse_url, "--event-loop", "uvloop"
    )
    assert status == 2, log
    assert "--event-loop uvloop: uvloop cannot be imported" in log
    assert "Traceback" not in log and "listening on" not in log


def test_choose_loop_names_what_it_builds() -> None:
    assert choose_loop("asyncio").factory is None
    chosen = choose_loop("auto")
    assert chosen.name.startswith("uvloop ") and chosen.factory is not None
    assert run_on(chosen, _loop_type()) is uvloop.Loop
    assert run_on(choose_loop("asyncio"), _loop_type()) is not uvloop.Loop
    assert issubclass(EventLoopError, Exception)


async def _loop_type() -> type:
    return type(asyncio.get_running_loop())


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
@pytest.mark.parametrize("stream", ["stdin", "stdout"])
async def test_stdio_with_a_file_is_a_clear_error_on_either_loop(
    emulator: EmulatorServer, tmp_path: Path, loop: str, stream: str
) -> None:
    """The loops' pipe transports take no regular file (uvloop aborted the process)."""
    request = tmp_path / "in"
    request.write_bytes(b'{"type": "describe"}\n')
    answer = tmp_path / "out"
    with request.open("rb") as file_in, answer.open("wb") as file_out:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *("-m", "wyoming_lightning", "--uri", "stdio://", "--event-loop", loop),
            *("--lightning-url", emulator.pulse_url),
            env=clean_env("test-key"),
            stdin=file_in if stream == "stdin" else asyncio.subprocess.PIPE,
            stdout=file_out if stream == "stdout" else asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        async with asyncio.timeout(60):  # a hang is a failure, not a threshold
            _out, err = await proc.communicate(b"" if stream == "stdout" else None)
    log = err.decode()
    assert proc.returncode == 1, log
    assert f"cannot listen on stdio://: {stream} must be a pipe, a socket or a terminal" in log
    assert "Traceback" not in log
