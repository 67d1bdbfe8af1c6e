"""The end of the turn decided by what was said (turn.py, segmenter.heard), offline.

The request machine against the emulator's session core (tests/core/test_live_finals.py), in
real time: each chunk reaches the service as it is spoken and its answers (interims every
100 ms of audio with the tone recognizer, whose words are digits) come back before the next.
Home Assistant 2026.11 with server endpointing sends no audio-stop: audio flows until the
server ends the turn. The judge here is a plain function over the digit words: "one two three"
is a whole command, "one two" the start of one.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import pytest

from tests.core.test_live_finals import CHUNK, Service, bridge
from tests.core.test_request import Driver
from wyoming_lightning.core.request import Phase
from wyoming_lightning.core.turn import TurnVerdict, load_judge, words
from wyoming_lightning.emulator.config import Dialect as EmulatorDialect
from wyoming_lightning.emulator.recognizers import ToneRecognizer
from wyoming_lightning.emulator.session import SessionCore
from wyoming_lightning.emulator.tones import encode_phrase, silence


def digits(text: str) -> TurnVerdict:
    said = words(text)
    if said == ["one", "two", "three"]:
        return TurnVerdict.COMPLETE
    if said == ["one", "two"]:
        return TurnVerdict.UNFINISHED
    return TurnVerdict.UNKNOWN


def endpointing(judge: object = None) -> Driver:
    return bridge(endpoint_silence_ms=700, no_speech_timeout_s=8.0, turn_judge=judge)


def until_turn_ends(d: Driver, pcm: bytes, lag: int = 0, service: Service | None = None) -> int:
    """Stream ``pcm`` as HA 2026.11 does, the service's answers ``lag`` chunks late; the byte
    at which the server ended the turn."""
    service = service or Service()
    d.start()
    pending: list[int] = []  # inbox size after each chunk
    for i in range(0, len(pcm), CHUNK):
        service.take(d, d.audio(pcm[i : i + CHUNK], CHUNK))
        pending.append(len(service.inbox))
        if len(pending) > lag:
            ready = pending.pop(0)
            service.deliver(d, len(service.inbox) - ready)
            pending = [max(0, p - ready) for p in pending]
        if d.machine.phase is not Phase.STREAMING:
            service.deliver(d)
            return i + CHUNK
    raise AssertionError("the server never ended the turn")


def paused_command(pause_ms: int) -> bytes:
    return (
        silence(400)
        + encode_phrase("one two")
        + silence(pause_ms)
        + encode_phrase("three")
        + silence(3000)
    )


def text(d: Driver) -> str:
    transcript = d.transcript()
    assert transcript is not None
    return transcript.text


def test_a_timer_cuts_a_command_paused_after_its_start() -> None:
    """The failure the judge is for: today's 700 ms timer ends "one two ... three" at the pause."""
    d = endpointing()
    until_turn_ends(d, paused_command(900))
    assert text(d) == "one two"


@pytest.mark.parametrize("pause_ms", [200, 600, 900, 1200])
def test_the_start_of_a_command_waits_for_the_rest(pause_ms: int) -> None:
    d = endpointing(digits)
    until_turn_ends(d, paused_command(pause_ms))
    assert text(d) == "one two three"


class QuietTones(ToneRecognizer):
    """The tone recognizer with no interims within a command: the words come with the final."""

    interim_interval_ms = 10_000


@dataclass
class QuietService(Service):
    def core(self, conn: int) -> SessionCore:
        if conn not in self.cores:
            self.cores[conn] = SessionCore(
                session_id=f"s{conn}",
                dialect=EmulatorDialect.PULSE,
                params=self.params,
                recognizer=QuietTones(),
                eou_timeout_ms=800,
                from_finalize=False,
                text_field="transcription",
            )
        return self.cores[conn]


