"""The usage table on disk: one SQLite file under ``--data-dir``, shared safely by processes.

Each finished request adds its increments to its day's rows in one short transaction
(``INSERT ... ON CONFLICT DO UPDATE SET value = value + excluded.value``), so two servers on
one file never lose each other's counts; WAL lets readers (``wyoming-lightning usage``) run
beside the writers, and ``busy_timeout`` makes a writer wait its turn instead of failing. A
committed request survives a ``kill -9`` (WAL with ``synchronous=NORMAL`` loses only on power
failure).

The file must never stop the server from serving. When it cannot be written (a full disk, a
read-only volume, a corrupt file, a lock held too long) the store logs once, keeps the
increments in memory and tries the file again after ``retry_after_s``; what waited is written
then. The user's file is never deleted or replaced.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from wyoming_lightning.ops.quota import SENT_S, DayUsage, merge

_LOGGER = logging.getLogger(__name__)
FILE_NAME = "usage.sqlite3"
BUSY_TIMEOUT_MS = 1000
RETRY_AFTER_S = 30.0
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS usage ("
    " day TEXT NOT NULL, key TEXT NOT NULL, value REAL NOT NULL DEFAULT 0,"
    " PRIMARY KEY (day, key))"
)
_UPSERT = (
    "INSERT INTO usage (day, key, value) VALUES (?, ?, ?)"
    " ON CONFLICT (day, key) DO UPDATE SET value = value + excluded.value"
)


def usage_path(data_dir: str | Path | None) -> Path | None:
    return None if data_dir is None else Path(data_dir) / FILE_NAME


class UsageStore:
    """Adds usage to the file, or to memory while the file is unavailable; see the module doc."""

    def __init__(
        self,
        path: Path | None,
        *,
        retry_after_s: float = RETRY_AFTER_S,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._retry_after_s = retry_after_s
        self._monotonic = monotonic
        self._db: sqlite3.Connection | None = None
        self._pending: dict[tuple[str, str], float] = {}
        self._failed_at: float | None = None
        self.failures = 0
        """How many times the file could not be used (the metrics export it)."""

    @property
    def where(self) -> str:
        return str(self.path) if self.path is not None else "memory"

    @property
    def healthy(self) -> bool:
        return self._failed_at is None

    # ------------------------------------------------------------------ writing

    def add(self, day: str, deltas: Mapping[str, float]) -> float | None:
        """Add one request's increments; return the day's ``sent_s`` over every process
        sharing the file, or ``None`` while only memory holds the counts."""
        for key, value in deltas.items():
            self._pending[(day, key)] = self._pending.get((day, key), 0.0) + value
        return self._flush(day)

    def _flush(self, day: str, *, force: bool = False) -> float | None:
        db = self._connection(force=force)
        if db is None:
            return None
        try:
            with _transaction(db):
                db.executemany(_UPSERT, [(d, k, v) for (d, k), v in self._pending.items()])
                row = db.execute(
                    "SELECT value FROM usage WHERE day = ? AND key = ?", (day, SENT_S)
                ).fetchone()
        except (sqlite3.Error, OSError) as err:
            self._fail(f"cannot write to it: {err}")
            return None
        if self._failed_at is not None:
            _LOGGER.warning(
                "usage file %s is writable again; counts kept meanwhile saved", self.where
            )
            self._failed_at = None
        self._pending.clear()
        return float(row[0]) if row else 0.0

    def _connection(self, *, force: bool = False) -> sqlite3.Connection | None:
        if self._db is not None:
            return self._db
        if (
            not force
            and self._failed_at is not None
            and self._monotonic() - self._failed_at < self._retry_after_s
        ):
            return None
        try:
            self._db = self._open()
        except (sqlite3.Error, OSError) as err:
            self._fail(f"cannot open it: {err}")
            return None
        return self._db

    def _open(self) -> sqlite3.Connection:
        if self.path is None:
            db = sqlite3.connect(":memory:", isolation_level=None)
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if self.path is not None:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
            db.execute(_SCHEMA)
        except BaseException:
            db.close()
            raise
        return db

    def _fail(self, why: str) -> None:
        self.failures += 1
        if self._failed_at is None:
            _LOGGER.warning(
                "usage file %s: %s; counting in memory and trying again every %g s",
                self.where,
                why,
                self._retry_after_s,
            )
        self._failed_at = self._monotonic()
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    # ------------------------------------------------------------------ reading

    def day_values(self, day: str) -> dict[str, float]:
        """One day's totals: the file's (if readable) plus what waits in memory."""
        values: dict[str, float] = {}
        db = self._connection()
        if db is not None:
            try:
                rows = db.execute("SELECT key, value FROM usage WHERE day = ?", (day,)).fetchall()
                merge(values, ((str(k), float(v)) for k, v in rows))
            except (sqlite3.Error, OSError) as err:
                self._fail(f"cannot read it: {err}")
        merge(values, ((k, v) for (d, k), v in self._pending.items() if d == day))
        return values

    def close(self) -> None:
        if self._pending:
            self._flush(next(iter(self._pending))[0], force=True)  # one last try
        if self._pending and self.path is not None:
            days = sorted({day for day, _key in self._pending})
            _LOGGER.warning(
                "usage file %s still unavailable at exit: the counts of %s since are lost",
                self.where,
                ", ".join(days),
            )
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield None
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def read_usage(path: Path, days: int, today: dt.date) -> list[DayUsage]:
    """The last ``days`` calendar days up to ``today``, oldest first, for the report.

    Opened read-only, so a report never creates a file or takes a writer's lock.
    """
    first = (today - dt.timedelta(days=days - 1)).isoformat()
    uri = path.resolve().as_uri() + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        rows = db.execute(
            "SELECT day, key, value FROM usage WHERE day >= ? AND day <= ? ORDER BY day",
            (first, today.isoformat()),
        ).fetchall()
    finally:
        db.close()
    by_day: dict[str, dict[str, float]] = {}
    for day, key, value in rows:
        by_day.setdefault(str(day), {})[str(key)] = float(value)
    return [DayUsage.from_values(day, values) for day, values in sorted(by_day.items())]
