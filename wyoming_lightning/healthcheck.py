"""``wyoming-lightning-healthcheck``: is a Wyoming speech-to-text server answering?

Docker's ``HEALTHCHECK`` and the Home Assistant add-on run this inside the container, where
there is no curl and the server speaks Wyoming, not HTTP. It asks exactly what Home Assistant
asks first (``describe``) and requires what Home Assistant requires (an installed ASR program),
so "healthy" means "Home Assistant could use it now". It never touches the cloud service: a
health probe every 30 s must not cost money or depend on Smallest.ai being up.

Exit status 0 and one line on stdout when healthy; 1 and one line on stderr when not.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Coroutine, Mapping, Sequence
from typing import Any, TypeVar

from wyoming.client import AsyncClient
from wyoming.error import Error
from wyoming.info import Describe, Info

from wyoming_lightning.settings.cli import (
    DEFAULT_PORT,
    Parser,
    describe_failure,
    parse_uri,
    run_main,
    uri_type,
)
from wyoming_lightning.wyoming.client import wyoming_client

DEFAULT_URI = f"tcp://127.0.0.1:{DEFAULT_PORT}"
DEFAULT_TIMEOUT_S = 5.0
RETRY_INTERVAL_S = 0.25


class Unhealthy(Exception):
    """The server is not usable; the message says why in one line."""


def _summary(info: Info) -> str:
    installed = [p for p in info.asr if p.installed]
    if not installed:
        names = ", ".join(p.name for p in info.asr) or "none"
        raise Unhealthy(f"no installed speech-to-text program (programs: {names})")
    program = installed[0]
    languages = sorted({lang for m in program.models if m.installed for lang in m.languages})
    if not languages:
        raise Unhealthy(f"program {program.name!r} has no installed model with a language")
    version = f" {program.version}" if program.version else ""
    return f"{program.name}{version}, {len(languages)} languages"


async def _describe(client: AsyncClient, uri: str) -> Info:
    await client.write_event(Describe().event())
    while True:
        event = await client.read_event()
        if event is None:
            raise Unhealthy(f"{uri} closed the connection without answering describe")
        if Info.is_type(event.type):
            return Info.from_event(event)
        if Error.is_type(event.type):
            raise Unhealthy(f"{uri} answered with an error: {Error.from_event(event).text}")


async def check(uri: str, timeout_s: float) -> str:
    """Describe the server at ``uri``; return a one-line summary or raise :class:`Unhealthy`."""
    try:
        client = wyoming_client(uri)
    except ValueError as err:
        raise Unhealthy(f"bad URI: {err}") from None
    try:
        async with asyncio.timeout(timeout_s):
            try:
                await client.connect()
            except ConnectionRefusedError:
                raise Unhealthy(
                    f"cannot connect to {uri}: connection refused (is the server running?)"
                ) from None
            except OSError as err:
                raise Unhealthy(f"cannot connect to {uri}: {describe_failure(err)}") from None
            try:
                info = await _describe(client, uri)
            except ConnectionError:  # a reset: the server closed with our describe unread
                raise Unhealthy(f"{uri} closed the connection without answering describe") from None
            finally:
                # The verdict is made; a reset while hanging up must not replace it.
                with contextlib.suppress(Exception):
                    await client.disconnect()
            return _summary(info)
    except TimeoutError:
        raise Unhealthy(f"no answer to describe from {uri} within {timeout_s:g} s") from None
    except OSError as err:
        raise Unhealthy(f"{uri}: {describe_failure(err)}") from None
    except ValueError as err:
        raise Unhealthy(f"{uri}: {err}") from None


async def wait_healthy(uri: str, timeout_s: float, wait_s: float) -> str | Unhealthy:
    """Check until healthy or until ``wait_s`` has passed; the summary or the last reason.

    The retries and the pauses between them run on one event loop, so a Ctrl-C at any moment
    meets the one handler :func:`until_interrupted` installed for the whole wait."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max(0.0, wait_s)
    while True:
        try:
            return await check(uri, timeout_s)
        except Unhealthy as err:
            if loop.time() >= deadline:
                return err
        await asyncio.sleep(RETRY_INTERVAL_S)


T = TypeVar("T")


