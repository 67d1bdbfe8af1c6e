"""Each fault mode of the emulator does what its name promises, and only to chosen sessions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus

from tests.emulator.emulator_client import GUARD, read_json, read_until_final
from wyoming_lightning.emulator import FAULT_NAMES, EmulatorConfig, EmulatorServer, Fault
from wyoming_lightning.emulator.faults import FaultPlan
from wyoming_lightning.emulator.tones import encode_phrase, silence

pytestmark = pytest.mark.timeout(30)

AUTH = {"Authorization": "Bearer k"}
FINALIZE = json.dumps({"type": "finalize"})
CLOSE_STREAM = json.dumps({"type": "close_stream"})
UTTERANCE = encode_phrase("one two three")  # 28800 bytes


@pytest.fixture
async def emu() -> AsyncIterator[EmulatorServer]:
    async with EmulatorServer(port=0) as server:
        yield server


def session(url: str) -> Any:
    return connect(url, additional_headers=AUTH)


async def send_audio(ws: ClientConnection, pcm: bytes, chunk: int = 4000) -> None:
    for i in range(0, len(pcm), chunk):
        await ws.send(pcm[i : i + chunk])


async def read_raw_until_closed(ws: ClientConnection) -> list[str]:
    frames: list[str] = []
    async with asyncio.timeout(GUARD):
        async for frame in ws:
            assert isinstance(frame, str)
            frames.append(frame)
    return frames


async def refused_with(url: str) -> InvalidStatus:
    with pytest.raises(InvalidStatus) as refused:
        async with session(url):
            pass
    return refused.value


# Refusals


@pytest.mark.parametrize("name", ["refuse-401", "refuse-403", "refuse-429", "refuse-500"])
async def test_refusals_answer_http_instead_of_101(emu: EmulatorServer, name: str) -> None:
    emu.inject(Fault(name))
    refused = await refused_with(emu.pulse_url)
    assert refused.response.status_code == int(name[-3:])
    retry_after = refused.response.headers.get("Retry-After")
    assert retry_after == ("1" if name == "refuse-429" else None)
    assert emu.sessions[-1].faults == (name,)
    async with session(emu.pulse_url) as ws:  # the next session is healthy
        await ws.send(CLOSE_STREAM)
        await read_raw_until_closed(ws)


async def test_retry_after_is_configurable(emu: EmulatorServer) -> None:
    emu.inject(Fault("refuse-429", retry_after_s=7))
    assert (await refused_with(emu.lightning_url)).response.headers["Retry-After"] == "7"


async def test_slow_accept_delays_the_handshake(emu: EmulatorServer) -> None:
    emu.inject(Fault("slow-accept", delay_ms=500))
    opening = asyncio.create_task(session(emu.pulse_url).__aenter__())
    await emu.wait_for(lambda: len(emu.sessions) == 1, timeout=GUARD)  # the request is in
    assert not opening.done(), "the handshake is held back"
    assert emu.sessions[0].handshake_status is None
    ws = await opening
    assert emu.sessions[0].handshake_status == 101, "and then accepted"
    await ws.send(CLOSE_STREAM)
    assert json.loads((await read_raw_until_closed(ws))[-1])["is_last"] is True


# Faults that end a session


async def test_drop_aborts_without_a_close_frame(emu: EmulatorServer) -> None:
    emu.inject(Fault("drop", after_bytes=8000))
    async with session(emu.pulse_url) as ws:
        with pytest.raises(ConnectionClosedError) as closed:
            await send_audio(ws, UTTERANCE)
            while True:
                assert not (await read_json(ws)).get("is_final")
        assert closed.value.rcvd is None
    await emu.wait_idle(GUARD)
    record = emu.sessions[-1]
    assert record.close_code == 1006 and record.closed_by is None
    assert 8000 <= record.audio_bytes_received < len(UTTERANCE)


@pytest.mark.parametrize(
    ("name", "code", "reason"),
    [("close-1011", 1011, "internal error"), ("close-1008", 1008, "concurrency limit")],
)
async def test_close_faults(emu: EmulatorServer, name: str, code: int, reason: str) -> None:
    emu.inject(Fault(name, after_bytes=8000))
    async with session(emu.pulse_url) as ws:
        with pytest.raises(ConnectionClosedError) as closed:
            await send_audio(ws, UTTERANCE)
            while True:
                assert not (await read_json(ws)).get("is_last")
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (code, reason)


@pytest.mark.parametrize(
    ("name", "shape"),
    [
        ("error-typed", {"type", "error_code", "message"}),
        ("error-status", {"type", "status", "message"}),
        ("error-legacy", {"status", "error"}),
    ],
)
async def test_error_frames_then_1011(emu: EmulatorServer, name: str, shape: set[str]) -> None:
    emu.inject(Fault(name, after_bytes=8000))
    async with session(emu.pulse_url) as ws:
        await send_audio(ws, UTTERANCE)
        frames = [json.loads(f) for f in await read_raw_until_closed_error(ws, 1011)]
    errors = [f for f in frames if f.get("type") == "error" or f.get("status") == "error"]
    assert len(errors) == 1 and set(errors[0]) == shape and errors[0] is frames[-1]
    if name == "error-typed":
        assert errors[0]["error_code"] == "LANGUAGE_NOT_ENABLED_IN_REGION"
    if name == "error-legacy":
        assert set(errors[0]["error"]) == {"message", "code"}


async def read_raw_until_closed_error(ws: ClientConnection, code: int) -> list[str]:
    frames: list[str] = []
    with pytest.raises(ConnectionClosedError) as closed:
        async with asyncio.timeout(GUARD):
            while True:
                frame = await ws.recv()
                assert isinstance(frame, str)
                frames.append(frame)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == code
    return frames


async def test_terminal_faults_fire_at_the_end_signal_when_audio_is_short(
    emu: EmulatorServer,
) -> None:
    emu.inject(Fault("close-1011"))  # after 16000 bytes by default
    async with session(emu.lightning_url) as ws:
        await send_audio(ws, encode_phrase("one"))  # 6400 bytes
        await ws.send(json.dumps({"type": "end"}))
        frames = [json.loads(f) for f in await read_raw_until_closed_error(ws, 1011)]
    assert not any(f.get("is_last") for f in frames)


async def test_after_bytes_zero_fires_right_after_the_handshake(emu: EmulatorServer) -> None:
    emu.inject(Fault("error-status", after_bytes=0))
    async with session(emu.pulse_url) as ws:
        frames = await read_raw_until_closed_error(ws, 1011)
    assert [json.loads(f)["type"] for f in frames] == ["error"]


# Faults that garble or withhold results


async def test_invalid_json_sends_garbage_and_never_is_last(emu: EmulatorServer) -> None:
    emu.inject(Fault("invalid-json", after_bytes=8000))
    async with session(emu.pulse_url) as ws:
        await send_audio(ws, UTTERANCE)
        await ws.send(CLOSE_STREAM)
        frames = await read_raw_until_closed(ws)
        assert ws.close_code == 1000
    parsed: list[dict[str, Any]] = []
    garbage = 0
    for frame in frames:
        try:
            parsed.append(json.loads(frame))
        except ValueError:
            garbage += 1
    assert garbage >= 2  # once at the threshold, and in place of the last final
    assert not any(m.get("is_last") for m in parsed)


async def test_stall_never_answers(emu: EmulatorServer) -> None:
    emu.inject(Fault("stall"))
    async with session(emu.pulse_url) as ws:
        await send_audio(ws, UTTERANCE + silence(1000))
        await ws.send(FINALIZE)
        await ws.send(CLOSE_STREAM)
    await emu.wait_idle(GUARD)
    record = emu.sessions[-1]
    assert record.text_frames_received == [FINALIZE, CLOSE_STREAM]  # it did read them
    assert record.frames_sent == []
    assert record.closed_by == "client"


async def test_stall_answers_no_ping_either(emu: EmulatorServer) -> None:
    """A hung service is silent at every level: a client's ping gets no pong (a healthy
    session's does, and it came before the close, which follows it on the wire)."""
    emu.inject(Fault("stall"))
    async with session(emu.pulse_url) as stalled, session(emu.pulse_url) as healthy:
        await send_audio(stalled, UTTERANCE)
        unanswered = await stalled.ping()
        answered = await healthy.ping()
        async with asyncio.timeout(GUARD):
            await answered
        await stalled.close()
        await healthy.close()
    assert unanswered.done(), "the close ends the wait"
    with pytest.raises(ConnectionClosed):
        unanswered.result()  # no pong came before the close: the wait ended without one


