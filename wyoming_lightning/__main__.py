"""``wyoming-lightning``: parse settings, start listening, stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence

from .config import ConfigError, Settings, load_settings
from .lightning.client import Timeouts
from .lightning.keycheck import check_key
from .lightning.protocol import ErrorCode
from .local import LocalRecognizer
from .server import WyomingServer
from .services import Services
from .zeroconf import start_advertising

_LOGGER = logging.getLogger("wyoming_lightning")


def _setup_logging(settings: Settings) -> None:
    logging.basicConfig(
        level=logging.DEBUG if settings.debug else logging.INFO,
        format=settings.log_format,
        stream=sys.stderr,
    )
    if settings.debug:
        # The websockets library logs frames and headers at debug level: keep it quieter so
        # that neither audio nor the Authorization header ever reaches the log.
        logging.getLogger("websockets").setLevel(logging.INFO)


async def main(settings: Settings) -> int:
    services = Services(settings)
    if settings.local_only:
        if not LocalRecognizer.available():
            _LOGGER.error(
                "no API key: set SMALLEST_API_KEY (or SMALLEST_API_KEY_FILE / --api-key-file), "
                "or install the local recognizer with: pip install 'wyoming-lightning[local]'"
            )
            return 2
        _LOGGER.warning(
            "no API key (SMALLEST_API_KEY): transcribing with the local recognizer only"
        )
    if settings.check_key and not settings.local_only:
        failure = await check_key(
            settings.service_url,
            settings.api_key.reveal(),
            Timeouts(connect_s=settings.connect_timeout_s, send_s=settings.send_timeout_s),
            settings.service_dialect,
        )
        if failure is not None:
            _LOGGER.error("API key check failed: %s", failure.message)
            if failure.code in (ErrorCode.AUTH, ErrorCode.QUOTA):
                _LOGGER.error("check SMALLEST_API_KEY (or the file it comes from)")
                return 1
        else:
            _LOGGER.info("API key accepted by the service")
    server = WyomingServer(services)
    try:
        await server.start()
    except OSError as err:
        _LOGGER.error("cannot listen on %s: %s", settings.uri, err.strerror or err)
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, server.stop)
    where = ", ".join(f"tcp://{host}:{port}" for host, port in server.sockets) or settings.uri
    _LOGGER.info(
        "listening on %s; service %s; language %s; VAD %s",
        where,
        settings.service_url,
        settings.language,
        settings.vad,
    )
    advertisement = await start_advertising(settings.zeroconf, settings.uri, server.sockets)
    try:
        await server.serve()
    finally:
        if advertisement is not None:
            await advertisement.stop()
    _LOGGER.info("stopped")
    return 0


def run(argv: Sequence[str] | None = None) -> None:
    try:
        settings = load_settings(argv)
    except ConfigError as err:
        print(f"wyoming-lightning: {err}", file=sys.stderr)
        sys.exit(2)
    _setup_logging(settings)
    sys.exit(asyncio.run(main(settings)))


if __name__ == "__main__":
    run()
