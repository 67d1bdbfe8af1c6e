"""The page's HTTP side (aiohttp, the library Home Assistant is built on): the static page, its
status JSON and the microphone test's WebSocket.

Every URL the page uses is relative, so it works at ``/`` on ``--web-port`` and under the
path prefix of Home Assistant's ingress proxy alike. Who may open it: the Wyoming port's
``--allow`` list plus ``--web-allow`` (the add-on adds the Supervisor's proxy, 172.30.32.2).

The microphone test does not call the service itself: the WebSocket handler is a Wyoming
client of this very server (over loopback or its Unix socket), so the test passes the same
allow-list, limits, VAD gate and service as any satellite, is counted in the usage like any
request, and the key stays in the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from aiohttp import WSMsgType, web
from wyoming.asr import Transcribe, Transcript, TranscriptChunk
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.error import Error as ErrorEvent

from wyoming_lightning.ops.access import AccessPolicy, Verdict
from wyoming_lightning.ops.listen import tcp_listener
from wyoming_lightning.services import Services
from wyoming_lightning.settings.cli import bind_host, parse_uri
from wyoming_lightning.web import mic
from wyoming_lightning.web.status import status
from wyoming_lightning.wyoming.client import wyoming_client

_LOGGER = logging.getLogger(__name__)
STATIC_FILES = {
    "index.html": "text/html",
    "app.js": "text/javascript",
    "mic-worklet.js": "text/javascript",
    "style.css": "text/css",
}
MAX_MIC_TESTS = 2
"""Microphone tests at once: each holds a request slot and a relay; more get a clear no."""
ANSWER_TIMEOUT_S = 60.0
"""After the page's ``end``: the server's own --response-timeout (30 s) answers well before."""


def loopback_uri(uri: str, sockets: list[tuple[str, int]]) -> str | None:
    """How this process reaches its own Wyoming server; ``None`` for stdio (no socket)."""
    where = parse_uri(uri, ("tcp", "unix", "stdio"), server=True)
    if where.scheme == "unix":
        return uri
    if where.scheme != "tcp" or not sockets:
        return None
    host, port = sockets[0]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"


class WebSite:
    """The page on one port; :meth:`start` and :meth:`stop` around the server's life."""

    def __init__(self, services: Services, wyoming_sockets: list[tuple[str, int]]) -> None:
        self.services = services
        settings = services.settings
        self.policy = AccessPolicy(settings.allow + settings.web_allow)
        self.open_to_all = not settings.allow
        self.target = loopback_uri(settings.uri, wyoming_sockets)
        self._mic_tests = 0
        self._runner: web.AppRunner | None = None
        self.port: int | None = None
        self.host = bind_host(settings.uri)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=64 * 1024)
        app.router.add_get("/", self._index)
        for name in STATIC_FILES:
            app.router.add_get(f"/{name}", self._static)
        app.router.add_get("/api/status", self._status)
        app.router.add_get("/ws/mic", self._mic)
        return app

    async def start(self, port: int) -> int:
        self._runner = web.AppRunner(self.app(), access_log=None, handle_signals=False)
        await self._runner.setup()
        sock = tcp_listener(self.host, port)  # "::": IPv4 and IPv6, as the Wyoming port
        site: web.BaseSite = (
            web.SockSite(self._runner, sock)
            if sock is not None
            else web.TCPSite(self._runner, self.host, port)
        )
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = int(sockets[0].getsockname()[1]) if sockets else port
        return self.port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # ------------------------------------------------------------------ HTTP

    @web.middleware
    async def _guard(
        self,
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        if not self.open_to_all and self.policy.decide(request.remote) is not Verdict.ALLOWED:
            return web.Response(
                status=403, text="this address may not open the page (see --allow, --web-allow)\n"
            )
        response = await handler(request)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        return response

    async def _index(self, request: web.Request) -> web.StreamResponse:
        return self._file("index.html")

    async def _static(self, request: web.Request) -> web.StreamResponse:
        return self._file(request.path.lstrip("/"))

    def _file(self, name: str) -> web.Response:
        body = resources.files(__package__).joinpath("static", name).read_bytes()
        return web.Response(body=body, content_type=STATIC_FILES[name], charset="utf-8")

    async def _status(self, request: web.Request) -> web.Response:
        return web.json_response(status(self.services, mic_available=self.target is not None))

    # ------------------------------------------------------------------ the microphone test

    async def _mic(self, request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=4 * mic.MAX_MESSAGE_BYTES, heartbeat=20.0)
        await ws.prepare(request)
        if self.target is None:
            await _say(ws, "error", "the server listens on stdio: no socket to test through")
            await ws.close()
            return ws
        if self._mic_tests >= MAX_MIC_TESTS:
            await _say(ws, "error", f"{MAX_MIC_TESTS} microphone tests are running; try again")
            await ws.close()
            return ws
        self._mic_tests += 1
        try:
            await _Relay(ws, self.services, self.target).run()
        finally:
            self._mic_tests -= 1
        return ws


async def _say(ws: web.WebSocketResponse, kind: str, text: str, **extra: Any) -> None:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await ws.send_str(json.dumps({"type": kind, "text": text, **extra}))


class _Relay:
    """One microphone test: the page's messages through :class:`mic.MicSession` into a Wyoming
    request to this server, its events back to the page as ``partial``, ``final``, ``error``."""

    def __init__(self, ws: web.WebSocketResponse, services: Services, target: str) -> None:
        settings = services.settings
        self.ws = ws
        self.target = target
        self.session = mic.MicSession(
            settings.languages, "en" if settings.local_only else settings.language
        )
        self.client: AsyncClient | None = None
        self.answer: asyncio.Task[None] | None = None
        self.answered = asyncio.Event()

    async def run(self) -> None:
        try:
            await self._pump()
        finally:
            if self.answer is not None and not self.answer.done():
                self.answer.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self.answer
            if self.client is not None:
                with contextlib.suppress(Exception):
                    await self.client.disconnect()
            await self.ws.close()

    async def _pump(self) -> None:
        receive: asyncio.Future[Any] | None = None
        try:
            while True:
                if receive is None:
                    receive = asyncio.ensure_future(self.ws.receive())
                answered = asyncio.ensure_future(self.answered.wait())
                ended = self.session.state is mic.State.ENDED
                done, _ = await asyncio.wait(
                    {receive, answered},
                    timeout=ANSWER_TIMEOUT_S if ended else mic.IDLE_TIMEOUT_S,
                    return_when=asyncio.FIRST_COMPLETED,
                )
                answered.cancel()
                if self.answered.is_set():
                    return  # the final answer (or the server's error) went to the page
                if not done:
                    await _say(self.ws, "error", "the test timed out waiting")
                    return
                message = receive.result()
                receive = None
                if message.type == WSMsgType.BINARY:
                    actions = self.session.binary(bytes(message.data))
                elif message.type == WSMsgType.TEXT:
                    actions = self.session.text(str(message.data))
                elif message.type == WSMsgType.ERROR:
                    await _say(self.ws, "error", f"bad WebSocket message: {self.ws.exception()}")
                    return
                else:
                    return  # the page closed: the request is abandoned, its slot freed
                for action in actions:
                    if not await self._do(action):
                        return
        finally:
            if receive is not None:
                receive.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await receive

    async def _do(self, action: mic.Action) -> bool:
        if isinstance(action, mic.Reject):
            await _say(self.ws, "error", action.text)
            return False
        try:
            if isinstance(action, mic.Start):
                self.client = wyoming_client(self.target)
                await self.client.connect()
                await self.client.write_event(Transcribe(language=action.language).event())
                start = AudioStart(rate=mic.RATE, width=mic.WIDTH, channels=mic.CHANNELS)
                await self.client.write_event(start.event())
                self.answer = asyncio.create_task(self._answers())
                await _say(self.ws, "started", action.language)
            elif isinstance(action, mic.Forward) and self.client is not None:
                chunk = AudioChunk(
                    rate=mic.RATE, width=mic.WIDTH, channels=mic.CHANNELS, audio=action.audio
                )
                await self.client.write_event(chunk.event())
            elif isinstance(action, mic.Stop) and self.client is not None:
                await self.client.write_event(AudioStop().event())
        except OSError as err:
            await _say(self.ws, "error", f"cannot reach this server's own Wyoming port: {err}")
            return False
        return True

    async def _answers(self) -> None:
        """The server's events for the test, relayed until the final answer or an error."""
        assert self.client is not None
        text = ""
        try:
            while True:
                event = await self.client.read_event()
                if event is None:
                    await _say(self.ws, "error", "the server closed the test's connection")
                    return
                if TranscriptChunk.is_type(event.type):
                    text += TranscriptChunk.from_event(event).text
                    await _say(self.ws, "partial", text)
                elif Transcript.is_type(event.type):
                    final = Transcript.from_event(event).text
                    await _say(self.ws, "final", final, is_final=True, is_last=True)
                    return
                elif ErrorEvent.is_type(event.type):
                    error = ErrorEvent.from_event(event)
                    await _say(self.ws, "error", error.text, code=error.code)
                    return
        except OSError as err:
            await _say(self.ws, "error", f"the test's connection failed: {err}")
        finally:
            self.answered.set()


async def start_site(services: Services, wyoming_sockets: list[tuple[str, int]]) -> WebSite | None:
    """``--web-port``: serve the page, or log why not (the Wyoming port keeps serving)."""
    port = services.settings.web_port
    if port is None:
        return None
    site = WebSite(services, wyoming_sockets)
    try:
        bound = await site.start(port)
    except OSError as err:
        _LOGGER.error("cannot serve the page on port %d: %s", port, err.strerror or err)
        await site.stop()
        return None
    shown = f"[{site.host}]" if ":" in site.host else site.host
    _LOGGER.info("status page on http://%s:%d/", shown, bound)
    return site
