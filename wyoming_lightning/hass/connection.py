"""The connection to Home Assistant's REST API: a base URL and a long-lived access token.

The token comes from ``HASS_TOKEN``, a file (``--hass-token-file``) or, in the add-on, the
Supervisor's ``SUPERVISOR_TOKEN`` when the URL is the Supervisor's proxy
(``http://supervisor/core``); never from the command line, where ``ps`` shows it. It is kept in
a :class:`~wyoming_lightning.settings.declare.Secret` and appears in no log line, error or page:
errors say the URL and the HTTP status only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp

from wyoming_lightning.settings.cli import redact_url
from wyoming_lightning.settings.config import ConfigError, Settings
from wyoming_lightning.settings.declare import Secret

TOKEN_ENV = "HASS_TOKEN"
SUPERVISOR_TOKEN_ENV = "SUPERVISOR_TOKEN"
SUPERVISOR_CORE_URL = "http://supervisor/core"
REQUEST_TIMEOUT_S = 10.0


class HassError(Exception):
    """Home Assistant could not be reached or refused; the message never holds the token."""


def read_token(settings: Settings, env: Mapping[str, str]) -> Secret:
    """The token for ``--hass-url``: see the module doc for the order; raise ConfigError when
    there is none, naming where it may come from."""
    given = env.get(TOKEN_ENV, "").strip()
    if given:
        return Secret(given)
    if settings.hass_token_file:
        path = Path(settings.hass_token_file)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise ConfigError(
                f"--hass-token-file: cannot read {path}: {err.strerror or err}"
            ) from None
        if not text:
            raise ConfigError(f"--hass-token-file: {path} is empty")
        return Secret(text)
    supervisor = env.get(SUPERVISOR_TOKEN_ENV, "").strip()
    if supervisor and (settings.hass_url or "").startswith("http://supervisor"):
        return Secret(supervisor)
    raise ConfigError(
        f"--hass-url needs a token: set {TOKEN_ENV} or pass --hass-token-file FILE "
        "(a long-lived access token from your Home Assistant profile)"
    )


class HassConnection:
    """One aiohttp session to Home Assistant's ``/api``; see the module doc."""

    def __init__(self, url: str, token: Secret, *, timeout_s: float = REQUEST_TIMEOUT_S) -> None:
        self.base = url.rstrip("/")
        if not self.base.endswith("/api"):
            self.base += "/api"
        self._token = token
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    @property
    def where(self) -> str:
        return redact_url(self.base)

    @property
    def websocket_url(self) -> str:
        """The websocket API beside ``/api``: ``/api/websocket`` on Home Assistant itself,
        ``/core/websocket`` through the Supervisor's proxy (which serves no ``/core/api/...``
        websocket)."""
        root = self.base.removesuffix("/api")
        scheme, _, rest = root.partition("://")
        ws_root = ("wss" if scheme == "https" else "ws") + "://" + rest
        if root.rstrip("/").endswith("://supervisor/core"):
            return ws_root + "/websocket"
        return ws_root + "/api/websocket"

    def auth_message(self) -> dict[str, str]:
        """The websocket API's first message; it holds the token: send it, never log it."""
        return {"type": "auth", "access_token": self._token.reveal()}

    @classmethod
    def from_settings(
        cls, settings: Settings, env: Mapping[str, str] | None = None
    ) -> HassConnection | None:
        if not settings.hass_url:
            return None
        return cls(settings.hass_url, read_token(settings, os.environ if env is None else env))

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._token.reveal()}"},
            )
        return self._session

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        """One call to ``/api/<path>``; its JSON answer, or HassError saying what went wrong."""
        url = f"{self.base}/{path.lstrip('/')}"
        try:
            async with self._client().request(method, url, json=body) as response:
                if response.status in (401, 403):
                    raise HassError(
                        f"Home Assistant at {self.where} refused the token (HTTP "
                        f"{response.status}): check HASS_TOKEN or --hass-token-file"
                    )
                if response.status >= 400:
                    raise HassError(
                        f"Home Assistant at {self.where} answered HTTP {response.status} "
                        f"to {method} /api/{path.lstrip('/')}"
                    )
                return await response.json(content_type=None)
        except (TimeoutError, aiohttp.ClientError, ValueError) as err:
            reason = type(err).__name__ if not str(err) else str(err)
            raise HassError(f"cannot reach Home Assistant at {self.where}: {reason}") from None

    async def set_state(self, entity_id: str, state: str, attributes: Mapping[str, Any]) -> None:
        await self.request(
            "POST", f"states/{entity_id}", {"state": state, "attributes": attributes}
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
