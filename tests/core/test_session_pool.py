"""The warm-socket pool's policy (lightning/pool.py), with a fake clock and no sockets."""

from __future__ import annotations

from tests.kit.clock import FakeClock
from wyoming_lightning.core.warm_pool import Keepalive, PoolPolicy, Retire, Retirement

A = "wss://svc/stt/live?model=pulse&language=en"
B = "wss://svc/stt/live?model=pulse&language=de"


def policy(idle_s: float = 30.0, **kw: int | float) -> tuple[PoolPolicy[str], FakeClock[float]]:
    clock = FakeClock(1000.0)
    return PoolPolicy(idle_s, clock, **kw), clock  # type: ignore[arg-type]


def test_a_clean_socket_is_lent_again_for_the_same_key_only() -> None:
    pool, _ = policy()
    assert pool.give_back("s1", A, clean=True) == []
    assert pool.lend(B) == (None, [])
    assert pool.lend(A) == ("s1", [])
    assert pool.lend(A) == (None, []), "lent once: it is the borrower's now"


def test_an_unclean_socket_is_retired_never_kept() -> None:
    pool, _ = policy()
    assert pool.give_back("s1", A, clean=False) == [Retire("s1", Retirement.UNCLEAN)]
    assert pool.lend(A) == (None, [])


def test_idle_timeout_zero_disables_the_pool() -> None:
    pool, _ = policy(0)
    assert not pool.enabled
    assert pool.give_back("s1", A, clean=True) == [Retire("s1", Retirement.DISABLED)]


def test_the_freshest_socket_is_lent_first() -> None:
    pool, clock = policy()
    pool.give_back("old", A, clean=True)
    clock.now += 1
    pool.give_back("new", A, clean=True)
    assert pool.lend(A)[0] == "new"
    assert pool.lend(A)[0] == "old"


def test_keepalive_every_interval_while_idle_and_retired_after_the_idle_timeout() -> None:
    pool, clock = policy(12.0, keepalive_s=5.0)
    pool.give_back("s1", A, clean=True)
    assert pool.next_due() == clock.now + 5.0
    assert pool.due() == [], "nothing is due before its time"
    clock.now += 5.0
    assert pool.due() == [Keepalive("s1")]
    assert pool.heard("s1", alive=True) == []
    clock.now += 5.0
    assert pool.due() == [Keepalive("s1")]
    pool.heard("s1", alive=True)
    assert pool.next_due() == clock.now + 2.0, "the idle timeout comes before the next keepalive"
    clock.now += 2.0
    assert pool.due() == [Retire("s1", Retirement.IDLE)]
    assert pool.lend(A) == (None, [])


def test_an_expired_socket_is_never_lent() -> None:
    pool, clock = policy(10.0, keepalive_s=100.0)
    pool.give_back("s1", A, clean=True)
    clock.now += 10.0
    assert pool.lend(A) == (None, [Retire("s1", Retirement.IDLE)])


def test_a_keepalive_without_pong_retires_the_socket() -> None:
    pool, clock = policy(60.0, keepalive_s=5.0)
    pool.give_back("s1", A, clean=True)
    clock.now += 5.0
    assert pool.due() == [Keepalive("s1")]
    clock.now += 5.0
    assert pool.due() == [Retire("s1", Retirement.SILENT)]
    assert pool.idle_count == 0


def test_anything_but_a_pong_while_idle_retires_the_socket() -> None:
    pool, _ = policy()
    pool.give_back("s1", A, clean=True)
    assert pool.heard("s1", alive=True) == []
    assert pool.heard("s1", alive=False) == [Retire("s1", Retirement.SPOKE)]
    assert pool.lend(A) == (None, [])
    assert pool.heard("s1", alive=False) == [], "a socket not idle is not the pool's to judge"


def test_a_socket_lost_while_idle_is_dropped() -> None:
    pool, _ = policy()
    pool.give_back("s1", A, clean=True)
    assert pool.lost("s1") == [Retire("s1", Retirement.LOST)]
    assert pool.lend(A) == (None, [])
    assert pool.lost("s1") == []


def test_the_number_of_idle_sockets_is_bounded_oldest_out() -> None:
    pool, clock = policy(max_idle=2)
    for name in ("s1", "s2", "s3"):
        clock.now += 1
        retired = pool.give_back(name, A, clean=True)
    assert retired == [Retire("s1", Retirement.FULL)]
    assert pool.idle_count == 2


def test_drain_retires_everything() -> None:
    pool, _ = policy()
    pool.give_back("s1", A, clean=True)
    pool.give_back("s2", B, clean=True)
    retired = pool.drain()
    assert sorted(r.socket for r in retired) == ["s1", "s2"]
    assert {r.reason for r in retired} == {Retirement.SHUTDOWN}
    assert pool.idle_count == 0 and pool.next_due() is None
