"""Boot a real Home Assistant in-process and drive its Wyoming integration; print JSON results.

This script runs inside Home Assistant's own virtual environment (Python 3.13, built by
``tests/deploy/ha_env.py``), never in the project's: it imports only the standard library and
``homeassistant``. ``tests/deploy/test_home_assistant.py`` starts it with one JSON argument::

    {"config_dir": "...", "http_port": 0,
     "servers": [{"label": "good", "port": 10300}, ...],
     "cases": [{"label": "...", "server": "good", "via": "entity" | "pipeline",
                "wav": "/path.wav", "timeout_s": 120, "realtime": false}, ...]}

and reads one JSON object from its stdout::

    {"ha_version": "...", "wyoming_version": "...", "components": [...],
     "servers": {"good": {"flow": "create_entry", "title": "...", "entity_id": "stt....",
                          "languages": [...]}, ...},
     "cases": {"label": {"state": "success" | "error" | "timeout", "text": ..., ...}}}

The boot follows ``homeassistant.bootstrap.async_from_config_dict`` (registries, core
integrations, core config) but sets up only the integrations under test instead of the
default set, so nothing needs the frontend, the recorder or the network. ``skip_pip`` is on:
Home Assistant must find every requirement already installed and never runs pip.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import sys
import time
import wave
from collections.abc import AsyncIterator
from importlib import metadata
from typing import Any

from homeassistant import bootstrap, config_entries, core, loader
from homeassistant.auth.models import TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN
from homeassistant.components import stt
from homeassistant.components.assist_pipeline import (
    AudioSettings,
    PipelineEvent,
    PipelineEventType,
    PipelineStage,
    async_create_default_pipeline,
    async_pipeline_from_audio_stream,
)
from homeassistant.const import __version__ as HA_VERSION
from homeassistant.core_config import async_process_ha_core_config
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component

#: What Home Assistant's own audio path sends: 10 ms of 16 kHz mono s16.
CHUNK_BYTES = 320


def read_pcm(path: str) -> bytes:
    with wave.open(path, "rb") as wav:
        if (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) != (16000, 2, 1):
            raise SystemExit(f"{path}: not 16 kHz mono s16")
        return wav.readframes(wav.getnframes())


async def chunks(pcm: bytes, clock: dict[str, float] | None = None) -> AsyncIterator[bytes]:
    """The audio as fast as the pipeline takes it, or, given ``clock``, in real time (each
    10 ms chunk when a microphone would have it), with ``clock["start"]`` the time the first
    one went out, so that a case can say when its speech ended."""
    started = time.monotonic()
    if clock is not None:
        clock["start"] = started
    for n, i in enumerate(range(0, len(pcm), CHUNK_BYTES)):
        if clock is not None:
            await asyncio.sleep(max(0.0, started + n * 0.01 - time.monotonic()))
        yield pcm[i : i + CHUNK_BYTES]
        # Let the rest of the loop run between chunks, as a real audio source does.
        await asyncio.sleep(0)


def metadata_for(language: str) -> stt.SpeechMetadata:
    return stt.SpeechMetadata(
        language=language,
        format=stt.AudioFormats.WAV,
        codec=stt.AudioCodecs.PCM,
        bit_rate=stt.AudioBitRates.BITRATE_16,
        sample_rate=stt.AudioSampleRates.SAMPLERATE_16000,
        channel=stt.AudioChannels.CHANNEL_MONO,
    )


async def boot(config_dir: str, http_port: int) -> core.HomeAssistant:
    """A running Home Assistant with http, stt, assist_pipeline and wyoming set up."""
    hass = core.HomeAssistant(config_dir)
    loader.async_setup(hass)
    hass.config.skip_pip = True
    hass.config.skip_pip_packages = []
    hass.config_entries = config_entries.ConfigEntries(hass, {})
    await loader.async_get_custom_components(hass)
    await bootstrap.async_load_base_functionality(hass)
    for domain in sorted(bootstrap.CORE_INTEGRATIONS):
        if not await async_setup_component(hass, domain, {}):
            raise RuntimeError(f"core integration {domain} failed to set up")
    await async_process_ha_core_config(
        hass,
        {
            "name": "wyoming-lightning test",
            "latitude": 52.37,
            "longitude": 4.89,
            "elevation": 0,
            "unit_system": "metric",
            "time_zone": "UTC",
            "language": "en",
            "country": "NL",
        },
    )
    config: dict[str, Any] = {"http": {"server_host": ["127.0.0.1"], "server_port": http_port}}
    for domain in ("http", "stt", "assist_pipeline", "wyoming"):
        if not await async_setup_component(hass, domain, config):
            raise RuntimeError(f"integration {domain} failed to set up")
    await hass.async_start()
    return hass


async def write_token(
    hass: core.HomeAssistant, path: str, user: str, group: str, client_name: str
) -> tuple[str, Any]:
    """A new user in ``group`` and a long-lived access token for it, written to ``path`` (mode
    0600, as a user keeps one): the names and sensors drivers hand it to the server. Returns the
    token and its refresh token (removing that revokes the token)."""
    account = await hass.auth.async_create_user(user, group_ids=[group])
    refresh = await hass.auth.async_create_refresh_token(
        account,
        client_name=client_name,
        token_type=TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN,
        access_token_expiration=dt.timedelta(days=1),
    )
    token: str = hass.auth.async_create_access_token(refresh)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token + "\n")
    return token, refresh


async def add_server(hass: core.HomeAssistant, port: int) -> dict[str, Any]:
    """The Wyoming config flow exactly as a user adding host and port by hand runs it."""
    result = await hass.config_entries.flow.async_init(
        "wyoming", context={"source": config_entries.SOURCE_USER}
    )
    assert result["type"] == "form", result
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {"host": "127.0.0.1", "port": port}
    )
    out: dict[str, Any] = {"flow": str(result["type"]), "errors": result.get("errors")}
    if result["type"] != "create_entry":
        out["reason"] = result.get("reason")
        return out
    entry = result["result"]
    await hass.async_block_till_done()
    out["title"] = result["title"]
    out["entry_state"] = str(entry.state)
    registry = er.async_get(hass)
    entities = [
        e.entity_id
        for e in er.async_entries_for_config_entry(registry, entry.entry_id)
        if e.domain == "stt"
    ]
    out["stt_entities"] = entities
    if entities:
        entity = stt.async_get_speech_to_text_entity(hass, entities[0])
        out["entity_id"] = entities[0]
        out["languages"] = sorted(entity.supported_languages) if entity else None
    return out


async def through_entity(
    hass: core.HomeAssistant, entity_id: str, pcm: bytes, realtime: bool = False
) -> dict[str, Any]:
    """The STT entity alone: no VAD, all the audio, then audio-stop (``realtime``: at a
    microphone's pace, so the upload goes on long after a server that ends early answered)."""
    entity = stt.async_get_speech_to_text_entity(hass, entity_id)
    assert entity is not None, entity_id
    clock: dict[str, float] | None = {} if realtime else None
    result = await entity.async_process_audio_stream(metadata_for("en"), chunks(pcm, clock))
    # The enum's value ("success", "error"): its str() changed between releases.
    return {"state": result.result.value, "text": result.text}


async def through_pipeline(
    hass: core.HomeAssistant, entity_id: str, pcm: bytes, realtime: bool = False
) -> dict[str, Any]:
    """The assist pipeline's speech-to-text stage, with Home Assistant's own end-of-speech VAD.

    ``realtime``: the audio at a microphone's pace, and ``stt_end_s``, when the transcript
    reached the pipeline, in seconds after the first chunk went out."""
    clock: dict[str, float] | None = {} if realtime else None
    pipeline = await async_create_default_pipeline(
        hass,
        stt_engine_id=entity_id,
        tts_engine_id=None,  # no text-to-speech: the run ends after speech-to-text
        pipeline_name=f"test {entity_id}",
    )
    assert pipeline is not None, "no pipeline could be made with this STT entity"
    events: list[PipelineEvent] = []
    at: dict[str, float] = {}

    def on_event(event: PipelineEvent) -> None:
        events.append(event)
        if event.type == PipelineEventType.STT_END:
            at["stt_end"] = time.monotonic()

    await async_pipeline_from_audio_stream(
        hass,
        context=core.Context(),
        event_callback=on_event,
        stt_metadata=metadata_for(pipeline.stt_language or "en"),
        stt_stream=chunks(pcm, clock),
        pipeline_id=pipeline.id,
        start_stage=PipelineStage.STT,
        end_stage=PipelineStage.STT,
        audio_settings=AudioSettings(),
    )
    out: dict[str, Any] = {"events": [str(e.type) for e in events], "stt_language": None}
    out["stt_language"] = pipeline.stt_language
    # What the STT entity declared to the pipeline (2026.x: requires_external_vad and the
    # audio processing it prefers); absent on releases that do not report it.
    starts = [e for e in events if e.type == PipelineEventType.STT_START]
    out["audio_processing"] = (starts[0].data or {}).get("audio_processing") if starts else None
    ends = [e for e in events if e.type == PipelineEventType.STT_END]
    errors = [e for e in events if e.type == PipelineEventType.ERROR]
    if ends:
        out["state"] = "success"
        out["text"] = ((ends[-1].data or {}).get("stt_output") or {}).get("text")
    else:
        out["state"] = "error"
        out["text"] = None
    if errors:
        out["error"] = errors[-1].data
    if clock is not None and "stt_end" in at:
        out["stt_end_s"] = round(at["stt_end"] - clock["start"], 4)
    return out


async def run_case(
    hass: core.HomeAssistant, entity_id: str, case: dict[str, Any]
) -> dict[str, Any]:
    pcm = read_pcm(case["wav"])
    started = time.monotonic()
    try:
        async with asyncio.timeout(case["timeout_s"]):
            if case["via"] == "pipeline":
                out = await through_pipeline(hass, entity_id, pcm, case.get("realtime", False))
            else:
                out = await through_entity(hass, entity_id, pcm, case.get("realtime", False))
    except TimeoutError:
        out = {"state": "timeout", "text": None}
    out["seconds"] = round(time.monotonic() - started, 2)
    return out


async def main(spec: dict[str, Any]) -> dict[str, Any]:
    hass = await boot(spec["config_dir"], spec["http_port"])
    report: dict[str, Any] = {
        "ha_version": HA_VERSION,
        "wyoming_version": metadata.version("wyoming"),
        "python": sys.version.split()[0],
        "servers": {},
        "cases": {},
    }
    try:
        for server in spec["servers"]:
            report["servers"][server["label"]] = await add_server(hass, server["port"])
        for case in spec["cases"]:
            entity_id = report["servers"][case["server"]].get("entity_id")
            if entity_id is None:
                report["cases"][case["label"]] = {"state": "no entity", "text": None}
                continue
            report["cases"][case["label"]] = await run_case(hass, entity_id, case)
        report["components"] = sorted(hass.config.components)
    finally:
        with contextlib.suppress(Exception):
            await hass.async_stop()
    return report


if __name__ == "__main__":
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("homeassistant.components.wyoming").setLevel(logging.DEBUG)
    print(json.dumps(asyncio.run(main(json.loads(sys.argv[1])))), flush=True)
