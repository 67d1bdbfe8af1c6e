"""A console script run as a user runs it: ``python -m MODULE ARGS`` in a child process, with no
input, its exit code and both outputs read to the end. Async, so the server a test runs in the
same event loop keeps serving while the child talks to it."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Ran:
    """What a finished command left: its exit code and its outputs, decoded."""

    code: int
    stdout: str
    stderr: str


async def run_module(module: str, *args: str, env: Mapping[str, str] | None = None) -> Ran:
    """Run ``python -m module args`` to its end (``env`` replaces the environment if given)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        env=None if env is None else dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return Ran(process.returncode, out.decode(), err.decode())
