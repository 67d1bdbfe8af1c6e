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
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer, Fault

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

#: The issue's stand-in: a final every 3 words, so that every command is cut at least once.
STAND_IN_WORDS = 3


@pytest.fixture(scope="module")
def commands() -> list[SpeechSample]:
    return load_speech()


class Runs(dict[tuple[bool, bool, bool], tuple[dict[str, str], int]]):
    """Each condition run once for the module, on first use: (ignores, burst, warm)."""

    def __init__(self, commands: list[SpeechSample]) -> None:
        super().__init__()
        self.commands = commands

    def __missing__(self, key: tuple[bool, bool, bool]) -> tuple[dict[str, str], int]:
        ignores, burst, warm = key
        self[key] = run = asyncio.run(_run(self.commands, ignores=ignores, burst=burst, warm=warm))
        return run


@pytest.fixture(scope="module")
def runs(commands: list[SpeechSample]) -> Runs:
    return Runs(commands)


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
        finals = [len(r.finals) for r in emulator.sessions if r.handshake_status == 101]
    return answers, len(finals)


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("burst", [False, True], ids=["real time", "burst"])
def test_a_service_that_ignores_the_bridge_costs_no_word(
    commands: list[SpeechSample], runs: Runs, burst: bool, warm: bool
) -> None:
    """Finals every 3 words and after each 800 ms pause, in real time or all after the
    finalize: each command comes back word for word as from a service that sends one final
    per turn (the recognizer reads the same audio; only the finals are cut differently)."""
    obeyed, _ = runs[(False, burst, warm)]
    ignored, sessions = runs[(True, burst, warm)]
    wrong = {
        c.name: (obeyed[c.name], ignored[c.name])
        for c in commands
        if normalise_words(ignored[c.name]) != normalise_words(obeyed[c.name])
    }
    exact = len(commands) - len(wrong)
    print(f"exact {exact} of {len(commands)}; sessions {sessions}")
    assert all(obeyed.values()), "every command has words"
    assert not wrong, f"{exact} of {len(commands)} exact: {wrong}"
    if warm:
        assert sessions < len(commands), "the warm socket served several commands"
    else:
        assert sessions == len(commands), "one service session per request"
