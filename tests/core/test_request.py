"""The request state machine, driven by hand: every decision is visible as actions, no sockets.

The driver keeps the timer schedule the machine asks for on a fake clock, so a test can say
exactly when something happens ("the error comes 4.5 s after the stall") without sleeping.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.kit.clock import FakeClock
from wyoming_lightning.core import actions as act
from wyoming_lightning.core.audio import PcmFormat
from wyoming_lightning.core.errors import ErrorCode
from wyoming_lightning.core.protocol import (
    Failure,
    Result,
    ServiceError,
    SessionOptions,
    Unreadable,
    classify_http_status,
)
from wyoming_lightning.core.request import (
    ANSWER_TIMER,
    RETRY_TIMER,
    AudioIn,
    ClientGone,
    LocalResult,
    RequestConfig,
    RequestMachine,
    SessionClosed,
    SessionFailed,
    SessionMessage,
    SessionOpened,
    SessionProgress,
    StartAudio,
    StopAudio,
    TimerFired,
    TranscribeAgain,
    stall_timer,
)
from wyoming_lightning.core.vad.engines import create_engine
from wyoming_lightning.core.vad.gate import GateConfig, VadGate
from wyoming_lightning.emulator.tones import encode_phrase, silence

LIGHTNING = "ws://127.0.0.1:1/api/v1/lightning/get_text"
PULSE = "ws://127.0.0.1:1/waves/v1/pulse/get_text"
HA_FORMAT = PcmFormat(16000, 2, 1)


def final(
    text: str, *, last: bool = False, from_finalize: bool | None = None, end: float | None = None
) -> Result:
    from wyoming_lightning.core.protocol import Word

    words = (Word(text.split()[-1], end=end),) if end is not None and text else ()
    return Result(text, is_final=True, is_last=last, from_finalize=from_finalize, words=words)


@dataclass
class Driver:
    """Feeds a machine, keeps what it asked for, and runs its timers on a fake clock."""

    machine: RequestMachine
    clock: FakeClock[float]
    actions: list[act.Action] = field(default_factory=list)
    auto_open: bool = False
    timers: dict[act.TimerId, float] = field(default_factory=dict)
    """Pending timers and the fake time each is due."""
    when: list[tuple[float, act.Action]] = field(default_factory=list)
    """Every action with the fake time it was asked for."""

    def feed(self, out: list[act.Action]) -> list[act.Action]:
        """Record actions; with ``auto_open`` every handshake succeeds at once."""
        self.actions += out
        for action in out:
            self.when.append((self.clock.now, action))
            if isinstance(action, act.StartTimer):
                self.timers[action.timer] = self.clock.now + action.delay
            elif isinstance(action, act.CancelTimer):
                self.timers.pop(action.timer, None)
        if self.auto_open:
            for action in list(out):
                if isinstance(action, act.Connect):
                    out = out + self.handle(SessionOpened(action.conn))
        return out

    def handle(self, event: object) -> list[act.Action]:
        return self.feed(self.machine.handle(event))  # type: ignore[arg-type]

    def fire(self, timer: act.TimerId) -> list[act.Action]:
        """Run the clock to ``timer`` (which must be pending) and fire it."""
        assert timer in self.timers, f"{timer} is not pending: {self.timers}"
        self.clock.now = max(self.clock.now, self.timers.pop(timer))
        return self.handle(TimerFired(timer))

    def advance(self, seconds: float) -> list[act.Action]:
        """Let ``seconds`` pass, firing every timer that falls due, in order."""
        end = self.clock.now + seconds
        out: list[act.Action] = []
        while self.timers and min(self.timers.values()) <= end + 1e-9:
            timer = min(self.timers, key=lambda t: self.timers[t])
            out += self.fire(timer)
        self.clock.now = end
        return out

    def open(self) -> None:
        """From now on handshakes succeed at once (and any pending one does now)."""
        self.auto_open = True
        for conn in self.connects():
            self.handle(SessionOpened(conn))

    def start(self, fmt: PcmFormat = HA_FORMAT) -> list[act.Action]:
        return self.handle(StartAudio(fmt))

    def audio(self, pcm: bytes, chunk: int = 320) -> list[act.Action]:
        out: list[act.Action] = []
        for i in range(0, len(pcm), chunk):
            out += self.handle(AudioIn(pcm[i : i + chunk]))
        return out

    def stop(self) -> list[act.Action]:
        return self.handle(StopAudio())

    def message(self, conn: int, message: object) -> list[act.Action]:
        return self.handle(SessionMessage(conn, message))  # type: ignore[arg-type]

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [a for a in self.actions if isinstance(a, kind)]

    def time_of(self, kind: type) -> list[float]:
        return [t for t, a in self.when if isinstance(a, kind)]

    def sent_audio(self, conn: int) -> bytes:
        return b"".join(a.data for a in self.of(act.SendAudio) if a.conn == conn)

    def sent_text(self, conn: int) -> list[str]:
        return [json.loads(a.text)["type"] for a in self.of(act.SendText) if a.conn == conn]

    def connects(self) -> list[int]:
        return [a.conn for a in self.of(act.Connect)]

    def transcript(self) -> act.Transcript | None:
        found = self.of(act.Transcript)
        return found[-1] if found else None


def machine(url: str = LIGHTNING, vad: str | None = None, **kw: object) -> Driver:
    kw.setdefault("session", SessionOptions(language="en"))
    # A split stays a split here (the answer streams as utterances settle); rejoining a
    # split command has its own tests below, which ask for it.
    kw.setdefault("rejoin", False)
    config = RequestConfig(base_url=url, response_language="en", **kw)  # type: ignore[arg-type]
    engine = create_engine(vad) if vad else None
    clock = FakeClock(0.0)
    return Driver(RequestMachine(config, VadGate(engine, GateConfig()), clock), clock)


def two_utterances() -> bytes:
    return (
        silence(1000)
        + encode_phrase("one two")
        + silence(1500)
        + encode_phrase("three four")
        + silence(1000)
    )


def test_lightning_request_without_vad() -> None:
    d = machine()
    d.start()
    pcm = encode_phrase("one two three")
    d.audio(pcm)
    assert d.connects() == [1]
    assert d.sent_audio(1) == b"", "nothing may be sent before the handshake"
    url = d.of(act.Connect)[0].url
    assert parse_qs(urlsplit(url).query)["language"] == ["en"]
    d.open()
    d.stop()
    assert d.sent_audio(1) == pcm
    assert all(len(a.data) <= 3200 for a in d.of(act.SendAudio))
    assert max(len(a.data) for a in d.of(act.SendAudio)) == 3200, "100 ms frames, not 10 ms"
    assert d.sent_text(1) == ["end"]
    assert d.transcript() is None
    d.message(1, final("one two three", last=True))
    kinds = [
        type(a)
        for a in d.actions
        if isinstance(
            a,
            act.TranscriptStart
            | act.TranscriptChunk
            | act.Transcript
            | act.TranscriptStop
            | act.Finish,
        )
    ]
    assert kinds == [
        act.TranscriptStart,
        act.TranscriptChunk,
        act.Transcript,
        act.TranscriptStop,
        act.Finish,
    ]
    assert d.transcript() == act.Transcript("one two three", "en")
    assert d.machine.done


def test_silence_only_never_opens_a_session() -> None:
    d = machine(vad="webrtc")
    d.start()
    d.audio(silence(3000))
    d.stop()
    assert d.connects() == []
    assert d.transcript() == act.Transcript("", "en")
    assert d.machine.done


def test_pulse_finalizes_each_pause_on_one_session() -> None:
    d = machine(PULSE, vad="webrtc")
    d.start()
    pcm = two_utterances()
    half = len(silence(1000) + encode_phrase("one two") + silence(1500)) // 320 * 320
    d.audio(pcm[:half])
    assert d.connects() == [1]
    d.open()
    assert d.sent_text(1) == ["finalize"], "the pause must settle the first utterance at once"
    d.message(1, final("one two", from_finalize=True))
    assert [a.text for a in d.of(act.TranscriptChunk)] == ["one two"]
    d.audio(pcm[half:])
    d.stop()
    assert d.connects() == [1], "Pulse keeps one socket for the request"
    assert d.sent_text(1) == ["finalize", "finalize"]
    d.message(1, final("three four", from_finalize=True))
    assert d.transcript() == act.Transcript("one two three four", "en")
    assert [a.text for a in d.of(act.TranscriptChunk)] == ["one two", " three four"]
    assert d.sent_text(1)[-1] == "close_stream", "the session is closed politely"
    assert act.Disconnect(1) in d.actions


def test_early_finalization_means_the_answer_waits_for_nothing_after_stop() -> None:
    d = machine(PULSE, vad="webrtc")
    d.start()
    d.open()
    d.audio(silence(500) + encode_phrase("five six") + silence(1200))
    assert d.sent_text(1) == ["finalize"]
    d.message(1, final("five six", from_finalize=True))
    out = d.stop()
    assert act.Transcript("five six", "en") in out, "already settled: answer at audio-stop"


def test_lightning_opens_one_session_per_utterance() -> None:
    d = machine(LIGHTNING, vad="webrtc")
    d.start()
    d.open()
    pcm = two_utterances()
    d.audio(pcm)
    assert d.sent_text(1) == ["end"]
    d.message(1, final("one two", last=True))
    assert d.connects() == [1, 2]
    d.stop()
    assert d.sent_text(2) == ["end"]
    d.message(2, final("three four", last=True))
    assert d.transcript() == act.Transcript("one two three four", "en")


def test_without_early_finalization_one_end_at_stop() -> None:
    d = machine(LIGHTNING, vad="webrtc", early_finalize=False)
    d.start()
    d.open()
    d.audio(two_utterances())
    assert d.sent_text(1) == []
    d.stop()
    assert d.connects() == [1] and d.sent_text(1) == ["end"]


def test_duplicate_and_late_results_do_not_duplicate_words() -> None:
    d = machine(PULSE)
    d.start()
    d.open()
    d.audio(encode_phrase("seven eight"))
    # the server's own end of utterance, a late interim, then the finalize answer repeating it
    d.message(1, final("seven eight"))
    d.message(1, Result("seven eight", is_final=False))
    d.stop()
    d.message(1, final("seven eight", last=True, from_finalize=True))
    assert d.transcript() == act.Transcript("seven eight", "en")


def test_overlapping_final_dropped_by_word_times() -> None:
    d = machine(PULSE)
    d.start()
    d.open()
    d.audio(encode_phrase("one two three"))
    d.message(1, final("one two three", end=0.9))
    d.message(1, final("two three", end=0.9))
    d.stop()
    d.message(1, final("", last=True))
    assert d.transcript() == act.Transcript("one two three", "en")


def test_stray_finalize_answer_is_not_counted_twice() -> None:
    d = machine(PULSE, vad="webrtc")
    d.start()
    d.open()
    d.audio(silence(500) + encode_phrase("one") + silence(1200))
    d.message(1, final("one", from_finalize=True))
    d.message(1, final("one", from_finalize=True))
    d.stop()
    assert d.transcript() == act.Transcript("one", "en")


# --------------------------------------------------------------- which final ends a Pulse turn


def turn(phrase: str) -> bytes:
    """One short command and the pause after it: the VAD sends ``finalize`` at the pause."""
    return silence(400) + encode_phrase(phrase) + silence(1200)


def pulse_turns(**kw: object) -> Driver:
    d = machine(PULSE, vad="webrtc", **kw)
    d.start()
    d.open()
    return d


def answer(d: Driver, result: Result) -> None:
    d.message(1, result)


def chunks(d: Driver) -> list[str]:
    return [a.text for a in d.of(act.TranscriptChunk)]


def settled_without_help(d: Driver) -> None:
    """One session, no timer had to fire, nothing replayed, the answer already out."""
    assert d.connects() == [1]
    assert not any(isinstance(a, act.Log) and "retrying" in a.message for a in d.actions)
    assert d.machine.done


def test_an_unflagged_final_answers_the_finalize_at_once() -> None:
    # The live service: no from_finalize on the answer to a finalize.
    d = pulse_turns()
    d.audio(turn("one two"))
    assert d.sent_text(1) == ["finalize"]
    answer(d, final("one two"))
    assert chunks(d) == ["one two"], "the answer settles the turn, no timer needed"
    d.audio(turn("three"))
    answer(d, final("three"))
    out = d.stop()
    assert act.Transcript("one two three", "en") in out
    settled_without_help(d)


def test_answers_to_finalizes_sent_in_a_row_settle_in_order_with_copies() -> None:
    d = pulse_turns()
    d.audio(turn("one") + turn("nine") + turn("nine"))
    assert d.sent_text(1) == ["finalize"] * 3, "three turns out before any answer"
    # Each answer followed by a copy of itself: copies share the position of their original.
    for text, end in (("one", 0.6), ("nine", 2.4), ("nine", 4.2)):
        answer(d, final(text, end=end))
        answer(d, final(text, end=end, from_finalize=True))
    assert chunks(d) == ["one", " nine", " nine"], "the repeated answer is two turns"
    out = d.stop()
    assert act.Transcript("one nine nine", "en") in out
    settled_without_help(d)


def test_the_same_words_twice_without_word_times_are_told_apart_by_order() -> None:
    d = pulse_turns()
    d.audio(turn("nine"))
    answer(d, final("nine"))
    answer(d, final("nine"))  # a copy: nothing was asked since
    d.audio(turn("nine"))
    answer(d, final("nine"))  # a second finalize went out: this is its answer
    out = d.stop()
    assert act.Transcript("nine nine", "en") in out
    settled_without_help(d)


def test_a_server_final_racing_the_finalize_then_its_empty_echo() -> None:
    # The server ended the turn itself just as the finalize went out: its final arrives first,
    # the finalize's own (empty) answer after it, when the next finalize is already out.
    d = pulse_turns(session=SessionOptions(language="en", server_endpointing=True))
    d.audio(turn("one two") + turn("three"))
    assert d.sent_text(1) == ["finalize", "finalize"]
    answer(d, final("one two"))  # the server's own, unflagged
    answer(d, final(""))  # the echo of the first finalize: must not end "three"
    assert chunks(d) == ["one two"]
    answer(d, final("three"))
    out = d.stop()
    assert act.Transcript("one two three", "en") in out
    settled_without_help(d)


def test_a_racing_server_final_learnt_from_an_earlier_turn() -> None:
    d = pulse_turns()
    d.audio(silence(400) + encode_phrase("one"))
    answer(d, final("one"))  # before any finalize: this server ends turns by itself
    d.audio(silence(1200))
    assert d.sent_text(1) == ["finalize"]
    answer(d, final(""))  # the finalize's answer: nothing left
    assert chunks(d) == ["one"]
    d.audio(turn("two") + turn("three"))
    answer(d, final("two"))  # may be the server's own, racing the finalize ...
    answer(d, final(""))  # ... so this empty final is its echo, not the answer for "three"
    answer(d, final("three"))
    out = d.stop()
    assert act.Transcript("one two three", "en") in out
    settled_without_help(d)


def test_a_server_final_marked_as_its_own_does_not_end_the_turn() -> None:
    d = pulse_turns()
    d.audio(turn("five"))
    answer(d, final("five", from_finalize=False))
    assert chunks(d) == []
    answer(d, final("", from_finalize=True))
    assert chunks(d) == ["five"]
    out = d.stop()
    assert act.Transcript("five", "en") in out
    settled_without_help(d)


def test_a_racing_server_final_then_the_rest_of_its_turn() -> None:
    # The server cut the first turn just before its last word; the rest of that turn comes
    # after the next turn's finalize went out. Positions say whose words are whose.
    d = pulse_turns()
    d.audio(turn("one two") + turn("three"))
    assert d.sent_text(1) == ["finalize", "finalize"]
    answer(d, final("one", end=0.4))  # the server's own: short of the speech, not the answer
    answer(d, final("two", end=0.7))  # the rest of the first turn: careful now, text only
    assert chunks(d) == []
    answer(d, final("three", end=2.0))  # the second turn's words: the first one is complete
    assert chunks(d) == ["one two"]
    d.stop()
    assert d.transcript() is None, "the second turn waits: this service cuts turns itself"
    d.advance(d.machine.config.stall_timeout_s + 0.01)
    assert d.transcript() == act.Transcript("one two three", "en")
    assert d.connects() == [1], "its words were in: nothing replayed"


def test_a_racing_server_final_whose_echo_repeats_it() -> None:
    d = pulse_turns()
    d.audio(turn("one") + turn("two"))
    answer(d, final("one", end=0.6))  # the server's own, taken as the answer
    answer(d, final("one", end=0.6))  # the finalize's answer repeats it: same position
    assert chunks(d) == ["one"]
    answer(d, final("two", end=2.4))
    out = d.stop()
    assert act.Transcript("one two", "en") in out
    settled_without_help(d)


def test_dropped_connection_replays_everything_not_yet_final() -> None:
    d = machine(PULSE)
    d.start()
    d.open()
    pcm = encode_phrase("one two three four")
    d.audio(pcm[: len(pcm) // 2 // 2 * 2])
    out = d.handle(SessionClosed(1, 1006, ""))
    assert act.Disconnect(1) in out
    assert act.StartTimer(RETRY_TIMER, 0.5) in out
    d.audio(pcm[len(pcm) // 2 // 2 * 2 :])
    d.fire(RETRY_TIMER)
    assert d.connects() == [1, 2]
    d.stop()
    assert d.sent_audio(2) == pcm, "the whole utterance is replayed on the new session"
    d.message(2, final("one two three four", last=True))
    assert d.transcript() == act.Transcript("one two three four", "en")


def test_results_from_a_dead_connection_are_ignored() -> None:
    d = machine(PULSE)
    d.start()
    d.open()
    d.audio(encode_phrase("one"))
    d.handle(SessionClosed(1, 1011, "bye"))
    assert d.message(1, final("nonsense", last=True)) == []


def test_settled_utterances_are_not_replayed() -> None:
    d = machine(PULSE, vad="webrtc")
    d.start()
    d.open()
    first = silence(500) + encode_phrase("one two") + silence(1200)
    d.audio(first)
    d.message(1, final("one two", from_finalize=True))
    second = encode_phrase("three")
    d.audio(second)
    sent_before = len(d.sent_audio(1))
    d.handle(SessionClosed(1, 1006, ""))
    d.fire(RETRY_TIMER)
    d.stop()
    replayed = d.sent_audio(2)
    assert 0 < len(replayed) < sent_before, "only the unsettled utterance goes again"
    d.message(2, final("three", last=True))
    assert d.transcript() == act.Transcript("one two three", "en")


@pytest.mark.parametrize("status", [401, 403, 400])
def test_key_and_parameter_refusals_are_not_retried(status: int) -> None:
    d = machine()
    d.start()
    d.audio(encode_phrase("one"))
    out = d.handle(SessionFailed(1, classify_http_status(status)))
    assert not [a for a in out if isinstance(a, act.StartTimer) and a.timer == RETRY_TIMER]
    (error,) = d.of(act.Error)
    assert error.code is classify_http_status(status).code
    assert isinstance(out[-1], act.Finish) and d.machine.done


def test_retry_after_is_honoured_and_retries_are_bounded() -> None:
    d = machine(max_retries=2)
    d.start()
    d.audio(encode_phrase("one"))
    out = d.handle(SessionFailed(1, classify_http_status(429, 3.0)))
    assert act.StartTimer(RETRY_TIMER, 3.0) in out
    d.fire(RETRY_TIMER)
    out = d.handle(SessionFailed(2, classify_http_status(500)))
    assert act.StartTimer(RETRY_TIMER, 1.0) in out, "backoff doubles"
    d.fire(RETRY_TIMER)
    d.handle(SessionFailed(3, classify_http_status(500)))
    assert d.connects() == [1, 2, 3]
    (error,) = d.of(act.Error)
    assert error.code is ErrorCode.UPSTREAM and d.machine.done


def test_a_complete_stall_is_retried_once_then_answered_within_5_s() -> None:
    """The service stops answering at audio-stop: 2 s without any progress is a stall; the one
    replacement stalls too; the error comes 4.5 s after the stall began."""
    d = machine(PULSE)
    d.start()
    d.open()
    d.audio(encode_phrase("nine"))
    out = d.stop()
    assert act.StartTimer(stall_timer(1), 2.0) in out
    assert act.StartTimer(ANSWER_TIMER, 10.0 + len(encode_phrase("nine")) / 32000) in out
    d.advance(1.99)
    assert d.connects() == [1] and not d.of(act.Error), "no replacement before 2 s"
    assert len(d.of(act.Probe)) == 3, "pinged every 0.5 s while the final is owed"
    out = d.advance(0.01)
    assert act.Disconnect(1) in out and act.StartTimer(RETRY_TIMER, 0.5) in out
    (warning,) = [a.message for a in d.of(act.Log) if "stopped answering" in a.message]
    assert "retrying in 0.5 s" in warning and "no progress for 2 s" in warning
    d.advance(0.5)
    assert d.connects() == [1, 2]
    assert d.sent_audio(2) == encode_phrase("nine"), "the unsettled audio is replayed"
    assert d.sent_text(2) == ["close_stream"]
    d.advance(10.0)
    (error,) = d.of(act.Error)
    assert error.code is ErrorCode.TIMEOUT and "stopped answering" in error.text
    assert d.time_of(act.Error) == [4.5], "2 s to the stall, 0.5 s backoff, 2 s on the retry"
    assert d.connects() == [1, 2], "one replacement per request, however many retries allowed"
    assert d.machine.done


def test_sessions_lost_in_one_outage_cost_one_retry_whenever_each_is_noticed() -> None:
    """Lightning, two utterances on two sessions, both stalled: the second stall is noticed
    after the first was already replaced. It is the same outage: replaced too, no error."""
    d = machine(LIGHTNING, vad="webrtc", max_retries=1)
    d.start()
    d.open()
    d.audio(silence(400) + encode_phrase("one two") + silence(1500))
    d.advance(1.0)  # the second utterance starts late: its stall is noticed after the retry
    d.audio(encode_phrase("three") + silence(1000))
    d.stop()
    d.advance(1.7)  # session 1 stalled at 2.0 and was replaced at 2.5; session 2 owes since 1.0
    assert d.connects() == [1, 2, 3], "session 1 stalled and was replaced"
    d.message(3, final("one two", last=True))
    d.advance(1.0)
    assert d.connects() == [1, 2, 3, 4], "session 2 went the same way, without an error"
    assert not d.of(act.Error)
    d.message(4, final("three", last=True))
    assert d.transcript() == act.Transcript("one two three", "en")


def test_a_replacement_whose_handshake_hangs_is_a_stall_too() -> None:
    """The whole service hangs, handshakes included: still answered 4.5 s after the stall,
    not after the replacement's connect timeout."""
    d = machine(PULSE)
    d.start()
    d.open()
    d.audio(encode_phrase("nine"))
    d.stop()
    d.auto_open = False  # from now on no handshake completes
    d.advance(2.5)
    assert d.connects() == [1, 2]
    d.advance(10.0)
    (error,) = d.of(act.Error)
    assert error.code is ErrorCode.TIMEOUT and "stopped answering" in error.text
    assert d.time_of(act.Error) == [4.5]
    assert d.sent_audio(2) == b"", "nothing could be sent on the hung handshake"


