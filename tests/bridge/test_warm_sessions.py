"""Warm Pulse sockets across Wyoming requests (issue 14 item 1), over real sockets.

The real bridge on loopback, the real ``wyoming`` client, the emulator's tones recognizer; the
emulator's records count the service connections. Idle timers are short settings and every
wait is for an event in the records (never a sleep).
"""

from __future__ import annotations

import asyncio
import json
import time

from websockets.asyncio.client import connect
from wyoming.audio import AudioStop

from tests.emulator.emulator_client import read_json, read_until_final
from tests.kit.bridge import (
    API_KEY,
    bridge_port,
    bridge_settings,
    read_answer,
    serving,
    start_request,
    transcribe,
)
from wyoming_lightning.cloud.warm import WarmSessions
from wyoming_lightning.core.warm_pool import PoolPolicy
from wyoming_lightning.emulator import EmulatorServer, Fault
from wyoming_lightning.emulator.tones import encode_phrase, silence
from wyoming_lightning.services import Services
from wyoming_lightning.settings.config import Settings
from wyoming_lightning.wyoming.server import WyomingServer

WAIT_S = 10.0  # bound on every wait for the emulator; never reached when the bridge is right
KEEPALIVE = json.dumps({"type": "keepalive"})
CLOSE_STREAM = json.dumps({"type": "close_stream"})
FINALIZE = json.dumps({"type": "finalize"})


def command(phrase: str) -> bytes:
    return silence(200) + encode_phrase(phrase) + silence(300)


def services(url: str, *, keepalive_s: float | None = None, **overrides: object) -> Services:
    overrides.setdefault("session_idle_timeout_s", Settings().session_idle_timeout_s)
    built = Services(bridge_settings(url, **overrides))
    if keepalive_s is not None:
        idle_s = built.settings.session_idle_timeout_s
        policy = PoolPolicy(idle_s, time.monotonic, keepalive_s=keepalive_s)
        built.warm = WarmSessions(policy, built.guard.metrics)
    return built


def counted(server: WyomingServer, name: str) -> float:
    value = server.services.guard.metrics.registry.get_sample_value(f"wyoming_lightning_{name}")
    return value or 0.0


async def test_two_requests_in_a_row_share_one_service_connection(
    emulator: EmulatorServer,
) -> None:
    async with serving(services(emulator.pulse_url)) as server:
        port = bridge_port(server)
        first = await transcribe(port, command("one two"))
        second = await transcribe(port, command("three four"))
        assert (first.transcript, second.transcript) == ("one two", "three four")
        (record,) = emulator.sessions
        assert record.text_frames_received == [FINALIZE, FINALIZE], "a finalize per request"
        assert not record.closed, "kept open for the next request"
        assert counted(server, "service_connections_total") == 1
        assert counted(server, "warm_session_reuses_total") == 1
        assert counted(server, "service_sessions_total") == 2
    await emulator.wait_idle(WAIT_S)
    assert record.text_frames_received[-1] == CLOSE_STREAM, "closed politely at shutdown"


async def test_a_late_final_of_one_request_never_reaches_the_next(
    emulator: EmulatorServer,
) -> None:
    """``stale-final``: request 1's final is sent again once request 2's audio arrives on the
    same socket. Its words lie before request 2's start on that socket: dropped."""
    emulator.inject(Fault("stale-final"))
    async with serving(services(emulator.pulse_url)) as server:
        port = bridge_port(server)
        first = await transcribe(port, command("one two"))
        second = await transcribe(port, command("three four"))
    assert first.transcript == "one two"
    assert second.transcript == "three four"
    (record,) = emulator.sessions
    copies = [m for m in record.finals if m.get("transcript") == "one two"]
    assert len(copies) >= 2, "the fault did send request 1's final again, during request 2"


