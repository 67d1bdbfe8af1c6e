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

Each command's answer must hold every word of every final the service sent for it, once and in
order (on a warm socket: all the answers together, all the finals of the socket), and a cold
request must cost one service session. The recognizer's own reading of the audio is not the
bar here (a final committed every 3 words reads differently from one read whole); what the
bridge makes of the finals is.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from tests.kit.bridge import API_KEY, bridge_port, bridge_settings, running_bridge, transcribe
from tests.kit.speech_data import SpeechSample, load_speech, with_silence
from tests.kit.wer import normalise_words
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer, Fault
from wyoming_lightning.settings.config import DEFAULT_VAD, Settings

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

#: The issue's stand-in: a final every 3 words, so that every command is cut at least once.
STAND_IN_WORDS = 3


@pytest.fixture(scope="module")
def commands() -> list[SpeechSample]:
    return load_speech()


@dataclass
class Run:
    """One condition: each command's answer, in order, and what the service sent."""

    answers: list[str]
    sent: list[str]
    """The text of every final the service sent, session by session, in order."""
    sessions: int


class Runs(dict[tuple[bool, bool, bool], Run]):
    """Each condition run once for the module, on first use: (ignores, burst, warm)."""

    def __init__(self, commands: list[SpeechSample]) -> None:
        super().__init__()
        self.commands = commands

    def __missing__(self, key: tuple[bool, bool, bool]) -> Run:
        ignores, burst, warm = key
        self[key] = run = asyncio.run(_run(self.commands, ignores=ignores, burst=burst, warm=warm))
        return run


@pytest.fixture(scope="module")
def runs(commands: list[SpeechSample]) -> Runs:
    return Runs(commands)


async def _run(commands: list[SpeechSample], *, ignores: bool, burst: bool, warm: bool) -> Run:
    config = EmulatorConfig(
        api_key=API_KEY,
        recognizer="whisper",
        words_per_final=STAND_IN_WORDS,
        from_finalize=False,  # the live probe saw no from_finalize: nothing may rest on it
        faults=(Fault("live-defaults"),) if ignores else (),
    )
    async with EmulatorServer(config, host="127.0.0.1", port=0) as emulator:
        overrides: dict[str, object] = {"vad": DEFAULT_VAD}
        if warm:
            overrides["session_idle_timeout_s"] = Settings().session_idle_timeout_s
        answers: list[str] = []
        async with running_bridge(bridge_settings(emulator.live_url, **overrides)) as server:
            port = bridge_port(server)
            for command in commands:
                pcm = with_silence(command.pcm, 0.5, 1.0)
                answer = await transcribe(port, pcm, chunk_ms=20, realtime=not burst)
                answers.append(answer.transcript or "")
        await emulator.wait_idle(30)
        opened = [r for r in emulator.sessions if r.handshake_status == 101]
    return Run(answers, [r.transcript for r in opened], len(opened))


CONDITIONS = [
    pytest.param(ignores, burst, warm, id=f"{i}-{b}-{w}")
    for ignores, i in ((False, "obeys"), (True, "ignores the bridge"))
    for burst, b in ((False, "real time"), (True, "burst"))
    for warm, w in ((False, "cold"), (True, "warm"))
]


@pytest.mark.parametrize(("ignores", "burst", "warm"), CONDITIONS)
def test_every_word_the_service_sent_once(
    commands: list[SpeechSample], runs: Runs, ignores: bool, burst: bool, warm: bool
) -> None:
    """The answers, in order, hold every word of every final the service sent, each once:
    nothing lost, nothing doubled, whether the finals come one per turn or every 3 words, in
    real time or all after the finalize. A cold request costs one session."""
    run = runs[(ignores, burst, warm)]
    assert all(run.answers), "every command has words"
    if not warm:
        assert run.sessions == len(commands), "one service session per request"
        wrong = {
            c.name: (sent, answer)
            for c, sent, answer in zip(commands, run.sent, run.answers, strict=True)
            if normalise_words(sent) != normalise_words(answer)
        }
        print(f"exact {len(commands) - len(wrong)} of {len(commands)}")
        assert not wrong, wrong
    else:
        assert run.sessions < len(commands), "the warm socket served several commands"
        assert normalise_words(" ".join(run.answers)) == normalise_words(" ".join(run.sent))
