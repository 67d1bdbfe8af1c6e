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
from tests.core.test_segmenter import feed, kinds, segmenter, utterances
from wyoming_lightning.core.request import Phase
from wyoming_lightning.core.segmenter import EndOfTurn, Segmenter, UtteranceStart
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
    # A demonstrative leads into a name as "the" does, and Whisper writes a "the" cut off by
    # a pause as "that": "Open that." was the timer's cut of "open the ... garage door".
    for start in ("Open that.", "turn off that", "lock this"):
        assert judge(start) is TurnVerdict.UNFINISHED, start
    # A wildcard took a sentence, not a name: the first sentence of a recorded message.
    assert judge("To hear the next message press 6.") is TurnVerdict.UNKNOWN
    assert judge("set the living room lights to 50 percent") is TurnVerdict.COMPLETE
    # A wildcard slot at the end would take more words too: no sign the command is over.
    assert judge("play some jazz in there") is TurnVerdict.UNKNOWN
    # Dictation is not matched at all: its cost is bounded by the length of a command.
    calls = judge.calls
    assert judge("turn on the kitchen lights " * 4) is TurnVerdict.UNKNOWN
    assert judge.calls == calls


def test_a_stand_in_for_a_name_does_not_fill_a_slot_alone() -> None:
    """ "it", "here", "them" stand for a name without being one (and Whisper writes a "the"
    cut off by a pause as "it"): a wildcard slot they fill alone is no match, whatever follows
    it; the words of a template ("what time is it") and the home's own names still match."""
    pytest.importorskip("hassil")
    judge = load_judge("en")
    assert judge is not None
    for stand_in in (
        "set it to 50 percent",
        "set them to 50 percent",
        "set the brightness in here to 50 percent",
        "set the temperature in here to 20 degrees",
    ):
        assert judge(stand_in) is TurnVerdict.UNKNOWN, stand_in
    assert judge("set the kitchen to 50 percent") is TurnVerdict.COMPLETE
    assert judge("set the temperature in the kitchen to 20 degrees") is TurnVerdict.COMPLETE
    assert judge("what time is it") is TurnVerdict.COMPLETE
    named = load_judge("en", ["kitchen", "it"])  # a name the home gave is a name
    assert named is not None
    assert named("set it to 50 percent") is TurnVerdict.COMPLETE


def test_a_stand_in_ending_a_cut_final_is_dropped_from_the_request() -> None:
    """A pause split the command and Whisper ended the first final on "it" / "that": the words
    of the whole request are matched without it; a stand-in at the very end is kept."""
    pytest.importorskip("hassil")
    judge = load_judge("en")
    assert judge is not None
    assert judge("Set a timer for it. 10 minutes.") is TurnVerdict.COMPLETE
    assert judge("Open that. Garage door.") is TurnVerdict.COMPLETE
    assert judge("Set a timer for it.") is TurnVerdict.UNKNOWN
    assert judge("what time is it") is TurnVerdict.COMPLETE


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


# ------------------------------------------------------------------ settling at a short pause


def judged_segmenter(**kw: object) -> Segmenter:
    """The segmenter as the server runs it with endpointing and a judge: the server's
    ``--finalize-after-ms`` (550) and the turn rule's short pause (200)."""
    settings: dict[str, object] = dict(
        finalize_after_ms=550, endpoint_silence_ms=700, no_speech_timeout_s=8.0
    )
    return segmenter(**{**settings, **kw})


def settled_after_ms(seg: Segmenter, pause_ms: int) -> int | None:
    """Feed ``pause_ms`` of silence 10 ms at a time: how much of it had gone in when the open
    utterance was settled, or None."""
    for fed in range(10, pause_ms + 1, 10):
        if any(type(s).__name__ == "UtteranceEnd" for s in seg.feed(silence(10))):
            return fed
    return None


def test_the_turn_rule_settles_at_a_short_pause() -> None:
    """The final of that finalize brings the command's words; at --finalize-after-ms it comes
    350 ms later, and the turn cannot end before it."""
    quick = judged_segmenter(turn_judge=digits)
    feed(quick, silence(300) + encode_phrase("one two three"))
    at = settled_after_ms(quick, 1000)
    assert at is not None and at <= 250, at
    for plain in (judged_segmenter(), judged_segmenter(turn_judge=digits, turn_finalize_ms=0)):
        feed(plain, silence(300) + encode_phrase("one two three"))
        late = settled_after_ms(plain, 1000)
        assert late is not None and late >= 500, late


def test_words_known_unfinished_keep_the_longer_pause() -> None:
    """ "one two" (the start of a command) heard for all of the speech: the speaker is looking
    for the rest, so the utterance is not split at the short pause."""
    seg = judged_segmenter(turn_judge=digits)
    feed(seg, silence(300) + encode_phrase("one two") + silence(100))
    seg.heard("one two")  # an interim, 100 ms into the pause
    at = settled_after_ms(seg, 1000)
    assert at is not None and 100 + at >= 500, at


def test_a_stale_verdict_does_not_hold_the_finalize_back() -> None:
    """An interim said "one two" before the speech went on: its verdict covers only part of the
    speech, so the short pause applies."""
    seg = judged_segmenter(turn_judge=digits)
    feed(seg, silence(300) + encode_phrase("one two"))
    seg.heard("one two")
    feed(seg, encode_phrase("three"))
    at = settled_after_ms(seg, 1000)
    assert at is not None and at <= 250, at


