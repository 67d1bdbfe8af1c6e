"""Hostile clients (issue 20): what one connection can do to the others and to the bill.

Each test is one of the six ways the issue found to break the server, over real sockets on
loopback against the emulator: a crash inside one request, the daily limit under concurrent
requests, clients outside ``--allow`` filling the connection slots, the metrics endpoint, a
flood of log lines, and ``tcp://[::]`` for IPv4 clients. Linux routes all of 127/8 on ``lo``,
so a client bound to 127.0.0.2 is another machine as far as the server can tell. Nothing
sleeps to synchronise; the timeouts around reads only turn a hang into a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.ping import Ping

from tests.bridge.test_cost_access import (
    OTHER_HOST,
    PCM,
    PHRASE,
    code_of,
    has_ipv6_loopback,
    request_from,
    sample,
)
from tests.kit.bridge import Answer, bridge_port, bridge_settings, running_bridge, serving
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.ops.guard import Guard
from wyoming_lightning.services import Services
from wyoming_lightning.settings.networks import parse_network

ALLOW_HERE = (parse_network("127.0.0.1/32"),)
HANG = 30.0
"""Seconds after which a read that should have ended is a hang (a failure, not a threshold)."""


async def read_all(reader: asyncio.StreamReader) -> Answer:
    answer = Answer()
    async with asyncio.timeout(HANG):
        with contextlib.suppress(ConnectionError):
            while (event := await async_read_event(reader)) is not None:
                answer.events.append(event)
    answer.closed = True
    return answer


def nested_header(depth: int) -> bytes:
    """A valid JSON event header whose data nests ``depth`` arrays deep."""
    return b'{"type": "audio-chunk", "data": {"x": ' + b"[" * depth + b"]" * depth + b"}}\n"


async def open_request(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A request from 127.0.0.1 with half its audio sent: the service session is open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await async_write_event(Transcribe(language="en").event(), writer)
    await async_write_event(AudioStart(rate=16000, width=2, channels=1).event(), writer)
    for i in range(0, len(PCM) // 2, 320):
        await async_write_event(AudioChunk(16000, 2, 1, PCM[i : i + 320]).event(), writer)
    return reader, writer


# ------------------------------------------------------------------------ 1. crashes


async def test_malformed_events_mid_request_free_the_slot_and_the_service_socket(
    emulator: EmulatorServer,
) -> None:
    """Deeply nested JSON in a header and in an event's data, and names of the wrong type:
    each is answered ``bad_request``; the per-client slot (limit 1) and the service socket of
    the request it broke are freed, so the next request from the same address is served."""
    settings = bridge_settings(emulator.pulse_url, max_requests_per_client=1)
    nested_data = b'{"x": ' + b"[" * 20000 + b"]" * 20000 + b"}"
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        answers = []
        for raw in (
            nested_header(20000),
            b'{"type": "audio-chunk", "data_length": %d}\n' % len(nested_data) + nested_data,
        ):
            reader, writer = await open_request(port)
            await emulator.wait_for(lambda: emulator.active_sessions >= 1, timeout=HANG)
            writer.write(raw)
            answers.append(await read_all(reader))
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        names = Event("transcribe", {"language": "en", "transcript_names": [1, 2]})
        await async_write_event(names, writer)
        await async_write_event(AudioStart(rate=16000, width=2, channels=1).event(), writer)
        answers.append(await read_all(reader))
        writer.close()
        after = await request_from("127.0.0.1", port)
        await server.wait_idle()
        await emulator.wait_idle(timeout=HANG)
        guard = server.services.guard
    assert [code_of(a) for a in answers] == ["bad_request"] * 3, [a.events for a in answers]
    assert "nests deeper than" in str(answers[0].error.data)  # type: ignore[union-attr]
    assert "transcript_names must be a list of strings" in str(answers[2].error.data)  # type: ignore[union-attr]
    assert after.transcript == PHRASE, after.events
    assert emulator.active_sessions == 0, "no service socket is left open"
    assert len(guard.slots) == 0
    assert (
        sample(guard, "wyoming_lightning_requests_total", outcome="error", code="bad_request") == 2
    )


class BrokenGuard(Guard):
    """A guard that fails on the request's second piece of audio: a stand-in for any bug
    inside the request's handling, after its service socket is open."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.calls = 0

    def take_audio(self, nbytes: int) -> int:
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("a bug for the test")
        return super().take_audio(nbytes)