def test_a_complete_stall_goes_to_the_local_recognizer_when_configured() -> None:
    d = machine(PULSE, fallback_local=True)
    d.start()
    d.open()
    pcm = encode_phrase("nine")
    d.audio(pcm)
    d.stop()
    d.advance(4.5)
    (local,) = d.of(act.TranscribeLocally)
    assert local.audio == pcm
    assert d.time_of(act.TranscribeLocally) == [4.5]
    assert any("transcribing with the local recognizer" in a.message for a in d.of(act.Log))
    d.handle(LocalResult("nine"))
    assert d.transcript() == act.Transcript("nine", "en")


def test_a_slow_service_that_streams_interims_is_never_replaced() -> None:
    """8 s to settle a 4 s command, an interim every 0.5 s: one session, the exact text."""
    d = machine(PULSE, vad="webrtc")
    d.start()
    d.open()
    words = "one two three four five six seven eight nine zero one two"
    d.audio(silence(300) + encode_phrase(words))
    d.stop()
    for _ in range(16):
        d.advance(0.5)
        d.message(1, Result(words, is_final=False))
    d.message(1, final(words, last=True, from_finalize=True))
    assert d.transcript() == act.Transcript(words, "en")
    assert d.connects() == [1] and not d.of(act.Error)
    assert d.time_of(act.Transcript) == [8.0]
    assert not [a for a in d.of(act.Log) if a.level >= logging.WARNING]


