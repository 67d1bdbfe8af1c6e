"""The one percentile and median every test bar and benchmark table is computed with.

Linear interpolation between closest ranks (numpy's default, ``method="linear"``), so a p99 of
a hundred waits lies between the two slowest rather than jumping to one of them; no values give
NaN, which tables print as ``-``, rather than an exception in the middle of a run.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], pct: float) -> float:
    """The ``pct``-th percentile (0-100) of ``values``; NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = pct / 100 * (len(ordered) - 1)
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(values: Sequence[float]) -> float:
    """The median of ``values``; NaN for no values."""
    return statistics.median(values) if values else math.nan