async def test_a_failure_inside_a_request_ends_it_cleanly_counted_and_logged_once(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wyoming_lightning")
    settings = bridge_settings(emulator.pulse_url, max_requests_per_client=1)
    services = Services(settings)
    services.guard = guard = BrokenGuard(settings)
    async with serving(services) as server:
        port = bridge_port(server)
        broken = await request_from("127.0.0.1", port)
        after = await request_from("127.0.0.1", port)
        await server.wait_idle()
        await emulator.wait_idle(timeout=HANG)
    assert broken.types == ["error"] and code_of(broken) == "internal" and broken.closed
    assert after.transcript == PHRASE
    assert emulator.active_sessions == 0 and len(guard.slots) == 0
    assert sample(guard, "wyoming_lightning_handler_failures_total") == 1
    assert sample(guard, "wyoming_lightning_requests_total", outcome="error", code="internal") == 1
    failures = [r for r in caplog.records if "the server failed on this request" in r.message]
    assert len(failures) == 1 and "RuntimeError: a bug for the test" in failures[0].message
    assert failures[0].exc_info is not None, "the traceback is logged with it"


# ------------------------------------------------------------------- 2. the daily limit


async def test_concurrent_requests_cannot_spend_past_the_daily_limit(
    emulator: EmulatorServer,
) -> None:
    """Ten 1.8 s requests at once against a 3 s limit: at most 3 s reach the service (the
    documented overshoot within one process is none); every client gets an answer."""
    settings = bridge_settings(emulator.pulse_url, daily_audio_limit_min=3 / 60)
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        answers = await asyncio.gather(*(request_from("127.0.0.1", port) for _ in range(10)))
        await server.wait_idle()
        await emulator.wait_idle(timeout=HANG)
        guard = server.services.guard
    sent = sum(r.audio_bytes_received for r in emulator.sessions)
    assert sent <= 3 * 32000, f"{sent / 32000:.2f} s sent against a 3 s limit"
    assert all(a.closed and (a.transcript is not None or code_of(a) == "quota") for a in answers)
    assert sample(guard, "wyoming_lightning_requests_cut_total", reason="quota") >= 1
    assert sample(guard, "wyoming_lightning_audio_sent_today_seconds") == pytest.approx(
        sent / 32000
    )


async def test_every_request_has_a_length_cap_without_endpointing(
    emulator: EmulatorServer,
) -> None:
    settings = bridge_settings(emulator.pulse_url, max_request_s=1.0)
    assert not settings.endpointing
    async with running_bridge(settings) as server:
        answer = await request_from("127.0.0.1", bridge_port(server), pcm=PCM * 5)
        await server.wait_idle()
        await emulator.wait_idle(timeout=HANG)
        guard = server.services.guard
    sent = sum(r.audio_bytes_received for r in emulator.sessions)
    assert sent <= 32000 + 320, "one second, and at most the chunk that reached it"
    assert answer.transcript is not None and answer.error is None, answer.events
    assert sample(guard, "wyoming_lightning_requests_cut_total", reason="length") == 1


# --------------------------------------------------------------- 3. slots and timeouts


async def test_clients_outside_allow_cannot_take_the_connection_slots(
    emulator: EmulatorServer,
) -> None:
    settings = bridge_settings(emulator.pulse_url, allow=ALLOW_HERE, max_connections=20)
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        held = []
        for _ in range(25):  # each pings (free) and keeps its connection open
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(OTHER_HOST, 0)
            )
            await async_write_event(Ping(text="hi").event(), writer)
            async with asyncio.timeout(HANG):
                with contextlib.suppress(ConnectionError):
                    await async_read_event(reader)
            held.append((reader, writer))
        allowed = await request_from("127.0.0.1", port)
        closed = [await read_all(reader) for reader, _ in held]
        for _, writer in held:
            writer.close()
        await server.wait_idle()
        guard = server.services.guard
    assert allowed.transcript == PHRASE, allowed.events
    assert all(c.closed and c.events == [] for c in closed), "refused clients are not kept"
    assert sample(guard, "wyoming_lightning_refused_total", reason="busy") == 0


async def test_silent_and_dribbling_connections_are_closed_after_the_header_timeout(
    emulator: EmulatorServer,
) -> None:
    """With a 0.2 s header timeout (and the 30 s idle timeout): a connection that says
    nothing, one that dribbles its first header, and one that dribbles its second are all
    closed, long before the idle timeout (the guard of HANG s is what fails on old code)."""
    settings = bridge_settings(emulator.pulse_url, header_timeout_s=0.2, idle_timeout_s=30.0)
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        silent_r, silent_w = await asyncio.open_connection("127.0.0.1", port)
        first_r, first_w = await asyncio.open_connection("127.0.0.1", port)
        first_w.write(b'{"type": "desc')
        second_r, second_w = await asyncio.open_connection("127.0.0.1", port)
        await async_write_event(Transcribe(language="en").event(), second_w)
        second_w.write(b'{"type": "audio-st')
        answers = [await read_all(r) for r in (silent_r, first_r, second_r)]
        for w in (silent_w, first_w, second_w):
            w.close()
        await server.wait_idle()
    assert answers[0].events == [] and answers[1].events == []
    assert code_of(answers[2]) == "bad_request"
    assert "event not completed within 0.2 s" in str(answers[2].error.data)  # type: ignore[union-attr]


# ------------------------------------------------------------------------- 4. metrics


