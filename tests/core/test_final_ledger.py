"""The final ledger on its own: whose words a final carries and which turns it completes.

Turns are given as the request machine sees them (stream seconds); finals as the service sends
them, with word times unless a test says otherwise, and never with ``from_finalize`` unless the
test is about it.
"""

from __future__ import annotations

from wyoming_lightning.core.protocol import Result, Word
from wyoming_lightning.core.transcript import (
    REACH_S,
    FinalLedger,
    ServiceHabits,
    Turn,
    UtteranceText,
    Verdict,
)


def words(*spans: tuple[str, float, float]) -> tuple[Word, ...]:
    return tuple(Word(w, start, end) for w, start, end in spans)


def final(*spans: tuple[str, float, float], from_finalize: bool | None = None) -> Result:
    text = " ".join(w for w, _, _ in spans)
    return Result(text, is_final=True, words=words(*spans), from_finalize=from_finalize)


EMPTY = Result("", is_final=True)

# One turn: audio 0..3 s, speech until 2.7 s, its finalize sent at 3.0 s.
OPEN = Turn(start=0.0)
SENT = Turn(start=0.0, end=3.0, awaiting=True, speech_end=2.7)
SENT_2 = Turn(start=3.0, end=6.0, awaiting=True, speech_end=5.6)
DONE = Turn(start=0.0, end=3.0, speech_end=2.7, settled=True)


def test_a_word_count_final_before_the_finalize_is_text() -> None:
    ledger = FinalLedger()
    judged = ledger.judge(final(("one", 0.3, 0.5), ("two", 0.6, 0.8)), [OPEN])
    assert judged.verdict is Verdict.TEXT and judged.pieces == ((0, "one two", 0.3),)
    assert judged.answers == ()


def test_a_word_count_final_after_the_finalize_that_ends_short_is_text_not_the_answer() -> None:
    # A burst: the finalize went out before any final came; this one holds earlier words.
    ledger = FinalLedger()
    judged = ledger.judge(final(("one", 0.3, 0.5), ("two", 0.6, 1.9)), [SENT])
    assert judged.verdict is Verdict.TEXT and judged.answers == ()
    assert ledger.habits.own_finals, "the service cuts turns itself: from now on, careful"
    rest = ledger.judge(final(("three", 2.0, 2.6)), [SENT])
    assert rest.pieces == ((0, "three", 2.0),) and rest.answers == (), "may be cut again"
    flush = ledger.judge(EMPTY, [SENT])
    assert flush.verdict is Verdict.ANSWER and flush.answers == (0,)


def test_an_obeying_service_is_answered_by_the_final_that_reaches_the_speech() -> None:
    judged = FinalLedger().judge(final(("one", 0.3, 1.0), ("two", 1.1, 2.6)), [SENT])
    assert judged.verdict is Verdict.ANSWER and judged.answers == (0,)


def test_once_the_service_showed_its_own_finals_reaching_is_not_enough() -> None:
    # A word-count final cut before a short last word can end within the reach: with a service
    # known to cut turns itself only an empty final, later words or its silence end a turn.
    habits = ServiceHabits(own_finals=True)
    ledger = FinalLedger(habits=habits)
    judged = ledger.judge(final(("one", 0.3, 1.0), ("two", 1.1, 2.6)), [SENT])
    assert judged.verdict is Verdict.TEXT and judged.answers == ()
    assert FinalLedger(habits=habits).judge(final(("six", 3.2, 3.4)), [SENT, OPEN]).answers == (0,)


def test_the_reach_is_measured_from_the_speech_end() -> None:
    short = 2.7 - REACH_S - 0.01
    assert FinalLedger().judge(final(("one", 0.3, short)), [SENT]).answers == ()
    assert FinalLedger().judge(final(("one", 0.3, 2.7 - REACH_S)), [SENT]).answers == (0,)


def test_without_a_vad_measure_the_first_final_after_the_finalize_answers() -> None:
    turn = Turn(start=0.0, end=3.0, awaiting=True)
    assert FinalLedger().judge(final(("one", 0.3, 0.5)), [turn]).answers == (0,)


def test_an_empty_flush_answers_a_turn_whose_words_all_came_earlier() -> None:
    ledger = FinalLedger()
    ledger.judge(final(("one", 0.3, 1.0), ("two", 1.1, 1.9)), [SENT])
    judged = ledger.judge(EMPTY, [SENT])
    assert judged.verdict is Verdict.ANSWER and judged.answers == (0,) and judged.pieces == ()


def test_an_empty_final_with_no_finalize_out_ends_nothing() -> None:
    assert FinalLedger().judge(EMPTY, [OPEN]).verdict is Verdict.TEXT


def test_a_final_straddling_two_turns_is_split_and_completes_the_first() -> None:
    ledger = FinalLedger()
    straddle = final(("one", 2.2, 2.6), ("two", 3.3, 3.5))
    judged = ledger.judge(straddle, [SENT, Turn(start=3.0)])
    assert judged.pieces == ((0, "one", 2.2), (1, "two", 3.3))
    assert judged.answers == (0,), "the service went past the first finalize point"


