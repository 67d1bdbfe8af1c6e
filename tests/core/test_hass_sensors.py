"""The sensors' decisions (what to publish, when, how a failing Home Assistant is retried) on an
injected clock, and where the token may come from. Real Home Assistant:
tests/deploy/test_home_assistant_sensors.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from wyoming_lightning.hass.connection import HassConnection, read_token
from wyoming_lightning.hass.sensors import (
    ENTITY_PREFIX,
    FIRST_RETRY_S,
    MAX_RETRY_S,
    REFRESH_S,
    Link,
    Outcome,
    SensorPlan,
    sensor_states,
)
from wyoming_lightning.ops.quota import DayUsage
from wyoming_lightning.settings.config import ConfigError, Settings


def _states(requests: int, errors: int = 0) -> list:  # type: ignore[type-arg]
    usage = DayUsage(
        "2026-12-07",
        requests=requests,
        received_s=90.0,
        sent_s=60.0 * requests,
        cost_usd=0.006 * requests,
        errors={"auth": errors} if errors else {},
    )
    return sensor_states(usage, daily_limit_min=60.0, price_per_min=0.006)


def test_the_four_sensors_carry_todays_usage() -> None:
    by_id = {s.entity_id: s for s in _states(3, errors=2)}
    assert by_id[f"{ENTITY_PREFIX}audio_minutes_today"].state == "3.00"
    assert by_id[f"{ENTITY_PREFIX}estimated_cost_today"].state == "0.0180"
    assert by_id[f"{ENTITY_PREFIX}requests_today"].state == "3"
    errors = by_id[f"{ENTITY_PREFIX}errors_today"]
    assert errors.state == "2" and errors.attributes["codes"] == {"auth": 2}
    assert by_id[f"{ENTITY_PREFIX}audio_minutes_today"].attributes["daily_limit_min"] == 60.0


def test_only_changes_are_published_until_the_refresh() -> None:
    plan = SensorPlan()
    first = plan.due(_states(1), now=0.0)
    assert first.full and len(first.states) == 4
    assert plan.sent(first, now=0.0) is Outcome.QUIET
    assert plan.due(_states(1), now=10.0).states == []
    changed = plan.due(_states(2), now=20.0)
    assert not changed.full
    assert {s.entity_id for s in changed.states} == {
        f"{ENTITY_PREFIX}audio_minutes_today",
        f"{ENTITY_PREFIX}estimated_cost_today",
        f"{ENTITY_PREFIX}requests_today",
    }
    plan.sent(changed, now=20.0)
    assert plan.next_wake(now=20.0) == REFRESH_S - 20.0
    refresh = plan.due(_states(2), now=REFRESH_S)
    assert refresh.full and len(refresh.states) == 4


def test_a_failing_home_assistant_is_retried_with_back_off_and_logged_once() -> None:
    plan = SensorPlan()
    batch = plan.due(_states(1), now=0.0)
    assert plan.failed(now=0.0) is Outcome.FIRST_FAILURE
    assert plan.link is Link.DOWN
    assert plan.due(_states(1), now=FIRST_RETRY_S - 1).states == []
    assert plan.next_wake(now=0.0) == FIRST_RETRY_S
    waits = []
    now = 0.0
    for _ in range(10):
        now += plan.next_wake(now)
        assert plan.due(_states(1), now).full
        assert plan.failed(now) is Outcome.QUIET
        waits.append(plan.next_wake(now))
    assert waits[0] == FIRST_RETRY_S * 2 and waits[-1] == MAX_RETRY_S
    now += plan.next_wake(now)
    batch = plan.due(_states(1), now)
    assert plan.sent(batch, now) is Outcome.RECOVERED
    assert plan.link is Link.UP


def test_the_token_comes_from_the_variable_a_file_or_the_supervisor(tmp_path: Path) -> None:
    file = tmp_path / "token"
    file.write_text("from-file\n")
    with_file = Settings(hass_url="http://127.0.0.1:8123", hass_token_file=str(file))
    assert read_token(with_file, {"HASS_TOKEN": "from-env"}).reveal() == "from-env"
    assert read_token(with_file, {}).reveal() == "from-file"
    addon = Settings(hass_url="http://supervisor/core")
    assert read_token(addon, {"SUPERVISOR_TOKEN": "sup"}).reveal() == "sup"
    plain = Settings(hass_url="http://127.0.0.1:8123")
    with pytest.raises(ConfigError, match="set HASS_TOKEN or pass --hass-token-file"):
        read_token(plain, {"SUPERVISOR_TOKEN": "sup"})  # not handed to any other host
    missing = Settings(hass_url="http://x", hass_token_file=str(tmp_path / "none"))
    with pytest.raises(ConfigError, match="cannot read"):
        read_token(missing, {})
    assert HassConnection.from_settings(Settings(), {}) is None
    connection = HassConnection.from_settings(addon, {"SUPERVISOR_TOKEN": "sup"})
    assert connection is not None and connection.base == "http://supervisor/core/api"
    assert "sup" not in repr(read_token(addon, {"SUPERVISOR_TOKEN": "sup"}))
