"""Engine registry: the names ``--vad`` accepts and how each engine is built."""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from wyoming_lightning.core.vad.base import VadEngine


def _webrtc() -> VadEngine:
    from wyoming_lightning.core.vad.webrtc import WebRtcEngine

    return WebRtcEngine()


def _silero() -> VadEngine:
    # Imported lazily: loading the model costs time and memory that webrtc users never need.
    from wyoming_lightning.core.vad.silero import SileroEngine

    return SileroEngine()


_FACTORIES: Final[dict[str, Callable[[], VadEngine]]] = {"webrtc": _webrtc, "silero": _silero}

#: Engine names accepted by ``create_engine``, in order of preference.
ENGINE_NAMES: Final = tuple(_FACTORIES)


def create_engine(name: str) -> VadEngine:
    """Build a fresh engine (engines hold per-stream state: one per stream)."""
    factory = _FACTORIES.get(name)
    if factory is None:
        raise ValueError(f"unknown VAD engine {name!r}; choose one of: {', '.join(ENGINE_NAMES)}")
    return factory()


__all__ = ["ENGINE_NAMES", "VadEngine", "create_engine"]
