"""How long the emulated service takes, as a model of a cloud under load.

A bridge tested only against an instant service learns nothing about waiting. Two parts, both
off by default so that tests stay exact and fast:

- the time to settle: the whole time from ``finalize`` / end to its answer, recognition
  included (what the recognizer spent is taken off it, see :func:`remaining_s`): it is
  ``(settle_ms + settle_ms_per_s * seconds of audio being settled)`` times a lognormal factor of
  median 1 and shape ``sigma``, drawn from a seeded generator: most answers are quick, a few are
  several times slower, as on a shared cloud;
- a network round trip: ``rtt_ms`` before every message the server sends, and
  ``HANDSHAKE_ROUND_TRIPS`` of them before the handshake is answered (TCP, then the upgrade).

The ``cloud`` preset is fitted to the published figures: about 150 ms to first transcript at
low load, and an independent p99 end-of-speech-to-final of 1.6 s for a short command.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from statistics import NormalDist

HANDSHAKE_ROUND_TRIPS = 2


@dataclass(frozen=True)
class LatencyModel:
    """Settle time and network round trip; all zero means an instant service on loopback."""

    settle_ms: float = 0.0
    settle_ms_per_s: float = 0.0
    sigma: float = 0.0
    rtt_ms: float = 0.0

    def __post_init__(self) -> None:
        for name in ("settle_ms", "settle_ms_per_s", "sigma", "rtt_ms"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise ValueError(f"latency {name} must be a number >= 0, not {value!r}")

    @property
    def rtt_s(self) -> float:
        return self.rtt_ms / 1000.0

    @property
    def handshake_s(self) -> float:
        return HANDSHAKE_ROUND_TRIPS * self.rtt_s

    def median_settle_s(self, audio_s: float) -> float:
        return (self.settle_ms + self.settle_ms_per_s * max(0.0, audio_s)) / 1000.0

    def settle_s(self, audio_s: float, rng: random.Random) -> float:
        """One draw of the time to settle ``audio_s`` seconds of audio."""
        median = self.median_settle_s(audio_s)
        if median <= 0.0 or self.sigma <= 0.0:
            return median
        return median * rng.lognormvariate(0.0, self.sigma)

    def quantile_settle_s(self, audio_s: float, q: float) -> float:
        """The ``q`` quantile of the settle time, for tables and sanity checks."""
        z = NormalDist().inv_cdf(q) if self.sigma > 0 else 0.0
        return self.median_settle_s(audio_s) * math.exp(z * self.sigma)


def remaining_s(settle_s: float, compute_s: float) -> float:
    """What is left of a settle time once recognition has taken ``compute_s`` of it.

    A real service's settle time is measured from the client's control message to the answer,
    its recognizer's work inside it; an emulator that waited the whole settle time after
    recognising would make a slow recognizer look like a slow network.
    """
    return max(0.0, settle_s - compute_s)


PRESETS: dict[str, LatencyModel] = {
    "none": LatencyModel(),
    "cloud": LatencyModel(settle_ms=250.0, settle_ms_per_s=30.0, sigma=0.7, rtt_ms=60.0),
}