async def http_get(host: str, port: int, source: str = "127.0.0.1") -> bytes:
    reader, writer = await asyncio.open_connection(host, port, local_addr=(source, 0))
    writer.write(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
    async with asyncio.timeout(HANG):
        response = await reader.read()
    writer.close()
    return response


async def test_the_metrics_endpoint_honours_allow_and_the_listen_address(
    emulator: EmulatorServer,
) -> None:
    settings = bridge_settings(emulator.pulse_url, metrics_port=0, allow=ALLOW_HERE)
    async with running_bridge(settings) as server:
        metrics_port = server.services.guard.metrics_port
        assert metrics_port
        allowed = await http_get("127.0.0.1", metrics_port)
        refused = await http_get("127.0.0.1", metrics_port, source=OTHER_HOST)
        # The server listens on 127.0.0.1 only, so must the metrics: not on 127.0.0.2.
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection(OTHER_HOST, metrics_port)
    assert allowed.startswith(b"HTTP/1.1 200") and b"wyoming_lightning_requests_total" in allowed
    assert refused.startswith(b"HTTP/1.1 403") and b"wyoming_lightning" not in refused


async def test_idle_metrics_connections_start_no_threads(emulator: EmulatorServer) -> None:
    settings = bridge_settings(emulator.pulse_url, metrics_port=0)
    async with running_bridge(settings) as server:
        metrics_port = server.services.guard.metrics_port
        assert metrics_port
        threads = threading.active_count()
        idle = [await asyncio.open_connection("127.0.0.1", metrics_port) for _ in range(300)]
        answer = await http_get("127.0.0.1", metrics_port)
        most = threading.active_count()
        for _, writer in idle:
            writer.close()
    assert most == threads, f"{most - threads} threads for 300 idle connections"
    assert answer.startswith(b"HTTP/1.1 200"), "the endpoint still answers"


async def test_idle_metrics_connections_are_closed_after_the_header_timeout(
    emulator: EmulatorServer,
) -> None:
    settings = bridge_settings(emulator.pulse_url, metrics_port=0, header_timeout_s=0.5)
    async with running_bridge(settings) as server:
        metrics_port = server.services.guard.metrics_port
        assert metrics_port
        idle = [await asyncio.open_connection("127.0.0.1", metrics_port) for _ in range(50)]
        async with asyncio.timeout(HANG):
            ends = [await reader.read() for reader, _ in idle]
        for _, writer in idle:
            writer.close()
    assert ends == [b""] * 50, "each idle connection was closed, unanswered"


# ------------------------------------------------------------------------ 5. the log


class _Bytes(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.total = 0
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.total += len(self.format(record)) + 1


@contextlib.contextmanager
def log_bytes() -> Iterator[_Bytes]:
    handler = _Bytes()
    logger = logging.getLogger("wyoming_lightning")
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


async def test_a_flood_grows_the_log_by_a_bounded_amount(emulator: EmulatorServer) -> None:
    """100 requests with a 250 KB language, then 2,000 connections refused as busy."""
    settings = bridge_settings(emulator.pulse_url, max_connections=1)
    language = "x" * 250_000
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        with log_bytes() as log:
            answers = []
            for _ in range(100):
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                await async_write_event(Transcribe(language=language).event(), writer)
                answers.append(await read_all(reader))
                writer.close()
                await server.wait_idle()  # one connection at a time (--max-connections 1)
            _, holder_w = await asyncio.open_connection("127.0.0.1", port)
            await async_write_event(Transcribe(language="en").event(), holder_w)
            await emulator.wait_for(lambda: server.active_connections == 1, timeout=HANG)

            async def knock() -> Answer:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    return await read_all(reader)
                finally:
                    writer.close()

            busy = []
            for _ in range(40):
                busy += await asyncio.gather(*(knock() for _ in range(50)))
            holder_w.close()
            await server.wait_idle()
    assert [code_of(a) for a in answers] == ["language"] * 100, answers[0].events[:1]
    text = str(answers[0].error.data)  # type: ignore[union-attr]
    assert len(text) < 1000 and "(250000 characters)" in text, text[:300]
    assert sum(code_of(a) == "busy" for a in busy) == 2000
    assert log.total < 20_000, f"the log grew by {log.total} bytes"


# ----------------------------------------------------------------------- 6. dual stack


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 on this machine")
async def test_an_ipv4_client_reaches_the_ipv6_wildcard_and_allow_reads_it_as_ipv4(
    emulator: EmulatorServer,
) -> None:
    settings = bridge_settings(
        emulator.pulse_url, uri="tcp://[::]:0", allow=ALLOW_HERE, metrics_port=0
    )
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        ipv4 = await request_from("127.0.0.1", port, to="127.0.0.1")
        ipv6 = await request_from("::1", port, to="::1")
        metrics_port = server.services.guard.metrics_port
        assert metrics_port
        scrape = await http_get("127.0.0.1", metrics_port)  # the metrics follow the listen host
        await server.wait_idle()
    assert ipv4.transcript == PHRASE, ipv4.events
    assert code_of(ipv6) == "forbidden", "::1 is not 127.0.0.1/32"
    assert scrape.startswith(b"HTTP/1.1 200"), "an IPv4 scrape of [::], admitted as 127.0.0.1"