def test_words_of_a_later_turn_complete_every_earlier_one() -> None:
    ledger = FinalLedger()
    judged = ledger.judge(final(("six", 6.2, 6.4)), [SENT, SENT_2, Turn(start=6.0)])
    assert judged.answers == (0, 1) and judged.pieces == ((2, "six", 6.2),)


def test_a_copy_is_dropped_and_a_partial_copy_keeps_its_new_words() -> None:
    ledger = FinalLedger()
    first = final(("one", 0.3, 0.5), ("two", 0.6, 0.8))
    ledger.judge(first, [OPEN])
    assert ledger.judge(first, [OPEN]).verdict is Verdict.REPEAT
    overlap = final(("two", 0.6, 0.8), ("three", 0.9, 2.6))
    judged = ledger.judge(overlap, [SENT])
    assert judged.pieces == ((0, "three", 0.9),)


def test_the_same_word_said_twice_counts_twice() -> None:
    ledger = FinalLedger()
    ledger.judge(final(("no", 0.3, 0.5)), [OPEN])
    again = ledger.judge(final(("no", 1.3, 1.5)), [OPEN])
    assert again.verdict is Verdict.TEXT and again.pieces == ((0, "no", 1.3),)


def test_a_late_final_for_a_settled_turn_keeps_its_place() -> None:
    ledger = FinalLedger()
    ledger.judge(final(("one", 0.3, 2.5)), [SENT])
    late = ledger.judge(final(("two", 2.55, 2.65)), [DONE, SENT_2])
    assert late.pieces == ((0, "two", 2.55),), "its words belong to the first turn"
    assert late.answers == (), "and it ends nothing of the second"


def test_an_empty_echo_after_a_server_final_does_not_end_the_next_turn() -> None:
    # A server that ends turns itself (server endpointing asked for) ...
    ledger = FinalLedger(server_endpoints=True)
    # ... so after a final that completes the turn, an empty final may be the finalize's echo.
    assert ledger.judge(final(("two", 0.6, 2.6)), [SENT, SENT_2]).answers == (0,)
    assert ledger.judge(EMPTY, [DONE, SENT_2]).verdict is Verdict.ECHO
    assert ledger.judge(EMPTY, [DONE, SENT_2]).answers == (1,), "the next empty one answers"


def test_a_late_interim_repeating_the_last_final_changes_nothing() -> None:
    ledger = FinalLedger(server_endpoints=True)
    ledger.judge(final(("two", 0.6, 2.6)), [SENT])
    ledger.interim(Result("two", is_final=False))
    assert ledger.echo_possible, "a repeat of the last final is not news"
    ledger.interim(Result("three", is_final=False))
    assert not ledger.echo_possible


def test_words_from_before_this_requests_audio_belong_to_no_turn() -> None:
    # A warm socket: this request's audio starts at 10 s of the stream.
    warm = Turn(start=10.0, end=13.0, awaiting=True, speech_end=12.7)
    judged = FinalLedger().judge(final(("old", 9.0, 9.4), ("new", 10.3, 12.6)), [warm])
    assert judged.pieces == ((0, "new", 10.3),) and judged.answers == (0,)


def test_without_word_times_order_decides() -> None:
    ledger = FinalLedger()
    untimed = Result("nine", is_final=True)
    assert ledger.judge(untimed, [SENT]).answers == (0,)
    assert ledger.judge(untimed, [DONE, OPEN]).verdict is Verdict.REPEAT
    ledger.finalize_sent()
    assert ledger.judge(untimed, [DONE, SENT_2]).answers == (1,), "a new finalize: its answer"


def test_from_finalize_when_the_service_says_it() -> None:
    own = final(("one", 0.3, 2.6), from_finalize=False)
    assert FinalLedger().judge(own, [SENT]).answers == ()
    answer = final(("one", 0.3, 0.5), from_finalize=True)
    assert FinalLedger().judge(answer, [SENT]).answers == (0,)


def test_text_is_kept_in_stream_order_whatever_the_arrival_order() -> None:
    text = UtteranceText()
    text.add_text("three four", None, 2.0)
    text.add_text("one two", "en", 0.3)
    text.add_text("five", None, None)  # no position: after what came before
    assert text.text == "one two three four five" and text.language == "en"


def test_a_new_word_placed_over_the_last_counted_one_is_kept() -> None:
    # A recognizer that reads the segment again places words a few tens of ms differently:
    # "previous" ends before "the" did, yet it is a new word; "the" again, moved 20 ms, is not.
    ledger = FinalLedger()
    ledger.judge(final(("to", 5.9, 6.1), ("hear", 6.1, 6.3), ("the", 6.3, 6.58)), [OPEN])
    judged = ledger.judge(final(("the", 6.32, 6.56), ("previous", 6.4, 6.55)), [OPEN])
    assert judged.pieces == ((0, "previous", 6.4),)
    copy = ledger.judge(final(("hear", 6.11, 6.29), ("the", 6.31, 6.6)), [OPEN])
    assert copy.verdict is Verdict.REPEAT
