"""The I/O-free decisions of cost and access: the allow-list, the per-client slots, the daily
ledger with a fake clock, and the usage table (SQLite, on real files) under failure."""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.kit.clock import FakeClock
from wyoming_lightning.ops.access import (
    AccessPolicy,
    ClientSlots,
    OnceEach,
    Verdict,
    parse_address,
)
from wyoming_lightning.ops.quota import Admission, DailyLedger, DayUsage, RequestUsage
from wyoming_lightning.ops.usage_report import format_table
from wyoming_lightning.ops.usage_store import UsageStore, read_usage
from wyoming_lightning.settings.config import ConfigError, load_settings
from wyoming_lightning.settings.networks import parse_network

# ------------------------------------------------------------------------------- access


def test_an_empty_list_serves_everyone() -> None:
    policy = AccessPolicy()
    assert policy.open
    assert policy.decide("203.0.113.9") is Verdict.ALLOWED
    assert policy.decide(None) is Verdict.ALLOWED


@pytest.mark.parametrize(
    ("host", "verdict"),
    [
        ("192.168.1.77", Verdict.ALLOWED),
        ("192.168.2.1", Verdict.FORBIDDEN),
        ("::ffff:192.168.1.77", Verdict.ALLOWED),  # an IPv4 client of a dual-stack socket
        ("::ffff:10.0.0.1", Verdict.FORBIDDEN),
        ("fd00::1234", Verdict.ALLOWED),
        ("fe80::1%eth0", Verdict.FORBIDDEN),
        ("2001:db8::1", Verdict.FORBIDDEN),
        ("not-an-address", Verdict.FORBIDDEN),
        (None, Verdict.FORBIDDEN),
    ],
)
def test_ipv4_ipv6_and_mapped_addresses(host: str | None, verdict: Verdict) -> None:
    policy = AccessPolicy(tuple(map(parse_network, ["192.168.1.0/24", "fd00::/8"])))
    assert policy.decide(host) is verdict


def test_a_list_written_in_mapped_form_matches_plain_ipv4() -> None:
    policy = AccessPolicy(tuple(map(parse_network, ["::ffff:192.168.1.0/120"])))
    assert policy.decide("192.168.1.5") is Verdict.ALLOWED
    assert policy.decide("192.168.9.5") is Verdict.FORBIDDEN


def test_local_sockets_are_always_allowed() -> None:
    policy = AccessPolicy(tuple(map(parse_network, ["10.0.0.0/8"])))
    assert policy.decide(None, local=True) is Verdict.ALLOWED


def test_parse_address_normalises() -> None:
    assert str(parse_address("::ffff:127.0.0.2")) == "127.0.0.2"
    assert str(parse_address("FE80::1%lo")) == "fe80::1"
    assert parse_address("") is None


