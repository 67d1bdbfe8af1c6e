"""Regenerate the spoken parts of the pause set (tests/kit/pause_set.py): ``PYTHONPATH=.
python tests/data/pauses/make.py`` (needs espeak-ng; the WAVs are committed, so tests and benchmarks
do not). Each command is spoken in two parts, split where people pause ("turn on the" |
"kitchen lights"); the kit splices them with 200-900 ms of room tone between."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.kit.human_speech import to_16k

HERE = Path(__file__).resolve().parent

PARTS: dict[str, tuple[str, str]] = {
    "kitchen_lights": ("turn on the", "kitchen lights"),
    "timer_ten": ("set a timer for", "ten minutes"),
    "milk_list": ("add milk to", "my shopping list"),
    "bedroom_fan": ("turn off the", "bedroom fan"),
    "thermostat": ("set the thermostat to", "twenty one degrees"),
    "jazz_living_room": ("play some jazz in the", "living room"),
    "garage": ("open the", "garage door"),
    "dim_fifty": ("dim the lights to", "fifty percent"),
    "front_door": ("lock the", "front door"),
    "um_hallway": ("turn on the, um", "hallway light"),
    "uh_timer": ("set a timer for, uh", "five minutes"),
}
VOICE = "en-us"
RATE_WPM = 160


def speak(text: str) -> bytes:
    """espeak-ng's WAV at 22.05 kHz -> 16 kHz s16 mono, leading/trailing silence trimmed."""
    wav = subprocess.run(
        ["espeak-ng", "-v", VOICE, "-s", str(RATE_WPM), "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    pcm = to_16k(wav[44:], 22050)
    import numpy as np

    samples = np.frombuffer(pcm, dtype="<i2")
    loud = np.flatnonzero(np.abs(samples.astype(np.int32)) > 300)
    return samples[loud[0] : loud[-1] + 1].tobytes()


def main() -> None:
    import wave

    manifest = {}
    for key, parts in PARTS.items():
        files = []
        for index, text in enumerate(parts):
            name = f"{key}_{index}.wav"
            with wave.open(str(HERE / name), "wb") as out:
                out.setnchannels(1)
                out.setsampwidth(2)
                out.setframerate(16000)
                out.writeframes(speak(text))
            files.append(name)
        manifest[key] = {"parts": list(parts), "files": files}
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")


if __name__ == "__main__":
    main()
