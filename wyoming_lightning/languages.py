"""From what a client asks for (``en-US``, ``de_DE``, ``multi``) to a code the service has."""

from __future__ import annotations

from collections.abc import Sequence

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
        f"language {requested!r} is not offered by the service; choose one of: "
        + ", ".join(supported)
    )
