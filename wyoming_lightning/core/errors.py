"""The codes of the Wyoming ``error`` event the bridge sends, in one place.

These belong to the Wyoming side, not to the cloud protocol: a service failure is folded into one
of them by :mod:`~wyoming_lightning.core.protocol`, a bad request by the request machine and
the handler, and a refusal (not allowed, too busy, over the day's budget) by the guard and the
server. Clients and the metrics' ``code`` label branch on the values, so they are stable.
"""

from __future__ import annotations

import enum


class ErrorCode(enum.StrEnum):
    """Stable codes for the Wyoming ``error`` event; clients may branch on them."""

    AUTH = "auth"
    QUOTA = "quota"
    RATE_LIMITED = "rate_limited"
    TIMEOUT = "timeout"
    UPSTREAM = "upstream"
    BAD_AUDIO = "bad_audio"
    LANGUAGE = "language"
    BAD_REQUEST = "bad_request"
    UNAVAILABLE = "unavailable"
    BUSY = "busy"
    """The server's connection limit or the per-client request limit turned the client away."""
    FORBIDDEN = "forbidden"
    """The client is outside the allow-list."""
    INTERNAL = "internal"
    """The server failed on this request (a bug): it was ended and everything it held freed."""