async def until_interrupted(work: Coroutine[Any, Any, T]) -> T:
    """Run ``work``; raise KeyboardInterrupt if SIGINT comes first, whatever ``work`` does.

    Why not one asyncio.run per try with time.sleep between, as before: asyncio.run's own
    Ctrl-C handler cancels the task from inside the signal handler, which may run in the
    middle of the task's own code, and a task that then ends by raising (a failed check
    raises :class:`Unhealthy`) drops the cancellation; a second Ctrl-C raises
    KeyboardInterrupt wherever the code is, and the ``wyoming`` library's reader turns that
    into "connection closed". Either way the Ctrl-C is lost and the check goes on retrying
    for the whole ``--wait``. Here the loop's own signal handler (which also sets the wakeup
    fd, so a blocked loop wakes) only records the interrupt, between two steps of the loop,
    and the verdict is taken from that record, not from how ``work`` reacts to being
    cancelled.

    Only for Python's own Ctrl-C handling in the main thread: see :func:`main`."""
    loop = asyncio.get_running_loop()
    interrupted = loop.create_future()

    def on_sigint() -> None:
        if not interrupted.done():
            interrupted.set_result(None)

    task = asyncio.ensure_future(work)
    loop.add_signal_handler(signal.SIGINT, on_sigint)
    try:
        await asyncio.wait((task, interrupted), return_when=asyncio.FIRST_COMPLETED)
    finally:
        # Back to Python's default: a Ctrl-C from here on raises KeyboardInterrupt at once.
        loop.remove_signal_handler(signal.SIGINT)
    if interrupted.done():
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
        raise KeyboardInterrupt
    return task.result()


def default_uri(env: Mapping[str, str]) -> str:
    """Where the server of this container listens: ``LIGHTNING_HEALTHCHECK_URI``, else the
    server's own ``LIGHTNING_URI`` (a wildcard host read as loopback), else port 10300.

    So a container started with ``-e LIGHTNING_URI=tcp://0.0.0.0:10555`` stays healthy without
    a HEALTHCHECK of its own."""
    explicit = env.get("LIGHTNING_HEALTHCHECK_URI", "").strip()
    if explicit:
        return explicit
    server = env.get("LIGHTNING_URI", "").strip()
    if not server:
        return DEFAULT_URI
    try:
        where = parse_uri(server, ("tcp", "unix", "stdio"), server=True)
    except ValueError:
        return server  # main() reports it, naming the variable
    if where.scheme == "unix":
        return server
    if where.scheme == "stdio":
        return DEFAULT_URI  # no socket to check: the customary one
    host = where.host
    if host in ("", "0.0.0.0", "::"):
        host = "127.0.0.1"
    elif ":" in host:
        host = f"[{host}]"
    return f"tcp://{host}:{where.port}"


def default_uri_source(env: Mapping[str, str]) -> str:
    """Which variable :func:`default_uri` followed, to name it in an error."""
    if env.get("LIGHTNING_HEALTHCHECK_URI", "").strip():
        return "LIGHTNING_HEALTHCHECK_URI"
    return "LIGHTNING_URI"


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="wyoming-lightning-healthcheck",
        description="Exit 0 if a Wyoming speech-to-text server answers describe with an "
        "installed program, else 1. Never contacts the cloud service.",
    )
    parser.usage_exit = 1
    parser.add_argument(
        "--uri",
        type=uri_type(),
        default=None,
        help="server to check: tcp://HOST:PORT or unix://PATH (default: LIGHTNING_HEALTHCHECK_URI, "
        f"else the server's LIGHTNING_URI, else {DEFAULT_URI})",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help=f"seconds for the whole check (default {DEFAULT_TIMEOUT_S:g})",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="keep trying this long before giving up (for scripts that start the server)",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing when healthy")
    parser.add_version()
    return parser


def main(argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    env = os.environ if env is None else env
    args = build_parser().parse_args(argv)
    if args.uri is None:
        args.uri = default_uri(env)
        try:
            parse_uri(args.uri)
        except ValueError as err:
            print(f"unhealthy: {default_uri_source(env)}: {err}", file=sys.stderr)
            return 1
    if args.timeout <= 0 or args.wait < 0:
        print("unhealthy: --timeout must be positive and --wait not negative", file=sys.stderr)
        return 1
    work = wait_healthy(args.uri, args.timeout, args.wait)
    if (
        threading.current_thread() is threading.main_thread()
        and signal.getsignal(signal.SIGINT) is signal.default_int_handler
    ):
        # Not when SIGINT is ignored (a non-interactive shell starts background jobs so, and
        # they must survive the Ctrl-C meant for the foreground) or handled by a caller.
        work = until_interrupted(work)
    summary = asyncio.run(work)
    if isinstance(summary, Unhealthy):
        print(f"unhealthy: {summary}", file=sys.stderr)
        return 1
    if not args.quiet:
        print(f"healthy: {summary}")
    return 0


def run() -> None:
    run_main("wyoming-lightning-healthcheck", main)


if __name__ == "__main__":
    run()
