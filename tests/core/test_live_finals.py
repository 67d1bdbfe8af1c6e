"""The request machine against the emulator's session core with Pulse's live defaults.

No sockets: the machine's sends go straight into the emulator's sans-I/O ``SessionCore`` (the
same code the emulator serves), and its answers come back as parsed service messages, in the
order a socket would deliver them, at the moment the test says:

- *real time*: each chunk of audio reaches the service as it is spoken and its answers come
  back before the next (``lag=0``), or ``lag`` chunks later (a service whose finals trail the
  speech, as the issue's stand-in did, 0.6 s);
- *burst*: the whole command and its end reach the service before any answer comes back (a
  satellite flushing what it buffered during wake-word checking, a file client): every final,
  the word-count ones included, arrives after the finalize went out.

The service ignores what the bridge asks for (``finalize_on_words=false``, a long end of
utterance timer): it keeps the live defaults, a final every at most ``cap`` words and another
after 800 ms of silence, no ``from_finalize``. Each test asserts every word of the command,
in order, once, in the transcript and in the stream, on one service session, with no timer
having to fire.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from tests.core.test_request import Driver, machine
from wyoming_lightning.core import actions as act
from wyoming_lightning.core.protocol import SessionOptions, parse_message
from wyoming_lightning.core.request import SessionMessage, SessionOpened
from wyoming_lightning.emulator.config import Dialect as EmulatorDialect
from wyoming_lightning.emulator.faults import Fault, SessionFaults
from wyoming_lightning.emulator.params import SessionParams
from wyoming_lightning.emulator.recognizers import ToneRecognizer
from wyoming_lightning.emulator.session import SessionCore
from wyoming_lightning.emulator.tones import encode_phrase, silence

PULSE = "ws://127.0.0.1:1/waves/v1/stt/live?model=pulse"
CHUNK = 640  # 20 ms of 16 kHz audio, as Home Assistant sends it


def live_params(cap: int | None = None) -> SessionParams:
    """What the live service does by default, whatever the bridge's query said."""
    return SessionParams(word_timestamps=True, finalize_on_words=True, max_words=cap)


@dataclass
class Service:
    """One emulated socket per connection (or one shared by requests: a warm socket)."""

    params: SessionParams = field(default_factory=live_params)
    faults: tuple[str, ...] = ()
    cores: dict[int, SessionCore] = field(default_factory=dict)
    inbox: list[tuple[int, str]] = field(default_factory=list)
    held: list[tuple[int, str]] = field(default_factory=list)
    """``stale`` copies, sent just before the answer to the next frame."""
    shared: SessionCore | None = None
    offset: int = 0
    """Bytes the shared socket carried before the current request."""

    def core(self, conn: int) -> SessionCore:
        if conn not in self.cores:
            self.cores[conn] = self.shared or SessionCore(
                session_id=f"s{conn}",
                dialect=EmulatorDialect.PULSE,
                params=self.params,
                recognizer=ToneRecognizer(),
                eou_timeout_ms=800,
                from_finalize=False,
                text_field="transcription",
            )
        return self.cores[conn]

    def take(self, d: Driver, actions: list[act.Action]) -> None:
        for action in actions:
            if isinstance(action, act.Connect):
                self.take(d, d.feed(d.machine.handle(SessionOpened(action.conn, self.offset))))
            elif isinstance(action, act.SendAudio):
                self._answer(action.conn, self.core(action.conn).feed_audio(action.data).messages)
            elif isinstance(action, act.SendText):
                self._answer(action.conn, self.core(action.conn).feed_text(action.text).messages)

    def _answer(self, conn: int, messages: list[dict[str, object]]) -> None:
        self.inbox += self.held
        self.held = []
        decorated = SessionFaults(tuple(Fault(f) for f in self.faults if f != "stale"))
        for message in decorated.decorate(messages, from_finalize=False):
            self.inbox.append((conn, json.dumps(message)))
            if "stale" in self.faults and message.get("is_final") and not message.get("is_last"):
                self.held.append((conn, json.dumps(message)))

    def deliver(self, d: Driver, keep: int = 0) -> None:
        """Hand the machine every answer but the newest ``keep`` chunks' worth."""
        while len(self.inbox) > keep:
            conn, text = self.inbox.pop(0)
            out = d.feed(d.machine.handle(SessionMessage(conn, parse_message(text))))
            self.take(d, out)


def bridge(**kw: object) -> Driver:
    kw.setdefault(
        "session",
        SessionOptions(language="en", word_timestamps=True, finalize_on_words=False),
    )
    kw.setdefault("finalize_after_ms", 550)
    kw.setdefault("pause_tail_ms", 300)
    return machine(PULSE, vad="webrtc", **kw)