@pytest.mark.parametrize("end", [FINALIZE, CLOSE_STREAM])
async def test_slow_holds_the_final_back_with_interims_meanwhile(
    emu: EmulatorServer, end: str
) -> None:
    emu.inject(Fault("slow", delay_ms=3000))
    async with session(emu.pulse_url) as ws:
        await send_audio(ws, UTTERANCE)
        sent_before = len(emu.sessions[-1].messages_sent)
        await ws.send(end)
        pong = await ws.ping()
        async with asyncio.timeout(GUARD):
            await pong  # the session is alive, and answers pings, while it is slow
        messages = await read_until_final(ws)
        assert messages[-1]["transcript"] == "one two three"
    await emu.wait_idle(GUARD)
    record = emu.sessions[-1]
    held = record.messages_sent[sent_before:]
    waiting = held[: held.index(messages[-1])]
    assert not any(m["is_final"] for m in waiting)
    repeats = [m for m in waiting if m["transcript"] == "one two three"]
    assert repeats, "interims kept coming while the final was held back"


async def test_a_held_answer_does_not_stop_the_session_reading(emu: EmulatorServer) -> None:
    """While the first final is held back, the session reads the next turn and its finalize;
    the finals then come in order, the second never before the first."""
    emu.inject(Fault("slow", delay_ms=3000))
    async with session(emu.pulse_url) as ws:
        await send_audio(ws, UTTERANCE + silence(300))
        await ws.send(FINALIZE)
        await send_audio(ws, encode_phrase("seven") + silence(300))
        await ws.send(FINALIZE)
        record = emu.sessions[-1]
        await emu.wait_for(lambda: record.text_frames_received == [FINALIZE, FINALIZE], GUARD)
        assert record.finals == [], "both turns were read while the first answer was held"
        first = (await read_until_final(ws))[-1]
        second = (await read_until_final(ws))[-1]
        await ws.send(CLOSE_STREAM)
    assert (first["transcript"], second["transcript"]) == ("one two three", "seven")