def test_audio_taken_off_the_wire_is_progress() -> None:
    """A session that owes a final but keeps taking audio (its sends complete) is alive."""
    d = machine(PULSE, vad="webrtc")
    d.start()
    d.open()
    d.audio(silence(300) + encode_phrase("one two") + silence(400))
    assert d.sent_text(1) == ["finalize"]
    for _ in range(10):
        d.advance(1.0)
        d.handle(SessionProgress(1))
    assert d.connects() == [1], "10 s without a message, but every send completed"
    d.advance(1.99)
    assert act.Disconnect(1) not in d.actions
    d.advance(0.01)
    assert act.Disconnect(1) in d.actions, "then 2 s of nothing at all: stalled"
    d.advance(0.5)
    assert d.connects() == [1, 2]


def test_a_pong_is_progress_and_unreadable_frames_are_not() -> None:
    d = machine(PULSE)
    d.start()
    d.open()
    d.audio(encode_phrase("one"))
    d.stop()
    for _ in range(12):  # 6 s: every probe answered
        d.advance(0.5)
        d.handle(SessionProgress(1))
    assert d.connects() == [1]
    for _ in range(4):  # 2 s: only garbage, though the pings are still answered
        d.advance(0.5)
        d.message(1, Unreadable("not JSON"))
        d.handle(SessionProgress(1))
    assert act.Disconnect(1) in d.actions, "frames we cannot read prove nothing"