def run(service: Service, d: Driver, pcm: bytes, mode: str, lag: int = 0) -> None:
    d.start()
    if mode == "burst":
        actions = d.audio(pcm, CHUNK) + d.stop()
        service.take(d, actions)
        service.deliver(d)
        return
    pending: list[int] = []  # inbox size after each chunk, to deliver ``lag`` chunks late
    for i in range(0, len(pcm), CHUNK):
        service.take(d, d.audio(pcm[i : i + CHUNK], CHUNK))
        pending.append(len(service.inbox))
        if len(pending) > lag:
            ready = pending.pop(0)
            keep = len(service.inbox) - ready
            service.deliver(d, keep)
            pending = [max(0, p - ready) for p in pending]
    service.take(d, d.stop())
    service.deliver(d)


def spoken(*turns: str) -> str:
    return " ".join(" ".join(t.split()) for t in turns)


def audio_of(*turns: str, pause_ms: int = 1200) -> bytes:
    return b"".join(silence(400) + encode_phrase(t) for t in turns) + silence(pause_ms)


def assert_exact(d: Driver, words: str) -> None:
    if not d.machine.done:
        # A service known to cut turns itself: the last turn ends once it has said nothing
        # more for the stall timeout (its answer is in; nothing is replayed).
        d.advance(d.machine.config.stall_timeout_s + 0.01)
    assert d.machine.done, "answered at most the stall timeout after the service's last word"
    transcript = d.transcript()
    assert transcript is not None and transcript.text == words
    streamed = "".join(a.text for a in d.of(act.TranscriptChunk))
    assert streamed == words, "the stream carries every word once too"
    assert d.connects() == [1], "one service session"


TWELVE = "one two three four five six seven eight nine zero one two"
FIVE = "three four five six seven"

COMMANDS = [
    pytest.param((TWELVE,), None, id="12 words, cap 10"),
    pytest.param(("one two three four five",), 3, id="5 words, cap 3 (the issue's stand-in)"),
    pytest.param(("one two three",), 3, id="exactly the cap: the flush answers empty"),
    pytest.param((TWELVE, FIVE), None, id="two turns, the first cut by words"),
    pytest.param((FIVE, "one two", TWELVE), 4, id="three turns, cap 4"),
]
MODES = [
    pytest.param("realtime", 0, id="real time"),
    pytest.param("realtime", 30, id="real time, finals 0.6 s behind"),
    pytest.param("burst", 0, id="burst"),
]


@pytest.mark.parametrize(("mode", "lag"), MODES)
@pytest.mark.parametrize(("turns", "cap"), COMMANDS)
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "ends with finalize"])
def test_every_word_once_whatever_the_word_count_finals(
    turns: tuple[str, ...], cap: int | None, mode: str, lag: int, warm: bool
) -> None:
    service = Service(params=live_params(cap))
    d = bridge(keep_session=warm)
    run(service, d, audio_of(*turns), mode, lag)
    assert_exact(d, spoken(*turns))


@pytest.mark.parametrize(("mode", "lag"), MODES)
@pytest.mark.parametrize(
    "faults", [("duplicate-final",), ("late-interim",), ("stale",)], ids=lambda f: f[0]
)
def test_copies_and_late_interims_add_nothing(faults: tuple[str, ...], mode: str, lag: int) -> None:
    service = Service(params=live_params(4), faults=faults)
    d = bridge(keep_session=True)
    run(service, d, audio_of(TWELVE, FIVE), mode, lag)
    assert_exact(d, spoken(TWELVE, FIVE))


@pytest.mark.parametrize(("mode", "lag"), MODES)
def test_end_of_utterance_finals_inside_a_dictated_turn(mode: str, lag: int) -> None:
    # Dictation keeps its pauses inside one turn: the server's 800 ms timer cuts it into
    # several finals before (real time) or after (burst) the one finalize.
    service = Service(params=live_params())
    d = bridge(keep_session=True, dictation_after_s=0.0)
    pcm = silence(400) + b"".join(encode_phrase(t) + silence(1000) for t in (FIVE, TWELVE, FIVE))
    run(service, d, pcm, mode, lag)
    assert_exact(d, spoken(FIVE, TWELVE, FIVE))


@pytest.mark.parametrize(("mode", "lag"), MODES)
def test_a_warm_socket_keeps_each_requests_words_to_itself(mode: str, lag: int) -> None:
    service = Service(params=live_params(4), faults=("stale",))
    first = bridge(keep_session=True)
    run(service, first, audio_of(TWELVE), mode, lag)
    assert_exact(first, spoken(TWELVE))
    # The same socket for the next request: its stream goes on where the first one's ended.
    service.shared = service.cores[1]
    service.offset = sum(len(a.data) for a in first.of(act.SendAudio))
    service.cores = {}
    second = bridge(keep_session=True)
    run(service, second, audio_of(FIVE), mode, lag)
    assert_exact(second, spoken(FIVE))
