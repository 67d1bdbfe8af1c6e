"""The cloud side failing: every emulator fault, over real sockets, as Home Assistant sees it.

Each test runs the real bridge on loopback against the emulator with one fault injected, checks
exactly what the Wyoming client received (the transcript, or an ``error`` with its stable code,
and the connection closed), how many sessions the service saw, that no session was left open,
and that the next request on the same bridge still succeeds.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from itertools import pairwise

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from tests.kit.bridge import (
    Answer,
    bridge_port,
    bridge_settings,
    read_answer,
    running_bridge,
    transcribe,
)
from wyoming_lightning.emulator import EmulatorServer, Fault, SessionRecord
from wyoming_lightning.emulator.tones import encode_phrase, silence
from wyoming_lightning.settings.config import Settings
from wyoming_lightning.wyoming.server import WyomingServer

LONG = "one two three four five six seven eight nine"
LONG_PCM = encode_phrase(LONG)  # 2.6 s, 83200 bytes
MIDDLE = len(LONG_PCM) // 2
# Three commands with 1.5 s pauses: the webrtc gate makes three utterances of them. No word
# repeats, so a duplicated or lost utterance always shows in the transcript.
U0, U1, U2 = "one two three", "four five six seven eight", "zero nine"
THREE = f"{U0} {U1} {U2}"
NEXT = "seven eight nine"
WAIT_S = 10.0  # bound on every wait for the emulator; never reached when the bridge is right


def utterances_pcm() -> bytes:
    return (
        silence(400)
        + encode_phrase(U0)
        + silence(1500)
        + encode_phrase(U1)
        + silence(1500)
        + encode_phrase(U2)
        + silence(800)
    )


def settings(url: str, **overrides: object) -> Settings:
    """Small timeouts so that every failing case ends in a second or two."""
    values: dict[str, object] = {
        "retries": 2,
        "connect_timeout_s": 0.5,
    }
    values.update(overrides)
    return bridge_settings(url, **values)


def url_of(emulator: EmulatorServer, dialect: str) -> str:
    return emulator.pulse_url if dialect == "pulse" else emulator.lightning_url


@pytest.fixture(autouse=True)
async def nothing_left_open(emulator: EmulatorServer) -> AsyncIterator[None]:
    yield
    await emulator.wait_idle(WAIT_S)
    assert emulator.active_sessions == 0


def assert_transcript(answer: Answer, text: str) -> None:
    assert answer.error is None, answer.events
    assert answer.transcript == text, answer.events
    assert answer.closed, "the bridge closes the connection after answering"
    types = answer.types
    assert types[0] == "transcript-start", types
    assert types[-2:] == ["transcript", "transcript-stop"], types
    chunks = "".join(e.data["text"] for e in answer.of("transcript-chunk"))
    assert chunks == text, "each settled utterance is streamed once, none twice"


def assert_error(answer: Answer, code: str) -> str:
    assert answer.types == ["error"], answer.events
    assert answer.error is not None and answer.error.data["code"] == code, answer.events
    assert answer.closed, "after an error the bridge hangs up, or Home Assistant waits 300 s"
    text: str = answer.error.data["text"]
    return text


async def next_request_succeeds(server: WyomingServer, emulator: EmulatorServer) -> None:
    """No session of the failed request is still open, and a clean request works."""
    await emulator.wait_idle(WAIT_S)
    emulator.clear_faults()
    before = len(emulator.sessions)
    answer = await transcribe(bridge_port(server), encode_phrase(NEXT))
    assert_transcript(answer, NEXT)
    assert len(emulator.sessions) == before + 1
    assert emulator.sessions[-1].faults == ()


Step = bytes | Callable[[], Awaitable[object]]


async def transcribe_in_steps(port: int, steps: Sequence[Step]) -> Answer:
    """Like Home Assistant (10 ms chunks, then audio-stop, then read), pausing where a step is a
    coroutine function: the test waits there for the service side to reach a given state."""
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    try:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        for step in steps:
            if isinstance(step, bytes):
                for i in range(0, len(step), 320):
                    await client.write_event(AudioChunk(16000, 2, 1, step[i : i + 320]).event())
            else:
                await step()
        await client.write_event(AudioStop().event())
        return await read_answer(client, until=("transcript", "error"))
    finally:
        await client.disconnect()


def garbage(record: SessionRecord) -> list[str]:
    """Text frames the emulator sent that are not JSON."""
    out = []
    for frame in record.frames_sent:
        try:
            json.loads(frame)
        except ValueError:
            out.append(frame)
    return out


def words_of(record: SessionRecord) -> list[str]:
    return record.transcript.split()


# ---------------------------------------------------------------------------- refusals


async def test_refuse_401_is_an_auth_error_without_retry(emulator: EmulatorServer) -> None:
    async with running_bridge(settings(emulator.pulse_url)) as server:
        emulator.inject(Fault("refuse-401"), count=None)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        assert "401" in assert_error(answer, "auth")
        assert [s.handshake_status for s in emulator.sessions] == [401], "a bad key: no retry"
        await next_request_succeeds(server, emulator)


async def test_refuse_403_is_a_quota_error_without_retry(emulator: EmulatorServer) -> None:
    async with running_bridge(settings(emulator.lightning_url)) as server:
        emulator.inject(Fault("refuse-403"), count=None)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        assert "403" in assert_error(answer, "quota")
        assert [s.handshake_status for s in emulator.sessions] == [403]
        await next_request_succeeds(server, emulator)


async def test_refuse_429_once_is_retried_after_retry_after(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wyoming_lightning")
    async with running_bridge(settings(emulator.pulse_url)) as server:
        emulator.inject(Fault("refuse-429", retry_after_s=1), count=1)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        assert_transcript(answer, LONG)
        assert [s.handshake_status for s in emulator.sessions] == [429, 101]
        assert emulator.sessions[1].audio_bytes_received == len(LONG_PCM), "all replayed"
        # The first backoff is 0.5 s: waiting 1.0 s means the Retry-After header was honoured.
        assert "(HTTP 429); retrying in 1.0 s" in caplog.text
        await next_request_succeeds(server, emulator)


async def test_refuse_429_always_ends_rate_limited(emulator: EmulatorServer) -> None:
    async with running_bridge(settings(emulator.pulse_url, retries=1)) as server:
        emulator.inject(Fault("refuse-429", retry_after_s=0), count=None)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        assert_error(answer, "rate_limited")
        assert [s.handshake_status for s in emulator.sessions] == [429, 429]
        await next_request_succeeds(server, emulator)


async def test_refuse_500_once_is_retried(emulator: EmulatorServer) -> None:
    async with running_bridge(settings(emulator.lightning_url)) as server:
        emulator.inject(Fault("refuse-500"), count=1)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        assert_transcript(answer, LONG)
        assert [s.handshake_status for s in emulator.sessions] == [500, 101]
        await next_request_succeeds(server, emulator)


@pytest.mark.parametrize("fault", ["refuse-500", "drop"])
async def test_retries_are_bounded(emulator: EmulatorServer, fault: str) -> None:
    """--retries 2: one try and two retries, then an error; never a fourth session."""
    async with running_bridge(settings(emulator.pulse_url, retries=2)) as server:
        emulator.inject(Fault(fault, after_bytes=0), count=None)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        assert_error(answer, "upstream")
        assert len(emulator.sessions) == 3
        assert all(s.faults == (fault,) for s in emulator.sessions)
        await next_request_succeeds(server, emulator)


# ---------------------------------------------------------------------------- slow handshake


async def test_slow_accept_once_is_retried(emulator: EmulatorServer) -> None:
    async with running_bridge(settings(emulator.pulse_url, connect_timeout_s=0.3)) as server:
        emulator.inject(Fault("slow-accept", delay_ms=5000), count=1)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        assert_transcript(answer, LONG)
        assert [s.faults for s in emulator.sessions] == [("slow-accept",), ()]
        assert emulator.sessions[0].audio_bytes_received == 0, "it was never used"
        await next_request_succeeds(server, emulator)


async def test_slow_accept_always_ends_in_timeout(emulator: EmulatorServer) -> None:
    async with running_bridge(
        settings(emulator.lightning_url, connect_timeout_s=0.3, retries=1)
    ) as server:
        emulator.inject(Fault("slow-accept", delay_ms=5000), count=None)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        assert "connect" in assert_error(answer, "timeout")
        assert len(emulator.sessions) == 2
        await next_request_succeeds(server, emulator)


# ---------------------------------------------------------------------------- mid-stream losses


@pytest.mark.parametrize("dialect", ["lightning", "pulse"])
@pytest.mark.parametrize("fault", ["drop", "close-1011"])
async def test_mid_stream_loss_replays_one_utterance(
    emulator: EmulatorServer, fault: str, dialect: str
) -> None:
    """VAD off: one long utterance cut in the middle is replayed whole, no word lost or doubled."""
    async with running_bridge(settings(url_of(emulator, dialect))) as server:
        emulator.inject(Fault(fault, after_bytes=MIDDLE), count=1)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        assert_transcript(answer, LONG)
        first, replay = emulator.sessions
        assert first.faults == (fault,)
        assert first.close_code == (1006 if fault == "drop" else 1011)
        assert MIDDLE <= first.audio_bytes_received < len(LONG_PCM), "cut mid-stream"
        assert replay.audio_bytes_received == len(LONG_PCM), "replayed from the start"
        assert replay.transcript == LONG
        await next_request_succeeds(server, emulator)


@pytest.mark.parametrize("dialect", ["lightning", "pulse"])
@pytest.mark.parametrize("fault", ["drop", "close-1011"])
async def test_mid_stream_loss_keeps_settled_utterances(
    emulator: EmulatorServer, fault: str, dialect: str
) -> None:
    """webrtc VAD, three utterances: the connection is lost in the middle of the second, after
    the first was settled. The first is neither replayed nor repeated; the second is replayed."""
    pcm0 = silence(400) + encode_phrase(U0) + silence(1500)
    rest = encode_phrase(U1) + silence(1500) + encode_phrase(U2) + silence(800)
    # The gate sends U0 as 0.3 s pre-roll + 0.8 s + 0.5 s hangover (51 kB); cut 1 s into U1.
    after = 51200 + 32000

    async def first_settled() -> None:
        def settled() -> bool:
            if not emulator.sessions:
                return False
            record = emulator.sessions[0]
            if dialect == "lightning":
                return record.closed  # one session per utterance: it ended with is_last
            return any(m["transcript"] == U0 for m in record.finals)

        await emulator.wait_for(settled, WAIT_S)
        assert emulator.sessions[0].transcript == U0
        if dialect == "lightning":
            # Lightning opens one session per utterance: cut the next one (U1's).
            emulator.inject(Fault(fault, after_bytes=MIDDLE // 2), count=1)
        else:
            assert emulator.sessions[0].audio_bytes_received < after, "not cut yet"

    if dialect == "pulse":
        emulator.inject(Fault(fault, after_bytes=after), count=1)
    async with running_bridge(settings(url_of(emulator, dialect), vad="webrtc")) as server:
        answer = await transcribe_in_steps(bridge_port(server), [pcm0, first_settled, rest])
        assert_transcript(answer, THREE)
        faulted = [s for s in emulator.sessions if s.faults]
        assert len(faulted) == 1 and faulted[0].close_code == (1006 if fault == "drop" else 1011)
        # Pulse: the one session had settled U0 only; Lightning: U1's session, cut before its final.
        assert faulted[0].transcript == (U0 if dialect == "pulse" else ""), "cut mid-U1"
        later = emulator.sessions[emulator.sessions.index(faulted[0]) + 1 :]
        assert later, "the lost audio went up again"
        for record in later:
            assert not set(U0.split()) & set(words_of(record)), "settled audio is not replayed"
        replayed = sorted(w for r in later for w in words_of(r))
        assert replayed == sorted(f"{U1} {U2}".split()), "each lost word went up once more"
        if dialect == "pulse":
            assert len(emulator.sessions) == 2
        await next_request_succeeds(server, emulator)


async def test_close_1008_is_retried(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="wyoming_lightning")
    async with running_bridge(settings(emulator.pulse_url)) as server:
        emulator.inject(Fault("close-1008", after_bytes=MIDDLE), count=1)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        assert_transcript(answer, LONG)
        assert [s.close_code for s in emulator.sessions] == [1008, 1000]
        assert "(close 1008); retrying in 1.0 s" in caplog.text, "1008 waits a second"
        await next_request_succeeds(server, emulator)


async def test_simultaneous_losses_cost_one_retry(emulator: EmulatorServer) -> None:
    """Lightning opens a session per utterance; when both stall, their settle timers run out
    together: that is one outage, and the one retry allowed must still be made."""
    pcm = silence(400) + encode_phrase(U0) + silence(1500) + encode_phrase(U1) + silence(800)
    overrides = {"vad": "webrtc", "retries": 1, "stall_timeout_s": 0.5}
    async with running_bridge(settings(emulator.lightning_url, **overrides)) as server:
        emulator.inject(Fault("stall"), count=2)
        answer = await transcribe(bridge_port(server), pcm)
        assert_transcript(answer, f"{U0} {U1}")
        assert [s.faults for s in emulator.sessions] == [("stall",), ("stall",), (), ()]
        retried = sorted(words_of(emulator.sessions[2]) + words_of(emulator.sessions[3]))
        assert retried == sorted(f"{U0} {U1}".split()), "both utterances went up again, once"
        await next_request_succeeds(server, emulator)


# ---------------------------------------------------------------------------- error frames


async def test_error_typed_language_is_not_retried(emulator: EmulatorServer) -> None:
    async with running_bridge(settings(emulator.pulse_url)) as server:
        emulator.inject(Fault("error-typed", after_bytes=MIDDLE), count=None)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        assert "not enabled in this region" in assert_error(answer, "language")
        assert len(emulator.sessions) == 1, "another try cannot serve the language either"
        await next_request_succeeds(server, emulator)


@pytest.mark.parametrize("fault", ["error-status", "error-legacy"])
async def test_error_frames_are_retried(emulator: EmulatorServer, fault: str) -> None:
    async with running_bridge(settings(emulator.lightning_url)) as server:
        emulator.inject(Fault(fault, after_bytes=MIDDLE), count=1)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        assert_transcript(answer, LONG)
        first, replay = emulator.sessions
        assert first.faults == (fault,)
        assert json.loads(first.frames_sent[-1])["status"] == "error", "the error frame came"
        assert replay.transcript == LONG
        await next_request_succeeds(server, emulator)


# ---------------------------------------------------------------------------- garbage and silence


async def test_invalid_json_is_survived_then_retried(emulator: EmulatorServer) -> None:
    """Garbage frames are skipped; with no is_last the session failed, and is retried."""
    async with running_bridge(settings(emulator.lightning_url, stall_timeout_s=0.5)) as server:
        emulator.inject(Fault("invalid-json", after_bytes=MIDDLE), count=1)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        assert_transcript(answer, LONG)
        first, replay = emulator.sessions
        assert first.faults == ("invalid-json",) and first.finals == []
        assert len(garbage(first)) >= 2, "garbage came, the final and is_last only as garbage"
        assert replay.transcript == LONG
        await next_request_succeeds(server, emulator)


@pytest.mark.parametrize("fault", ["invalid-json", "stall"])
async def test_settle_timer_replaces_a_session_that_never_answers(
    emulator: EmulatorServer, fault: str
) -> None:
    """Pulse keeps the socket open after ``finalize``: only the stall timer (--stall-timeout)
    can tell that the final will never come (garbage frames and unanswered pings are no
    progress). While the client still streams, the bridge gives up on the session, opens
    another, replays, and the answer is complete."""
    first_part = silence(400) + encode_phrase(U0) + silence(1500)
    rest = encode_phrase(U1) + silence(800)

    async def replaced() -> None:
        await emulator.wait_for(lambda: len(emulator.sessions) >= 2, WAIT_S)
        first = emulator.sessions[0]
        assert first.text_frames_received == ['{"type": "finalize"}']
        assert first.finals == [], "no final ever came"

    emulator.inject(Fault(fault, after_bytes=0), count=1)
    overrides = {"vad": "webrtc", "stall_timeout_s": 0.5}
    async with running_bridge(settings(emulator.pulse_url, **overrides)) as server:
        answer = await transcribe_in_steps(bridge_port(server), [first_part, replaced, rest])
        assert_transcript(answer, f"{U0} {U1}")
        first, replay = emulator.sessions
        assert first.closed_by == "client", "the bridge closed the silent session"
        assert replay.transcript == f"{U0} {U1}"
        await next_request_succeeds(server, emulator)


async def test_stall_once_is_retried(emulator: EmulatorServer) -> None:
    async with running_bridge(settings(emulator.lightning_url, stall_timeout_s=0.5)) as server:
        emulator.inject(Fault("stall"), count=1)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        assert_transcript(answer, LONG)
        first, replay = emulator.sessions
        assert first.audio_bytes_received == len(LONG_PCM) and first.frames_sent == []
        assert first.closed_by == "client"
        assert replay.transcript == LONG
        await next_request_succeeds(server, emulator)


@pytest.mark.parametrize(
    ("dialect", "stall_timeout_s"), [("pulse", None), ("lightning", 0.5)], ids=str
)
async def test_a_complete_stall_is_answered_after_one_replacement(
    emulator: EmulatorServer,
    dialect: str,
    stall_timeout_s: float | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every session stalls (no message, no pong): the --stall-timeout detects it (the default
    2 s once, a short one for the other dialect), one replacement is tried (the retry budget is
    per request, not per failure), then the answer is a clear ``timeout`` error and the log
    says why."""
    caplog.set_level(logging.INFO, logger="wyoming_lightning")
    shorter = {} if stall_timeout_s is None else {"stall_timeout_s": stall_timeout_s}
    async with running_bridge(settings(url_of(emulator, dialect), retries=10, **shorter)) as server:
        emulator.inject(Fault("stall"), count=None)
        answer = await transcribe(bridge_port(server), LONG_PCM)
        text = assert_error(answer, "timeout")
        assert "stopped answering" in text
        assert f"no progress for {stall_timeout_s or 2:g} s" in text
        assert [s.faults for s in emulator.sessions] == [("stall",), ("stall",)]
        assert [s.audio_bytes_received for s in emulator.sessions] == [len(LONG_PCM)] * 2
        assert "request failed (timeout): the service stopped answering" in caplog.text
        await next_request_succeeds(server, emulator)


