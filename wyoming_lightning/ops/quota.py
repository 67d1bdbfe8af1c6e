"""What a request costs and whether the day's budget allows another, free of I/O.

Days are calendar days in local time, read from a clock the caller passes in (tests give a
fake one). The budget counts the audio *sent to the service*, which is what the vendor bills
(per second of audio); silence the VAD
held back costs nothing and counts nothing. A request is admitted when it starts if the day's
budget is not spent, and each piece of audio is counted as it is sent, against the limit: the
piece that would cross it is cut to fit, and the request then ends with what was recognised.
So requests running side by side cannot overshoot the limit together; processes sharing one
usage file can, each by what it sends before it reads the others' counts (at a request's start).
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

Clock = Callable[[], dt.datetime]
"""Local wall-clock time now; ``datetime.now`` in the server."""

REQUESTS = "requests"
RECEIVED_S = "received_s"
SENT_S = "sent_s"
COST_USD = "cost_usd"
ERROR_PREFIX = "error:"
FALLBACK_PREFIX = "fallback:"
MIN_ROOM_S = 0.01
"""Less budget than this left is none: a request admitted with it would be cut before a word
(and the rounding of audio to whole samples leaves such crumbs)."""


def day_of(moment: dt.datetime) -> str:
    """The calendar day a moment belongs to, as the usage table keys it (``YYYY-MM-DD``)."""
    return moment.date().isoformat()


@dataclass(frozen=True)
class RequestUsage:
    """One finished request, as the ledger and the usage table count it."""

    day: str
    received_s: float
    sent_s: float
    error_code: str | None = None
    fallback: str | None = None
    """Why the local recognizer answered (``failure`` or ``quota``), when it did."""

    def deltas(self, price_per_min: float) -> dict[str, float]:
        """The increments this request adds to its day's row."""
        out = {
            REQUESTS: 1.0,
            RECEIVED_S: self.received_s,
            SENT_S: self.sent_s,
            COST_USD: self.sent_s / 60 * price_per_min,
        }
        if self.error_code:
            out[ERROR_PREFIX + self.error_code] = 1.0
        if self.fallback:
            out[FALLBACK_PREFIX + self.fallback] = 1.0
        return out


@dataclass
class DayUsage:
    """One day's totals, as ``wyoming-lightning usage`` prints them."""

    day: str
    requests: int = 0
    received_s: float = 0.0
    sent_s: float = 0.0
    cost_usd: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)
    fallbacks: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_values(cls, day: str, values: Mapping[str, float]) -> DayUsage:
        usage = cls(day)
        for key, value in values.items():
            if key == REQUESTS:
                usage.requests = round(value)
            elif key == RECEIVED_S:
                usage.received_s = value
            elif key == SENT_S:
                usage.sent_s = value
            elif key == COST_USD:
                usage.cost_usd = value
            elif key.startswith(ERROR_PREFIX):
                usage.errors[key.removeprefix(ERROR_PREFIX)] = round(value)
            elif key.startswith(FALLBACK_PREFIX):
                usage.fallbacks[key.removeprefix(FALLBACK_PREFIX)] = round(value)
        return usage


class Admission(enum.Enum):
    CLOUD = "cloud"
    """Within the budget (or no budget): the request goes to the service."""
    OVER = "over"
    """The day's budget is spent: the local fallback answers, or ``error`` code ``quota``."""


class DailyLedger:
    """Seconds of audio sent today, against ``--daily-audio-limit``.

    It counts what this process sent and, through :meth:`sync`, what the usage table says was
    sent by every process sharing the file; it keeps the larger. A new day starts from zero
    (or from what the table already holds for it).
    """

    def __init__(self, limit_s: float | None, clock: Clock) -> None:
        self.limit_s = limit_s
        self._clock = clock
        self._day = day_of(clock())
        self._sent_s = 0.0

    def today(self) -> str:
        day = day_of(self._clock())
        if day != self._day:
            self._day, self._sent_s = day, 0.0
        return day

    def sent_today_s(self) -> float:
        self.today()
        return self._sent_s

    def admit(self) -> Admission:
        if self.limit_s is None:
            return Admission.CLOUD
        spent = self.sent_today_s() >= self.limit_s - MIN_ROOM_S
        return Admission.OVER if spent else Admission.CLOUD

    def room_s(self) -> float | None:
        """Seconds still to send today; ``None`` without a limit."""
        if self.limit_s is None:
            return None
        return max(0.0, self.limit_s - self.sent_today_s())

    def take(self, seconds: float) -> float:
        """Audio about to be sent: how much of it the budget allows, counted as sent now."""
        room = self.room_s()
        allowed = seconds if room is None else min(seconds, room)
        self._sent_s += allowed
        return allowed

    def take_bytes(self, nbytes: int, bytes_per_second: int, frame_bytes: int) -> int:
        """:meth:`take` for audio in bytes: how many of ``nbytes`` the budget allows, in whole
        frames (a cut mid-sample would shift every later sample)."""
        room = self.room_s()
        if room is None:
            allowed = nbytes
        else:
            room_bytes = int(room * bytes_per_second + 1e-6)  # 1.2 * 32000 is 38399.99...
            allowed = min(nbytes, room_bytes // frame_bytes * frame_bytes)
        self._sent_s += allowed / bytes_per_second
        return allowed

    def sync(self, day: str, total_sent_s: float) -> None:
        """The usage table's total for ``day`` (all processes sharing it)."""
        if day == self.today():
            self._sent_s = max(self._sent_s, total_sent_s)


def merge(into: dict[str, float], deltas: Iterable[tuple[str, float]]) -> None:
    for key, value in deltas:
        into[key] = into.get(key, 0.0) + value
