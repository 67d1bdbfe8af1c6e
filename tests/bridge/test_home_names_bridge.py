"""The home's names from a request to the recognizer: the server's cached list goes into the
session URL and the emulator hands it to its recognizer, which is how the benchmark measures the
names' effect without the cloud (benchmarks/names.py). Real Home Assistant supplying the list:
tests/deploy/test_home_assistant_names.py."""

from __future__ import annotations

from collections.abc import Sequence

from tests.kit.bridge import bridge_settings, serving, transcribe
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer
from wyoming_lightning.emulator.recognizers import ToneRecognizer, Word
from wyoming_lightning.emulator.tones import encode
from wyoming_lightning.hass.names import NAME_WEIGHT, PLACE_WEIGHT
from wyoming_lightning.lightning.protocol import Keyword
from wyoming_lightning.services import Services


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
