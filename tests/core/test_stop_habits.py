"""``ops/stop_habits.py``: whose audio may be read in batches, learnt from how each client
ends its audio (a stop that comes while audio waits in the socket would wait with it)."""

from __future__ import annotations

import math

from wyoming_lightning.ops.stop_habits import STOP_MARGIN_MS, TRUSTED_AFTER, StopHabits

HA = "172.30.32.1"


def trusted(habits: StopHabits, peer: str) -> bool:
    """Known to stop only in pauses: while it speaks, any audio may wait."""
    return habits.stop_room_ms(peer, 0.0) == math.inf


def trust_while_learning(habits: StopHabits, peer: str, pause_ms: float) -> list[bool]:
    """Whether ``peer`` was trusted before each of :data:`TRUSTED_AFTER` stops ``pause_ms``
    into a pause."""
    seen = []
    for _ in range(TRUSTED_AFTER):
        seen.append(trusted(habits, peer))
        habits.ended(peer, pause_ms)
    return seen


def test_a_client_is_trusted_after_stopping_in_a_pause_often_enough() -> None:
    habits = StopHabits()
    seen = trust_while_learning(habits, HA, 720.0)
    assert seen == [False] * TRUSTED_AFTER, "never before it has shown how it stops"
    assert trusted(habits, HA)
    assert not trusted(habits, "10.0.0.3"), "per address"


def test_the_room_runs_to_the_shortest_pause_it_has_stopped_in() -> None:
    habits = StopHabits()
    assert habits.stop_room_ms(HA, 0.0) == 0.0, "not trusted yet: no room"
    habits.ended(HA, 900.0)
    habits.ended(HA, None)  # the server ended the command, or no speech: trusted, no pause
    habits.ended(HA, 720.0)
    assert habits.stop_room_ms(HA, 0.0) == math.inf, "it stops only in pauses"
    assert habits.stop_room_ms(HA, None) == math.inf
    assert habits.stop_room_ms(HA, 400.0) == 720.0 - STOP_MARGIN_MS - 400.0
    assert habits.stop_room_ms(HA, 800.0) == 0.0
    habits.ended(HA, 650.0)
    assert habits.stop_room_ms(HA, 400.0) == 650.0 - STOP_MARGIN_MS - 400.0, "a shorter one"


def test_a_stop_in_speech_starts_the_count_again() -> None:
    habits = StopHabits()
    for _ in range(TRUSTED_AFTER):
        habits.ended(HA, 720.0)
    habits.ended(HA, 0.0)
    seen = trust_while_learning(habits, HA, 900.0)
    assert seen == [False] * TRUSTED_AFTER, "not until it has stopped in a pause in a row again"
    assert trusted(habits, HA)
    assert habits.stop_room_ms(HA, 500.0) == 900.0 - STOP_MARGIN_MS - 500.0, "the old forgotten"


def test_a_client_that_always_stops_in_speech_is_never_trusted() -> None:
    habits = StopHabits()
    for _ in range(10 * TRUSTED_AFTER):
        habits.ended("10.0.0.2", 0.0)
    assert not trusted(habits, "10.0.0.2")
    assert habits.stop_room_ms("10.0.0.2", None) == 0.0


def test_a_flood_of_addresses_forgets_the_oldest_and_stays_bounded() -> None:
    habits = StopHabits(max_peers=8)
    for _ in range(TRUSTED_AFTER):
        habits.ended(HA, 720.0)
    for i in range(7):
        habits.ended(f"10.1.0.{i}", 720.0)
    habits.ended(HA, 720.0)  # seen again: the newest now
    for i in range(7, 14):
        habits.ended(f"10.1.0.{i}", 0.0)
    assert trusted(habits, HA), "recently seen: kept"
    assert len(habits) == 8
    habits.ended("10.2.0.1", 720.0)
    assert not trusted(habits, HA), "the oldest now, forgotten"