async def test_duplicate_final_after_finalize(emu: EmulatorServer) -> None:
    emu.inject(Fault("duplicate-final"))
    async with session(emu.pulse_url) as ws:
        await send_audio(ws, UTTERANCE)
        await ws.send(FINALIZE)
        first = (await read_until_final(ws))[-1]
        second = await read_json(ws)
        await ws.send(CLOSE_STREAM)
        last = [json.loads(f) for f in await read_raw_until_closed(ws)]
    assert first == second
    assert (first["transcript"], first["from_finalize"]) == ("one two three", True)
    assert [m["is_last"] for m in last] == [True]  # the last final is never doubled


async def test_duplicate_final_at_server_eou_looks_like_a_racing_finalize(
    emu: EmulatorServer,
) -> None:
    emu.inject(Fault("duplicate-final"))
    async with session(emu.pulse_url) as ws:
        await send_audio(ws, UTTERANCE + silence(1000))
        first = (await read_until_final(ws))[-1]
        second = await read_json(ws)
    assert first["from_finalize"] is False and second["from_finalize"] is True
    assert first["transcript"] == second["transcript"] == "one two three"
    assert second["is_final"] is True


async def test_late_interim_repeats_the_final_text(emu: EmulatorServer) -> None:
    emu.inject(Fault("late-interim"))
    async with session(emu.lightning_url) as ws:
        await send_audio(ws, UTTERANCE + silence(1000))
        final = (await read_until_final(ws))[-1]
        late = await read_json(ws)
    assert final["transcript"] == "one two three"
    assert (late["transcript"], late["is_final"], late["is_last"]) == (
        "one two three",
        False,
        False,
    )


# Who gets the faults


async def test_inject_count_limits_the_sessions_affected(emu: EmulatorServer) -> None:
    emu.inject(Fault("refuse-500"), count=2)
    for _ in range(2):
        assert (await refused_with(emu.pulse_url)).response.status_code == 500
    async with session(emu.pulse_url) as ws:
        await ws.send(CLOSE_STREAM)
        await read_raw_until_closed(ws)
    assert [r.faults for r in emu.sessions] == [("refuse-500",), ("refuse-500",), ()]


async def test_rejected_handshakes_do_not_use_up_injected_faults(emu: EmulatorServer) -> None:
    emu.inject(Fault("refuse-403"))
    with pytest.raises(InvalidStatus):
        async with connect(emu.pulse_url):  # no key: 401, before faults are drawn
            pass
    assert (await refused_with(emu.pulse_url)).response.status_code == 403


async def test_configured_faults_with_count() -> None:
    config = EmulatorConfig(faults=(Fault("refuse-403"),), fault_count=1)
    async with EmulatorServer(config, port=0) as server:
        assert (await refused_with(server.pulse_url)).response.status_code == 403
        async with session(server.pulse_url) as ws:
            await ws.send(CLOSE_STREAM)
            await read_raw_until_closed(ws)


def test_fault_rate_is_reproducible_with_a_seed() -> None:
    def pattern(seed: int) -> list[bool]:
        plan = FaultPlan([Fault("drop")], rate=0.5, seed=seed)
        return [bool(plan.draw().faults) for _ in range(40)]

    assert pattern(7) == pattern(7)
    assert 5 < sum(pattern(7)) < 35
    assert not any(FaultPlan([Fault("drop")], rate=0.0).draw().faults for _ in range(20))


def test_fault_names_are_validated() -> None:
    assert "drop" in FAULT_NAMES and len(FAULT_NAMES) == 20
    with pytest.raises(ValueError, match="unknown fault"):
        Fault("explode")
