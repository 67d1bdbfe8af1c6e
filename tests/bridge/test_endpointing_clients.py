"""Is server endpointing safe as the default? What it does to clients that are not HA 2026.11.

Issue 24 item 3. Home Assistant 2026.11 reads ``requires_external_vad: false`` and leaves the end
of the command to the server (test_home_assistant_2026.py); 2025.4.4 ignores it and stops the
stream with its own VAD, reading only after ``audio-stop`` (test_home_assistant.py: the server
answers first, then keeps reading and discarding until HA's upload ends). The client these
tests stand for is the third kind: a plain Wyoming client that decides the end itself and says
``audio-stop`` (a script transcribing a recording, a push-to-talk button, another hub). It reads
only after writing everything, as Home Assistant 2025.4.4 does.

With ``--endpointing`` such a client loses every word after the first long pause: the server
cannot tell it from Home Assistant 2026.11 (both send only ``transcribe(language)``), ends the
command at the pause, answers, and discards the rest. The answer itself arrives intact (the
server reads on until the client's ``audio-stop`` and closes only then), but it is the first
sentence alone. That is why ``--endpointing`` stays off by default; the first test fails if the
default changes without an answer to it.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.kit.bridge import bridge_port, bridge_settings, running_bridge, transcribe
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.emulator.tones import encode_phrase, silence

BYTES_PER_SECOND = 32000
#: A speaker's pause in a recording or while holding a push-to-talk button: longer than any
#: end-of-command rule of the server waits (its backstop is 1.5 s), shorter than people pause.
PAUSE_MS = 2000
#: Room after the second sentence: the client keeps writing this long after the server's end.
TAIL_MS = 3000


def recording() -> bytes:
    return (
        silence(300)
        + encode_phrase("one two")
        + silence(PAUSE_MS)
        + encode_phrase("three four")
        + silence(TAIL_MS)
    )


@pytest.mark.parametrize(
    "realtime",
    [False, pytest.param(True, marks=[pytest.mark.slow, pytest.mark.realtime])],
    ids=["file", "push-to-talk"],
)
async def test_by_default_a_client_that_says_audio_stop_gets_all_it_said(
    emulator: EmulatorServer, realtime: bool
) -> None:
    settings = bridge_settings(emulator.pulse_url, vad="webrtc")  # endpointing: the default
    async with running_bridge(settings) as server:
        answer = await transcribe(bridge_port(server), recording(), realtime=realtime)
    assert answer.error is None, answer.events
    assert answer.transcript == "one two three four"


@pytest.mark.parametrize(
    "realtime",
    [False, pytest.param(True, marks=[pytest.mark.slow, pytest.mark.realtime])],
    ids=["file", "push-to-talk"],
)
async def test_with_endpointing_such_a_client_loses_what_follows_a_long_pause(
    emulator: EmulatorServer, realtime: bool
) -> None:
    """The evidence against endpointing by default, and what it does get right: the answer
    is whole and the connection stays open while the client writes on (no reset, no error)."""
    settings = dataclasses.replace(
        bridge_settings(emulator.pulse_url, vad="webrtc"), endpointing=True
    )
    pcm = recording()
    async with running_bridge(settings) as server:
        answer = await transcribe(bridge_port(server), pcm, realtime=realtime)
    assert answer.error is None, answer.events
    assert answer.closed, "the server closed only after the client's audio-stop"
    assert answer.transcript == "one two", "the command ended at the pause"
    sent = sum(s.audio_bytes_received for s in emulator.sessions)
    assert 0 < sent < len(pcm) // 2, "what came after the end was read and discarded, not sent"
