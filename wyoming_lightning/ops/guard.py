"""The server's guard and accountant: who is served, whether the day's budget allows a request,
what each request cost, and the metrics; one :class:`Guard` per process.

The decisions are made by the I/O-free classes of :mod:`~wyoming_lightning.ops.access` and
:mod:`~wyoming_lightning.ops.quota`; this module feeds them what the connection adapters see
(a peer address, the request's actions) and carries the results to the usage file
(:mod:`~wyoming_lightning.ops.usage_store`), the log and the metrics
(:mod:`~wyoming_lightning.ops.metrics`).

The adapters call it at a few named points, and nowhere else. The server: :meth:`Guard.start`
and :meth:`Guard.close`, and per connection :meth:`Guard.admit_connection` (with
:meth:`Guard.refused` and :meth:`Guard.refused_busy` to count a refusal) and
:meth:`Guard.connection`. The Wyoming adapter, per request: :meth:`Guard.open_request` (admit),
:meth:`Ticket.follow` (the request machine it reads its figures from), :meth:`Ticket.observe`
(each action, and the few :class:`Occurrence` only the adapter sees), :meth:`Ticket.take_audio`
(the day's budget, which decides) and :meth:`Ticket.close`; per connection,
:meth:`Guard.observe` (a crash, a handshake). Observing is cheap: the actions that make up a
request's audio path pass with one set look-up, and the counts of a request (audio sent,
retries) go to the metrics once, when it closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import enum
import logging
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from wyoming_lightning.core import actions as act
from wyoming_lightning.core.errors import ErrorCode
from wyoming_lightning.core.logtrim import LimitedLog, RateLimiter
from wyoming_lightning.core.pipeline_format import BYTES_PER_SECOND, SAMPLE_WIDTH
from wyoming_lightning.core.request import RequestMachine
from wyoming_lightning.ops.access import (
    LOCAL,
    REFUSAL_LOG_INTERVAL_S,
    AccessPolicy,
    ClientSlots,
    OnceEach,
    Verdict,
    parse_address,
)
from wyoming_lightning.ops.metrics import Metrics
from wyoming_lightning.ops.quota import SENT_S, Admission, Clock, DailyLedger, RequestUsage
from wyoming_lightning.ops.recent import RecentRequests, RequestRecord
from wyoming_lightning.ops.usage_store import UsageStore, usage_path
from wyoming_lightning.settings.config import Settings

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Peer:
    """A client as the guard knows it: its address (or none: a local socket)."""

    host: str | None
    local: bool

    @property
    def key(self) -> str:
        """What the per-client limit counts by: the normalised address, or ``local``."""
        if self.local:
            return LOCAL
        address = parse_address(self.host)
        return str(address) if address is not None else str(self.host)

    @classmethod
    def of(cls, writer: asyncio.StreamWriter) -> Peer:
        sock = writer.get_extra_info("socket")
        family = getattr(sock, "family", None)
        if family not in (socket.AF_INET, socket.AF_INET6):
            return cls(None, local=True)  # Unix socket or stdio: this machine
        peername = writer.get_extra_info("peername")
        host = peername[0] if isinstance(peername, tuple) and peername else None
        return cls(str(host) if host is not None else None, local=False)


class Occurrence(enum.Enum):
    """What the Wyoming adapter sees that no action of the request machine says."""

    AUDIO_STOPPED = "audio_stopped"
    """The client's ``audio-stop``: the wait measured by the metrics starts here."""
    LENGTH_CUT = "length"
    """The request reached the length cap: the server ended its audio."""
    HANDSHAKE = "handshake"
    """A new connection to the service (a warm socket lent from the pool is none)."""
    CRASH = "crash"
    """The server failed on a request (a bug): it is ended and its resources freed."""


@dataclass(frozen=True)
class Refusal:
    """Why a client or a request is turned away, as the Wyoming ``error`` says it."""

    code: ErrorCode
    text: str
    reason: str
    """The metrics' ``reason`` label."""