async def test_a_socket_that_speaks_while_idle_is_retired(emulator: EmulatorServer) -> None:
    """``stale-final`` again, but now the copy answers an idle keepalive: the socket is
    retired, and the next request opens a new one and gets its own words only."""
    emulator.inject(Fault("stale-final"))
    async with serving(services(emulator.pulse_url, keepalive_s=0.3)) as server:
        port = bridge_port(server)
        first = await transcribe(port, command("one two"))
        await emulator.wait_for(lambda: emulator.sessions[0].closed, WAIT_S)
        second = await transcribe(port, command("three four"))
        assert (first.transcript, second.transcript) == ("one two", "three four")
        old, new = emulator.sessions
        assert KEEPALIVE in old.text_frames_received
        assert old.text_frames_received[-1] == CLOSE_STREAM
        assert new.audio_bytes_received > 0 and not new.faults
        assert counted(server, "service_connections_total") == 2


async def test_idle_sockets_get_keepalives_and_stay_usable(emulator: EmulatorServer) -> None:
    async with serving(services(emulator.pulse_url, keepalive_s=0.3)) as server:
        port = bridge_port(server)
        await transcribe(port, command("one two"))
        (record,) = emulator.sessions
        await emulator.wait_for(
            lambda: (
                record.text_frames_received.count(KEEPALIVE) >= 2
                and sum(m.get("type") == "pong" for m in record.messages_sent) >= 2
            ),
            WAIT_S,
        )
        second = await transcribe(port, command("three four"))
        assert second.transcript == "three four"
        assert len(emulator.sessions) == 1, "the pongs kept the socket, and it was reused"


async def test_a_service_that_never_answers_keepalive_keeps_its_warm_socket(
    emulator: EmulatorServer,
) -> None:
    """``keepalive``/``pong`` are in none of the vendor's documents: with a service that reads
    ``keepalive`` and never answers it, the socket lives by its WebSocket pings and is reused
    after several keepalive intervals without a single pong."""
    emulator.inject(Fault("no-pong"))
    async with serving(services(emulator.pulse_url, keepalive_s=0.3)) as server:
        port = bridge_port(server)
        await transcribe(port, command("one two"))
        (record,) = emulator.sessions
        await emulator.wait_for(lambda: record.text_frames_received.count(KEEPALIVE) >= 3, WAIT_S)
        second = await transcribe(port, command("three four"))
        assert second.transcript == "three four"
        assert not any(m.get("type") == "pong" for m in record.messages_sent)
        assert len(emulator.sessions) == 1, "no pong, yet the socket was kept and reused"
        assert counted(server, "service_connections_total") == 1


async def test_the_idle_timeout_closes_the_socket(emulator: EmulatorServer) -> None:
    async with serving(services(emulator.pulse_url, session_idle_timeout_s=0.3)) as server:
        port = bridge_port(server)
        await transcribe(port, command("one two"))
        await emulator.wait_idle(WAIT_S)
        (record,) = emulator.sessions
        assert record.text_frames_received == [FINALIZE, CLOSE_STREAM]
        assert record.close_code == 1000
        assert counted(server, "idle_service_sessions") == 0
        second = await transcribe(port, command("three four"))
        assert second.transcript == "three four" and len(emulator.sessions) == 2