def test_the_wait_after_stop_scales_with_the_audio_owed_and_has_a_ceiling() -> None:
    d = machine(PULSE)
    d.start()
    d.open()
    pcm = encode_phrase("one two three four five six seven eight nine")
    d.audio(pcm)
    out = d.stop()
    assert act.StartTimer(ANSWER_TIMER, 10.0 + len(pcm) / 32000) in out
    d = machine(PULSE, response_timeout_s=11.0)
    d.start()
    d.open()
    d.audio(pcm)
    assert act.StartTimer(ANSWER_TIMER, 11.0) in d.stop()


@pytest.mark.parametrize("fallback", [False, True])
def test_a_live_service_that_cannot_finish_gets_no_replay(fallback: bool) -> None:
    """Alive (pongs) but never settling: at the bound, the local recognizer or an error."""
    d = machine(PULSE, fallback_local=fallback)
    d.start()
    d.open()
    d.audio(encode_phrase("nine"))
    d.stop()
    wait = 10.0 + len(encode_phrase("nine")) / 32000
    while not d.machine.done and not d.of(act.TranscribeLocally):
        d.advance(0.5)
        d.handle(SessionProgress(1))
    assert d.connects() == [1], "a slow session is never doubled"
    logs = " ".join(a.message for a in d.of(act.Log))
    assert f"did not finish within {wait:g} s" in logs
    if fallback:
        assert "transcribing with the local recognizer" in logs
        assert not d.of(act.Error)
    else:
        (error,) = d.of(act.Error)
        assert error.code is ErrorCode.TIMEOUT and "request failed (timeout)" in logs