# ---------------------------------------------------------------------------- repeated results


def repeated_finals(record: SessionRecord) -> int:
    """Finals the emulator sent twice in a row (the copy may differ in ``from_finalize``)."""
    texts = [m["transcript"] for m in record.finals]
    return sum(1 for a, b in pairwise(texts) if a == b)


def late_interims(record: SessionRecord) -> int:
    """Interims that repeated the final just before them."""
    sent = record.messages_sent
    pairs = pairwise(sent)
    return sum(
        1
        for a, b in pairs
        if a.get("is_final") and not b.get("is_final") and a["transcript"] == b["transcript"]
    )


async def test_duplicate_finals_are_counted_once(emulator: EmulatorServer) -> None:
    """Pulse, webrtc, three utterances: every finalize answer comes twice. The copy of one
    utterance's answer must not be taken for the answer to the next finalize."""
    async with running_bridge(settings(emulator.pulse_url, vad="webrtc")) as server:
        emulator.inject(Fault("duplicate-final"), count=1)
        answer = await transcribe(bridge_port(server), utterances_pcm())
        assert_transcript(answer, THREE)
        (record,) = emulator.sessions
        assert record.text_frames_received.count('{"type": "finalize"}') >= 2
        assert repeated_finals(record) >= 2, "the emulator did repeat the finals"
        await next_request_succeeds(server, emulator)


