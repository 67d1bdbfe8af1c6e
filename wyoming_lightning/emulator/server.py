"""The emulator's WebSocket server: handshake checks, admission, and session bookkeeping.

Everything the real service decides before or right after the upgrade lives here (404, 401,
400, refusals by fault, the concurrency limit, the regions' language rules); the session itself
runs in :mod:`.connection`.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Self

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from wyoming_lightning.core.languages import DEFAULT_HOST_ONLY_LANGUAGES, US_ONLY_LANGUAGES
from wyoming_lightning.emulator.config import (
    HEALTH_PATH,
    LIGHTNING_PATH,
    LIVE_PATH,
    PULSE_PATH,
    Dialect,
    EmulatorConfig,
)
from wyoming_lightning.emulator.connection import SessionConnection
from wyoming_lightning.emulator.faults import Fault, FaultPlan, SessionFaults, refusal_status
from wyoming_lightning.emulator.params import (
    ParamError,
    SessionParams,
    parse_params,
    require_model,
    route,
    split_target,
)
from wyoming_lightning.emulator.recognizers import Recognizer, create_recognizer
from wyoming_lightning.emulator.records import ChangeNotifier, SessionRecord, SessionState

_log = logging.getLogger("wyoming_lightning.emulator")

_websockets_log = logging.getLogger("wyoming_lightning.emulator.websockets")
# websockets logs every request header at DEBUG, Authorization included; never go that low.
_websockets_log.setLevel(logging.INFO)

MAX_QUEUED_FRAMES = 1024
"""Frames buffered while a session is busy (finalize delay, Whisper): clients are not slowed."""


@dataclass(frozen=True)
class _Admission:
    record: SessionRecord
    dialect: Dialect
    params: SessionParams
    faults: SessionFaults


class _EmulatorConnection(ServerConnection):
    """Carries what the handshake decided over to the session handler."""

    admission: _Admission | None = None


class EmulatorServer:
    """A Lightning / Pulse compatible streaming STT server, for tests and offline use.

    Use as ``async with EmulatorServer(config, port=0) as emu:``; ``emu.port`` is the bound port.
    """

    def __init__(
        self,
        config: EmulatorConfig | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        recognizer: Recognizer | None = None,
    ) -> None:
        self.config = config if config is not None else EmulatorConfig()
        self.host = host
        self._requested_port = port
        self._recognizer = recognizer
        self._server: Server | None = None
        self._plan = FaultPlan(
            self.config.faults,
            count=self.config.fault_count,
            rate=self.config.fault_rate,
            seed=self.config.seed,
        )
        self.sessions: list[SessionRecord] = []
        self.health_checks = 0
        """GETs of the documented ``/waves/v1/health`` answered (``--region auto`` probes)."""
        self._open = 0
        self._admitted = 0
        self._changes = ChangeNotifier()
        self._closing = asyncio.Event()
        self._latency_rng = random.Random(self.config.latency_seed)

    # Lifecycle

    async def start(self) -> None:
        if self._server is not None:
            raise RuntimeError("the emulator is already running")
        if self._recognizer is None:
            self._recognizer = create_recognizer(self.config.recognizer, self.config.model_dir)
        if self._recognizer.blocking:
            await asyncio.get_running_loop().run_in_executor(None, self._recognizer.warm_up)
        else:
            self._recognizer.warm_up()
        self._server = await serve(
            self._handle,
            self.host,
            self._requested_port,
            process_request=self._process_request,
            create_connection=_EmulatorConnection,
            compression=None,
            max_size=self.config.max_message_bytes,
            max_queue=MAX_QUEUED_FRAMES,
            open_timeout=self.config.open_timeout_s,
            logger=_websockets_log,
        )

    async def close(self) -> None:
        """Stop listening and close every open session (code 1001, going away)."""
        if self._server is None:
            return
        self._closing.set()  # cuts slow-accept delays short: the server answers them 503
        self._server.close()
        await self._server.wait_closed()
        self._server = None
        self._closing.clear()

    async def serve_forever(self) -> None:
        if self._server is None:
            await self.start()
        assert self._server is not None
        await self._server.wait_closed()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # What tests look at

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    @property
    def base_url(self) -> str:
        """``ws://host:port`` of the first bound socket (loopback when bound to a wildcard)."""
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        host = str(self._server.sockets[0].getsockname()[0])
        if host in ("0.0.0.0", "::"):
            host = "127.0.0.1"
        if ":" in host:
            host = f"[{host}]"
        return f"ws://{host}:{self.port}"

    @property
    def lightning_url(self) -> str:
        return self.base_url + LIGHTNING_PATH

    @property
    def pulse_url(self) -> str:
        return self.base_url + PULSE_PATH

    @property
    def live_url(self) -> str:
        return self.base_url + LIVE_PATH + "?model=pulse"

    @property
    def active_sessions(self) -> int:
        """Sessions past the handshake whose socket is not closed yet."""
        return self._open

    def inject(self, faults: Fault | Iterable[Fault], count: int | None = 1) -> None:
        """Give ``faults`` to the next ``count`` accepted handshakes (``None``: all later ones).

        Handshakes refused for a bad path, key or parameter do not use up the count.
        """
        self._plan.inject(faults, count)

    def clear_faults(self) -> None:
        self._plan.clear()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None = None) -> None:
        """Wait until ``predicate()`` is true; it is re-checked whenever a record changes.

        Raises TimeoutError after ``timeout`` seconds.
        """
        await self._changes.wait_for(predicate, timeout)

    async def wait_idle(self, timeout: float | None = None) -> None:
        """Wait until no session is open (and every closed one is fully recorded)."""
        await self.wait_for(lambda: self._open == 0, timeout)

    async def wait_for_audio(self, nbytes: int, timeout: float | None = None) -> SessionRecord:
        """Wait until one session has received ``nbytes`` of audio; returns that session."""
        await self.wait_for(
            lambda: any(r.audio_bytes_received >= nbytes for r in self.sessions), timeout
        )
        return next(r for r in self.sessions if r.audio_bytes_received >= nbytes)

    # Handshake

    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        path, query = split_target(request.path)
        if path == HEALTH_PATH:
            # The documented liveness check: answered after the network's round trips (the
            # latency model's), without a key and without a session (what --region auto times).
            self.health_checks += 1
            await self._hold(self.config.latency.handshake_s)
            return connection.respond(200, "ok\n")
        record = SessionRecord(session_id=uuid.uuid4().hex, path=path, query=query)
        self.sessions.append(record)
        self._changes.changed()
        dialect = route(path)
        if dialect is None:
            return self._refuse(connection, record, 404, f"Not Found: {path}\n")
        record.dialect = dialect
        if not self._authorized(request.headers.get("Authorization")):
            return self._refuse(
                connection, record, 401, "Unauthorized: invalid or missing API key\n"
            )
        try:
            require_model(path, query)
            params = parse_params(dialect, query)
        except ParamError as exc:
            return self._refuse(connection, record, 400, f"Bad Request: {exc}\n")
        faults = self._plan.draw()
        record.faults = faults.names
        if "live-defaults" in faults and dialect is Dialect.PULSE:
            params = replace(params, finalize_on_words=True, max_words=None, eou_timeout_ms=None)
        refusal = faults.refusal
        if refusal is not None:
            status, text, headers = refusal_status(refusal)
            return self._refuse(connection, record, status, text, headers)
        slow = faults.get("slow-accept")
        hold = self.config.latency.handshake_s + (slow.delay_ms / 1000.0 if slow else 0.0)
        await self._hold(hold)
        assert isinstance(connection, _EmulatorConnection)
        connection.admission = _Admission(record, dialect, params, faults)
        return None

    async def _hold(self, seconds: float) -> None:
        """Wait ``seconds`` before answering a handshake, or less if the server is closing."""
        if seconds > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._closing.wait()

    def _authorized(self, header: str | None) -> bool:
        if header is None:
            return False
        scheme, _, token = header.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        expected = self.config.api_key
        return expected is None or hmac.compare_digest(token.encode(), expected.encode())

    def _refuse(
        self,
        connection: ServerConnection,
        record: SessionRecord,
        status: int,
        text: str,
        headers: dict[str, str] | None = None,
    ) -> Response:
        record.handshake_status = status
        record.state = SessionState.REFUSED
        self._changes.changed()
        _log.info(
            "session %s refused: HTTP %d %s%s",
            record.session_id[:8],
            status,
            record.path,
            f" faults={','.join(record.faults)}" if record.faults else "",
        )
        response = connection.respond(status, text)
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    # Sessions

    async def _handle(self, connection: ServerConnection) -> None:
        assert isinstance(connection, _EmulatorConnection)
        admission = connection.admission
        if admission is None:  # pragma: no cover - process_request always admits or refuses
            await connection.close(1011, "internal error")
            return
        record = admission.record
        record.handshake_status = 101
        record.state = SessionState.OPEN
        self._open += 1
        self._changes.changed()
        try:
            await self._run(connection, admission)
        except Exception:
            _log.exception("session %s failed", record.session_id[:8])
            await connection.close(1011, "internal error")
        finally:
            await connection.close()
            await connection.wait_closed()
            self._note_closed(connection, record)
            self._open -= 1
            self._changes.changed()

    async def _run(self, connection: _EmulatorConnection, admission: _Admission) -> None:
        params = admission.params
        if self._admitted >= self.config.max_sessions:
            await connection.close(1008, "concurrency limit")
            return
        pulse = admission.dialect is Dialect.PULSE
        if pulse and self.config.region == "default" and params.language in US_ONLY_LANGUAGES:
            # The real default region accepts, then hangs up without a word (see the API notes).
            connection.transport.close()
            await connection.wait_closed()
            return
        if pulse and self.config.region == "us" and params.language in DEFAULT_HOST_ONLY_LANGUAGES:
            frame = {
                "type": "error",
                "error_code": "LANGUAGE_NOT_ENABLED_IN_REGION",
                "message": f"Language '{params.language}' is not enabled in this region",
            }
            await connection.send(json.dumps(frame))
            admission.record.messages_sent.append(frame)
            admission.record.frames_sent.append(json.dumps(frame))
            self._changes.changed()
            await connection.close(1008, "language not enabled in region")
            return
        assert self._recognizer is not None
        session = SessionConnection(
            connection,
            admission.record,
            dialect=admission.dialect,
            params=params,
            faults=admission.faults,
            recognizer=self._recognizer,
            eou_timeout_ms=self.config.eou_timeout_ms,
            words_per_final=self.config.words_per_final,
            finalize_delay_ms=self.config.finalize_delay_ms,
            silence_dbfs=self.config.silence_dbfs,
            on_change=self._changes.changed,
            latency=self.config.latency,
            rng=random.Random(self._latency_rng.getrandbits(64)),
            from_finalize=self.config.from_finalize,
            text_field=self.config.text_field,
        )
        self._admitted += 1
        try:
            await session.run()
        finally:
            self._admitted -= 1

    @staticmethod
    def _note_closed(connection: ServerConnection, record: SessionRecord) -> None:
        protocol = connection.protocol
        sent, rcvd = protocol.close_sent, protocol.close_rcvd
        if protocol.close_rcvd_then_sent and rcvd is not None:
            record.closed_by, record.close_code, record.close_reason = (
                "client",
                rcvd.code,
                rcvd.reason,
            )
        elif sent is not None:
            record.closed_by, record.close_code, record.close_reason = (
                "server",
                sent.code,
                sent.reason,
            )
        elif rcvd is not None:
            record.closed_by, record.close_code, record.close_reason = (
                "client",
                rcvd.code,
                rcvd.reason,
            )
        else:
            record.closed_by, record.close_code, record.close_reason = None, 1006, ""
        record.state = SessionState.CLOSED
        params = record.params
        _log.info(
            "session %s %s lang=%s rate=%s audio=%dB text_frames=%d finals=%d close=%d%s%s",
            record.session_id[:8],
            record.dialect.value if record.dialect else "?",
            params.get("language", "en"),
            params.get("sample_rate", "16000"),
            record.audio_bytes_received,
            len(record.text_frames_received),
            len(record.finals),
            record.close_code,
            f" by {record.closed_by}" if record.closed_by else " (no close frame)",
            f" faults={','.join(record.faults)}" if record.faults else "",
        )
