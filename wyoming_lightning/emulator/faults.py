"""Failure modes the emulator can reproduce on demand.

The real service fails in ways a bridge must survive (refusals, drops, odd error shapes,
duplicate or late results). Each mode is named so tests and users can ask for exactly one
failure, for a chosen number of sessions or at random with a seed. The exact behaviour of each
mode is tabled in this package's README.md.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

REFUSALS = {"refuse-401": 401, "refuse-403": 403, "refuse-429": 429, "refuse-500": 500}
TERMINAL = ("drop", "close-1011", "close-1008", "error-typed", "error-status", "error-legacy")
"""Faults that end the session once ``after_bytes`` of audio arrived (or at the end signal)."""

FAULT_NAMES: tuple[str, ...] = (
    *REFUSALS,
    "slow-accept",
    *TERMINAL,
    "invalid-json",
    "stall",
    "slow",
    "duplicate-final",
    "late-interim",
    "stale-final",
    "close-idle",
    "no-pong",
    "live-defaults",
)

_REFUSAL_TEXT = {
    401: "Unauthorized: invalid or missing API key\n",
    403: "Forbidden: this key may not use this model, or its usage limit is reached\n",
    429: "Too Many Requests\n",
    500: "Internal Server Error\n",
}


@dataclass(frozen=True)
class Fault:
    """One failure mode and its knobs; knobs a mode does not use are ignored."""

    name: str
    after_bytes: int = 16000
    delay_ms: int = 3000
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        if self.name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {self.name!r}; known: {', '.join(FAULT_NAMES)}")
        if self.after_bytes < 0 or self.delay_ms < 0 or self.retry_after_s < 0:
            raise ValueError("fault knobs must be >= 0")


@dataclass(frozen=True)
class SessionFaults:
    """The faults drawn for one session, with the questions the session code asks of them."""

    faults: tuple[Fault, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.faults)

    def get(self, name: str) -> Fault | None:
        return next((f for f in self.faults if f.name == name), None)

    def __contains__(self, name: object) -> bool:
        return any(f.name == name for f in self.faults)

    @property
    def refusal(self) -> Fault | None:
        return next((f for f in self.faults if f.name in REFUSALS), None)

    @property
    def terminal(self) -> Fault | None:
        return next((f for f in self.faults if f.name in TERMINAL), None)

    def decorate(
        self, messages: Sequence[dict[str, Any]], *, from_finalize: bool
    ) -> list[dict[str, Any]]:
        """Add the extra results of ``duplicate-final`` and ``late-interim``.

        Only finals that are not ``is_last`` are touched: nothing may follow ``is_last``. The
        copy of a final says ``from_finalize: true`` when the session's finals say the flag.
        """
        out: list[dict[str, Any]] = []
        for msg in messages:
            out.append(msg)
            if not msg.get("is_final") or msg.get("is_last"):
                continue
            if "duplicate-final" in self:
                copy = dict(msg)
                if from_finalize:
                    copy["from_finalize"] = True
                out.append(copy)
            if "late-interim" in self and (msg.get("transcript") or msg.get("transcription")):
                text_fields = ("type", "status", "transcript", "transcription", "session_id")
                interim = {k: msg[k] for k in text_fields if k in msg}
                out.append({**interim, "is_final": False, "is_last": False})
        return out


def refusal_status(fault: Fault) -> tuple[int, str, dict[str, str]]:
    """HTTP status, body and extra headers of a ``refuse-*`` fault."""
    status = REFUSALS[fault.name]
    headers = {"Retry-After": str(fault.retry_after_s)} if status == 429 else {}
    return status, _REFUSAL_TEXT[status], headers


def error_frame(fault: Fault, language: str) -> dict[str, Any]:
    """The error message of an ``error-*`` fault, in each shape the docs list."""
    if fault.name == "error-typed":
        return {
            "type": "error",
            "error_code": "LANGUAGE_NOT_ENABLED_IN_REGION",
            "message": f"Language '{language}' is not enabled in this region",
        }
    if fault.name == "error-status":
        return {"type": "error", "status": "error", "message": "Internal error while transcribing"}
    if fault.name == "error-legacy":
        return {
            "status": "error",
            "error": {"message": "Internal error while transcribing", "code": "internal_error"},
        }
    raise ValueError(f"{fault.name} is not an error-frame fault")


def garbage_frame(message: dict[str, Any] | None) -> str:
    """A truncated JSON text, like a result cut short by a broken proxy."""
    text = json.dumps(message if message is not None else {"transcript": "", "is_final": False})
    return text[: max(1, len(text) // 2)]


class FaultPlan:
    """Decides which faults each new session gets.

    Two sources: the configured faults (``--fault``), applied to at most ``count`` sessions and
    each with probability ``rate``; and injections (``inject``), each applied to the next
    ``count`` sessions. A session gets the union of every source that picks it.
    """

    def __init__(
        self,
        faults: Sequence[Fault] = (),
        *,
        count: int | None = None,
        rate: float = 1.0,
        seed: int | None = None,
    ) -> None:
        self._configured = tuple(faults)
        self._configured_left = count
        self._rate = rate
        self._random = random.Random(seed)
        self._injections: list[tuple[tuple[Fault, ...], int | None]] = []
        self._lock = threading.Lock()

    def inject(self, faults: Fault | Iterable[Fault], count: int | None = 1) -> None:
        """Give ``faults`` to the next ``count`` sessions (``None``: to every later session)."""
        group = (faults,) if isinstance(faults, Fault) else tuple(faults)
        if count is not None and count < 0:
            raise ValueError("count must be >= 0")
        with self._lock:
            self._injections.append((group, count))

    def clear(self) -> None:
        """Forget injected faults; configured faults stay."""
        with self._lock:
            self._injections.clear()

    def draw(self) -> SessionFaults:
        """Faults for the session being opened now; consumes counts."""
        chosen: list[Fault] = []
        with self._lock:
            if (
                self._configured
                and self._configured_left != 0
                and (self._rate >= 1.0 or self._random.random() < self._rate)
            ):
                chosen.extend(self._configured)
                if self._configured_left is not None:
                    self._configured_left -= 1
            remaining: list[tuple[tuple[Fault, ...], int | None]] = []
            for group, left in self._injections:
                if left == 0:
                    continue
                chosen.extend(group)
                left = None if left is None else left - 1
                if left != 0:
                    remaining.append((group, left))
            self._injections = remaining
        return SessionFaults(tuple(chosen))
