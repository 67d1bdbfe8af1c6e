"""``ops/stop_habits.py``: whose speech may be read in batches, learnt from how each client
ends its audio (a stop while the VAD hears speech would wait in the socket)."""

from __future__ import annotations

from wyoming_lightning.ops.stop_habits import TRUSTED_AFTER, StopHabits


def test_a_client_is_trusted_after_stopping_in_a_pause_often_enough() -> None:
    habits = StopHabits()
    seen = []
    for _ in range(TRUSTED_AFTER):
        seen.append(habits.may_wait("10.0.0.2"))
        habits.ended("10.0.0.2", in_speech=False)
    assert seen == [False] * TRUSTED_AFTER, "never before it has shown how it stops"
    assert habits.may_wait("10.0.0.2")
    assert not habits.may_wait("10.0.0.3"), "per address"


def test_a_stop_in_speech_starts_the_count_again() -> None:
    habits = StopHabits()
    for _ in range(TRUSTED_AFTER):
        habits.ended("10.0.0.2", in_speech=False)
    habits.ended("10.0.0.2", in_speech=True)
    seen = []
    for _ in range(TRUSTED_AFTER):
        seen.append(habits.may_wait("10.0.0.2"))
        habits.ended("10.0.0.2", in_speech=False)
    assert seen == [False] * TRUSTED_AFTER, "not until it has stopped in a pause in a row again"
    assert habits.may_wait("10.0.0.2")


def test_a_client_that_always_stops_in_speech_is_never_trusted() -> None:
    habits = StopHabits()
    for _ in range(10 * TRUSTED_AFTER):
        habits.ended("10.0.0.2", in_speech=True)
    assert not habits.may_wait("10.0.0.2")


def test_a_flood_of_addresses_forgets_the_oldest_and_stays_bounded() -> None:
    habits = StopHabits(max_peers=8)
    for _ in range(TRUSTED_AFTER):
        habits.ended("home-assistant", in_speech=False)
    for i in range(7):
        habits.ended(f"10.1.0.{i}", in_speech=False)
    habits.ended("home-assistant", in_speech=False)  # seen again: the newest now
    for i in range(7, 14):
        habits.ended(f"10.1.0.{i}", in_speech=True)
    assert habits.may_wait("home-assistant"), "recently seen: kept"
    assert len(habits) == 8
    habits.ended("10.2.0.1", in_speech=False)
    assert not habits.may_wait("home-assistant"), "the oldest now, forgotten"
