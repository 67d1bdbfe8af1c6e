"""The project's spoken commands through the real bridge to a service with Pulse's live defaults.

The live service sends several finals per turn unless told otherwise (``finalize_on_words``: a
final every at most 10 words; ``eou_timeout_ms``: another after 800 ms of silence), and the
bridge cannot count on being obeyed when it asks otherwise. So each command of tests/data/speech
goes through the bridge (silero gate, default settings) to the emulator's Whisper recognizer:

- a service that follows what the bridge asks (``finalize_on_words=false``, a long timer), and
  one that ignores it (the ``live-defaults`` fault), here cutting a final every 3 words, as the
  issue's stand-in did, so that every command is cut;
- streamed in real time (a microphone) and in a burst (a satellite flushing what it buffered
  while the wake word was checked): in a burst every final comes after the finalize;
- on a socket per request (cold) and on one kept warm across the commands.

Each command must come back with the words the same recognizer reads from the bare file, each
once, and a cold request must cost one service session.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.kit.bridge import API_KEY, bridge_port, bridge_settings, running_bridge, transcribe
from tests.kit.speech_data import SpeechSample, load_speech, with_silence
from tests.kit.wer import normalise_words
from wyoming_lightning.config import DEFAULT_VAD, Settings
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer, Fault, create_recognizer

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

#: The issue's stand-in: a final every 3 words, so that every command is cut at least once.
STAND_IN_WORDS = 3


@pytest.fixture(scope="module")
def commands() -> list[SpeechSample]:
    return load_speech()


@pytest.fixture(scope="module")
def straight(commands: list[SpeechSample]) -> dict[str, list[str]]:
    """What the recognizer reads from each bare file, whole: the bar."""
    recognizer = create_recognizer("whisper")
    return {
        c.name: normalise_words(" ".join(w.text for w in recognizer.transcribe(c.pcm, "en")))
        for c in commands
    }


async def _run(
    commands: list[SpeechSample], *, ignores: bool, burst: bool, warm: bool
) -> tuple[dict[str, str], int]:
    config = EmulatorConfig(
        api_key=API_KEY,
        recognizer="whisper",
        words_per_final=STAND_IN_WORDS,
        faults=(Fault("live-defaults"),) if ignores else (),
    )
    async with EmulatorServer(config, host="127.0.0.1", port=0) as emulator:
        overrides: dict[str, object] = {"vad": DEFAULT_VAD}
        if warm:
            overrides["session_idle_timeout_s"] = Settings().session_idle_timeout_s
        answers: dict[str, str] = {}
        async with running_bridge(bridge_settings(emulator.live_url, **overrides)) as server:
            port = bridge_port(server)
            for command in commands:
                pcm = with_silence(command.pcm, 0.5, 1.0)
                answer = await transcribe(port, pcm, chunk_ms=20, realtime=not burst)
                answers[command.name] = answer.transcript or ""
        sessions = sum(1 for r in emulator.sessions if r.handshake_status == 101)
    return answers, sessions


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("burst", [False, True], ids=["real time", "burst"])
@pytest.mark.parametrize("ignores", [False, True], ids=["obeys", "ignores the bridge"])
def test_every_word_of_every_command_once(
    commands: list[SpeechSample],
    straight: dict[str, list[str]],
    ignores: bool,
    burst: bool,
    warm: bool,
) -> None:
    answers, sessions = asyncio.run(_run(commands, ignores=ignores, burst=burst, warm=warm))
    wrong = {
        c.name: (" ".join(straight[c.name]), answers[c.name])
        for c in commands
        if normalise_words(answers[c.name]) != straight[c.name]
    }
    exact = len(commands) - len(wrong)
    print(f"exact {exact} of {len(commands)}; sessions {sessions}")
    assert not wrong, f"{exact} of {len(commands)} exact: {wrong}"
    if not warm:
        assert sessions == len(commands), "one service session per request"
    else:
        assert sessions < len(commands), "the warm socket served several commands"
