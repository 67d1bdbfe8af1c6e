"""The service's languages, and from what a client asks for (``en-US``, ``de_DE``, ``multi``) to a
code the service has.

The tables are plain data that import nothing of the bridge, so that both the protocol (which
host serves which language) and the configuration (which languages are advertised) read them
from here.
"""

from __future__ import annotations

from collections.abc import Sequence

from wyoming_lightning.core.logtrim import clip

# ------------------------------------------------------------------ the service's languages

LIGHTNING_LANGUAGES: tuple[str, ...] = (
    *("it", "es", "en", "pt", "hi", "de", "fr", "uk", "ru", "kn", "ml", "pl", "mr", "gu"),
    *("cs", "sk", "te", "or", "nl", "bn", "lv", "et", "ro", "pa", "fi", "sv", "bg", "ta"),
    *("hu", "da", "lt", "mt", "multi"),
)
PULSE_LANGUAGES: tuple[str, ...] = (
    *("en", "hi", "de", "es", "ru", "it", "fr", "nl", "pt", "zh", "yue", "ja", "ko", "gu"),
    *("mr", "or", "bn", "ta", "te", "kn", "ml", "north_indic", "multi-asian"),
    "multi-south-indic",
)
US_ONLY_LANGUAGES = frozenset({"zh", "yue", "ja", "ko", "multi-asian"})
"""Served only by the US host; the default host closes such a session without a result."""
DEFAULT_HOST_ONLY_LANGUAGES = frozenset({"ta", "te", "kn", "ml", "multi-south-indic"})
"""Served only by the default host; the US host answers LANGUAGE_NOT_ENABLED_IN_REGION."""
AUTO_DETECT_LANGUAGES = frozenset({"multi", "multi-asian", "north_indic", "multi-south-indic"})
"""Codes that name a group of languages: the service detects which one was spoken."""


# ------------------------------------------------------------------ a client's request

# Chinese variants that are Cantonese rather than Mandarin.
_CANTONESE = {"zh-hk", "zh-mo", "yue-hk", "yue-cn", "zh-yue"}


class LanguageError(ValueError):
    """The service does not have the language the client asked for."""


def resolve_language(requested: str | None, default: str, supported: Sequence[str]) -> str:
    """The service's code for ``requested``; raises LanguageError with the choices if none fits.

    Home Assistant sends one of the codes we advertise, but other clients send regional forms
    (``en-US``, ``pt_BR``) or different case; the service only knows base codes.
    """
    if requested is None or not requested.strip():
        return default
    exact = requested.strip().lower()
    if exact in supported:
        return exact  # also codes that contain "_" themselves, such as north_indic
    wanted = exact.replace("_", "-")
    if wanted in supported:
        return wanted
    if wanted in _CANTONESE and "yue" in supported:
        return "yue"
    base = wanted.split("-", 1)[0]
    if base in supported:
        return base
    if base in ("auto", "multi") and "multi" in supported:
        return "multi"
    raise LanguageError(
        f"language {clip(requested)!r} is not offered by the service; choose one of: "
        + ", ".join(supported)
    )