def test_a_whole_command_in_the_final_ends_the_turn_at_once() -> None:
    seg = judged_segmenter(turn_judge=digits)
    feed(seg, silence(300) + encode_phrase("one two three"))
    assert settled_after_ms(seg, 300) is not None
    feed(seg, silence(100))  # the final comes C ms after the finalize, here sooner
    ends = [s for s in seg.heard("one two three", final=True) if isinstance(s, EndOfTurn)]
    assert ends and "a whole command heard" in ends[0].reason


def test_a_false_split_is_re_sent_whole_when_speech_resumes() -> None:
    """The final says only the start of a command; the speaker goes on: the turn is not
    ended, and with re-recognition the next utterance re-sends the first part."""
    seg = judged_segmenter(turn_judge=digits, re_recognize=True)
    out = feed(seg, silence(300) + encode_phrase("one two"))
    out += feed(seg, silence(300))  # settled at 200 ms (no words yet), then the final comes
    assert kinds(out) == ["UtteranceStart", "UtteranceEnd"]
    assert not seg.heard("one two", final=True), "the start of a command ends nothing"
    (first,) = utterances(out)
    out += feed(seg, silence(600) + encode_phrase("three"))
    assert not [s for s in out if isinstance(s, EndOfTurn)]
    starts = [s for s in out if isinstance(s, UtteranceStart)]
    assert len(starts) == 2 and starts[1].replay == first and starts[1].replaces == 1


# ------------------------------------------------------------------ words no template decides


def ends_in(out: list[object]) -> list[EndOfTurn]:
    return [s for s in out if isinstance(s, EndOfTurn)]


def pause_until_end(seg: Segmenter, pause_ms: int) -> int | None:
    """Feed up to ``pause_ms`` of silence 10 ms at a time: how much had gone in when the turn
    ended, or None."""
    for fed in range(10, pause_ms + 1, 10):
        if ends_in(list(seg.feed(silence(10)))):
            return fed
    return None


def test_an_interim_that_came_after_more_words_were_said_does_not_end_the_turn() -> None:
    """ "Add milk to ... my shopping list" on HA 2026.11: Whisper's interim "Add milk" read the
    audio before the "to" and arrived after it, when the speech had ended. Stamped with the
    speech end at its arrival it passed for all of the words; no template decides "add milk",
    so the 700 ms timer ended the turn before the final ("Add milk to", the start of a command)
    came. Only a final's words are known to cover the speech: the turn waits for them."""
    seg = judged_segmenter(turn_judge=digits)
    feed(seg, silence(300) + encode_phrase("one two") + silence(100))
    assert not seg.heard("one")  # read before "two" was said, arrived 100 ms after the speech
    assert pause_until_end(seg, 700) is None, "ended on words that missed the last one"
    # The final of the 200 ms finalize, C = 600 ms later: the start of a command.
    assert not seg.heard("one two", final=True)
    assert pause_until_end(seg, 100) is None
    out = feed(seg, encode_phrase("three"))  # the speaker goes on, 900 ms into the pause
    assert not ends_in(out)
    assert settled_after_ms(seg, 300) is not None
    feed(seg, silence(100))
    assert ends_in(seg.heard("one two three", final=True))


def settled_unknown(settle_ms: int) -> Segmenter:
    """ "four five" (no template decides it), settled at the short pause, its final come
    ``settle_ms`` after the finalize."""
    seg = judged_segmenter(turn_judge=digits)
    feed(seg, silence(300) + encode_phrase("four five"))
    at = settled_after_ms(seg, 300)
    assert at is not None
    assert pause_until_end(seg, settle_ms) is None
    assert not seg.heard("four five", final=True)
    return seg


def test_words_no_template_decides_wait_until_the_timer_rule_would_answer() -> None:
    """The timer rule settles at --finalize-after-ms (550) and answers when that final comes,
    C later: an UNKNOWN sentence ends no sooner, so a pause shorter than 550 + C (1,150 ms at
    C = 600) is never mistaken for the end. The 700 ms timer, before, ended it at once."""
    seg = settled_unknown(600)
    pause = seg.pause_ms
    assert pause is not None and pause < 1150
    ended = pause_until_end(seg, 1000)
    assert ended is not None
    assert pause + ended >= 550 + 600, pause + ended
    assert pause + ended <= 550 + 600 + 10 + 10, pause + ended  # settle counted to the chunk


def test_a_fast_service_keeps_the_timer_for_unknown_words() -> None:
    """A service that settles in 100 ms: the timer rule would answer at its 700 ms, no later."""
    seg = settled_unknown(100)
    ended = pause_until_end(seg, 1000)
    silence_ms = seg.gate.silence_ms
    assert ended is not None and silence_ms is not None
    assert 700 <= silence_ms <= 720, silence_ms


def test_speech_resumed_before_the_bound_goes_on_with_the_turn() -> None:
    seg = settled_unknown(600)
    out = feed(seg, encode_phrase("six"))  # 900 ms into the pause
    assert not ends_in(out)
    assert not seg.heard("four five six")  # an interim of the new utterance ends nothing
    assert pause_until_end(seg, 1400) is None, "a verdict on words missing the last speech"


def test_a_command_garbled_by_a_pause_is_not_cut_when_the_final_is_late() -> None:
    """The request machine as on HA 2026.11 at C = 600: the service answers 30 chunks (600 ms)
    late. "four five ... six" with a 900 ms pause: the final of "four five" (no template) came
    800 ms into the pause and the timer, long past, ended the turn; now the turn goes on."""
    pcm = (
        silence(400)
        + encode_phrase("four five")
        + silence(900)
        + encode_phrase("six")
        + silence(3000)
    )
    d = endpointing(digits)
    until_turn_ends(d, pcm, lag=30, service=QuietService())
    assert text(d) == "four five six"
