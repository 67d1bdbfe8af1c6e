"""Languages and bias words end to end: what a Wyoming client asks for, what the service receives.

Every test drives the real server with the real ``wyoming`` client and reads, on the emulator's
side, the query string each session was opened with.
"""

from __future__ import annotations

from urllib.parse import urlencode, urlsplit

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import SelectProgram

from tests.kit.bridge import (
    API_KEY,
    Answer,
    bridge_port,
    bridge_settings,
    read_answer,
    running_bridge,
    transcribe,
)
from wyoming_lightning.core.languages import LIGHTNING_LANGUAGES, PULSE_LANGUAGES
from wyoming_lightning.core.protocol import (
    DEFAULT_URL,
    MAX_INTENSIFIER,
    MAX_URL_BYTES,
    PULSE_URL,
    US_HOST,
)
from wyoming_lightning.core.request import RequestConfig
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer
from wyoming_lightning.emulator.tones import encode_phrase, silence
from wyoming_lightning.services import NAME_WEIGHT, TERM_WEIGHT, Services
from wyoming_lightning.settings.config import Secret, Settings, parse_keywords

PHRASE = "two four six"
PCM = silence(300) + encode_phrase(PHRASE) + silence(900)


def keywords_sent(emu: EmulatorServer) -> list[str]:
    """Every ``keywords`` value of the last session's query string, repeats kept, in order."""
    return [value for key, value in emu.sessions[-1].query if key == "keywords"]


# ------------------------------------------------------------------------------- languages


@pytest.mark.parametrize(
    ("requested", "sent"),
    [("en-US", "en"), ("en_GB", "en"), ("de_DE", "de"), ("PT-br", "pt"), ("FR", "fr")],
)
async def test_regional_forms_reach_the_service_as_base_codes(
    emulator: EmulatorServer, requested: str, sent: str
) -> None:
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        answer = await transcribe(bridge_port(server), PCM, language=requested)
    assert answer.transcript == PHRASE
    assert emulator.sessions[-1].params["language"] == sent
    assert answer.of("transcript")[-1].data["language"] == sent


async def test_no_language_means_the_servers_default(emulator: EmulatorServer) -> None:
    settings = bridge_settings(emulator.lightning_url, language="it")
    async with running_bridge(settings) as server:
        answer = await transcribe(bridge_port(server), PCM, language=None)
    assert answer.transcript == PHRASE
    assert emulator.sessions[-1].params["language"] == "it"


async def test_unsupported_language_is_refused_before_any_session(
    emulator: EmulatorServer,
) -> None:
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        answer = await transcribe(bridge_port(server), PCM, language="xx")
    error = answer.error
    assert error is not None
    assert error.data["code"] == "language"
    assert "'xx' is not offered" in error.data["text"] and "en, " in error.data["text"]
    assert answer.closed, "Home Assistant ignores error events: the connection must close"
    assert answer.transcript is None
    assert emulator.sessions == [], "nothing was sent to the (billed) service"


@pytest.mark.parametrize(
    ("url_kind", "requested", "reported"),
    [
        ("lightning", "multi", "en"),
        ("lightning", "auto", "en"),
        ("pulse", "multi-south-indic", "ta"),  # the service's answer, not our request
    ],
)
async def test_detected_language_is_in_the_transcript(
    emulator: EmulatorServer, url_kind: str, requested: str, reported: str
) -> None:
    url = emulator.lightning_url if url_kind == "lightning" else emulator.pulse_url
    async with running_bridge(bridge_settings(url)) as server:
        answer = await transcribe(bridge_port(server), PCM, language=requested)
    assert answer.transcript == PHRASE
    assert emulator.sessions[-1].params["language"] != reported
    assert answer.of("transcript")[-1].data["language"] == reported


@pytest.mark.parametrize(
    ("requested", "sent"), [("zh-HK", "yue"), ("zh_CN", "zh"), ("ja-JP", "ja"), ("ko", "ko")]
)
async def test_region_languages_on_the_us_region(requested: str, sent: str) -> None:
    config = EmulatorConfig(api_key=API_KEY, recognizer="tones", region="us")
    async with EmulatorServer(config, host="127.0.0.1", port=0) as emu:
        async with running_bridge(bridge_settings(emu.pulse_url)) as server:
            answer = await transcribe(bridge_port(server), PCM, language=requested)
        assert answer.transcript == PHRASE
        assert emu.sessions[-1].params["language"] == sent