def test_the_local_recognizer_is_bounded_too() -> None:
    d = machine(fallback_local=True, local_only=True, response_timeout_s=20.0)
    d.start()
    d.audio(encode_phrase("three"))
    out = d.stop()
    assert act.StartTimer(ANSWER_TIMER, 20.0) in out
    d.advance(20.0)
    (error,) = d.of(act.Error)
    assert error.code is ErrorCode.TIMEOUT and "local recognizer" in error.text


def test_the_deadline_ends_every_request() -> None:
    d = machine()
    d.start()
    d.open()
    d.audio(encode_phrase("nine"))
    d.stop()
    out = d.fire(ANSWER_TIMER)
    (error,) = [a for a in out if isinstance(a, act.Error)]
    assert error.code is ErrorCode.TIMEOUT
    assert act.Disconnect(1) in out and isinstance(out[-1], act.Finish)


def test_no_speech_with_endpointing_ends_the_request_empty() -> None:
    d = machine(PULSE, vad="webrtc", endpoint_silence_ms=700, no_speech_timeout_s=8.0)
    d.start()
    d.audio(silence(7990))
    assert d.transcript() is None
    d.audio(silence(10))
    assert d.transcript() == act.Transcript("", "en")
    assert d.connects() == [] and d.machine.done


def test_speech_resets_nothing_but_the_no_speech_timeout() -> None:
    """Once someone spoke, the endpoint (not the no-speech timeout) ends the command."""
    d = machine(PULSE, vad="webrtc", endpoint_silence_ms=700, no_speech_timeout_s=1.0)
    d.start()
    d.open()
    d.audio(silence(900) + encode_phrase("one two three four five six"))
    assert d.transcript() is None and d.sent_audio(1)
    d.audio(silence(1000))
    d.message(1, final("one two three four five six", from_finalize=True))
    assert d.transcript() == act.Transcript("one two three four five six", "en")


def test_the_command_cap_ends_a_command_that_never_pauses() -> None:
    d = machine(PULSE, endpoint_silence_ms=700, no_speech_timeout_s=8.0, max_command_s=2.0)
    d.start()
    d.open()
    pcm = encode_phrase("one two three four five six seven eight nine zero")  # 2.9 s
    d.audio(pcm)
    assert d.sent_text(1) == ["close_stream"], "cut at 2 s"
    assert len(d.sent_audio(1)) == 64000
    d.message(1, final("one two three four five six", last=True))
    assert d.transcript() == act.Transcript("one two three four five six", "en")


def test_error_frame_language_is_final() -> None:
    d = machine()
    d.start()
    d.open()
    d.audio(encode_phrase("one"))
    d.message(1, ServiceError("not here", "LANGUAGE_NOT_ENABLED_IN_REGION"))
    (error,) = d.of(act.Error)
    assert error.code is ErrorCode.LANGUAGE


def test_unreadable_frames_are_survived() -> None:
    d = machine()
    d.start()
    d.open()
    d.audio(encode_phrase("one"))
    d.message(1, Unreadable("not JSON"))
    d.stop()
    d.message(1, final("one", last=True))
    assert d.transcript() == act.Transcript("one", "en")


def test_local_fallback_gets_the_buffered_audio() -> None:
    d = machine(fallback_local=True)
    d.start()
    pcm = encode_phrase("one two")
    d.audio(pcm)
    d.handle(SessionFailed(1, classify_http_status(401)))
    assert not d.of(act.Error)
    assert not d.of(act.TranscribeLocally), "waits for audio-stop: the speaker is still talking"
    d.stop()
    (local,) = d.of(act.TranscribeLocally)
    assert local.audio == pcm
    d.handle(LocalResult("one two"))
    assert d.transcript() == act.Transcript("one two", "en")


def test_local_only_never_connects() -> None:
    d = machine(fallback_local=True, local_only=True)
    d.start()
    d.audio(encode_phrase("three"))
    d.stop()
    assert d.connects() == []
    d.handle(LocalResult(None, "no model"))
    (error,) = d.of(act.Error)
    assert error.code is ErrorCode.UNAVAILABLE


def test_endpointing_answers_without_audio_stop() -> None:
    d = machine(PULSE, vad="webrtc", endpoint_silence_ms=700)
    d.start()
    d.open()
    d.audio(silence(300) + encode_phrase("one two") + silence(1000))
    assert d.sent_text(1) == ["finalize"], "the pause settled it before the endpoint"
    d.message(1, final("one two", from_finalize=True))
    assert d.transcript() == act.Transcript("one two", "en")
    assert d.handle(AudioIn(silence(100))) == [], "late audio is dropped quietly"


def test_max_utterance_bounds_the_replay_buffer() -> None:
    d = machine(PULSE, max_utterance_s=1.0)
    d.start()
    d.open()
    d.audio(encode_phrase("one two three four five six seven"))  # 2.1 s
    assert d.sent_text(1)[:2] == ["finalize", "finalize"]