def test_allow_flags_and_variable() -> None:
    env = {"LIGHTNING_ALLOW": "192.168.0.0/16, 10.0.0.5"}
    assert tuple(map(str, load_settings([], env).allow)) == ("192.168.0.0/16", "10.0.0.5/32")
    flags = ["--allow", "127.0.0.1", "--allow", "::1,fd00::/8"]
    assert tuple(map(str, load_settings(flags, env).allow)) == (
        "127.0.0.1/32",
        "::1/128",
        "fd00::/8",
    )
    assert load_settings([], {}).allow == ()
    with pytest.raises(ConfigError, match=r"--allow '10\.0\.0\.300' is not a network"):
        load_settings(["--allow", "10.0.0.300"], {})


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--max-requests-per-client", "0"], "must be positive"),
        (["--daily-audio-limit", "-5"], "cannot be negative"),
        (["--price-per-minute", "-1"], "cannot be negative"),
        (["--metrics-port", "70000"], "0..65535"),
    ],
)
def test_bad_limits_are_explained(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(argv, {})


def test_each_refused_address_is_logged_once_in_bounded_memory() -> None:
    once = OnceEach(capacity=3)
    assert once.first("10.0.0.1") and not once.first("10.0.0.1")
    for i in range(2, 10):
        assert once.first(f"10.0.0.{i}")
    assert len(once) == 3  # a scan from many addresses does not grow it
    assert not once.first("10.0.0.9")
    assert once.first("10.0.0.1")  # forgotten long ago: logged again, once


def test_each_refused_address_is_logged_once_per_interval() -> None:
    now = [0.0]
    once = OnceEach(interval=600.0, clock=lambda: now[0])
    assert once.first("10.0.0.1")
    now[0] = 599.0
    assert not once.first("10.0.0.1")
    now[0] = 600.0
    assert once.first("10.0.0.1"), "an address still knocking is logged again each interval"
    assert not once.first("10.0.0.1")


def test_client_slots() -> None:
    slots = ClientSlots(limit=2)
    assert slots.acquire("a") and slots.acquire("a")
    assert not slots.acquire("a")
    assert slots.acquire("b")
    slots.release("a")
    assert slots.running("a") == 1 and slots.acquire("a")
    for _ in range(3):
        slots.release("a")
    slots.release("b")
    assert len(slots) == 0, "addresses without a running request are forgotten"


# ------------------------------------------------------------------------------- ledger


def test_the_daily_limit_takes_effect_at_the_right_request_and_resets_at_midnight() -> None:
    clock = FakeClock(dt.datetime(2026, 3, 1, 9, 0))
    ledger = DailyLedger(limit_s=60.0, clock=clock)
    day = ledger.today()
    assert day == "2026-03-01"
    for _ in range(2):
        assert ledger.admit() is Admission.CLOUD
        assert ledger.take(25.0) == 25.0  # 25, then 50 s
    assert ledger.admit() is Admission.CLOUD and ledger.room_s() == 10.0
    assert ledger.take(25.0) == 10.0, "the audio that would cross the limit is cut to fit"
    assert ledger.take(1.0) == 0.0 and ledger.sent_today_s() == 60.0
    assert ledger.admit() is Admission.OVER
    clock.now = dt.datetime(2026, 3, 1, 23, 59, 59)
    assert ledger.admit() is Admission.OVER
    clock.now = dt.datetime(2026, 3, 2, 0, 0, 0)
    assert ledger.admit() is Admission.CLOUD and ledger.sent_today_s() == 0
    assert ledger.take(5.0) == 5.0, "audio sent after midnight counts on the new day"
    assert DailyLedger(None, clock).take(1e9) == 1e9, "no limit: everything is sent"


def test_audio_is_taken_in_whole_samples_up_to_the_limit() -> None:
    ledger = DailyLedger(limit_s=3.0, clock=FakeClock(dt.datetime(2026, 3, 1, 12)))
    assert ledger.take_bytes(57600, 32000, 2) == 57600  # 1.8 s
    assert ledger.take_bytes(57600, 32000, 2) == 38400, "1.2 s left: exactly that, not 38398"
    assert ledger.take_bytes(320, 32000, 2) == 0 and ledger.sent_today_s() == 3.0
    odd = DailyLedger(limit_s=0.0001, clock=FakeClock(dt.datetime(2026, 3, 1, 12)))
    assert odd.take_bytes(100, 32000, 2) == 2, "3.2 bytes of room: one whole sample"
    free = DailyLedger(limit_s=None, clock=FakeClock(dt.datetime(2026, 3, 1, 12)))
    assert free.take_bytes(12345, 32000, 2) == 12345


def test_the_ledger_takes_the_larger_of_its_count_and_the_shared_file() -> None:
    ledger = DailyLedger(limit_s=100.0, clock=FakeClock(dt.datetime(2026, 3, 1, 12)))
    ledger.take(30.0)
    ledger.sync("2026-03-01", 120.0)  # another server on the same file spent more
    assert ledger.admit() is Admission.OVER
    ledger.sync("2026-03-01", 10.0)
    assert ledger.sent_today_s() == 120.0
    assert DailyLedger(None, FakeClock(dt.datetime(2026, 3, 1))).admit() is Admission.CLOUD


def test_request_usage_and_the_printed_table() -> None:
    usage = RequestUsage("2026-03-01", received_s=90.0, sent_s=30.0, error_code="timeout")
    deltas = usage.deltas(price_per_min=0.006)
    assert deltas == {
        "requests": 1.0,
        "received_s": 90.0,
        "sent_s": 30.0,
        "cost_usd": pytest.approx(0.003),
        "error:timeout": 1.0,
    }
    day = DayUsage.from_values("2026-03-01", {**deltas, "fallback:quota": 2.0})
    assert day.errors == {"timeout": 1} and day.fallbacks == {"quota": 2}
    table = format_table([day, DayUsage("2026-03-02", requests=3, sent_s=120.0, cost_usd=0.012)])
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["day", "requests"]
    assert lines[1].split()[:6] == ["2026-03-01", "1", "1.5", "0.5", "0.0030", "timeout"]
    assert lines[-1].split()[:5] == ["total", "4", "1.5", "2.5", "0.0150"]


# ------------------------------------------------------------------------------- the file


def test_usage_adds_up_in_the_file_and_is_read_back(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    store = UsageStore(path)
    for _ in range(3):
        total = store.add("2026-03-01", RequestUsage("2026-03-01", 4.0, 2.0).deltas(0.006))
    assert total == 6.0
    store.add("2026-02-20", RequestUsage("2026-02-20", 1.0, 1.0).deltas(0.006))
    store.close()
    days = read_usage(path, 7, dt.date(2026, 3, 1))
    assert [d.day for d in days] == ["2026-03-01"], "2026-02-20 is older than 7 days"
    assert days[0].requests == 3 and days[0].sent_s == 6.0 and days[0].received_s == 12.0
    assert days[0].cost_usd == pytest.approx(6 / 60 * 0.006)


WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from wyoming_lightning.ops.usage_store import UsageStore
    store = UsageStore(Path(sys.argv[1]))
    for _ in range(int(sys.argv[2])):
        assert store.add("2026-03-01", {"requests": 1.0, "sent_s": 0.5}) is not None
    store.close()
    """
)


def test_two_processes_writing_one_file_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    UsageStore(path).add("2026-03-01", {"requests": 0.0})  # create it first
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), "300"]) for _ in range(2)]
    assert [w.wait(timeout=120) for w in writers] == [0, 0]
    (day,) = read_usage(path, 1, dt.date(2026, 3, 1))
    assert day.requests == 600 and day.sent_s == 300.0


def test_a_corrupt_file_is_left_alone_and_counting_goes_on_in_memory(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "usage.sqlite3"
    garbage = b"this is not a database " * 200
    path.write_bytes(garbage)
    now = [0.0]
    store = UsageStore(path, retry_after_s=30, monotonic=lambda: now[0])
    with caplog.at_level(logging.WARNING, "wyoming_lightning.ops.usage_store"):
        assert store.add("2026-03-01", {"requests": 1.0, "sent_s": 2.0}) is None
        assert store.add("2026-03-01", {"requests": 1.0, "sent_s": 2.0}) is None
    assert not store.healthy and store.failures == 1, "no new attempt before retry_after_s"
    assert len([r for r in caplog.records if "counting in memory" in r.message]) == 1
    assert store.day_values("2026-03-01") == {"requests": 2.0, "sent_s": 4.0}
    assert path.read_bytes() == garbage, "the user's file is never replaced"
    # The user moves the broken file away; the next attempt after the pause saves everything.
    path.rename(tmp_path / "broken.sqlite3")
    now[0] = 31.0
    assert store.add("2026-03-01", {"requests": 1.0, "sent_s": 2.0}) == 6.0
    assert store.healthy
    store.close()
    (day,) = read_usage(path, 1, dt.date(2026, 3, 1))
    assert day.requests == 3


def test_the_report_reads_a_file_a_server_holds_open(tmp_path: Path) -> None:
    path = tmp_path / "usage.sqlite3"
    store = UsageStore(path)
    store.add(dt.date.today().isoformat(), {"requests": 2.0, "sent_s": 60.0, "cost_usd": 0.006})
    shown = subprocess.run(
        [sys.executable, "-m", "wyoming_lightning", "usage", "--data-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    store.close()
    row = shown.stdout.splitlines()[1].split()
    assert row[:5] == [dt.date.today().isoformat(), "2", "0.0", "1.0", "0.0060"]
    assert shown.stdout.splitlines()[-1].startswith("est. cost: an estimate"), "says so"
    assert "$0.008/min, the Pulse model card, 2026-06-19" in shown.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "wyoming_lightning", "usage", "--data-dir", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 2 and "no usage.sqlite3" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_sqlite_is_recent_enough_for_upsert() -> None:
    assert sqlite3.sqlite_version_info >= (3, 24, 0)


def test_the_add_on_options_become_flags_and_keep_usage_in_data() -> None:
    import importlib.util

    run_py = Path(__file__).resolve().parents[2] / "config" / "addon" / "run.py"
    spec = importlib.util.spec_from_file_location("addon_run_for_cost", run_py)
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    options = {"allow": "172.30.32.0/23, 192.168.1.0/24", "daily_audio_limit": 30, "vad": "off"}
    argv, env = run.command(options)
    settings = load_settings(argv[1:], env=env)
    assert tuple(map(str, settings.allow)) == ("172.30.32.0/23", "192.168.1.0/24")
    assert settings.daily_audio_limit_min == 30.0 and settings.data_dir == "/data"
    argv, _env = run.command({"vad": "off"})
    assert load_settings(argv[1:], env={}).allow == (), "no option: open as before"
