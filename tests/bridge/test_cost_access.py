"""Cost and access over real sockets: ``--allow``, the per-client and daily limits, the usage
file across restarts, ``kill -9`` and broken files, and the Prometheus endpoint.

The server is the real one on loopback against the emulator; clients are the ``wyoming``
library's own. Linux routes all of 127/8 on ``lo``, so a client that binds its socket to
127.0.0.2 is a second machine as far as the server can tell. The daily limit is tested with a
clock the test moves (the guard takes it as a parameter); nothing sleeps to synchronise.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
import os
import resource
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.event import async_read_event, async_write_event
from wyoming.info import Describe
from wyoming.ping import Ping

from tests.kit.bridge import (
    Answer,
    bridge_port,
    bridge_settings,
    clean_env,
    read_answer,
    running_bridge,
    server_process,
    serving,
    start_request,
    transcribe,
)
from tests.kit.clock import FakeClock
from wyoming_lightning import healthcheck
from wyoming_lightning.emulator import EmulatorServer, Fault
from wyoming_lightning.emulator.tones import encode_phrase, silence
from wyoming_lightning.local.recognizer import LocalRecognizer
from wyoming_lightning.ops.guard import Guard
from wyoming_lightning.ops.usage_store import FILE_NAME, read_usage
from wyoming_lightning.services import Services
from wyoming_lightning.settings.config import DEFAULT_PRICE_PER_MIN, Settings
from wyoming_lightning.settings.networks import parse_network

PHRASE = "one two three"
PCM = silence(200) + encode_phrase(PHRASE) + silence(800)  # 1.8 s, all sent with --vad off
PCM_S = len(PCM) / 32000
OTHER_HOST = "127.0.0.2"


async def request_from(host: str, port: int, pcm: bytes = PCM, to: str = "127.0.0.1") -> Answer:
    """One request as Home Assistant sends it (everything written, then read), from ``host``."""
    reader, writer = await asyncio.open_connection(to, port, local_addr=(host, 0))
    answer = Answer()
    try:
        with contextlib.suppress(ConnectionError):
            await async_write_event(Transcribe(language="en").event(), writer)
            await async_write_event(AudioStart(rate=16000, width=2, channels=1).event(), writer)
            for i in range(0, len(pcm), 320):
                await async_write_event(AudioChunk(16000, 2, 1, pcm[i : i + 320]).event(), writer)
            await async_write_event(AudioStop().event(), writer)
        while (event := await async_read_event(reader)) is not None:
            answer.events.append(event)
        answer.closed = True
        return answer
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()


def sample(guard: Guard, name: str, **labels: str) -> float:
    value = guard.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def code_of(answer: Answer) -> str | None:
    return None if answer.error is None else str(answer.error.data.get("code"))


# ------------------------------------------------------------------------------- access


async def test_a_client_outside_allow_is_refused_and_the_next_allowed_one_served(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wyoming_lightning")
    settings = bridge_settings(emulator.pulse_url, allow=(parse_network("127.0.0.1/32"),))
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        refused = [await request_from(OTHER_HOST, port) for _ in range(2)]
        allowed = await request_from("127.0.0.1", port)
        await server.wait_idle()
        guard = server.services.guard
    for answer in refused:
        assert answer.types == ["error"] and code_of(answer) == "forbidden" and answer.closed
    assert allowed.transcript == PHRASE
    assert len(emulator.sessions) == 1, "a refused client never reaches the service"
    lines = [r.message for r in caplog.records if "refusing client" in r.message]
    assert lines == [
        "refusing client 127.0.0.2: not in --allow "
        "(each refused address is logged once every 10 min)"
    ]
    assert sample(guard, "wyoming_lightning_refused_total", reason="forbidden") == 2
    assert sample(guard, "wyoming_lightning_requests_total", outcome="transcript", code="") == 1


async def test_describe_and_ping_cost_nothing_and_are_answered_to_everyone(
    emulator: EmulatorServer,
) -> None:
    """A health check or a discovery helper on this machine keeps working when the list leaves
    loopback out; transcribing is still refused. A refused client gets one answer per
    connection, which is then closed (it must not hold a connection open: issue 20)."""
    settings = bridge_settings(emulator.pulse_url, allow=(parse_network("10.0.0.0/8"),))
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        health = await healthcheck.check(f"tcp://127.0.0.1:{port}", 10.0)
        answers = []
        for event in (Describe().event(), Ping(text="hi").event()):
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", port, local_addr=(OTHER_HOST, 0)
            )
            await async_write_event(event, writer)
            answers.append(await async_read_event(reader))
            await async_write_event(Ping(text="again").event(), writer)
            answers.append(await async_read_event(reader))
            writer.close()
        refused = await request_from("127.0.0.1", port)
        await server.wait_idle()
    info, after_info, pong, after_pong = answers
    assert health and info is not None and info.type == "info"
    assert pong is not None and pong.type == "pong"
    assert after_info is None and after_pong is None, "one answer, then the connection closes"
    assert code_of(refused) == "forbidden" and emulator.sessions == []


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_ipv6_clients_are_judged_by_their_ipv6_address(emulator: EmulatorServer) -> None:
    answers = []
    for allow in ("127.0.0.0/8", "::1/128"):
        settings = bridge_settings(
            emulator.pulse_url, uri="tcp://[::1]:0", allow=(parse_network(allow),)
        )
        async with running_bridge(settings) as server:
            answers.append(await request_from("::1", bridge_port(server), to="::1"))
            await server.wait_idle()
    assert code_of(answers[0]) == "forbidden"
    assert answers[1].transcript == PHRASE


async def test_unix_socket_clients_are_local_and_always_allowed(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    path = tmp_path / "wyoming.sock"
    settings = bridge_settings(
        emulator.pulse_url, uri=f"unix://{path}", allow=(parse_network("10.9.9.9/32"),)
    )
    async with running_bridge(settings):
        reader, writer = await asyncio.open_unix_connection(str(path))
        await async_write_event(Transcribe(language="en").event(), writer)
        await async_write_event(AudioStart(rate=16000, width=2, channels=1).event(), writer)
        for i in range(0, len(PCM), 3200):
            await async_write_event(AudioChunk(16000, 2, 1, PCM[i : i + 3200]).event(), writer)
        await async_write_event(AudioStop().event(), writer)
        events = []
        while (event := await async_read_event(reader)) is not None:
            events.append(event)
        writer.close()
    assert [e.data.get("text") for e in events if e.type == "transcript"] == [PHRASE]


async def test_requests_per_client_are_limited_per_address(emulator: EmulatorServer) -> None:
    settings = bridge_settings(emulator.pulse_url, max_requests_per_client=1)
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        first = await start_request(port, PCM)  # from 127.0.0.1, still running
        await emulator.wait_for(lambda: len(emulator.sessions) == 1, timeout=30)
        second = await request_from("127.0.0.1", port)
        other = await request_from(OTHER_HOST, port)  # another address has its own slot
        await first.write_event(AudioStop().event())
        first_answer = await read_answer(first, until=("transcript", "error"))
        await first.disconnect()
        again = await request_from("127.0.0.1", port)  # the slot is free again
        await server.wait_idle()
        guard = server.services.guard
    assert code_of(second) == "busy" and second.closed
    assert "too many requests at once from this client (limit 1)" in str(second.error.data)  # type: ignore[union-attr]
    assert other.transcript == PHRASE and first_answer.transcript == PHRASE
    assert again.transcript == PHRASE
    assert sample(guard, "wyoming_lightning_refused_total", reason="per_client") == 1
    assert sample(guard, "wyoming_lightning_requests_total", outcome="error", code="busy") == 1
    assert len(guard.slots) == 0


# ------------------------------------------------------------------------------- daily limit


async def test_the_daily_limit_takes_effect_at_the_right_request_and_resets_next_day(
    emulator: EmulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Limit 3 s, requests of 1.8 s: the first two are admitted (the second is cut at the
    limit, its phrase already sent, and answered with what was recognised), the third gets
    ``quota``; after midnight the budget is new."""
    caplog.set_level(logging.INFO, logger="wyoming_lightning")
    clock = FakeClock(dt.datetime(2026, 3, 1, 22, 30))
    settings = bridge_settings(
        emulator.pulse_url, daily_audio_limit_min=3 / 60, data_dir=str(tmp_path)
    )
    services = Services(settings)
    services.guard = guard = Guard(settings, clock=clock)
    async with serving(services) as server:
        port = bridge_port(server)
        answers = [await transcribe(port, PCM) for _ in range(3)]
        clock.now = dt.datetime(2026, 3, 2, 0, 0, 1)
        answers.append(await transcribe(port, PCM))
        await server.wait_idle()
    assert [a.transcript for a in answers] == [PHRASE, PHRASE, None, PHRASE]
    assert answers[2].types == ["error"] and code_of(answers[2]) == "quota"
    assert "daily audio limit of 0.05 min is reached" in str(answers[2].error.data)  # type: ignore[union-attr]
    assert len(emulator.sessions) == 3, "the refused request never reached the service"
    assert sample(guard, "wyoming_lightning_refused_total", reason="quota") == 1
    assert sample(guard, "wyoming_lightning_requests_total", outcome="error", code="quota") == 1
    assert "daily audio limit reached: 0.05 of 0.05 min sent today" in caplog.text
    assert sample(guard, "wyoming_lightning_requests_cut_total", reason="quota") == 1
    days = read_usage(tmp_path / FILE_NAME, 7, dt.date(2026, 3, 2))
    assert [(d.day, d.requests, d.errors) for d in days] == [
        ("2026-03-01", 3, {"quota": 1}),
        ("2026-03-02", 1, {}),
    ]
    assert days[0].sent_s == pytest.approx(3.0), "the limit, exactly: the second was cut there"
    assert days[0].cost_usd == pytest.approx(days[0].sent_s / 60 * DEFAULT_PRICE_PER_MIN)


