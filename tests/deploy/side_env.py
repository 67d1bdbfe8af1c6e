"""Environments of their own for tests that run software beside ours (Home Assistant, other
vendors' clients), built once from the package registry and reused by later runs.

They live under the user's cache directory, named by a hash of what goes in them, so a change
of pins builds a new one. A lock makes concurrent test runs build an environment once, and a
marker written last means an environment that was cut short is never taken as ready.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

Say = Callable[[str], None]


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "wyoming-lightning"


def terminal(config: pytest.Config, what: str) -> Say:
    """One line at a time to the terminal, past pytest's output capture: a first build takes
    minutes, and a user running the README's test command must see what it is doing."""
    capture = config.pluginmanager.get_plugin("capturemanager")
    assert capture is not None, "pytest's capture manager is always registered"

    def say(line: str) -> None:
        with capture.global_and_fixture_disabled():
            print(f"\n{what}: {line}", file=sys.stderr, flush=True)

    return say


def reuse_or_build(
    root: Path, marker: str, stamp: str, build: Callable[[], None], say: Say | None = None
) -> bool:
    """Make ``root`` ready: reuse it when its ``marker`` file exists, else wipe it and ``build``
    it, then write ``stamp`` into the marker. True when this call built it. ``say`` hears that
    a build starts (it is the long part of a first run) and where it goes."""
    root.parent.mkdir(parents=True, exist_ok=True)
    with (root.parent / (root.name + ".lock")).open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs at once build it once
        if (root / marker).exists():
            return False
        shutil.rmtree(root, ignore_errors=True)
        if say is not None:
            say(f"building {root} (first run only; reused afterwards)")
        build()
        (root / marker).write_text(stamp)
        return True


def run_step(
    cmd: list[str], log: Path, timeout: float, *, building: str, shown: str, error: type[Exception]
) -> None:
    """One build step, its output appended to ``log``. An overrun or a failure raises ``error``
    saying what was ``building``, the step (``shown``), the log's path and, on a failure, its
    last lines: a build fails minutes in, and the reason must be on the screen."""
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        try:
            done = subprocess.run(
                cmd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise error(
                f"building {building}: `{shown}` took over {timeout:.0f} s; log: {log}"
            ) from exc
    if done.returncode != 0:
        tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-15:])
        raise error(
            f"building {building} failed (exit {done.returncode}) at `{shown}`; log: {log}\n{tail}"
        )
