"""The status page's HTTP side over real loopback sockets: its JSON after real requests, who may
open it, the key kept out, and the microphone test's WebSocket against bad input.

The page in a real browser is tests/deploy/test_web_browser.py."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.kit.bridge import API_KEY, bridge_port, bridge_settings, serving, transcribe
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.emulator.tones import encode_phrase, silence
from wyoming_lightning.ops.recent import RECENT_REQUESTS, RecentRequests
from wyoming_lightning.services import Services
from wyoming_lightning.settings.config import Settings
from wyoming_lightning.settings.networks import parse_network
from wyoming_lightning.web import mic
from wyoming_lightning.web.site import WebSite, bind_host, loopback_uri, start_site
from wyoming_lightning.wyoming.server import WyomingServer

PHRASE = "one two three"


def _settings(emulator: EmulatorServer, **overrides: Any) -> Settings:
    return bridge_settings(emulator.pulse_url, vad="webrtc", web_port=0, **overrides)


@dataclasses.dataclass
class Page:
    server: WyomingServer
    site: WebSite

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.site.port}/"


@pytest.fixture
async def page(emulator: EmulatorServer, request: pytest.FixtureRequest) -> AsyncIterator[Page]:
    overrides = getattr(request, "param", {})
    async with serving(Services(_settings(emulator, **overrides))) as server:
        site = await start_site(server.services, server.sockets)
        assert site is not None
        try:
            yield Page(server, site)
        finally:
            await site.stop()


async def _get_json(url: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        assert response.status == 200
        data: dict[str, Any] = await response.json()
        return data


def _speech() -> bytes:
    return silence(300) + encode_phrase(PHRASE) + silence(600)


async def test_status_counts_a_real_request_and_never_shows_the_key(page: Page) -> None:
    before = await _get_json(page.url + "api/status")
    assert before["today"]["requests"] == 0 and before["recent"] == []
    answer = await transcribe(bridge_port(page.server), _speech())
    assert answer.transcript == PHRASE
    after = await _get_json(page.url + "api/status")
    assert after["today"]["requests"] == 1
    assert after["today"]["sent_min"] > 0
    assert after["days"][-1] == after["today"] and len(after["days"]) == 14
    (row,) = after["recent"]
    assert (row["client"], row["language"], row["outcome"]) == ("127.0.0.1", "en", "transcript")
    assert row["received_s"] > row["sent_s"] > 0 and row["wait_s"] is not None
    assert row["text"] is None, "the words are shown only with --web-show-text"
    assert after["service"]["key"] == "set"
    async with aiohttp.ClientSession() as http:
        for path in ("", "app.js", "api/status", "style.css", "mic-worklet.js"):
            async with http.get(page.url + path) as response:
                assert response.status == 200, path
                assert API_KEY not in await response.text()


@pytest.mark.parametrize("page", [{"web_show_text": True}], indirect=True)
async def test_the_words_appear_only_when_the_owner_turns_them_on(page: Page) -> None:
    await transcribe(bridge_port(page.server), _speech())
    status = await _get_json(page.url + "api/status")
    assert status["show_text"] is True
    assert status["recent"][0]["text"] == PHRASE


@pytest.mark.parametrize("page", [{"daily_audio_limit_min": 10.0}], indirect=True)
async def test_the_limit_shows_how_close_today_is(page: Page) -> None:
    await transcribe(bridge_port(page.server), _speech())
    limits = (await _get_json(page.url + "api/status"))["limits"]
    assert limits["daily_audio_min"] == 10.0
    assert 0 < limits["used_fraction"] == pytest.approx(limits["sent_today_min"] / 10.0)


@pytest.mark.parametrize("page", [{"allow": (parse_network("192.0.2.0/24"),)}], indirect=True)
async def test_an_address_outside_allow_cannot_open_the_page(page: Page) -> None:
    async with aiohttp.ClientSession() as http, http.get(page.url + "api/status") as response:
        assert response.status == 403
        assert "--allow" in await response.text()


@pytest.mark.parametrize(
    "page",
    [{"allow": (parse_network("192.0.2.0/24"),), "web_allow": (parse_network("127.0.0.1"),)}],
    indirect=True,
)
async def test_web_allow_lets_the_ingress_proxy_in(page: Page) -> None:
    status = await _get_json(page.url + "api/status")
    assert status["limits"]["allow"] == ["192.0.2.0/24"]


def test_the_page_binds_where_the_wyoming_port_does() -> None:
    assert bind_host("tcp://0.0.0.0:10300") == "0.0.0.0"
    assert bind_host("tcp://127.0.0.1:10300") == "127.0.0.1"
    assert bind_host("tcp://[::1]:10300") == "::1"
    assert bind_host("unix:///run/wl.sock") == "127.0.0.1"
    assert bind_host("stdio://") == "127.0.0.1"
    assert loopback_uri("tcp://0.0.0.0:10300", [("0.0.0.0", 10300)]) == "tcp://127.0.0.1:10300"
    assert loopback_uri("tcp://[::]:10300", [("::", 10300)]) == "tcp://[::1]:10300"
    assert loopback_uri("unix:///run/wl.sock", []) == "unix:///run/wl.sock"
    assert loopback_uri("stdio://", []) is None


# ---------------------------------------------------------------------- the microphone test


async def _mic_exchange(page: Page, *messages: bytes | str) -> list[dict[str, Any]]:
    """Send ``messages`` on the test's WebSocket; return every JSON answer until it closes."""
    answers: list[dict[str, Any]] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(page.url + "ws/mic") as ws,
    ):
        for message in messages:
            if isinstance(message, bytes):
                await ws.send_bytes(message)
            else:
                await ws.send_str(message)
        async with asyncio.timeout(30):
            async for frame in ws:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    answers.append(json.loads(frame.data))
    return answers