def test_words_not_heard_yet_are_waited_for() -> None:
    """A service that sends no interims (Whisper's come a second apart) and answers 400 ms
    late: at 700 ms of silence the judge has heard nothing of "one two". The turn waits for
    the words, which the early finalize's final brings (the answer needs that final anyway),
    instead of falling back to the timer, which would cut the command."""
    d = endpointing(digits)
    until_turn_ends(d, paused_command(900), lag=20, service=QuietService())
    assert text(d) == "one two three"


def test_a_whole_command_ends_before_the_timer_would() -> None:
    pcm = silence(400) + encode_phrase("one two three") + silence(3000)
    timer, judged = endpointing(), endpointing(digits)
    timer_end = until_turn_ends(timer, pcm)
    judged_end = until_turn_ends(judged, pcm)
    assert text(judged) == text(timer) == "one two three"
    assert judged_end < timer_end


def test_words_no_template_covers_keep_the_timer() -> None:
    pcm = silence(400) + encode_phrase("four five") + silence(3000)
    timer, judged = endpointing(), endpointing(digits)
    assert until_turn_ends(judged, pcm) == until_turn_ends(timer, pcm)
    assert text(judged) == "four five"


def test_the_backstop_ends_a_command_left_unfinished() -> None:
    """ "one two" and nothing more: the turn still ends (the backstop), with what was said."""
    pcm = silence(400) + encode_phrase("one two") + silence(3000)
    d = endpointing(digits)
    until_turn_ends(d, pcm)
    assert text(d) == "one two"


# ------------------------------------------------------------------ Home Assistant's templates


def test_home_assistant_templates_tell_a_whole_command_from_its_start() -> None:
    pytest.importorskip("hassil")
    judge = load_judge("en")
    assert judge is not None
    for whole in ("turn on the kitchen lights", "set a timer for ten minutes", "what time is it"):
        assert judge(whole) is TurnVerdict.COMPLETE, whole
    for start in ("turn on the", "set a timer for", "add milk to", "turn on the, um"):
        assert judge(start) is TurnVerdict.UNFINISHED, start
    assert judge("tell me a story about a dragon") is TurnVerdict.UNKNOWN
    # A wildcard slot at the end would take more words too: no sign the command is over.
    assert judge("play some jazz in there") is TurnVerdict.UNKNOWN
    # Dictation is not matched at all: its cost is bounded by the length of a command.
    calls = judge.calls
    assert judge("turn on the kitchen lights " * 4) is TurnVerdict.UNKNOWN
    assert judge.calls == calls


def test_the_home_names_are_the_slot_lists() -> None:
    pytest.importorskip("hassil")
    judge = load_judge("en", ["kitchen"])
    assert judge is not None
    assert judge("turn on the lights in the kitchen") is TurnVerdict.COMPLETE
    assert judge("turn on the lights in the garage") is TurnVerdict.UNKNOWN


def test_without_the_packages_there_is_no_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "hassil", None)  # import hassil -> ImportError
    assert load_judge("en") is None


def test_a_language_without_templates_has_no_judge() -> None:
    pytest.importorskip("hassil")
    assert load_judge("xx") is None


# ------------------------------------------------------------------ the server's settings


def test_endpointing_brings_the_judge_with_the_homes_names() -> None:
    pytest.importorskip("hassil")
    from wyoming_lightning.core.protocol import Keyword
    from wyoming_lightning.services import Services
    from wyoming_lightning.settings.config import load_settings

    env = {"SMALLEST_API_KEY": "k"}
    services = Services(load_settings(["--endpointing", "--turn-unfinished-ms", "2000"], env))
    services.home_keywords = (Keyword("kitchen"),)
    config = services.request_config(None, "en")
    assert config.turn_judge is not None and config.turn_unfinished_ms == 2000
    assert config.turn_judge("turn on the lights in the garage") is TurnVerdict.UNKNOWN
    assert config.turn_judge("turn on the lights in the kitchen") is TurnVerdict.COMPLETE
    off = Services(load_settings(["--endpointing", "--no-turn-intents"], env))
    assert off.request_config(None, "en").turn_judge is None
    assert Services(load_settings([], env)).request_config(None, "en").turn_judge is None
