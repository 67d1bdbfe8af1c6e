"""A stream's audio read a few chunks at a time while someone speaks (``--read-batch-ms``).

The server, a client pacing its 10 ms chunks as a microphone does (the pacing models the
client; it synchronises nothing) and the emulator, over real sockets: with the cadence on, the
server reads the speech of a client known to stop only in a pause in fewer arrivals than chunks
and answers the same words; with it off (0), it reads each chunk as it comes. A client not yet
known, one that last stopped while the VAD heard speech, and one that sends faster than real
time are never made to wait. Whether reading late can move a decision: test_read_late.py.
"""

from __future__ import annotations

import logging
import re

import pytest

from tests.kit.bridge import bridge_port, bridge_settings, running_bridge, transcribe
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.emulator.tones import encode_phrase, silence
from wyoming_lightning.ops.stop_habits import TRUSTED_AFTER

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


@pytest.mark.parametrize("batch_ms", [100, 0])
async def test_speech_read_in_batches_answers_the_same_words(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture, batch_ms: int
) -> None:
    """A client that has stopped in a pause three times (sent at full speed: where it stops is
    what counts) then streams in real time: its speech is read in batches, the same words."""
    pcm = silence(300) + encode_phrase(PHRASE) + silence(1000)
    chunks = len(pcm) // 320
    settings = bridge_settings(emulator.pulse_url, vad="webrtc", read_batch_ms=batch_ms)
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        for _ in range(TRUSTED_AFTER):
            assert await send(port, pcm) == PHRASE
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
    settings = bridge_settings(emulator.pulse_url, vad="webrtc", read_batch_ms=100)
    async with running_bridge(settings) as server:
        port = bridge_port(server)
        for _ in range(TRUSTED_AFTER):
            assert await send(port, pcm) == LONG
        caplog.set_level(logging.DEBUG, logger="wyoming_lightning")
        # Chunks of a second, written at once: each arrival is more than two ticks of audio.
        answer = await transcribe(port, pcm, chunk_ms=1000)
    assert answer.transcript == LONG
    _arrivals, waits = reads_of(caplog)
    assert waits == 0
