"""The command line of ``wyoming-lightning-client``."""

from __future__ import annotations

import argparse
from pathlib import Path

from wyoming_lightning.settings.cli import DEFAULT_PORT, Parser, uri_type
from wyoming_lightning.transcribe_cli.status import PROG

DEFAULT_URI = f"tcp://127.0.0.1:{DEFAULT_PORT}"
DEFAULT_MIC_SECONDS = 15.0
"""Home Assistant's own hard cap on one voice command."""
DEFAULT_END_SILENCE_S = 0.7
"""Home Assistant's default end-of-speech silence."""


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Transcribe a WAV file, or the microphone, with any Wyoming speech-to-text "
        "server. The text goes to stdout; progress and partial results to stderr.",
    )
    parser.add_argument("file", nargs="?", type=Path, help="PCM WAV file (any rate/width/channels)")
    parser.add_argument(
        "--uri", type=uri_type(), default=DEFAULT_URI, help="server: tcp://HOST:PORT or unix://PATH"
    )
    parser.add_argument("--language", default=None, help="language to ask for, e.g. en or en-US")
    parser.add_argument(
        "--realtime", action="store_true", help="send the file at real-time pace, as a live source"
    )
    parser.add_argument(
        "--chunk-ms", type=int, default=10, help="audio per chunk event (default 10, as HA)"
    )
    parser.add_argument("--mic", action="store_true", help="record from the microphone instead")
    parser.add_argument(
        "--seconds",
        type=float,
        default=None,
        help=f"record at most this long (default {DEFAULT_MIC_SECONDS:g})",
    )
    parser.add_argument("--device", default=None, help="input device name or number (--mic)")
    parser.add_argument(
        "--vad", default="silero", choices=("silero", "webrtc"), help="end-of-speech detector"
    )
    parser.add_argument(
        "--end-silence",
        type=float,
        default=DEFAULT_END_SILENCE_S,
        help=f"seconds of silence that end speech (default {DEFAULT_END_SILENCE_S:g})",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds to wait for the transcript"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    parser.add_version()
    return parser