@pytest.mark.slow
@pytest.mark.skipif(not LocalRecognizer.available(), reason="needs the [local] extra")
async def test_past_the_limit_the_local_fallback_answers(emulator: EmulatorServer) -> None:
    settings = bridge_settings(
        emulator.pulse_url, daily_audio_limit_min=0.0, fallback="local", response_timeout_s=120.0
    )
    async with running_bridge(settings) as server:
        answer = await transcribe(bridge_port(server), PCM)
        await server.wait_idle()
        guard = server.services.guard
    assert answer.error is None and answer.transcript is not None, answer.events
    assert emulator.sessions == [], "past the limit nothing is sent to the service"
    assert sample(guard, "wyoming_lightning_fallbacks_total", reason="quota") == 1
    assert sample(guard, "wyoming_lightning_audio_sent_seconds_total") == 0


# ------------------------------------------------------------------------------- usage file


def usage_rows(data_dir: Path) -> list[str]:
    shown = subprocess.run(
        [sys.executable, "-m", "wyoming_lightning", "usage", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env=clean_env(None),
    )
    return shown.stdout.splitlines()


async def test_usage_survives_a_restart_and_kill_9_mid_request(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    args = ("--lightning-url", emulator.pulse_url, "--vad", "off", "--data-dir", str(tmp_path))
    async with server_process(*args) as server:
        assert (await transcribe(server.port, PCM)).transcript == PHRASE
        running = await start_request(server.port, PCM)  # no audio-stop: still going
        # Its audio reached the service (on the first request's warm socket or a new one).
        sent = lambda: sum(r.audio_bytes_received for r in emulator.sessions)  # noqa: E731
        await emulator.wait_for(lambda: sent() > len(PCM), timeout=30)
        server.proc.kill()
        assert await server.proc.wait() == -9
        with contextlib.suppress(ConnectionError):  # the kernel reset it: the server is gone
            await running.disconnect()
    today = dt.date.today()
    (day,) = read_usage(tmp_path / FILE_NAME, 1, today)
    assert day.requests == 1, "the finished request is on disk, the killed one is not"
    assert day.sent_s == pytest.approx(PCM_S, abs=0.05)
    async with server_process(*args) as server:
        assert (await transcribe(server.port, PCM)).transcript == PHRASE
        server.proc.terminate()
        assert await server.finish() == 0
    (day,) = read_usage(tmp_path / FILE_NAME, 1, today)
    assert day.requests == 2 and day.sent_s == pytest.approx(2 * PCM_S, abs=0.1)
    rows = usage_rows(tmp_path)
    assert rows[1].split()[:2] == [today.isoformat(), "2"]
    assert rows[-2].split()[:2] == ["total", "2"]
    assert rows[-1].startswith("est. cost: an estimate")


async def test_two_servers_share_one_usage_file_and_one_daily_budget(
    emulator: EmulatorServer, tmp_path: Path
) -> None:
    """Two processes on one file (WAL, busy timeout, UPSERT increments): no count is lost, and
    what one server sent counts against the other's limit too (3 s; requests of 1.8 s)."""
    args = ("--lightning-url", emulator.pulse_url, "--vad", "off", "--data-dir", str(tmp_path))
    limit = ("--daily-audio-limit", "0.05")
    async with server_process(*args, *limit) as a, server_process(*args, *limit) as b:
        first = await asyncio.gather(transcribe(a.port, PCM), transcribe(b.port, PCM))
        after = [await transcribe(a.port, PCM), await transcribe(b.port, PCM)]
        for server in (a, b):
            server.proc.terminate()
            assert await server.finish() == 0
    assert [x.transcript for x in first] == [PHRASE, PHRASE]
    assert [code_of(x) for x in after] == ["quota", "quota"]
    (day,) = read_usage(tmp_path / FILE_NAME, 1, dt.date.today())
    assert day.requests == 4 and day.errors == {"quota": 2}
    assert day.sent_s == pytest.approx(2 * PCM_S, abs=0.1)


async def test_a_corrupt_usage_file_does_not_stop_serving(
    emulator: EmulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wyoming_lightning")
    garbage = b"\x00\x01 not sqlite " * 1000
    (tmp_path / FILE_NAME).write_bytes(garbage)
    settings = bridge_settings(emulator.pulse_url, data_dir=str(tmp_path))
    async with running_bridge(settings) as server:
        answers = [await transcribe(bridge_port(server), PCM) for _ in range(2)]
        await server.wait_idle()
        guard = server.services.guard
    assert [a.transcript for a in answers] == [PHRASE, PHRASE]
    assert (tmp_path / FILE_NAME).read_bytes() == garbage
    assert caplog.text.count("counting in memory") == 1
    assert guard.store.day_values(guard.ledger.today())["requests"] == 2
    assert sample(guard, "wyoming_lightning_usage_store_failures_total") >= 1


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[None]:
    """Really read-only, for root too: the immutable attribute (root ignores file modes)."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        path.parent.chmod(0o555)
        try:
            yield None
        finally:
            path.parent.chmod(0o755)
            path.chmod(0o644)
        return
    chattr = shutil.which("chattr")
    if chattr is None or subprocess.run([chattr, "+i", str(path)], check=False).returncode:
        pytest.skip("as root a file is read-only only with chattr +i, unavailable here")
    try:
        yield None
    finally:
        subprocess.run([chattr, "-i", str(path)], check=True)


async def test_a_read_only_usage_file_does_not_stop_serving(
    emulator: EmulatorServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wyoming_lightning")
    path = tmp_path / FILE_NAME
    settings = bridge_settings(emulator.pulse_url, data_dir=str(tmp_path))
    async with running_bridge(settings) as server:  # makes the file, then leaves it
        assert (await transcribe(bridge_port(server), PCM)).transcript == PHRASE
        await server.wait_idle()
    before = read_usage(path, 1, dt.date.today())
    with read_only(path):
        async with running_bridge(settings) as server:
            answer = await transcribe(bridge_port(server), PCM)
            await server.wait_idle()
            guard = server.services.guard
        after = read_usage(path, 1, dt.date.today())
    assert answer.transcript == PHRASE
    assert "usage file" in caplog.text and "counting in memory" in caplog.text
    assert after == before, "nothing was written to the read-only file"
    assert guard.ledger.sent_today_s() == pytest.approx(2 * PCM_S, abs=0.1), "file + memory"


async def test_a_full_disk_does_not_stop_serving(emulator: EmulatorServer, tmp_path: Path) -> None:
    """The disk fills while the server runs: after a first request the server's file-size
    limit (RLIMIT_FSIZE, set from outside with prlimit) drops to 0, so every later write to
    the open usage file fails as on a full disk (EFBIG; Python ignores SIGXFSZ)."""
    args = ("--lightning-url", emulator.pulse_url, "--vad", "off", "--data-dir", str(tmp_path))
    async with server_process(*args) as server:
        assert (await transcribe(server.port, PCM)).transcript == PHRASE
        resource.prlimit(server.proc.pid, resource.RLIMIT_FSIZE, (0, 0))
        answers = [await transcribe(server.port, PCM) for _ in range(2)]
        server.proc.terminate()
        assert await server.finish() == 0
    assert [a.transcript for a in answers] == [PHRASE, PHRASE]
    log = "".join(server.log)
    assert "cannot write to it: disk I/O error; counting in memory" in log, log  # EFBIG
    assert "still unavailable at exit" in log and "Traceback" not in log
    (day,) = read_usage(tmp_path / FILE_NAME, 1, dt.date.today())
    assert day.requests == 1, "what was written before the disk filled is intact"


# ------------------------------------------------------------------------------- metrics


def scrape(port: int) -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


async def test_the_metrics_endpoint_is_scraped_and_parsed(emulator: EmulatorServer) -> None:
    settings = bridge_settings(
        emulator.pulse_url, metrics_port=0, allow=(parse_network("127.0.0.1/32"),)
    )
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        assert (await transcribe(port, PCM)).transcript == PHRASE
        assert code_of(await request_from(OTHER_HOST, port)) == "forbidden"
        await server.wait_idle()
        metrics_port = server.services.guard.metrics_port
        assert metrics_port
        found = await asyncio.to_thread(scrape, metrics_port)
    assert found["wyoming_lightning_requests_total"] == {
        (("code", ""), ("outcome", "transcript")): 1.0
    }
    assert found["wyoming_lightning_refused_total"][(("reason", "forbidden"),)] == 1.0
    assert found["wyoming_lightning_refused_total"][(("reason", "quota"),)] == 0.0
    assert found["wyoming_lightning_response_wait_seconds_count"][()] == 1.0
    assert found["wyoming_lightning_response_wait_seconds_sum"][()] > 0
    assert found["wyoming_lightning_audio_received_seconds_total"][()] == pytest.approx(PCM_S)
    sent = found["wyoming_lightning_audio_sent_seconds_total"][()]
    assert sent == pytest.approx(PCM_S, abs=0.05)
    assert found["wyoming_lightning_service_sessions_total"][()] == 1.0
    assert found["wyoming_lightning_retries_total"][()] == 0.0
    assert found["wyoming_lightning_connections_open"][()] == 0.0
    assert found["wyoming_lightning_estimated_cost_usd_total"][()] == pytest.approx(
        sent / 60 * DEFAULT_PRICE_PER_MIN
    )
    labels = {k for samples in found.values() for key in samples for k, _ in key}
    assert labels <= {"outcome", "code", "reason", "le"}, "no unbounded labels"


async def test_retries_and_failure_fallbacks_are_counted(emulator: EmulatorServer) -> None:
    settings = bridge_settings(emulator.pulse_url, retries=1)
    async with running_bridge(settings) as server:
        emulator.inject(Fault("refuse-500"), count=1)
        answer = await transcribe(bridge_port(server), PCM)
        await server.wait_idle()
        guard = server.services.guard
    assert answer.transcript == PHRASE
    assert sample(guard, "wyoming_lightning_retries_total") == 1
    assert sample(guard, "wyoming_lightning_service_sessions_total") == len(emulator.sessions) == 2
    assert sample(guard, "wyoming_lightning_fallbacks_total", reason="failure") == 0


@pytest.mark.slow
@pytest.mark.skipif(not LocalRecognizer.available(), reason="needs the [local] extra")
async def test_a_fallback_after_a_failure_is_counted_as_such(emulator: EmulatorServer) -> None:
    settings = bridge_settings(
        emulator.pulse_url, retries=0, fallback="local", response_timeout_s=120.0
    )
    async with running_bridge(settings) as server:
        emulator.inject(Fault("refuse-500"), count=None)
        answer = await transcribe(bridge_port(server), PCM)
        await server.wait_idle()
        guard = server.services.guard
    assert answer.error is None and answer.transcript is not None, answer.events
    assert sample(guard, "wyoming_lightning_fallbacks_total", reason="failure") == 1
    assert sample(guard, "wyoming_lightning_fallbacks_total", reason="quota") == 0
    assert sample(guard, "wyoming_lightning_requests_total", outcome="transcript", code="") == 1


async def test_metrics_are_off_by_default(emulator: EmulatorServer) -> None:
    settings: Settings = bridge_settings(emulator.pulse_url)
    assert settings.metrics_port is None
    async with running_bridge(dataclasses.replace(settings)) as server:
        assert server.services.guard.metrics_port is None
