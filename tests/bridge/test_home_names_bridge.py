"""The home's names from a request to the recognizer: the server's cached list goes into the
session URL and the emulator hands it to its recognizer, which is how the benchmark measures the
names' effect without the cloud (benchmarks/names.py). Real Home Assistant supplying the list:
tests/deploy/test_home_assistant_names.py."""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Sequence

import pytest

from tests.kit.bridge import bridge_settings, serving, transcribe
from tests.kit.net import silent_listener
from wyoming_lightning.core.protocol import Keyword
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer
from wyoming_lightning.emulator.recognizers import ToneRecognizer, Word
from wyoming_lightning.emulator.tones import encode
from wyoming_lightning.hass.connection import HassConnection
from wyoming_lightning.hass.home_names import HomeNames
from wyoming_lightning.hass.names import NAME_WEIGHT, PLACE_WEIGHT
from wyoming_lightning.hass.sensors import Link
from wyoming_lightning.services import Services
from wyoming_lightning.settings.declare import Secret


class HintedTones(ToneRecognizer):
    """The tone reader, remembering the keywords each call was given."""

    def __init__(self) -> None:
        self.hints: list[tuple[tuple[str, float], ...]] = []

    def transcribe(
        self,
        pcm16k_mono_s16: bytes,
        language: str,
        *,
        word_times: bool = False,
        interim: bool = False,
        keywords: Sequence[tuple[str, float]] = (),
    ) -> list[Word]:
        self.hints.append(tuple(keywords))
        return super().transcribe(pcm16k_mono_s16, language, word_times=word_times)


async def test_the_cached_names_reach_the_emulators_recognizer() -> None:
    recognizer = HintedTones()
    async with EmulatorServer(EmulatorConfig(), port=0, recognizer=recognizer) as emulator:
        url = f"ws://127.0.0.1:{emulator.port}/waves/v1/pulse/get_text"
        services = Services(bridge_settings(url))
        services.home_keywords = (
            Keyword("Ecobee", NAME_WEIGHT),
            Keyword("Scullery", PLACE_WEIGHT),
        )
        async with serving(services) as server:
            answer = await transcribe(server.sockets[0][1], encode(["one", "two"]))
            assert answer.transcript == "one two"
            services.home_keywords = ()
            await transcribe(server.sockets[0][1], encode(["three"]))
    with_names = [h for h in recognizer.hints if h]
    assert with_names and set(with_names) == {(("Ecobee", 2.0), ("Scullery", 1.5))}
    assert recognizer.hints[-1] == ()  # the next request, after the list emptied: no hints
    assert dict(emulator.sessions[0].query)["keywords"] == "Ecobee:2,Scullery:1.5"
    assert "keywords" not in dict(emulator.sessions[-1].query)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.mark.parametrize("kind", ["silent", "absent"])
async def test_a_silent_or_absent_home_assistant_leaves_requests_served_without_names(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        port = await stack.enter_async_context(silent_listener()) if kind == "silent" else None
        port = port or _free_port()
        emulator = await stack.enter_async_context(EmulatorServer(EmulatorConfig(), port=0))
        url = f"ws://127.0.0.1:{emulator.port}/waves/v1/pulse/get_text"
        services = Services(bridge_settings(url))
        token = "tok-5ecret-77"
        connection = HassConnection(f"http://127.0.0.1:{port}", Secret(token))
        # The wait for an answer, shortened: the silent one is a failure only when it ends.
        names = HomeNames(services, connection, answer_timeout_s=0.3)
        names.start()
        stack.push_async_callback(names.stop)
        server = await stack.enter_async_context(serving(services))
        # A request while the first read is under way (or already failed): served, no names.
        answer = await transcribe(server.sockets[0][1], encode(["one"]))
        assert answer.transcript == "one"
        assert "keywords" not in dict(emulator.sessions[-1].query)
        while names.link is not Link.DOWN:
            await names.next_read()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    said = [w for w in warnings if "cannot read the home's names" in w]
    assert len(said) == 1, warnings
    assert ("did not answer in time" if kind == "silent" else "cannot reach") in said[0]
    assert "serving without them" in said[0]
    assert token not in caplog.text
    registry = services.guard.metrics.registry
    assert registry.get_sample_value("wyoming_lightning_hass_names_up") == 0.0
    assert registry.get_sample_value("wyoming_lightning_hass_names_failures_total") == 1.0