async def test_region_language_on_the_default_region_fails_cleanly(
    emulator: EmulatorServer,
) -> None:
    """A fixed non-US URL cannot serve zh: the user gets an error and a closed connection, not
    a hang (the troubleshooting guide tells them to drop --lightning-url or use the US host)."""
    settings = bridge_settings(emulator.pulse_url, retries=0)
    async with running_bridge(settings) as server:
        answer = await transcribe(bridge_port(server), PCM, language="zh")
    assert answer.error is not None
    assert answer.closed
    assert emulator.sessions[-1].params["language"] == "zh"


def config_for(services: Services, requested: str) -> RequestConfig:
    """What the handler does: resolve the language once, then build the request from it."""
    return services.request_config(
        Transcribe(language=requested), services.resolve_language(requested)
    )


def test_the_request_takes_the_language_as_resolved_once() -> None:
    """``transcribe`` is resolved when it arrives; building the request does not do it again."""
    services = Services(Settings(api_key=Secret("k"), vad="off"))
    assert services.resolve_language("de_DE") == "de"
    config = services.request_config(Transcribe(language="de_DE"), "de")
    assert config.session.language == "de"
    assert services.request_config(Transcribe(language="xx"), "en").session.language == "en"


@pytest.mark.parametrize("language", ["zh", "yue", "ja", "ko", "multi-asian"])
@pytest.mark.parametrize("url", [DEFAULT_URL, PULSE_URL])
def test_region_languages_go_to_the_us_host_of_the_vendor(language: str, url: str) -> None:
    key = Secret("k")
    services = Services(Settings(service_url=url, api_key=key, vad="off"))
    config = config_for(services, language)
    assert urlsplit(config.base_url).hostname == US_HOST
    assert urlsplit(config.base_url).path == urlsplit(url).path
    assert config_for(services, "en").base_url == url


@pytest.mark.parametrize("language", ["ta", "te", "kn", "ml", "multi-south-indic"])
def test_south_indic_languages_never_go_to_the_us_host(language: str) -> None:
    us_url = "wss://api.us.smallest.ai/waves/v1/stt/live?model=pulse"
    services = Services(Settings(service_url=us_url, api_key=Secret("k")))
    config = config_for(services, language)
    assert urlsplit(config.base_url).hostname == "api.smallest.ai"
    assert config_for(services, "en").base_url == us_url


def test_other_hosts_are_never_rerouted() -> None:
    url = "ws://127.0.0.1:8765/waves/v1/stt/live?model=pulse"
    services = Services(Settings(service_url=url, api_key=Secret("k")))
    for language in ("ja", "ta", "en"):
        assert config_for(services, language).base_url == url


@pytest.mark.parametrize(
    "dialect_languages",
    [
        pytest.param(LIGHTNING_LANGUAGES, id="lightning"),
        pytest.param(PULSE_LANGUAGES, id="pulse"),
    ],
)
def test_every_advertised_language_is_accepted(dialect_languages: tuple[str, ...]) -> None:
    from wyoming_lightning.core.languages import resolve_language

    refused = []
    for code in dialect_languages:
        try:
            assert resolve_language(code, "en", dialect_languages) == code
        except ValueError:
            refused.append(code)
    assert refused == []


# ------------------------------------------------------------------------------- bias words


def bias_request(names: list[str] | None, terms: list[str] | None) -> Transcribe:
    return Transcribe(language="en", transcript_names=names, transcript_terms=terms)


async def test_names_terms_and_keywords_on_pulse_are_one_string(emulator: EmulatorServer) -> None:
    settings = bridge_settings(emulator.pulse_url, keywords=tuple(parse_keywords("Zigbee:3")))
    request = bias_request(["Ada Lovelace", "Kitchen"], ["thermostat", "kitchen"])
    async with running_bridge(settings) as server:
        answer = await transcribe(bridge_port(server), PCM, transcribe_event=request)
    assert answer.transcript == PHRASE
    # Case is kept: the service matches keywords case-sensitively, so "kitchen" is its own entry.
    assert keywords_sent(emulator) == [
        f"Ada Lovelace:{NAME_WEIGHT:g},Kitchen:{NAME_WEIGHT:g},thermostat:{TERM_WEIGHT:g},"
        f"kitchen:{TERM_WEIGHT:g},Zigbee:3"
    ]


def test_intensifiers_follow_the_vendors_advice() -> None:
    # Names above terms, both above the service's default of 1, none above 3.
    assert MAX_INTENSIFIER >= NAME_WEIGHT > TERM_WEIGHT > 1
    assert MAX_INTENSIFIER == 3


