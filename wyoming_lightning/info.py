"""The ``info`` answer to ``describe``: built once at start-up, never waiting on the cloud."""

from __future__ import annotations

from wyoming.info import AsrModel, AsrProgram, Attribution, Info

from wyoming_lightning import __version__
from wyoming_lightning.core.protocol import Dialect
from wyoming_lightning.settings.config import Settings

ATTRIBUTION = Attribution(name="Smallest.ai", url="https://smallest.ai")
PREFERS_PROCESSED_AUDIO = False
"""Told to Home Assistant as ``prefers_auto_gain_enabled``/``prefers_noise_reduction_enabled``
(it reads them since 2026.5: an ESPHome satellite with two audio channels then sends the
untouched one). Home Assistant's own enhancer, run from its package at gain 31 dBFS and noise
suppression 2 over the real-speech set (``python -m benchmarks.ha_audio``), bought nothing with
Whisper: WER 8.59 % untouched, 8.80 % processed (short commands 13.3 / 14.0 %, long 4.3 / 4.1 %;
10 clips read better each way). Pulse declares the same preference in Home Assistant Cloud's
engine. The bridge's own VAD gates the audio either way."""
PROGRAM_NAME = "lightning"


def build_info(settings: Settings) -> Info:
    """One installed ASR program whose one model lists the service's language codes.

    Home Assistant builds its STT entity from ``asr[0]`` and offers exactly these languages.
    """
    dialect = settings.service_dialect
    model_name = "pulse" if dialect is Dialect.PULSE else "lightning"
    where = "the local recognizer (no API key)" if settings.local_only else "Smallest.ai"
    model = AsrModel(
        name=model_name,
        attribution=ATTRIBUTION,
        installed=True,
        description=f"Smallest.ai {model_name.title()} streaming speech-to-text",
        version=None,
        languages=list(settings.languages),
    )
    program = AsrProgram(
        name=PROGRAM_NAME,
        attribution=ATTRIBUTION,
        installed=True,
        description=f"Streaming speech-to-text through {where}",
        version=__version__,
        models=[model],
        supports_transcript_streaming=settings.streaming,
        requires_external_vad=not settings.endpointing,
        prefers_auto_gain_enabled=PREFERS_PROCESSED_AUDIO,
        prefers_noise_reduction_enabled=PREFERS_PROCESSED_AUDIO,
    )
    return Info(asr=[program])
