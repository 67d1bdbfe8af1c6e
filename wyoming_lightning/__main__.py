"""``wyoming-lightning``: parse settings, start listening, stop cleanly on SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from wyoming_lightning.cloud.client import Timeouts
from wyoming_lightning.cloud.keycheck import check_key
from wyoming_lightning.core.errors import ErrorCode
from wyoming_lightning.event_loop import EventLoopError, LoopChoice, choose_loop, run_on
from wyoming_lightning.local.recognizer import LocalRecognizer
from wyoming_lightning.services import Services
from wyoming_lightning.settings.cli import describe_failure, redact_url, run_main
from wyoming_lightning.settings.config import ConfigError, Settings, load_settings, settings_summary
from wyoming_lightning.wyoming.server import ListenError, WyomingServer
from wyoming_lightning.wyoming.zeroconf import start_advertising

if TYPE_CHECKING:
    from wyoming_lightning.hass.connection import HassConnection
    from wyoming_lightning.hass.home_names import HomeNames
    from wyoming_lightning.hass.publisher import SensorPublisher
    from wyoming_lightning.web.site import WebSite

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


async def main(settings: Settings, loop_name: str = "asyncio") -> int:
    if settings.fallback == "local" and not LocalRecognizer.available():
        _LOGGER.error(
            "--fallback local needs the local recognizer, which is not installed: "
            "pip install 'wyoming-lightning[local]'"
        )
        return 2
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
            # The README promises exit status 1 for any failed check: a server that cannot
            # reach the service at start-up would fail every request, so it does not start.
            hint = ""
            if failure.code in (ErrorCode.AUTH, ErrorCode.QUOTA):
                hint = "; check SMALLEST_API_KEY (or the file it comes from)"
            _LOGGER.error("API key check failed: %s%s", failure.message, hint)
            return 1
        else:
            _LOGGER.info("API key accepted by the service")
    # The page and Home Assistant's connection load aiohttp only when asked for: a server
    # without them starts faster (a container's first health probe comes after one second).
    hass: HassConnection | None = None
    if settings.hass_url:
        from wyoming_lightning.hass.connection import HassConnection

        try:
            hass = HassConnection.from_settings(settings)  # the sensors (issue 25)
        except ConfigError as err:
            _LOGGER.error("%s", err)
            return 2
    server = WyomingServer(services)
    try:
        await server.start()
    except ListenError as err:
        _LOGGER.error("cannot listen on %s: %s", settings.uri, err)
        return 1
    except OSError as err:
        _LOGGER.error("cannot listen on %s: %s", settings.uri, describe_failure(err))
        return 1
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, server.stop)
    where = ", ".join(f"tcp://{host}:{port}" for host, port in server.sockets) or settings.uri
    _LOGGER.info(
        "listening on %s; service %s; language %s; VAD %s; event loop %s",
        where,
        redact_url(settings.service_url),
        settings.language,
        settings.vad,
        loop_name,
    )
    advertisement = await start_advertising(settings.zeroconf, settings.uri, server.sockets)
    site: WebSite | None = None
    if settings.web_port is not None:
        from wyoming_lightning.web.site import start_site

        site = await start_site(services, server.sockets)  # the status page (issue 25)
    publisher: SensorPublisher | None = None
    names: HomeNames | None = None
    if hass is not None:
        from wyoming_lightning.hass.home_names import start_home_names
        from wyoming_lightning.hass.publisher import start_publisher

        publisher = start_publisher(services, hass)
        names = start_home_names(services, hass)  # issue 23
    try:
        await server.serve()
    finally:
        if names is not None:
            await names.stop()
        if publisher is not None:
            await publisher.stop()
        if site is not None:
            await site.stop()
        if advertisement is not None:
            await advertisement.stop()
    _LOGGER.info("stopped")
    return 0


def _main(argv: Sequence[str] | None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["usage"]:  # issue 12: ``wyoming-lightning usage`` prints the usage table
        from wyoming_lightning.ops.usage_report import main as usage_main

        return usage_main(args[1:])
    try:
        settings = load_settings(argv)
    except ConfigError as err:
        print(f"wyoming-lightning: {err}", file=sys.stderr)
        return 2
    _setup_logging(settings)
    _LOGGER.debug("settings: %s", settings_summary(settings))
    try:
        loop: LoopChoice = choose_loop(settings.event_loop)
    except EventLoopError as err:
        _LOGGER.error("%s", err)
        return 2
    return run_on(loop, main(settings, loop.name))


def run(argv: Sequence[str] | None = None) -> None:
    run_main("wyoming-lightning", lambda: _main(argv))


if __name__ == "__main__":
    run()
