"""The home's names as keywords (issue 23): what they do to recognition, and that no request waits.

    python -m benchmarks.names [--voices en-us en-gb] [--requests 30] [--json out.json]

Part 1, recognition. Spoken commands that name the unusual devices of a home (the same 22
devices, areas and floors as the real Home Assistant of ``tests/deploy/ha_names_driver.py``),
in synthetic voices (espeak-ng, ``--voices``), go through the real server to the emulator's
Whisper (tiny.en, offline), once without names and once with the home's names: the list
``hass/names.py`` makes of that home, set as the server's cached names exactly as the
background reader sets it. The emulator applies ``keywords`` as Whisper's initial prompt.
Printed per voice: WER, and the share of commands whose device name came back right (its words,
in order, in the transcript, case and punctuation aside).

Part 2, never in the way. ``--requests`` short requests (tone words, tone recognizer, a new
service session each) per condition: no Home Assistant; names cached (the long URL); Home
Assistant slow (a listener that accepts and never answers: every read hangs until its timeout);
Home Assistant down (nothing listens: every read fails at once). Printed: the time from the
client's audio-start to the service's first audio byte, median and max, the whole request's
median, the reads of Home Assistant finished meanwhile and the link's state at the end
(``unknown``: the first read was still hanging when the last request ended).

Part 3, what a change costs: new service connections for 10 requests with warm sockets on,
the list unchanged, read again unchanged, or changed (one device renamed) half-way.

The load (``uptime``) is printed: the machine may be shared.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from tests.deploy.ha_names_home import AREAS as HOME_AREAS
from tests.deploy.ha_names_home import DEVICES
from tests.deploy.ha_names_home import FLOORS as HOME_FLOORS
from tests.kit.bridge import bridge_settings, serving, transcribe
from tests.kit.net import silent_listener
from tests.kit.wer import normalise_words, wer
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.emulator.audio import float_to_pcm, pcm_to_float, resample
from wyoming_lightning.emulator.config import EmulatorConfig
from wyoming_lightning.emulator.tones import encode
from wyoming_lightning.hass.connection import HassConnection
from wyoming_lightning.hass.home_names import HomeNames
from wyoming_lightning.hass.names import Entity, Home, Place, home_keywords
from wyoming_lightning.services import Services
from wyoming_lightning.settings.declare import Secret

from .harness import free_port, progress

#: The home of tests/deploy/ha_names_home.py, as the server's reader makes it.
FLOORS = {
    key: Place(key, name, tuple(sorted(aliases))) for key, (name, aliases) in HOME_FLOORS.items()
}
AREAS = {
    key: Place(key, name, tuple(sorted(aliases)), floor)
    for key, (name, aliases, floor) in HOME_AREAS.items()
}
HOME = Home(
    tuple(
        Entity(f"input_boolean.d{i}", name, aliases, area)
        for i, (name, area, aliases) in enumerate(DEVICES)
    ),
    AREAS,
    FLOORS,
)
#: (command, the device it names): every device once, a few with their room.
COMMANDS = (
    ("Set the Ecobee to twenty one degrees.", "Ecobee"),
    ("Turn on the Jacuzzi.", "Jacuzzi"),
    ("Switch off Kitchen West.", "Kitchen West"),
    ("Turn off the Shelly Plug in the boot room.", "Shelly Plug"),
    ("Open the Tado Valve.", "Tado Valve"),
    ("Turn on the Nanoleaf Canvas in the orangery.", "Nanoleaf Canvas"),
    ("Start the Roborock.", "Roborock"),
    ("Pause the Sonos Arc.", "Sonos Arc"),
    ("Dim the Hue Gradient.", "Hue Gradient"),
    ("Reset the Aqara Cube.", "Aqara Cube"),
    ("Close the Meross Garage.", "Meross Garage"),
    ("What does the Eve Weather say?", "Eve Weather"),
    ("Open the Switchbot Curtain.", "Switchbot Curtain"),
    ("Turn off the Wiz Bulb.", "Wiz Bulb"),
    ("Make the Govee Strip blue.", "Govee Strip"),
    ("Boil the Tuya Kettle.", "Tuya Kettle"),
    ("Turn on the Dyson Purifier.", "Dyson Purifier"),
    ("Turn off the Xiaomi Humidifier.", "Xiaomi Humidifier"),
    ("Read the Netatmo Station.", "Netatmo Station"),
    ("Lower the Somfy Blind in the orangery.", "Somfy Blind"),
    ("Turn on the Lutron Caseta.", "Lutron Caseta"),
    ("Set the Zooz Dimmer to half.", "Zooz Dimmer"),
)
TONE_WORDS = ("one", "two", "three")


def speak(text: str, voice: str) -> bytes:
    """16 kHz mono s16 of ``text`` in espeak-ng's ``voice``, with half a second around it."""
    wav = subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "150", "--stdout", text],
        check=True,
        capture_output=True,
    ).stdout
    # espeak-ng writes a 44-byte RIFF header, then 22050 Hz mono s16.
    samples = resample(pcm_to_float(wav[44:]), 22050, 16000)
    pad = np.zeros(8000, dtype=samples.dtype)
    return float_to_pcm(np.concatenate([pad, samples, pad]))


