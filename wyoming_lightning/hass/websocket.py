"""Home Assistant's websocket API, as its own frontend speaks it: a thin adapter.

The server connects, authenticates (``auth_required`` / ``auth`` / ``auth_ok``), then sends
numbered commands and reads their ``result``, and ``event`` messages for its subscriptions.
Every wait is bounded (:data:`ANSWER_TIMEOUT_S`): a slow Home Assistant is a failed read like an
absent one. Errors are :class:`~.connection.HassError` and name the URL, never the token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from wyoming_lightning.hass.connection import HassConnection, HassError
from wyoming_lightning.settings.cli import redact_url

ANSWER_TIMEOUT_S = 10.0
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
"""A home with thousands of entities answers ``get_states`` with megabytes."""
PARSE_OFF_LOOP_CHARS = 256 * 1024


class HassWebSocket:
    """One authenticated websocket to Home Assistant; ``async with`` it."""

    def __init__(self, connection: HassConnection, *, timeout_s: float = ANSWER_TIMEOUT_S) -> None:
        self.connection = connection
        self.where = redact_url(connection.websocket_url)
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._next_id = 1
        self._pending: list[Mapping[str, Any]] = []
        self.events: asyncio.Queue[Mapping[str, Any]] = asyncio.Queue()
        """Events of the subscriptions, in order; read them while no command is waiting
        (:meth:`wait_event`)."""

    async def __aenter__(self) -> HassWebSocket:
        try:
            await self._open()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    def _failure(self, err: BaseException) -> HassError:
        reason = str(err) or type(err).__name__
        return HassError(f"cannot reach Home Assistant at {self.where}: {reason}")

    async def _open(self) -> None:
        self._session = aiohttp.ClientSession()
        try:
            async with asyncio.timeout(self._timeout_s):
                self._ws = await self._session.ws_connect(
                    self.connection.websocket_url, max_msg_size=MAX_MESSAGE_BYTES, heartbeat=30
                )
                hello = await self._receive()
                if hello.get("type") != "auth_required":
                    raise HassError(f"{self.where} is not Home Assistant's websocket API")
                await self._ws.send_str(json.dumps(self.connection.auth_message()))
                answer = await self._receive()
        except TimeoutError:
            raise HassError(f"Home Assistant at {self.where} did not answer in time") from None
        except aiohttp.WSServerHandshakeError as err:
            if err.status in (401, 403):
                raise self._refused() from None
            raise self._failure(err) from None
        except (aiohttp.ClientError, OSError) as err:
            raise self._failure(err) from None
        if answer.get("type") == "auth_invalid":
            raise self._refused()
        if answer.get("type") != "auth_ok":
            raise HassError(f"Home Assistant at {self.where} did not accept the login")

    def _refused(self) -> HassError:
        return HassError(
            f"Home Assistant at {self.where} refused the token: check HASS_TOKEN or "
            "--hass-token-file"
        )

    async def _receive(self) -> Mapping[str, Any]:
        """The next message; Home Assistant may coalesce several into one JSON list."""
        while not self._pending:
            assert self._ws is not None
            raw = await self._ws.receive()
            if raw.type is not aiohttp.WSMsgType.TEXT:
                raise HassError(f"Home Assistant at {self.where} closed the websocket")
            try:
                # A big home's states run to megabytes: parsed off the event loop, so that the
                # requests it serves meanwhile are not held up by the parse.
                big = len(raw.data) > PARSE_OFF_LOOP_CHARS
                data = (
                    await asyncio.to_thread(json.loads, raw.data) if big else json.loads(raw.data)
                )
            except ValueError:
                raise HassError(f"Home Assistant at {self.where} sent something not JSON") from None
            items = data if isinstance(data, list) else [data]
            self._pending.extend(item for item in items if isinstance(item, dict))
        return self._pending.pop(0)

    async def call(self, kind: str, **fields: Any) -> Any:
        """Send one command and wait (bounded) for its result."""
        if self._ws is None:
            raise HassError(f"the websocket to {self.where} is not open")
        ident = self._next_id
        self._next_id += 1
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._ws.send_str(json.dumps({"id": ident, "type": kind, **fields}))
                while True:
                    answer = await self._receive()
                    if answer.get("type") == "event":
                        self.events.put_nowait(answer)
                    elif answer.get("id") == ident and answer.get("type") == "result":
                        break
        except TimeoutError:
            raise HassError(
                f"Home Assistant at {self.where} did not answer {kind} in time"
            ) from None
        except (aiohttp.ClientError, OSError) as err:
            raise self._failure(err) from None
        if not answer.get("success"):
            error = answer.get("error")
            code = error.get("code") if isinstance(error, Mapping) else None
            hint = ""
            if code == "unauthorized":  # the exposure list is for administrators only
                hint = ": the token must belong to an administrator"
            raise HassError(f"Home Assistant at {self.where} refused {kind} ({code}){hint}")
        return answer.get("result")

    async def wait_event(self, timeout_s: float) -> Mapping[str, Any] | None:
        """The next subscribed event, or None when ``timeout_s`` passes without one."""
        if not self.events.empty():
            return self.events.get_nowait()
        try:
            async with asyncio.timeout(timeout_s):
                while True:
                    message = await self._receive()
                    if message.get("type") == "event":
                        return message
        except TimeoutError:
            return None
        except (aiohttp.ClientError, OSError) as err:
            raise self._failure(err) from None

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        if self._session is not None:
            await self._session.close()
            self._session = None