async def test_the_microphone_test_transcribes_through_the_server(page: Page) -> None:
    pcm = _speech()
    chunks = [pcm[i : i + 4096] for i in range(0, len(pcm), 4096)]
    answers = await _mic_exchange(
        page, '{"type": "start", "language": "en"}', *chunks, '{"type": "end"}'
    )
    assert answers[0] == {"type": "started", "text": "en"}
    assert any(a["type"] == "partial" and PHRASE in a["text"] for a in answers)
    assert answers[-1] == {"type": "final", "text": PHRASE, "is_final": True, "is_last": True}
    status = await _get_json(page.url + "api/status")
    assert status["today"]["requests"] == 1, "the test is a request like any other"


async def test_the_microphone_test_goes_through_a_unix_socket_server(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """A server on unix:// has no TCP port to reach itself on: the test uses the socket, and
    the page listens on loopback only."""
    settings = _settings(emulator, uri=f"unix://{tmp_path / 'wl.sock'}")
    async with serving(Services(settings)) as server:
        site = await start_site(server.services, server.sockets)
        assert site is not None and site.host == "127.0.0.1"
        try:
            pcm = _speech()
            chunks = [pcm[i : i + 4096] for i in range(0, len(pcm), 4096)]
            answers = await _mic_exchange(Page(server, site), *chunks, '{"type": "end"}')
        finally:
            await site.stop()
    assert answers[-1]["type"] == "final" and answers[-1]["text"] == PHRASE


@pytest.mark.parametrize(
    ("messages", "said"),
    [
        (["not json"], "must be JSON"),
        (['{"type": "dance"}'], "unknown message"),
        (['{"type": "end"}'], "before any audio"),
        (['{"type": "start", "language": "xx"}'], "'xx' is not served"),
        ([b"\x00" * 3], "odd byte count"),
        ([b"\x00" * (mic.MAX_MESSAGE_BYTES + 2)], "too big"),
        (["x" * 500], "at most 200 characters"),
    ],
)
async def test_bad_input_on_the_microphone_socket_gets_a_clear_error(
    page: Page, messages: list[bytes | str], said: str
) -> None:
    answers = await _mic_exchange(page, *messages)
    assert answers[-1]["type"] == "error" and said in answers[-1]["text"], answers
    await page.server.wait_idle()
    assert page.server.services.guard.slots.running("127.0.0.1") == 0


async def test_a_huge_message_is_refused_by_the_socket_itself(page: Page) -> None:
    async with aiohttp.ClientSession() as http, http.ws_connect(page.url + "ws/mic") as ws:
        await ws.send_bytes(b"\x00" * (8 * mic.MAX_MESSAGE_BYTES))
        frame = await ws.receive(timeout=10)
        assert frame.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
        assert ws.close_code == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


async def test_a_flood_of_messages_ends_the_test_and_frees_its_request(page: Page) -> None:
    flood = [b"\x00\x00"] * (mic.MAX_MESSAGES + 1)
    answers = await _mic_exchange(page, *flood)
    assert answers[-1]["type"] == "error" and "too many messages" in answers[-1]["text"]
    await page.server.wait_idle()
    assert page.server.services.guard.slots.running("127.0.0.1") == 0
    status = await _get_json(page.url + "api/status")
    assert status["recent"][0]["outcome"] == "abandoned"


def test_the_audio_cap_ends_the_request_by_itself() -> None:
    session = mic.MicSession(("en",), "en")
    half_second = b"\x00" * (mic.RATE * mic.WIDTH // 2)
    actions: list[mic.Action] = []
    for _ in range(int(mic.MAX_AUDIO_S) * 2 + 4):
        actions += session.binary(half_second)
    assert isinstance(actions[0], mic.Start)
    forwarded = sum(len(a.audio) for a in actions if isinstance(a, mic.Forward))
    assert forwarded == mic.RATE * mic.WIDTH * mic.MAX_AUDIO_S
    assert [a for a in actions if isinstance(a, mic.Stop)] == [mic.Stop()]
    assert session.state is mic.State.ENDED


def test_the_recent_ring_is_bounded() -> None:
    import datetime as dt

    from wyoming_lightning.ops.recent import RequestRecord

    ring = RecentRequests(keep_text=False)
    moment = dt.datetime(2026, 1, 1)
    for n in range(RECENT_REQUESTS + 10):
        ring.add(
            RequestRecord(moment, f"c{n}", "en", 1.0, 1.0, 0.1, "error", "auth", None, "secret"),
            "the key was rejected",
        )
    assert len(ring) == RECENT_REQUESTS
    assert ring.newest_first()[0].client == f"c{RECENT_REQUESTS + 9}"
    assert all(r.text is None for r in ring.newest_first())
    assert ring.last_error is not None and ring.last_error.text == "the key was rejected"