def device_right(device: str, said: str) -> bool:
    want, got = normalise_words(device), normalise_words(said)
    return any(got[i : i + len(want)] == want for i in range(len(got) - len(want) + 1))


async def recognition(voices: list[str]) -> list[dict[str, Any]]:
    keywords = home_keywords(HOME)
    progress(f"names: {len(keywords)} keywords for the home; loading Whisper")
    clips = {v: [(text, device, speak(text, v)) for text, device in COMMANDS] for v in voices}
    rows = []
    config = EmulatorConfig(recognizer="whisper")
    async with EmulatorServer(config, port=0) as emulator:
        url = f"ws://127.0.0.1:{emulator.port}/waves/v1/pulse/get_text"
        services = Services(bridge_settings(url, response_timeout_s=120.0, final_timeout_s=60.0))
        async with serving(services) as server:
            port = server.sockets[0][1]
            for voice in voices:
                for label, names in (("without names", ()), ("with the home's names", keywords)):
                    services.home_keywords = names
                    pairs, right, misses = [], 0, []
                    for text, device, pcm in clips[voice]:
                        answer = await transcribe(port, pcm)
                        said = answer.transcript or ""
                        pairs.append((text, said))
                        if device_right(device, said):
                            right += 1
                        else:
                            misses.append(said)
                    rows.append(
                        {
                            "voice": voice,
                            "names": label,
                            "commands": len(pairs),
                            "wer": round(wer(pairs), 3),
                            "device_right": f"{right}/{len(pairs)}",
                            "misses": misses[:4],
                        }
                    )
                    progress(f"names: {voice}, {label}: WER {wer(pairs):.3f}, {right}/{len(pairs)}")
    return rows


@dataclass
class Condition:
    """One server of part 2, with its Home Assistant (or none) and its figures."""

    label: str
    services: Services
    names: HomeNames | None
    port: int = 0
    first_bytes: list[float] = field(default_factory=list)
    totals: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        names = self.names
        return {
            "condition": self.label,
            "requests": len(self.totals),
            "first_byte_median_ms": round(1000 * float(np.median(self.first_bytes)), 1),
            "first_byte_max_ms": round(1000 * max(self.first_bytes), 1),
            "request_median_ms": round(1000 * float(np.median(self.totals)), 1),
            "hass_reads_done": names.reads if names is not None else "-",
            "hass_link_at_end": names.link.value if names is not None else "-",
        }


async def timed_request(emulator: EmulatorServer, condition: Condition, audio: bytes) -> None:
    before = len(emulator.sessions)
    started = time.perf_counter()
    request = asyncio.create_task(transcribe(condition.port, audio))
    await emulator.wait_for(functools.partial(_sending, emulator, before))
    condition.first_bytes.append(time.perf_counter() - started)
    answer = await request
    condition.totals.append(time.perf_counter() - started)
    assert answer.transcript, "a request failed"


def _sending(emulator: EmulatorServer, before: int) -> bool:
    """The request's session (the first after ``before``) has received audio."""
    sessions = emulator.sessions
    return len(sessions) > before and sessions[before].audio_bytes_received > 0


def _token() -> Secret:
    return Secret("benchmark-token")


