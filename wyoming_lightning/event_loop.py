"""Which event loop the server runs on: uvloop where it is installed, else asyncio's own.

Every audio chunk of every stream (100 a second each) wakes the event loop for a socket read,
and at 100 streams the loop's own work per wake-up is a large part of the bridge's CPU:
uvloop (libuv, in C) does that work for less than asyncio's selector loop in Python. The server
is written against asyncio's interfaces only, so either loop runs it; ``--event-loop asyncio``
keeps the standard one (a platform without uvloop's wheel falls back to it by itself).
"""

from __future__ import annotations

import asyncio
import importlib
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

LoopFactory = Callable[[], asyncio.AbstractEventLoop]
T = TypeVar("T")


class EventLoopError(Exception):
    """The loop asked for by name cannot be had; the message says how to get it."""


@dataclass(frozen=True)
class LoopChoice:
    """The loop to build, and its name for the start-up log."""

    name: str
    factory: LoopFactory | None
    """None: asyncio's default loop."""


def choose_loop(wanted: str) -> LoopChoice:
    """``auto``, ``uvloop`` or ``asyncio`` (``--event-loop``) as the loop to run.

    ``auto`` takes uvloop when it imports and asyncio's loop when it does not (a platform
    without its wheel); ``uvloop`` asked for by name and missing is an error, not a silent
    fallback, so that a user who chose it knows they did not get it.
    """
    if wanted == "asyncio":
        return LoopChoice("asyncio", None)
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError as err:
        if wanted == "uvloop":
            raise EventLoopError(
                f"--event-loop uvloop: uvloop cannot be imported ({err}); "
                "pip install uvloop, or use --event-loop asyncio"
            ) from None
        return LoopChoice("asyncio", None)
    factory: LoopFactory = uvloop.new_event_loop
    return LoopChoice(f"uvloop {getattr(uvloop, '__version__', '')}".strip(), factory)


def run_on(choice: LoopChoice, main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on the chosen loop (``asyncio.Runner``: Python 3.11 has no
    ``loop_factory`` on ``asyncio.run``)."""
    with asyncio.Runner(loop_factory=choice.factory) as runner:
        return runner.run(main)
