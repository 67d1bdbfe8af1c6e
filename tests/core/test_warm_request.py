"""The request machine's side of warm sessions (issue 14 item 1): what a request does with a
socket it borrowed, and when it hands one back. Driven by hand on a fake clock, no sockets."""

from __future__ import annotations

from tests.core.test_request import LIGHTNING, PULSE, final, machine
from wyoming_lightning.core import actions as act
from wyoming_lightning.core.protocol import Pong, parse_message
from wyoming_lightning.core.request import RETRY_TIMER, ClientGone, SessionOpened, stall_timer
from wyoming_lightning.emulator.tones import encode_phrase, silence

BYTES_PER_S = 32000


def warm_request(offset_s: float = 0.0, **kw: object):  # type: ignore[no-untyped-def]
    """A Pulse request without VAD whose session is a socket that already carried
    ``offset_s`` of audio for earlier requests."""
    d = machine(PULSE, keep_session=True, **kw)
    d.start()
    d.audio(silence(200) + encode_phrase("three four"))
    (conn,) = d.connects()
    d.handle(SessionOpened(conn, int(offset_s * BYTES_PER_S)))
    d.auto_open = True
    return d


def test_a_kept_session_ends_with_finalize_and_goes_back_when_its_final_is_in() -> None:
    d = warm_request()
    d.stop()
    assert d.sent_text(1) == ["finalize"], "no close_stream: the socket is kept for the next"
    out = d.message(1, final("three four", end=1.0))
    assert act.Transcript("three four", "en") in out
    assert act.Disconnect(1, reusable=True) in out
    assert d.sent_text(1) == ["finalize"]


def test_without_warm_sessions_the_last_turn_still_closes_the_stream() -> None:
    d = machine(PULSE)
    d.start()
    d.open()
    d.audio(encode_phrase("three four"))
    d.stop()
    assert d.sent_text(1) == ["close_stream"]
    out = d.message(1, final("three four", end=1.0, last=True))
    assert act.Disconnect(1, reusable=False) in out


def test_a_request_that_ends_with_a_final_owed_never_hands_its_socket_back() -> None:
    d = warm_request()
    d.stop()
    out = d.handle(ClientGone())
    assert act.Disconnect(1, reusable=False) in out
    assert d.sent_text(1) == ["finalize", "close_stream"]


def test_a_final_placed_before_this_request_on_a_warm_socket_is_not_its() -> None:
    d = warm_request(offset_s=3.0)
    d.stop()
    # A late copy of the previous request's final: its words end at 1.0 s of the stream,
    # before this request's audio began (3.0 s). Were it counted, it would answer the finalize.
    out = d.message(1, final("one two", end=1.0))
    assert not d.of(act.Transcript) and not d.machine.done
    assert any(isinstance(a, act.Log) and "earlier request" in a.message for a in out)
    out = d.message(1, final("three four", end=4.0))
    assert act.Transcript("three four", "en") in out


def test_a_borrowed_socket_that_stalls_is_replaced_once_and_never_reused() -> None:
    d = warm_request(offset_s=3.0, stall_timeout_s=2.0)
    sent = d.sent_audio(1)
    d.stop()
    d.fire(stall_timer(1))
    d.fire(RETRY_TIMER)
    assert d.connects() == [1, 2], "the stalled borrowed socket is replaced by a new session"
    assert act.Disconnect(1, reusable=False) in d.actions
    assert d.sent_audio(2) == sent, "the kept audio is replayed on the replacement"
    out = d.message(2, final("three four", end=1.0))
    assert act.Transcript("three four", "en") in out
    assert act.Disconnect(2, reusable=True) in out


def test_lightning_connects_at_the_first_chunk_and_the_first_utterance_uses_that_session() -> None:
    d = machine(LIGHTNING, connect_at_start=True)
    d.start()
    assert d.connects() == [], "not on audio-start alone: a client may still err"
    out = d.audio(silence(10))
    assert [a.conn for a in out if isinstance(a, act.Connect)] == [1], "before any speech"
    d.handle(SessionOpened(1))
    assert d.sent_audio(1) == b"", "nothing is sent (or billed) before speech"
    d.audio(encode_phrase("one two"))
    d.stop()
    assert d.connects() == [1] and len(d.sent_audio(1)) > 0
    assert d.sent_text(1) == ["end"]
    out = d.message(1, final("one two", last=True))
    assert act.Transcript("one two", "en") in out


def test_an_early_session_that_heard_no_speech_is_closed_unbilled() -> None:
    d = machine(LIGHTNING, vad="webrtc", connect_at_start=True)
    d.start()
    d.handle(SessionOpened(1))
    d.audio(silence(500))
    out = d.stop()
    assert act.Transcript("", "en") in out and act.Disconnect(1) in out
    assert d.sent_audio(1) == b"" and d.sent_text(1) == []


def test_a_pong_that_arrives_after_the_socket_was_lent_is_only_progress() -> None:
    """A keepalive sent just before the pool lent the socket is answered during the request."""
    d = warm_request(offset_s=3.0)
    d.stop()
    d.clock.now += 1.5
    out = d.message(1, Pong())
    assert not any(isinstance(a, act.Log) and "ignored a frame" in a.message for a in out)
    assert d.machine.uplink.sessions[1].last_progress == d.clock.now
    d.message(1, final("three four", end=4.0))
    assert d.transcript() == act.Transcript("three four", "en")


def test_pong_is_parsed_as_a_pong_not_an_unreadable_frame() -> None:
    assert parse_message('{"type": "pong"}') == Pong()