async def never_waits(count: int) -> list[dict[str, Any]]:
    """The four servers run side by side and take turns, request by request, so that the
    machine's load and the emulator's growing records weigh on each alike."""
    async with contextlib.AsyncExitStack() as stack:
        emulator = await stack.enter_async_context(EmulatorServer(EmulatorConfig(), port=0))
        url = f"ws://127.0.0.1:{emulator.port}/waves/v1/pulse/get_text"
        settings = replace(bridge_settings(url), session_idle_timeout_s=0.0)
        slow_port = await stack.enter_async_context(silent_listener())
        conditions = []
        for label, hass_port, cached in (
            ("no Home Assistant", None, False),
            ("names cached", None, True),
            ("Home Assistant slow (never answers)", slow_port, False),
            ("Home Assistant down (nothing listens)", free_port(), False),
        ):
            services = Services(settings)
            if cached:
                services.home_keywords = home_keywords(HOME)
            names = None
            if hass_port is not None:
                connection = HassConnection(f"http://127.0.0.1:{hass_port}", _token())
                names = HomeNames(services, connection)
                names.start()
                stack.push_async_callback(names.stop)
            server = await stack.enter_async_context(serving(services))
            conditions.append(Condition(label, services, names, server.sockets[0][1]))
        audio = encode(list(TONE_WORDS))
        for _ in range(count):
            for condition in conditions:
                await timed_request(emulator, condition, audio)
        rows = [condition.row() for condition in conditions]
    for row in rows:
        progress(f"names: {row}")
    return rows


async def change_cost(count: int) -> list[dict[str, Any]]:
    """New service connections for ``count`` requests with warm sockets on (the default), the
    list unchanged, refreshed to the same list, or changed once half-way."""
    rows = []
    keywords = home_keywords(HOME)
    renamed = home_keywords(
        replace(HOME, entities=(replace(HOME.entities[0], name="Nest"), *HOME.entities[1:]))
    )
    async with EmulatorServer(EmulatorConfig(), port=0) as emulator:
        url = f"ws://127.0.0.1:{emulator.port}/waves/v1/pulse/get_text"
        settings = replace(bridge_settings(url), session_idle_timeout_s=30.0)
        audio = encode(list(TONE_WORDS))
        for label, second_half in (
            ("unchanged", keywords),
            ("read again, same names", home_keywords(HOME)),
            ("one device renamed half-way", renamed),
        ):
            services = Services(settings)
            services.home_keywords = keywords
            async with serving(services) as server:
                for i in range(count):
                    if i == count // 2:
                        services.home_keywords = second_half
                    answer = await transcribe(server.sockets[0][1], audio)
                    assert answer.transcript, "a request failed"
                registry = services.guard.metrics.registry
                name = "wyoming_lightning_service_connections_total"
                connections = registry.get_sample_value(name) or 0.0
            rows.append({"list": label, "requests": count, "new_connections": int(connections)})
            progress(f"names: warm sockets, {label}: {int(connections)} connections")
    return rows


def print_rows(title: str, rows: list[dict[str, Any]]) -> None:
    print(f"\n{title}")
    keys = [k for k in rows[0] if k != "misses"]
    print(" | ".join(keys))
    for row in rows:
        print(" | ".join(str(row[k]) for k in keys))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.names", description=__doc__)
    parser.add_argument("--voices", nargs="+", default=["en-us", "en-gb"])
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--skip-recognition", action="store_true")
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None and not args.skip_recognition:
        sys.exit("espeak-ng is needed for the voices: apt-get install espeak-ng")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load: {load}")
    out: dict[str, Any] = {"load_before": load}
    if not args.skip_recognition:
        out["recognition"] = asyncio.run(recognition(args.voices))
        print_rows("Recognition: emulator Whisper tiny.en, espeak-ng voices", out["recognition"])
        for row in out["recognition"]:
            print(f"  {row['voice']}, {row['names']}: first misses {row['misses']}")
    out["never_waits"] = asyncio.run(never_waits(args.requests))
    print_rows(
        "Never in the way: audio-start -> first audio byte at the service", out["never_waits"]
    )
    out["change_cost"] = asyncio.run(change_cost(10))
    print_rows("What a change costs: warm sockets on (the default)", out["change_cost"])
    out["load_after"] = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"load: {out['load_after']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
