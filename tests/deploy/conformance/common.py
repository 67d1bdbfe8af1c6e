"""What the three client drivers share: reading the WAVs, the command line, the JSON answer.

Each driver runs in the clients' own environment (see requirements.txt), one client per
process, and prints exactly one JSON object on stdout; everything else goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
import wave
from typing import Any

RATE = 16000


def read_pcm(path: str) -> bytes:
    """A 16 kHz mono s16 WAV's samples; anything else is the test's mistake."""
    with wave.open(path, "rb") as wav:
        shape = (wav.getframerate(), wav.getnchannels(), wav.getsampwidth())
        if shape != (RATE, 1, 2):
            raise SystemExit(f"{path}: expected 16 kHz mono 16-bit, got {shape}")
        return wav.readframes(wav.getnframes())


def silence(seconds: float) -> bytes:
    return bytes(int(RATE * seconds) * 2)


def arguments(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--url", required=True, help="the emulator's base URL")
    parser.add_argument("--key", required=True)
    parser.add_argument("--wav", action="append", required=True, help="one per turn, in order")
    return parser.parse_args()


def wait_for_go() -> None:
    """Block until the test says go (one line on stdin): it watches the emulator's records."""
    line = sys.stdin.readline()
    if line.strip() != "go":
        raise SystemExit(f"expected 'go' on stdin, got {line!r}")


def answer(result: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()