class Guard:
    """Shared by every connection of one server process."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock = dt.datetime.now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.policy = AccessPolicy(settings.allow)
        self.slots = ClientSlots(settings.max_requests_per_client)
        limit = settings.daily_audio_limit_min
        self.ledger = DailyLedger(None if limit is None else limit * 60, clock)
        self.store = UsageStore(usage_path(settings.data_dir))
        self.metrics = Metrics()
        self.monotonic = monotonic
        self.clock = clock
        self.recent = RecentRequests(keep_text=settings.web_show_text)
        """The last requests one by one, for the page (issue 25)."""
        self.listeners: list[Callable[[], None]] = []
        """Called after each finished request is counted (the Home Assistant sensors); each
        must return at once."""
        self._refusals_logged = OnceEach(interval=REFUSAL_LOG_INTERVAL_S, clock=monotonic)
        self._log = LimitedLog(_LOGGER, RateLimiter(monotonic))
        self._limit_logged_on: str | None = None
        self._store_failures_counted = 0
        self.metrics_port: int | None = None
        if self.ledger.limit_s is not None:
            self.metrics.limit.set(self.ledger.limit_s)
        self._sync_today()

    # ------------------------------------------------------------------ life cycle

    async def start(self) -> None:
        port = self.settings.metrics_port
        if port is not None:
            host = self.settings.metrics_listen_host
            try:
                self.metrics_port = await self.metrics.serve(
                    host, port, self._may_scrape, self.settings.header_timeout_s
                )
            except OSError as err:
                _LOGGER.error(
                    "cannot serve metrics on %s port %d: %s", host, port, err.strerror or err
                )
            else:
                shown = f"[{host}]" if ":" in host else host
                _LOGGER.info("metrics on http://%s:%d/metrics", shown, self.metrics_port)
        if self.settings.data_dir is not None:
            _LOGGER.info("usage recorded in %s", self.store.where)

    def close(self) -> None:
        self.metrics.close()
        self.store.close()

    def _may_scrape(self, writer: asyncio.StreamWriter) -> bool:
        """The metrics (usage, cost, errors) are for the clients ``--allow`` admits."""
        return self.admit_connection(Peer.of(writer)) is None

    # ------------------------------------------------------------------ connections

    def admit_connection(self, peer: Peer) -> Refusal | None:
        """``None`` for a client the allow-list admits; otherwise why it is not served.

        A refused client takes no connection slot; it still gets one ``describe`` or ``ping``
        answered (health checks and discovery helpers on this machine use them) and is then
        closed; anything else is refused with :meth:`refused`.
        """
        if self.policy.decide(peer.host, local=peer.local) is Verdict.ALLOWED:
            return None
        return Refusal(
            ErrorCode.FORBIDDEN, "this client is not allowed to use this server", "forbidden"
        )

    def refused(self, peer: Peer) -> None:
        """A client outside the allow-list asked for work: count it; log its address once."""
        self.metrics.refused.labels(reason="forbidden").inc()
        if self._refusals_logged.first(peer.key):  # and a scan from many addresses: few lines
            self._log.warning(
                "forbidden",
                "refusing client %s: not in --allow (each refused address is logged once "
                "every %g min)",
                peer.key,
                REFUSAL_LOG_INTERVAL_S / 60,
            )

    def refused_busy(self, open_now: int, limit: int) -> None:
        """The server's connection limit turned a client away: counted, and logged at most a
        few times a minute (a flood of connections must not flood the log)."""
        self.metrics.refused.labels(reason="busy").inc()
        self._log.warning(
            "busy", "refusing a client: %d connections open (limit %d)", open_now, limit
        )

    def observe(self, occurrence: Occurrence) -> None:
        """Something a connection saw, outside any one request's counts."""
        if occurrence is Occurrence.CRASH:
            self.metrics.failures.inc()
        elif occurrence is Occurrence.HANDSHAKE:
            self.metrics.service_connections.inc()

    @contextlib.contextmanager
    def connection(self) -> Iterator[None]:
        self.metrics.connections.inc()
        try:
            yield None
        finally:
            self.metrics.connections.dec()

    # ------------------------------------------------------------------ requests

    def open_request(self, peer: Peer) -> Ticket:
        """``audio-start``: admit the request (or say why not) and start counting it."""
        day = self.ledger.today()
        if not self.slots.acquire(peer.key):
            limit = self.slots.limit
            refusal = Refusal(
                ErrorCode.BUSY,
                f"too many requests at once from this client (limit {limit})",
                "per_client",
            )
            return Ticket(self, peer.key, day, refusal=refusal, holds_slot=False)
        local = False
        if self._admission(day) is Admission.OVER:
            if self.settings.fallback == "local" or self.settings.local_only:
                local = True
            else:
                self.slots.release(peer.key)
                minutes = (self.ledger.limit_s or 0) / 60
                refusal = Refusal(
                    ErrorCode.QUOTA, f"the daily audio limit of {minutes:g} min is reached", "quota"
                )
                return Ticket(self, peer.key, day, refusal=refusal, holds_slot=False)
        return Ticket(self, peer.key, day, quota_local=local)

    def _admission(self, day: str) -> Admission:
        if self.ledger.limit_s is None:
            return Admission.CLOUD
        self._sync_today()  # another process on the same file may have spent some
        admission = self.ledger.admit()
        if admission is Admission.OVER:
            self._limit_reached(day)
        return admission

    def _sync_today(self) -> None:
        day = self.ledger.today()
        total = self.store.day_values(day).get(SENT_S)
        if total is not None:
            self.ledger.sync(day, total)
        self.metrics.sent_today.set(self.ledger.sent_today_s())
        self._note_store()

    def take_audio(self, nbytes: int) -> int:
        """Audio a request is about to send: how many of its bytes the day's budget allows,
        counted against it now (whole samples; the ledger decides, :mod:`quota`)."""
        allowed = self.ledger.take_bytes(nbytes, BYTES_PER_SECOND, SAMPLE_WIDTH)
        if allowed < nbytes:
            self.metrics.sent_today.set(self.ledger.sent_today_s())
            self._limit_reached(self.ledger.today())
        return allowed

    def _limit_reached(self, day: str) -> None:
        if self._limit_logged_on == day:
            return
        self._limit_logged_on = day
        _LOGGER.warning(
            "daily audio limit reached: %.3g of %g min sent today; %s until midnight",
            self.ledger.sent_today_s() / 60,
            (self.ledger.limit_s or 0) / 60,
            "the local recognizer answers"
            if self.settings.fallback == "local"
            else "requests running now end with what was recognised, new ones get error 'quota'",
        )

    def finished(self, usage: RequestUsage) -> None:
        """A request is over: count it in the file and the metrics (the ledger counted its
        audio as it was sent)."""
        total = self.store.add(usage.day, usage.deltas(self.settings.price_per_min))
        if total is not None:
            self.ledger.sync(usage.day, total)
        self.metrics.sent_today.set(self.ledger.sent_today_s())
        self.metrics.cost.inc(usage.sent_s / 60 * self.settings.price_per_min)
        self._note_store()
        for listener in self.listeners:
            listener()

    def _note_store(self) -> None:
        failures = self.store.failures
        if failures > self._store_failures_counted:
            self.metrics.store_failures.inc(failures - self._store_failures_counted)
            self._store_failures_counted = failures