async def test_the_server_is_asked_not_to_cut_the_command_at_a_pause(
    emulator: EmulatorServer,
) -> None:
    """VAD off: a 1.5 s pause inside the command. The service would end the turn there on its
    own (its default since 2026-07-12); the bridge asks it not to, so the one turn is answered
    once, at close_stream, even with every other final duplicated."""
    pcm = encode_phrase(U0) + silence(1500) + encode_phrase(U1) + silence(300)
    async with running_bridge(settings(emulator.pulse_url)) as server:
        emulator.inject(Fault("duplicate-final"), count=1)
        answer = await transcribe(bridge_port(server), pcm)
        assert_transcript(answer, f"{U0} {U1}")
        (record,) = emulator.sessions
        assert record.params["endpointing"] == "false"
        assert '{"type": "finalize"}' not in record.text_frames_received
        assert [m["is_last"] for m in record.finals] == [True]
        await next_request_succeeds(server, emulator)


async def test_late_interims_add_nothing_pulse(emulator: EmulatorServer) -> None:
    """Pulse, webrtc, three utterances: an interim repeating each finalize answer."""
    async with running_bridge(settings(emulator.pulse_url, vad="webrtc")) as server:
        emulator.inject(Fault("late-interim"), count=1)
        answer = await transcribe(bridge_port(server), utterances_pcm())
        assert_transcript(answer, THREE)
        (record,) = emulator.sessions
        assert late_interims(record) >= 2, "the emulator did send an interim after the finals"
        await next_request_succeeds(server, emulator)


async def test_late_interim_after_a_server_end_of_utterance_lightning(
    emulator: EmulatorServer,
) -> None:
    """Lightning, VAD off: the server settles the first command on its own, then repeats it as
    an interim; the late interim must not bleed into the rest of the utterance."""
    pcm = encode_phrase(U0) + silence(1500) + encode_phrase(U1) + silence(300)
    async with running_bridge(settings(emulator.lightning_url)) as server:
        emulator.inject(Fault("late-interim"), count=1)
        answer = await transcribe(bridge_port(server), pcm)
        assert_transcript(answer, f"{U0} {U1}")
        (record,) = emulator.sessions
        assert late_interims(record) == 1
        await next_request_succeeds(server, emulator)