async def test_keywords_without_weights_reach_pulse_bare(emulator: EmulatorServer) -> None:
    keywords = tuple(parse_keywords("Zigbee, Kitchen Lamp:2 ,thermostat:9"))
    settings = bridge_settings(emulator.live_url, keywords=keywords)
    async with running_bridge(settings) as server:
        answer = await transcribe(bridge_port(server), PCM)
    assert answer.transcript == PHRASE, answer.error
    assert keywords_sent(emulator) == ["Zigbee,Kitchen Lamp:2,thermostat:3"]


async def test_names_terms_and_keywords_on_lightning_repeat_the_parameter(
    emulator: EmulatorServer,
) -> None:
    settings = bridge_settings(emulator.lightning_url, keywords=tuple(parse_keywords("Zigbee:3")))
    request = bias_request(["Ada Lovelace"], ["thermostat"])
    async with running_bridge(settings) as server:
        answer = await transcribe(bridge_port(server), PCM, transcribe_event=request)
    assert answer.transcript == PHRASE
    assert keywords_sent(emulator) == [
        f"Ada Lovelace:{NAME_WEIGHT:g}",
        f"thermostat:{TERM_WEIGHT:g}",
        "Zigbee:3",
    ]


async def test_separators_in_words_cannot_break_the_list(emulator: EmulatorServer) -> None:
    request = bias_request(["Smith, John", "  spaced   out  "], ["ratio:1"])
    async with running_bridge(bridge_settings(emulator.pulse_url)) as server:
        answer = await transcribe(bridge_port(server), PCM, transcribe_event=request)
    assert answer.transcript == PHRASE
    assert keywords_sent(emulator) == [
        f"Smith John:{NAME_WEIGHT:g},spaced out:{NAME_WEIGHT:g},ratio 1:{TERM_WEIGHT:g}"
    ]


@pytest.mark.parametrize("kind", ["pulse", "lightning"])
async def test_as_many_words_as_the_url_holds_names_first(
    emulator: EmulatorServer, kind: str
) -> None:
    names = [f"name{i}" for i in range(300)]
    terms = [f"term{i}" for i in range(600)]
    url = emulator.pulse_url if kind == "pulse" else emulator.lightning_url
    settings = bridge_settings(url, keywords=tuple(parse_keywords("configured:2")))
    async with running_bridge(settings) as server:
        answer = await transcribe(
            bridge_port(server), PCM, transcribe_event=bias_request(names, terms)
        )
    assert answer.transcript == PHRASE, answer.error
    values = keywords_sent(emulator)
    entries = values[0].split(",") if kind == "pulse" else values
    assert len(f"{url}?{urlencode(emulator.sessions[-1].query)}") <= MAX_URL_BYTES
    assert 300 < len(entries) < 900
    assert entries[:300] == [f"name{i}:{NAME_WEIGHT:g}" for i in range(300)]
    assert entries[300:] == [f"term{i}:{TERM_WEIGHT:g}" for i in range(len(entries) - 300)]


async def test_no_bias_words_means_no_keywords_parameter(emulator: EmulatorServer) -> None:
    async with running_bridge(bridge_settings(emulator.pulse_url)) as server:
        await transcribe(bridge_port(server), PCM, transcribe_event=bias_request([], None))
    assert "keywords" not in emulator.sessions[-1].params


# ------------------------------------------------------------------------------- select-program


async def request_with_program(port: int, program: str) -> Answer:
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    try:
        await client.write_event(SelectProgram(name=program).event())
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        for i in range(0, len(PCM), 3200):
            chunk = AudioChunk(rate=16000, width=2, channels=1, audio=PCM[i : i + 3200])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        return await read_answer(client, until=("transcript", "error"))
    finally:
        await client.disconnect()


async def test_select_program_by_our_name_is_accepted(emulator: EmulatorServer) -> None:
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        answer = await request_with_program(bridge_port(server), "lightning")
    assert answer.error is None
    assert answer.transcript == PHRASE


async def test_select_program_of_another_name_is_an_error(emulator: EmulatorServer) -> None:
    async with running_bridge(bridge_settings(emulator.lightning_url)) as server:
        answer = await request_with_program(bridge_port(server), "whisper")
    error = answer.error
    assert error is not None and error.data["code"] == "bad_request"
    assert "unknown program 'whisper'" in error.data["text"] and "lightning" in error.data["text"]
    assert answer.closed and answer.transcript is None
    assert emulator.sessions == []


def test_the_event_type_is_the_protocols() -> None:
    """Guard against a typo: the handler matches the wyoming library's own event name."""
    assert SelectProgram(name="x").event().type == "select-program"
    assert isinstance(SelectProgram(name="x").event(), Event)
