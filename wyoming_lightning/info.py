"""The ``info`` answer to ``describe``: built once at start-up, never waiting on the cloud."""

from __future__ import annotations

from wyoming.info import AsrModel, AsrProgram, Attribution, Info

from . import __version__
from .config import Settings
from .lightning.protocol import Dialect

ATTRIBUTION = Attribution(name="Smallest.ai", url="https://smallest.ai")
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
    )
    return Info(asr=[program])