@pytest.mark.parametrize(
    "fmt", [PcmFormat(4000, 2, 1), PcmFormat(16000, 5, 1), PcmFormat(16000, 2, 9)]
)
def test_unsupported_audio_is_a_clear_error(fmt: PcmFormat) -> None:
    d = machine()
    out = d.start(fmt)
    (error,) = [a for a in out if isinstance(a, act.Error)]
    assert error.code is ErrorCode.BAD_AUDIO and error.text


def test_order_mistakes_are_errors() -> None:
    d = machine()
    (error,) = [a for a in d.feed(d.machine.handle(AudioIn(b"\0\0"))) if isinstance(a, act.Error)]
    assert "before audio-start" in error.text
    d = machine()
    (error,) = [a for a in d.stop() if isinstance(a, act.Error)]
    assert "without audio-start" in error.text


def test_a_second_audio_start_is_an_error_and_ends_the_request() -> None:
    d = machine()
    d.start()
    out = d.start()
    (error,) = [a for a in out if isinstance(a, act.Error)]
    assert error.code is ErrorCode.BAD_AUDIO and "twice" in error.text
    assert any(isinstance(a, act.Finish) for a in out) and d.machine.done


def test_transcribe_during_a_request_changes_nothing() -> None:
    """Streaming or settling, a late ``transcribe`` is logged and ignored: the answer stands."""
    d = machine()
    d.start()
    d.open()
    d.audio(encode_phrase("one two"))
    out = d.handle(TranscribeAgain())
    assert [type(a) for a in out] == [act.Log] and not d.machine.done
    d.stop()
    assert [type(a) for a in d.handle(TranscribeAgain())] == [act.Log]
    assert d.machine.phase.name == "SETTLING"


