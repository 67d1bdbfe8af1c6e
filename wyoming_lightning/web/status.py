"""What the page shows, as one JSON document built from the server's own state; no I/O.

Everything here is read from objects the server keeps anyway (the guard's ledger and usage
store, the recent-requests ring, the metrics registry), so the page costs nothing while nobody
looks at it. The API key never appears: the service URL goes through :func:`redact_url`, and
the key itself only as "set" or "unset".
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from wyoming_lightning.ops.guard import Guard
from wyoming_lightning.ops.metrics import PREFIX
from wyoming_lightning.ops.quota import DayUsage
from wyoming_lightning.services import Services
from wyoming_lightning.settings.cli import redact_url

CHART_DAYS = 14
"""Days on the page's chart, today included."""


def recent_days(guard: Guard, days: int = CHART_DAYS) -> list[DayUsage]:
    """The last ``days`` calendar days, oldest first, each one present (zero when unused)."""
    today = dt.date.fromisoformat(guard.ledger.today())
    out = []
    for back in range(days - 1, -1, -1):
        day = (today - dt.timedelta(days=back)).isoformat()
        out.append(DayUsage.from_values(day, guard.store.day_values(day)))
    return out


def _day_json(usage: DayUsage) -> dict[str, Any]:
    return {
        "day": usage.day,
        "requests": usage.requests,
        "received_min": round(usage.received_s / 60, 3),
        "sent_min": round(usage.sent_s / 60, 3),
        "cost_usd": round(usage.cost_usd, 6),
        "errors": sum(usage.errors.values()),
        "error_codes": dict(sorted(usage.errors.items())),
        "fallbacks": sum(usage.fallbacks.values()),
    }


def _gauge(guard: Guard, name: str) -> float:
    value = guard.metrics.registry.get_sample_value(f"{PREFIX}_{name}")
    return 0.0 if value is None else value


def status(services: Services, *, mic_available: bool) -> dict[str, Any]:
    """The page's whole state; see the module doc."""
    settings = services.settings
    guard = services.guard
    days = recent_days(guard)
    today = days[-1]
    limit_s = guard.ledger.limit_s
    sent_today_s = max(guard.ledger.sent_today_s(), today.sent_s)
    last_error = guard.recent.last_error
    return {
        "today": _day_json(today),
        "days": [_day_json(d) for d in days],
        "price_per_min": settings.price_per_min,
        "limits": {
            "daily_audio_min": None if limit_s is None else limit_s / 60,
            "sent_today_min": round(sent_today_s / 60, 3),
            "used_fraction": None if not limit_s else min(sent_today_s / limit_s, 1.0),
            "requests_per_client": settings.max_requests_per_client,
            "connections": settings.max_connections,
            "allow": [str(n) for n in settings.allow] or None,
        },
        "recent": [r.as_json() for r in guard.recent.newest_first()],
        "show_text": guard.recent.keep_text,
        "service": {
            "url": redact_url(settings.service_url),
            "dialect": settings.service_dialect.value,
            "region": getattr(settings, "region", None),
            "key": "unset: the local recognizer answers" if settings.local_only else "set",
            "warm_sockets": int(_gauge(guard, "idle_service_sessions")),
            "connections_open": int(_gauge(guard, "connections_open")),
            "last_error": None if last_error is None else last_error.as_json(),
            "usage_file": guard.store.where,
            "usage_file_ok": guard.store.healthy,
            "fallback": settings.fallback,
            "vad": settings.vad,
        },
        "languages": list(settings.languages),
        "language": settings.language if not settings.local_only else "en",
        "mic": mic_available,
    }
