"""The status page in a real browser: Debian's chromium, headless, driven by Selenium through
chromium-driver, with a fake microphone that plays a recording.

The server runs in this process on loopback against the emulator (tones recognizer, so no
Whisper is needed; tones are speech only to the webrtc detector). A real Wyoming request goes
first, so the chart must show it; then the page's microphone test streams the recording through
the page's WebSocket, the server's own Wyoming port, the gate and the emulator, and must show
the recording's words. The browser opens the page through a stand-in for Home Assistant's
ingress proxy, under its path prefix, as the add-on's users do. The screenshot is saved in the
test's directory (and one copy where the project's briefs asked for it, when that directory
exists).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import wave
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.kit.bridge import API_KEY, bridge_port, bridge_settings, serving, transcribe
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.emulator.tones import encode_phrase, silence
from wyoming_lightning.services import Services
from wyoming_lightning.web.site import start_site

pytestmark = pytest.mark.slow
CHROMIUM = shutil.which("chromium")
DRIVER = shutil.which("chromedriver")
BRIEFS_COPY = Path("/work/briefs/i25-screenshot.png")
FIRST = "one two three"
SPOKEN = "four five six"


def _browser(fake_mic: Path) -> Any:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",  # the tests may run as root (CI does)
        "--disable-dev-shm-usage",
        "--use-fake-ui-for-media-stream",  # grant the microphone without a prompt
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={fake_mic}%noloop",
        "--autoplay-policy=no-user-gesture-required",
        "--window-size=1280,1250",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(str(DRIVER)))


INGRESS_PREFIX = "/api/hassio_ingress/t0kEn-42"


@contextlib.asynccontextmanager
async def ingress_proxy(backend: str) -> AsyncIterator[str]:
    """A stand-in for the Supervisor's ingress proxy: serves the page under a path prefix and
    forwards requests (and the microphone WebSocket) to ``backend`` with the prefix stripped,
    as Home Assistant does. Only URLs relative to the page survive it."""

    async def forward(request: web.Request) -> web.StreamResponse:
        path = request.path.removeprefix(INGRESS_PREFIX) or "/"
        async with aiohttp.ClientSession() as http:
            if request.headers.get("Upgrade", "").lower() == "websocket":
                browser = web.WebSocketResponse()
                await browser.prepare(request)
                async with http.ws_connect(backend + path) as server:

                    async def up() -> None:
                        async for message in browser:
                            if message.type == aiohttp.WSMsgType.BINARY:
                                await server.send_bytes(message.data)
                            elif message.type == aiohttp.WSMsgType.TEXT:
                                await server.send_str(message.data)
                        await server.close()

                    pump = asyncio.create_task(up())
                    async for message in server:
                        if message.type == aiohttp.WSMsgType.TEXT:
                            await browser.send_str(message.data)
                    await browser.close()
                    pump.cancel()
                return browser
            async with http.get(backend + path) as answer:
                body = await answer.read()
                return web.Response(
                    body=body, status=answer.status, content_type=answer.content_type
                )

    app = web.Application()
    app.router.add_route("GET", INGRESS_PREFIX + "/{tail:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}{INGRESS_PREFIX}/"
    finally:
        await runner.cleanup()


def _write_wav(path: Path, pcm: bytes) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(pcm)


def _drive(url: str, fake_mic: Path, screenshot: Path) -> dict[str, Any]:
    """Everything the browser does, in a thread: the page, the chart, the microphone test."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver = _browser(fake_mic)
    seen: dict[str, Any] = {}
    try:
        driver.get(url)
        wait = WebDriverWait(driver, 30)
        wait.until(lambda d: d.execute_script("return document.body.dataset.loaded") == "1")
        bars = driver.find_elements(By.CSS_SELECTOR, "#chart rect.today")
        seen["today_bar"] = {
            "requests": bars[0].get_attribute("data-requests") if bars else None,
            "sent_min": bars[0].get_attribute("data-sent-min") if bars else None,
        }
        seen["today_text"] = driver.find_element(By.ID, "today").text
        seen["first_source"] = driver.page_source

        def text(element: str) -> str:
            return str(driver.find_element(By.ID, element).text)

        driver.find_element(By.ID, "mic-start").click()
        wait.until(lambda d: SPOKEN in text("mic-partial") or text("mic-error"))
        seen["partial"] = text("mic-partial")
        driver.find_element(By.ID, "mic-stop").click()
        wait.until(lambda d: text("mic-final") or text("mic-error"))
        seen["final"] = text("mic-final")
        seen["error"] = text("mic-error")
        # The page refreshes its status when the final arrives: the test is the 2nd request.
        wait.until(lambda d: "2 requests" in text("today") or text("mic-error"))
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recent tbody tr")) >= 2)
        seen["today_after"] = text("today")
        seen["recent_rows"] = [
            row.text for row in driver.find_elements(By.CSS_SELECTOR, "#recent tbody tr")
        ]
        seen["source"] = driver.page_source
        driver.save_screenshot(str(screenshot))
        seen["browser_log"] = [e["message"] for e in driver.get_log("browser")]
    finally:
        driver.quit()
    return seen


@pytest.mark.skipif(
    CHROMIUM is None or DRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium "
    "chromium-driver; .ci/run installs them)",
)
async def test_the_page_shows_todays_request_and_the_microphone_test_hears_the_recording(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    settings = bridge_settings(
        emulator.pulse_url,
        vad="webrtc",
        web_port=0,
        data_dir=str(tmp_path / "data"),
        session_idle_timeout_s=30.0,
    )
    async with serving(Services(settings)) as server:
        site = await start_site(server.services, server.sockets)
        assert site is not None and site.port
        try:
            padded = silence(300) + encode_phrase(FIRST) + silence(600)
            answer = await transcribe(bridge_port(server), padded)
            assert answer.transcript == FIRST

            fake_mic = tmp_path / "spoken.wav"
            _write_wav(fake_mic, silence(500) + encode_phrase(SPOKEN) + silence(1500))
            screenshot = tmp_path / "page.png"
            async with ingress_proxy(f"http://127.0.0.1:{site.port}") as page_url:
                seen = await asyncio.to_thread(_drive, page_url, fake_mic, screenshot)
        finally:
            await site.stop()

    assert seen["today_bar"]["requests"] == "1", seen["today_bar"]
    assert float(seen["today_bar"]["sent_min"]) > 0
    assert seen["today_text"].startswith("Today: 1 requests"), seen["today_text"]
    assert seen["error"] == "", seen["error"]
    assert SPOKEN in seen["partial"]
    assert seen["final"] == SPOKEN
    assert seen["today_after"].startswith("Today: 2 requests"), seen["today_after"]
    assert "en" in seen["recent_rows"][0] and "transcript" in seen["recent_rows"][0]
    for source in (seen["first_source"], seen["source"]):
        assert API_KEY not in source
    assert seen["browser_log"] == [], seen["browser_log"]
    assert screenshot.stat().st_size > 10_000
    if BRIEFS_COPY.parent.is_dir():
        shutil.copyfile(screenshot, BRIEFS_COPY)