def test_received_audio_is_counted_once_in_each_chunks_format() -> None:
    """The machine's count is the only one (the guard's usage reads it): a format change
    mid-stream counts each chunk in its own format, and audio after audio-stop still counts."""
    d = machine()
    d.start(HA_FORMAT)
    d.audio(bytes(32000), chunk=3200)  # 1 s at 16 kHz mono s16
    stereo48 = PcmFormat(48000, 2, 2)
    d.handle(AudioIn(bytes(48000 * 4 // 2), stereo48))  # 0.5 s
    d.stop()
    d.handle(AudioIn(bytes(48000 * 4 // 4)))  # 0.25 s, too late to transcribe
    assert d.machine.received_s == pytest.approx(1.75)


def test_other_formats_are_converted_before_sending() -> None:
    d = machine()
    d.start(PcmFormat(48000, 2, 2))
    stereo48 = bytes(48000 * 4)  # one second
    d.audio(stereo48, chunk=3840)
    d.open()
    d.stop()
    assert abs(len(d.sent_audio(1)) - 32000) <= 64


def test_a_format_repeated_with_every_chunk_is_followed_through_changes_and_back() -> None:
    """The handler passes one format object with every chunk while the client repeats it; the
    machine compares it once. A change to another format and back to that same object must
    still convert each part in its own format (0.5 s each: 1.5 s sent at 16 kHz mono)."""
    d = machine()
    d.start(HA_FORMAT)
    d.open()
    repeated = PcmFormat(16000, 2, 1)  # equal to the start's, another object (as the handler's)
    stereo48 = PcmFormat(48000, 2, 2)
    for part, fmt in ((bytes(16000), repeated), (bytes(96000), stereo48), (bytes(16000), repeated)):
        for i in range(0, len(part), 640):
            d.handle(AudioIn(part[i : i + 640], fmt))
    d.stop()
    assert abs(len(d.sent_audio(1)) - 48000) <= 64
    assert d.machine.received_s == pytest.approx(1.5)


def test_client_gone_releases_sessions() -> None:
    d = machine(PULSE)
    d.start()
    d.open()
    d.audio(encode_phrase("one"))
    out = d.handle(ClientGone())
    assert act.Disconnect(1) in out and d.machine.done
    assert not [a for a in out if isinstance(a, act.Error)]


def test_failure_without_pending_audio_does_not_retry() -> None:
    d = machine(PULSE, vad="webrtc")
    d.start()
    d.open()
    d.audio(silence(300) + encode_phrase("one") + silence(1200))
    d.message(1, final("one", from_finalize=True))
    out = d.handle(SessionFailed(1, Failure(ErrorCode.UPSTREAM, "x", True)))
    assert not [a for a in out if isinstance(a, act.StartTimer)]
    d.stop()
    assert d.transcript() == act.Transcript("one", "en")


def test_a_pause_is_finalized_before_the_gate_closes() -> None:
    d = machine(PULSE, vad="webrtc")
    d.start()
    d.open()
    d.audio(silence(300) + encode_phrase("one two") + silence(280))
    assert d.sent_text(1) == ["finalize"], "settled ~200 ms into the pause"
    assert d.machine.gate.is_open, "while the gate's own hangover still runs"
    at_finalize = len(d.sent_audio(1))
    d.audio(silence(400))
    assert len(d.sent_audio(1)) == at_finalize, "the rest of the pause is held back"
    d.stop()
    assert d.sent_text(1) == ["finalize"], "held silence is dropped, never finalized"
    assert len(d.sent_audio(1)) < d.machine.gate.audio_out_ms * 32
    (summary,) = [a.message for a in d.of(act.Log) if a.message.startswith("audio received")]
    assert f"sent {len(d.sent_audio(1)) / 32000:.2f} s" in summary, "the log counts what was sent"


@pytest.mark.parametrize(("after_ms", "lag_ms"), [(200, 0), (250, 0), (200, 40)])
def test_the_finalize_goes_out_when_the_audio_clock_reaches_speech_end_plus_the_pause(
    after_ms: int, lag_ms: int
) -> None:
    """Not rounded up to the gate's frames (30 ms with webrtc): to the 10 ms chunk. The VAD's
    lag counts as pause already: the rule is measured from when the speaker stopped."""
    d = machine(PULSE, vad="webrtc", finalize_after_ms=after_ms, vad_lag_ms=lag_ms)
    d.start()
    d.open()
    pcm = silence(300) + encode_phrase("one two") + silence(600)
    pause_at_finalize = None
    for i in range(0, len(pcm), 320):
        out = d.handle(AudioIn(pcm[i : i + 320]))
        if any(isinstance(a, act.SendText) for a in out):
            gate = d.machine.gate
            assert gate.speech_end_ms is not None
            pause_at_finalize = gate.audio_in_ms - gate.speech_end_ms
            break
    assert pause_at_finalize is not None, "no finalize in a 600 ms pause"
    assert after_ms - lag_ms <= pause_at_finalize < after_ms - lag_ms + 10


def test_speech_after_a_short_pause_keeps_every_byte() -> None:
    """The audio held after an early finalize opens the next utterance when speech resumes."""
    d = machine(PULSE, vad="webrtc")
    d.start()
    d.open()
    d.audio(silence(300) + encode_phrase("one two") + silence(350) + encode_phrase("three"))
    d.stop()
    assert d.sent_text(1) == ["finalize", "close_stream"]
    assert len(d.sent_audio(1)) == d.machine.gate.audio_out_ms * 32, "nothing dropped"


def test_finalize_only_when_the_gate_closes_when_asked() -> None:
    d = machine(PULSE, vad="webrtc", finalize_after_ms=None)
    d.start()
    d.open()
    d.audio(silence(300) + encode_phrase("one two") + silence(350) + encode_phrase("three"))
    assert d.sent_text(1) == [], "a pause shorter than the hangover settles nothing"


# -- dictation: past dictation_after_s, pauses no longer split -------------------------------


def test_pauses_split_a_command_but_not_the_dictation_it_turns_into() -> None:
    """Before ``dictation_after_s`` of audio went out, a pause settles the utterance early; after
    it, neither a pause nor the gate closing over a long one does: the rest of the request is
    one utterance, settled at audio-stop, every byte of its speech on the same session."""
    d = machine(PULSE, vad="webrtc", dictation_after_s=2.0)
    d.start()
    d.open()
    d.audio(silence(300) + encode_phrase("one two") + silence(350))
    assert d.sent_text(1) == ["finalize"], "a command's pause still splits"
    d.audio(encode_phrase("one two three four five six") + silence(350))
    assert len(d.sent_audio(1)) > 2 * 32000, "past the dictation point"
    assert d.sent_text(1) == ["finalize"], "the same pause no longer settles anything"
    d.audio(silence(1200))
    assert not d.machine.gate.is_open, "the gate closed over the long pause"
    assert d.sent_text(1) == ["finalize"], "and that ended no utterance either"
    d.audio(encode_phrase("three") + silence(100))
    d.stop()
    assert d.sent_text(1) == ["finalize", "close_stream"]
    assert d.connects() == [1]
    sent = d.sent_audio(1)
    for words in ("one two", "one two three four five six", "three"):
        assert encode_phrase(words) in sent, f"every word went: {words}"
    kept = d.machine.segmenter.kept_pause_bytes
    assert kept > 0, "the rest of the long pause, which the gate dropped, went out after all"
    assert len(sent) == d.machine.gate.audio_out_ms * 32 + kept, "dictation keeps its pauses whole"
    (summary,) = [a.message for a in d.of(act.Log) if a.message.startswith("audio received")]
    assert "in 2 utterance(s)" in summary
    assert f"sent {len(sent) / 32000:.2f} s" in summary
    d.message(1, final("one two", from_finalize=True))
    d.message(1, final("one two three four five six three", last=True))
    assert d.transcript() == act.Transcript("one two one two three four five six three", "en")


def test_the_pause_is_held_back_after_its_tail_and_the_finalize_comes_later() -> None:
    """With ``pause_tail_ms`` below ``finalize_after_ms`` the service gets only the tail of a
    pause; the finalize still comes at the pause rule. Speech resuming before the finalize goes
    on in the same utterance with every held byte; after it, the held tail is silence."""
    d = machine(PULSE, vad="webrtc", finalize_after_ms=300, pause_tail_ms=100)
    d.start()
    d.open()
    head = silence(300) + encode_phrase("one two")
    d.audio(head + silence(200))
    held_at = len(d.sent_audio(1))
    assert d.sent_text(1) == [], "past the tail, before the rule: nothing settled yet"
    d.audio(silence(50))
    assert len(d.sent_audio(1)) == held_at, "the pause beyond its tail is held back"
    d.audio(encode_phrase("three") + silence(100))
    assert d.sent_text(1) == [], "speech resumed before the rule: still one utterance"
    assert encode_phrase("one two") + silence(250) + encode_phrase("three") in d.sent_audio(1)
    at_resume = len(d.sent_audio(1))
    d.audio(silence(400))
    assert d.sent_text(1) == ["finalize"], "the rule settles it at 300 ms"
    assert len(d.sent_audio(1)) - at_resume < 3200 * 2, "only the tail of the last pause went"
    d.audio(silence(600))
    d.stop()
    assert d.sent_text(1) == ["finalize"], "held silence is dropped, never finalized"


def test_without_a_dictation_point_every_pause_splits() -> None:
    d = machine(PULSE, vad="webrtc", dictation_after_s=None)
    d.start()
    d.open()
    d.audio(silence(300) + encode_phrase("one two") + silence(350))
    d.audio(encode_phrase("one two three four five six") + silence(350))
    d.audio(silence(1200) + encode_phrase("three") + silence(100))
    d.stop()
    assert d.sent_text(1) == ["finalize", "finalize", "close_stream"]


# -- re-recognition after a false split ---------------------------------------------------


def split_command() -> tuple[bytes, int]:
    """The words "one two", a 350 ms pause (past the 200 ms pause rule, within the gate's hangover),
    "three"; and where to cut it so that the first part ends with the early finalize."""
    head = silence(300) + encode_phrase("one two") + silence(350)
    pcm = head + encode_phrase("three") + silence(700)
    return pcm, len(head) // 320 * 320


def test_speech_resuming_after_a_pause_re_sends_the_whole_command() -> None:
    d = machine(PULSE, vad="webrtc", re_recognize=True)
    d.start()
    d.open()
    pcm, cut = split_command()
    d.audio(pcm[:cut])
    assert d.sent_text(1) == ["finalize"]
    first = d.sent_audio(1)
    d.message(1, final("one two", from_finalize=True))
    assert d.of(act.TranscriptChunk) == [], "a text that may yet be replaced is not streamed"
    d.audio(pcm[cut:])
    d.stop()
    assert d.connects() == [1], "the same session settles the whole command"
    assert d.sent_text(1) == ["finalize", "finalize"], "the second finalize settles it all"
    again = d.sent_audio(1)[len(first) :]
    assert again.startswith(first), "the second turn starts from the command's first byte"
    assert len(again) > len(first) + len(encode_phrase("three")) // 2
    d.message(1, final("one two three", from_finalize=True))
    assert d.transcript() == act.Transcript("one two three", "en"), "replaced, not joined"
    assert [a.text for a in d.of(act.TranscriptChunk)] == ["one two three"]
    (summary,) = [a.message for a in d.of(act.Log) if a.message.startswith("audio received")]
    assert f"sent {len(d.sent_audio(1)) / 32000:.2f} s" in summary, "re-sent audio is counted"
    assert f"({len(first) / 32000:.2f} s of it re-sent after pauses)" in summary


def test_without_re_recognition_the_parts_are_joined() -> None:
    d = machine(PULSE, vad="webrtc", re_recognize=False)
    d.start()
    d.open()
    pcm, cut = split_command()
    d.audio(pcm[:cut])
    first = d.sent_audio(1)
    d.message(1, final("one two", from_finalize=True))
    assert [a.text for a in d.of(act.TranscriptChunk)] == ["one two"]
    d.audio(pcm[cut:])
    d.stop()
    assert len(d.sent_audio(1)) - len(first) <= len(pcm) - cut, "nothing sent twice"
    d.message(1, final("three", last=True, from_finalize=True))
    assert d.transcript() == act.Transcript("one two three", "en")


def test_a_rejoin_re_sends_the_command_within_the_bound_and_its_text_waits_for_audio_stop() -> None:
    # The default (rejoin): "one two", a pause the gate closes in, "three". Re-sending the
    # first part costs 0.99 s, and the request stays within 1.3 x its speech + 0.5 s, the
    # speech counted from its first word to its last (the 1.8 s pause inside it included).
    d = machine(PULSE, vad="webrtc", rejoin=True)
    d.start()
    d.open()
    head = silence(300) + encode_phrase("one two") + silence(1800)
    pcm = head + encode_phrase("three") + silence(700)
    cut = len(head) // 320 * 320
    d.audio(pcm[:cut])
    assert d.sent_text(1) == ["finalize"], "the pause still settles the first part early"
    first = d.sent_audio(1)
    d.message(1, final("one two", from_finalize=True))
    assert d.of(act.TranscriptChunk) == [], "a text that may yet be replaced is not streamed"
    d.audio(pcm[cut:])
    d.stop()
    again = d.sent_audio(1)[len(first) :]
    assert again.startswith(first), "the second turn starts from the command's first byte"
    speech = len(pcm) - (300 + 700) * 32
    assert len(d.sent_audio(1)) / 32000 <= 1.3 * speech / 32000 + 0.5
    d.message(1, final("one two three", from_finalize=True))
    assert d.transcript() == act.Transcript("one two three", "en"), "replaced, not joined"
    assert [a.text for a in d.of(act.TranscriptChunk)] == ["one two three"]


def test_a_replaced_final_arriving_late_is_still_not_joined() -> None:
    # Both finalizes out before any answer: the first answer settles the first turn (whose
    # text no longer counts), the second the whole command.
    d = machine(PULSE, vad="webrtc", re_recognize=True)
    d.start()
    d.open()
    pcm, _ = split_command()
    d.audio(pcm)
    d.stop()
    assert d.sent_text(1) == ["finalize", "finalize"], "each pause settled before the stop"
    d.message(1, final("one two", from_finalize=True))
    assert d.transcript() is None, "the whole command is still owed"
    d.message(1, final("one two three", from_finalize=True))
    assert d.transcript() == act.Transcript("one two three", "en")


def test_lightning_re_recognition_sends_the_whole_command_on_the_next_session() -> None:
    d = machine(LIGHTNING, vad="webrtc", re_recognize=True)
    d.start()
    d.open()
    pcm, cut = split_command()
    d.audio(pcm[:cut])
    first = d.sent_audio(1)
    d.audio(pcm[cut:])
    d.stop()
    assert d.connects() == [1, 2]
    assert d.sent_audio(2).startswith(first)
    d.message(2, final("one two three", last=True))
    assert d.transcript() is None, "the first session's final is still owed"
    d.message(1, final("one two", last=True))
    assert d.transcript() == act.Transcript("one two three", "en")


def test_a_command_past_the_length_cap_is_not_re_sent() -> None:
    d = machine(PULSE, vad="webrtc", re_recognize=True, max_utterance_s=1.0)
    d.start()
    d.open()
    d.audio(silence(300) + encode_phrase("one two three four five six") + silence(700))
    d.stop()
    sent = d.sent_audio(1)
    assert len(sent) <= d.machine.gate.audio_out_ms * 32, "nothing was sent twice"


def test_the_local_fallback_recognises_a_re_sent_command_once() -> None:
    d = machine(PULSE, vad="webrtc", re_recognize=True, fallback_local=True)
    d.start()
    d.open()
    pcm, _ = split_command()
    d.audio(pcm)
    d.stop()
    d.handle(SessionFailed(1, Failure(ErrorCode.UNAVAILABLE, "gone", False)))
    (local,) = d.of(act.TranscribeLocally)
    whole = d.sent_audio(1)[len(d.sent_audio(1)) // 2 :]
    assert len(local.audio) < len(d.sent_audio(1)), "the replaced part is not in it twice"
    assert len(local.audio) >= len(whole) - 3200
    d.handle(LocalResult("one two three"))
    assert d.transcript() == act.Transcript("one two three", "en")


def test_an_answer_that_falls_short_of_the_speech_settles_once_the_service_goes_quiet() -> None:
    # The service's last word ends well before where the VAD last heard speech (a breath after
    # the command): it is not recognised as the answer, so the turn waits, but only until the
    # service has sent nothing for the stall timeout; then its words are taken, not replayed.
    d = pulse_turns()
    d.audio(turn("one two"))
    answer(d, final("one two", end=0.05))
    assert chunks(d) == [], "a final short of the speech end does not end the turn"
    d.advance(1.9)
    assert chunks(d) == []
    d.advance(0.2)
    assert chunks(d) == ["one two"]
    out = d.stop()
    assert act.Transcript("one two", "en") in out
    assert d.connects() == [1], "taken from the session that answered, nothing replayed"


def test_a_service_known_to_be_slow_is_given_twice_its_slowest_answer_before_the_fallback() -> None:
    from wyoming_lightning.core.transcript import ServiceHabits

    habits = ServiceHabits(own_finals=True, answer_delay_s=3.0)
    d = pulse_turns(habits=habits)
    d.audio(turn("one two"))
    answer(d, final("one two", end=0.05))
    for _ in range(11):  # alive (its pings answered) but silent: 5.5 s
        d.advance(0.5)
        d.handle(SessionProgress(1))
    assert chunks(d) == [], "twice its slowest answer (6 s) has not passed"
    d.advance(0.5)
    d.handle(SessionProgress(1))
    d.advance(0.01)
    assert chunks(d) == ["one two"]
    assert d.connects() == [1]
