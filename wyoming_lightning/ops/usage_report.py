"""``wyoming-lightning usage``: the usage table of recent days, read from ``--data-dir``.

Reads the file read-only, so it is safe beside running servers; the cost column is the
estimate the servers recorded (audio sent times their ``--price-per-minute``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sqlite3
import sys
from collections.abc import Sequence

from wyoming_lightning.ops.quota import DayUsage
from wyoming_lightning.ops.usage_store import FILE_NAME, read_usage, usage_path
from wyoming_lightning.settings.config import DEFAULT_PRICE_PER_MIN, PRICE_SOURCE

ESTIMATE_NOTE = (
    "est. cost: an estimate, audio sent x each server's --price-per-minute (default "
    f"${DEFAULT_PRICE_PER_MIN}/min, the {PRICE_SOURCE}); the vendor's bill is what counts"
)
HEADER = ("day", "requests", "received min", "sent min", "est. cost $", "errors", "fallbacks")


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "-"


def format_table(days: Sequence[DayUsage]) -> str:
    rows = [HEADER]
    total = DayUsage("total")
    for d in days:
        rows.append(
            (
                d.day,
                str(d.requests),
                f"{d.received_s / 60:.1f}",
                f"{d.sent_s / 60:.1f}",
                f"{d.cost_usd:.4f}",
                _counts(d.errors),
                _counts(d.fallbacks),
            )
        )
        total.requests += d.requests
        total.received_s += d.received_s
        total.sent_s += d.sent_s
        total.cost_usd += d.cost_usd
        for code, n in d.errors.items():
            total.errors[code] = total.errors.get(code, 0) + n
        for reason, n in d.fallbacks.items():
            total.fallbacks[reason] = total.fallbacks.get(reason, 0) + n
    rows.append(
        (
            "total",
            str(total.requests),
            f"{total.received_s / 60:.1f}",
            f"{total.sent_s / 60:.1f}",
            f"{total.cost_usd:.4f}",
            _counts(total.errors),
            _counts(total.fallbacks),
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(HEADER))]
    return "\n".join(
        "  ".join(
            cell.ljust(w) if i in (0, 5, 6) else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wyoming-lightning usage",
        description="Print the requests, audio and estimated cost of recent days. The cost "
        "is an estimate: audio sent times the server's --price-per-minute (default "
        f"${DEFAULT_PRICE_PER_MIN}/min, {PRICE_SOURCE}); the vendor's bill is what counts.",
    )
    parser.add_argument(
        "--data-dir",
        default=os.environ.get("LIGHTNING_DATA_DIR"),
        help="the server's --data-dir [env LIGHTNING_DATA_DIR]",
    )
    parser.add_argument("--days", type=int, default=7, help="how many days, today included")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.data_dir:
        parser.exit(2, "wyoming-lightning usage: give --data-dir (the server's --data-dir)\n")
    if args.days < 1:
        parser.exit(2, "wyoming-lightning usage: --days must be at least 1\n")
    path = usage_path(args.data_dir)
    assert path is not None
    if not path.exists():
        parser.exit(2, f"wyoming-lightning usage: no {FILE_NAME} in {args.data_dir} yet\n")
    try:
        days = read_usage(path, args.days, dt.date.today())
    except sqlite3.Error as err:
        parser.exit(1, f"wyoming-lightning usage: cannot read {path}: {err}\n")
    print(format_table(days))
    print(ESTIMATE_NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