async def test_a_borrowed_socket_that_drops_mid_request_is_replaced_and_replayed(
    emulator: EmulatorServer,
) -> None:
    """Liveness on a borrowed socket: ``drop`` once it has carried more audio than request 1
    had, i.e. in the middle of request 2. Request 2 reconnects, replays its own audio only,
    and answers its own words; the dropped socket is never lent again."""
    first_pcm, second_pcm = command("one two"), command("three four five six seven")
    emulator.inject(Fault("drop", after_bytes=len(first_pcm) + len(second_pcm) // 2))
    async with serving(services(emulator.pulse_url)) as server:
        port = bridge_port(server)
        first = await transcribe(port, first_pcm)
        second = await transcribe(port, second_pcm)
        third = await transcribe(port, command("eight nine"))
        assert (first.transcript, second.transcript, third.transcript) == (
            "one two",
            "three four five six seven",
            "eight nine",
        )
        dropped, replacement = emulator.sessions
        assert dropped.close_code == 1006 and dropped.faults == ("drop",)
        assert replacement.audio_bytes_received >= len(second_pcm) // 2
        assert counted(server, "service_connections_total") == 2, "the third reused the new one"


async def test_a_socket_the_service_closed_while_idle_is_not_reused(
    emulator: EmulatorServer,
) -> None:
    emulator.inject(Fault("close-idle"))
    async with serving(services(emulator.pulse_url, keepalive_s=0.3)) as server:
        port = bridge_port(server)
        await transcribe(port, command("one two"))
        await emulator.wait_idle(WAIT_S)
        assert emulator.sessions[0].close_code == 1001
        second = await transcribe(port, command("three four"))
        assert second.transcript == "three four" and second.error is None
        assert len(emulator.sessions) == 2


async def test_warm_sessions_off_opens_a_socket_per_request(emulator: EmulatorServer) -> None:
    async with serving(services(emulator.pulse_url, session_idle_timeout_s=0.0)) as server:
        port = bridge_port(server)
        await transcribe(port, command("one two"))
        await transcribe(port, command("three four"))
        await emulator.wait_idle(WAIT_S)
        assert [r.text_frames_received for r in emulator.sessions] == [[CLOSE_STREAM]] * 2
        assert counted(server, "service_connections_total") == 2


async def test_concurrent_requests_each_get_their_own_socket(emulator: EmulatorServer) -> None:
    async with serving(services(emulator.pulse_url)) as server:
        port = bridge_port(server)
        a = await start_request(port, command("one two"))
        b = await start_request(port, command("three four"))
        await emulator.wait_for(
            lambda: (
                len(emulator.sessions) == 2
                and all(r.audio_bytes_received > 0 for r in emulator.sessions)
            ),
            WAIT_S,
        )
        for client in (a, b):
            await client.write_event(AudioStop().event())
        answers = await asyncio.gather(
            read_answer(a, until=("transcript", "error")),
            read_answer(b, until=("transcript", "error")),
        )
        for client in (a, b):
            await client.disconnect()
        assert [x.transcript for x in answers] == ["one two", "three four"]
        third = await transcribe(port, command("five six"))
        assert third.transcript == "five six"
        assert len(emulator.sessions) == 2, "the third request borrowed one of the two"


async def test_the_emulator_keeps_word_times_running_across_turns(
    emulator: EmulatorServer,
) -> None:
    """What the isolation rule relies on, checked against the emulator as the vendor documents
    it: one socket, a final per ``finalize``, a pong while idle, and word times counted from
    the socket's first audio frame, not from each turn's."""

    turn1, turn2 = command("one two"), command("three")
    url = emulator.live_url + "&language=en&word_timestamps=true"
    async with connect(url, additional_headers={"Authorization": f"Bearer {API_KEY}"}) as ws:
        await ws.send(turn1)
        await ws.send(FINALIZE)
        first = (await read_until_final(ws))[-1]
        await ws.send(KEEPALIVE)
        assert await read_json(ws) == {"type": "pong"}
        await ws.send(turn2)
        await ws.send(FINALIZE)
        second = (await read_until_final(ws))[-1]
        await ws.send(CLOSE_STREAM)
    assert (first["transcript"], second["transcript"]) == ("one two", "three")
    assert first["is_last"] is False and second["is_last"] is False
    boundary = len(turn1) / 32000
    assert first["words"][-1]["end"] <= boundary < second["words"][0]["start"]


async def test_a_socket_is_only_lent_to_a_request_with_the_same_options(
    emulator: EmulatorServer,
) -> None:
    """The language (like keywords, rate...) is in the URL that fixes the session."""
    async with serving(services(emulator.pulse_url)) as server:
        port = bridge_port(server)
        await transcribe(port, command("one two"), language="en")
        german = await transcribe(port, command("three"), language="de")
        english = await transcribe(port, command("four"), language="en")
        assert (german.transcript, english.transcript) == ("three", "four")
        assert [r.params["language"] for r in emulator.sessions] == ["en", "de"]
        assert emulator.sessions[0].text_frames_received == [FINALIZE, FINALIZE]
