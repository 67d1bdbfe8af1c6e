"""A stream's audio read a few chunks at a time while someone speaks (``--read-batch-ms``).

The server, a client pacing its 10 ms chunks as a microphone does (the pacing models the
client; it synchronises nothing) and the emulator, over real sockets: with the cadence on, the
server reads the speech of a client known to stop only in a pause in fewer arrivals than chunks
and answers the same words; with it off (0), it reads each chunk as it comes. A client not yet
known, one that last stopped while the VAD heard speech, and one that sends faster than real
time are never made to wait. Whether reading late can move a decision: test_read_late.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart

from tests.kit.bridge import (
    bridge_port,
    bridge_settings,
    read_raw_answer,
    running_bridge,
    transcribe,
)
from wyoming_lightning.emulator import EmulatorServer, Fault
from wyoming_lightning.emulator.tones import encode_phrase, silence
from wyoming_lightning.ops.stop_habits import TRUSTED_AFTER
from wyoming_lightning.wyoming.server import WyomingServer
from wyoming_lightning.wyoming.wire import encode_event

PHRASE = "four five six"
LONG = "one two three four five six seven eight nine"
READ = re.compile(r"read in (\d+) arrival\(s\), (\d+) after waiting for more")


def reads_of(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    found = READ.findall(caplog.text)
    assert len(found) == 1, caplog.text
    arrivals, waits = found[0]
    return int(arrivals), int(waits)


async def send(port: int, pcm: bytes, *, realtime: bool = False) -> str | None:
    answer = await transcribe(port, pcm, chunk_ms=10, realtime=realtime)
    return answer.transcript


@contextlib.asynccontextmanager
async def trusted_by(
    emulator: EmulatorServer, pcm: bytes, text: str, batch_ms: int = 100
) -> AsyncIterator[tuple[WyomingServer, int]]:
    """A server (webrtc, ``--read-batch-ms batch_ms``) that has seen this client stop in a
    pause often enough to trust it: ``pcm`` sent at full speed (where a client stops is what
    counts), each answered ``text``."""
    settings = bridge_settings(emulator.pulse_url, vad="webrtc", read_batch_ms=batch_ms)
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        for _ in range(TRUSTED_AFTER):
            assert await send(port, pcm) == text
        yield server, port


@pytest.mark.parametrize("batch_ms", [100, 0])
async def test_speech_read_in_batches_answers_the_same_words(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture, batch_ms: int
) -> None:
    """A client that has stopped in pauses often enough then streams in real time: its speech
    is read in batches, the same words."""
    pcm = silence(300) + encode_phrase(PHRASE) + silence(1000)
    chunks = len(pcm) // 320
    async with trusted_by(emulator, pcm, PHRASE, batch_ms) as (_server, port):
        caplog.set_level(logging.DEBUG, logger="wyoming_lightning")
        assert await send(port, pcm, realtime=True) == PHRASE
    arrivals, waits = reads_of(caplog)
    if batch_ms:
        assert waits > 0, "the speech was read after waiting for more"
        # Each wait leaves at least one more chunk in the socket for the next arrival.
        assert arrivals < chunks
    else:
        assert waits == 0
        assert arrivals >= chunks, "each chunk read as it came"


@pytest.mark.parametrize("stops", ["new client", "stopped in speech last time"])
async def test_a_client_that_may_stop_in_speech_is_read_as_it_sends(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture, stops: str
) -> None:
    """Its audio-stop could come while the VAD hears speech, and would wait in the socket: a
    client is read in batches only once it has shown it stops in a pause, and not after it
    stopped in speech (until it has stopped in a pause often enough in a row again)."""
    in_pause = silence(300) + encode_phrase(PHRASE) + silence(1000)
    in_speech = silence(300) + encode_phrase(PHRASE)  # the stop right after the last tone
    settings = bridge_settings(emulator.pulse_url, vad="webrtc", read_batch_ms=100)
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        if stops == "stopped in speech last time":
            for _ in range(TRUSTED_AFTER):
                assert await send(port, in_pause) == PHRASE
            assert await send(port, in_speech) == PHRASE
        caplog.set_level(logging.DEBUG, logger="wyoming_lightning")
        assert await send(port, in_pause, realtime=True) == PHRASE
    _arrivals, waits = reads_of(caplog)
    assert waits == 0


async def test_a_client_faster_than_real_time_is_never_made_to_wait(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    pcm = silence(300) + encode_phrase(LONG) + silence(1000)
    async with trusted_by(emulator, pcm, LONG) as (_server, port):
        caplog.set_level(logging.DEBUG, logger="wyoming_lightning")
        # Chunks of a second, written at once: each arrival is more than two batches of audio.
        answer = await transcribe(port, pcm, chunk_ms=1000)
    assert answer.transcript == LONG
    _arrivals, waits = reads_of(caplog)
    assert waits == 0


@pytest.mark.parametrize("fault", ["drop", "slow"])
async def test_a_service_that_drops_or_crawls_loses_nothing_read_late(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture, fault: str
) -> None:
    """The service drops the socket in the middle of speech read in batches (the audio sent
    must go up again), or answers the finalize 1.5 s late with interims meanwhile: the answer
    holds every word."""
    pcm = silence(300) + encode_phrase(LONG) + silence(1000)
    async with trusted_by(emulator, pcm, LONG) as (_server, port):
        caplog.set_level(logging.DEBUG, logger="wyoming_lightning")
        emulator.inject(Fault(fault, after_bytes=32000, delay_ms=1500), count=1)
        assert await send(port, pcm, realtime=True) == LONG
    _arrivals, waits = reads_of(caplog)
    assert waits > 0, "the speech was read after waiting for more"
    assert any(fault in s.faults for s in emulator.sessions), "the fault was met"


async def test_a_trusted_client_that_turns_hostile_mid_speech_frees_its_slot(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A client trusted to stop in pauses sends a broken event while its speech waits in the
    socket, and another vanishes in the middle of its speech: the first gets a clear error, and
    neither holds anything (the server is idle after, and serves the next request)."""
    pcm = silence(300) + encode_phrase(LONG) + silence(1000)
    async with trusted_by(emulator, pcm, LONG) as (server, port):
        speech = pcm[: len(pcm) // 2]  # the lead and half the words

        caplog.set_level(logging.DEBUG, logger="wyoming_lightning")
        reader, writer = await start_paced(port, speech)
        writer.write(b"{not json at all\n")
        answer = await read_raw_answer(reader)
        writer.close()
        assert answer.error is not None and answer.error.data["code"] == "bad_request"
        assert str(answer.error.data["text"]).startswith("malformed event")

        _reader, gone = await start_paced(port, speech)
        gone.transport.abort()  # mid-speech, no audio-stop

        await server.wait_idle()
        assert server.active_connections == 0
        assert await send(port, pcm) == LONG
    broken_waits = int(READ.findall(caplog.text)[0][1])
    assert broken_waits > 0, "the broken event came while its speech was read in batches"


async def start_paced(port: int, pcm: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A request on a raw socket whose audio goes in 10 ms chunks paced as a microphone (no
    audio-stop): the caller goes on with bytes no Wyoming client would write."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(encode_event(Transcribe(language="en").event()))
    writer.write(encode_event(AudioStart(rate=16000, width=2, channels=1).event()))
    for i in range(0, len(pcm), 320):
        writer.write(encode_event(AudioChunk(16000, 2, 1, pcm[i : i + 320]).event()))
        await writer.drain()
        await asyncio.sleep(0.01)  # the client's pace, not a synchronisation
    return reader, writer