class Ticket:
    """One request from ``audio-start`` to its end: its refusal (if any), its route, its counts.

    The handler shows it every action the request machine emits; the ticket counts the
    sessions and fallbacks from them, the audio sent as the budget grants it, and when the
    request is over reports it once to the guard and the metrics (with the received audio and
    the retries, read from the request machine it follows).
    """

    def __init__(
        self,
        guard: Guard,
        client: str,
        day: str,
        *,
        refusal: Refusal | None = None,
        quota_local: bool = False,
        holds_slot: bool = True,
    ) -> None:
        self._guard = guard
        self._metrics = guard.metrics
        self._client = client
        self.day = day
        self.refusal = refusal
        self.quota_local = quota_local
        """Past the daily limit, with a fallback: the local recognizer alone answers."""
        self._holds_slot = holds_slot
        self.language: str | None = None
        """The request's language, once the handler has resolved it (for the page)."""
        self._text: str | None = None
        self._error_text = refusal.text if refusal is not None else ""
        self._wait_s: float | None = None
        self._machine: RequestMachine | None = None
        self._sent_bytes = 0
        self._stopped_at: float | None = None
        self._outcome: tuple[str, str] | None = None
        self._fallback: str | None = None
        self._done = False
        self._cut = False
        if refusal is not None:
            self._metrics.refused.labels(reason=refusal.reason).inc()
            self._end("error", refusal.code.value)
        elif quota_local:
            self._fallback = "quota"
            self._metrics.fallbacks.labels(reason="quota").inc()

    def follow(self, machine: RequestMachine) -> None:
        """The request's machine: it counts the audio received and the reconnections, and
        says the request's language (for the page); they are read from it at close."""
        self._machine = machine
        self.language = machine.config.session.language

    def take_audio(self, nbytes: int) -> int:
        """The request is about to send ``nbytes`` of audio: how many the day's budget allows
        (counted as sent). Fewer than asked means the limit is reached: the handler ends the
        request's audio there."""
        allowed = self._guard.take_audio(nbytes)
        self._sent_bytes += allowed
        if allowed < nbytes:
            self.cut("quota")
        return allowed

    def cut(self, reason: str) -> None:
        """The server ended the request's audio (``quota``: the daily limit, ``length``: the
        request's length cap); counted once."""
        if not self._cut:
            self._cut = True
            self._metrics.limit_cuts.labels(reason=reason).inc()

    def observe(self, seen: act.Action | Occurrence) -> None:
        """One action of the request machine, as the handler carries it out (audio sent is
        counted by :meth:`take_audio`), or an :class:`Occurrence` of the request."""
        if type(seen) not in OBSERVED:
            return  # audio, text frames, timers, logs: nothing to count (nearly every action)
        if seen is Occurrence.AUDIO_STOPPED:
            if self._stopped_at is None:
                self._stopped_at = self._guard.monotonic()
        elif seen is Occurrence.LENGTH_CUT:
            self.cut("length")
        elif isinstance(seen, act.Connect):
            self._metrics.sessions.inc()
        elif isinstance(seen, act.TranscribeLocally):
            if self._fallback is None and not self._guard.settings.local_only:
                self._fallback = "failure"
                self._metrics.fallbacks.labels(reason="failure").inc()
        elif isinstance(seen, act.Transcript):
            self._text = seen.text
            self._end("transcript", "")
        elif isinstance(seen, act.Error):
            self._error_text = self._error_text or seen.text
            self._end("error", seen.code.value)
        elif isinstance(seen, act.Finish):
            self.close()

    def _end(self, outcome: str, code: str) -> None:
        if self._outcome is not None:
            return
        self._outcome = (outcome, code)
        if self._stopped_at is not None:
            self._wait_s = self._guard.monotonic() - self._stopped_at
            self._metrics.wait.observe(self._wait_s)
        if self.refusal is not None:
            self.close()

    def close(self) -> None:
        """The request is over (answered, failed or abandoned): count it once."""
        if self._done:
            return
        self._done = True
        if self._outcome is None:
            self._outcome = ("abandoned", "")
        outcome, code = self._outcome
        machine = self._machine
        received_s = 0.0 if machine is None else machine.received_s
        sent_s = self._sent_bytes / BYTES_PER_SECOND
        self._metrics.audio_received.inc(received_s)
        self._metrics.audio_sent.inc(sent_s)
        if machine is not None and machine.reconnects:
            self._metrics.retries.inc(machine.reconnects)
        self._metrics.requests.labels(outcome=outcome, code=code).inc()
        if self._holds_slot:
            self._guard.slots.release(self._client)
        self._guard.finished(
            RequestUsage(
                day=self.day,
                received_s=received_s,
                sent_s=sent_s,
                error_code=code or None,
                fallback=self._fallback,
            )
        )
        record = RequestRecord(
            at=self._guard.clock(),
            client=self._client,
            language=self.language,
            received_s=received_s,
            sent_s=sent_s,
            wait_s=self._wait_s,
            outcome=outcome,
            code=code,
            fallback=self._fallback,
            text=self._text,
        )
        self._guard.recent.add(record, self._error_text)  # the page (issue 25)


OBSERVED: frozenset[type] = frozenset(
    {act.Connect, act.TranscribeLocally, act.Transcript, act.Error, act.Finish, Occurrence}
)
"""What :meth:`Ticket.observe` counts; the rest pass it with one look-up."""
