"""A stream's audio read a few chunks at a time while someone speaks (``--read-batch-ms``).

The server, a client pacing its 10 ms chunks as a microphone does (the pacing models the
client; it synchronises nothing) and the emulator, over real sockets: with the cadence on, the
server reads the speech in fewer arrivals than chunks and answers the same words; with it off
(0), it reads each chunk as it comes. A client that sends faster than real time is never made
to wait. Whether reading late can move a decision is ``tests/core/test_read_late.py``.
"""

from __future__ import annotations

import logging
import re

import pytest

from tests.kit.bridge import bridge_port, bridge_settings, running_bridge, transcribe
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.emulator.tones import encode_phrase, silence

PHRASE = "four five six"
LONG = "one two three four five six seven eight nine"
READ = re.compile(r"read in (\d+) arrival\(s\), (\d+) after waiting for more")


def reads_of(caplog: pytest.LogCaptureFixture) -> tuple[int, int]:
    found = READ.findall(caplog.text)
    assert len(found) == 1, caplog.text
    arrivals, waits = found[0]
    return int(arrivals), int(waits)


@pytest.mark.parametrize("batch_ms", [100, 0])
async def test_speech_read_in_batches_answers_the_same_words(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture, batch_ms: int
) -> None:
    caplog.set_level(logging.DEBUG, logger="wyoming_lightning")
    pcm = silence(0.3) + encode_phrase(PHRASE) + silence(1.0)
    chunks = len(pcm) // 320
    settings = bridge_settings(emulator.pulse_url, vad="webrtc", read_batch_ms=batch_ms)
    async with running_bridge(settings) as server:
        answer = await transcribe(bridge_port(server), pcm, chunk_ms=10, realtime=True)
    assert answer.transcript == PHRASE
    arrivals, waits = reads_of(caplog)
    if batch_ms:
        assert waits > 0, "the speech was read after waiting for more"
        # Each wait leaves at least one more chunk in the socket for the next arrival.
        assert arrivals < chunks
    else:
        assert waits == 0
        assert arrivals >= chunks, "each chunk read as it came"


async def test_a_client_faster_than_real_time_is_never_made_to_wait(
    emulator: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="wyoming_lightning")
    pcm = silence(0.3) + encode_phrase(LONG) + silence(1.0)
    settings = bridge_settings(emulator.pulse_url, vad="webrtc", read_batch_ms=100)
    async with running_bridge(settings) as server:
        # Chunks of a second, written at once: each arrival is more than two ticks of audio.
        answer = await transcribe(bridge_port(server), pcm, chunk_ms=1000)
    assert answer.transcript == LONG
    _arrivals, waits = reads_of(caplog)
    assert waits == 0
