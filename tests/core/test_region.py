"""``--region auto``'s rule on its own: samples in, a host out, on an injected clock."""

from __future__ import annotations

from dataclasses import dataclass

from wyoming_lightning.cloud.region import (
    REMEASURE_S,
    RegionChoice,
    swap_host,
    vendor_candidates,
)

URLS = {"default": "wss://api.smallest.ai/x", "us": "wss://api.us.smallest.ai/x"}


@dataclass
class Clock:
    now: float = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_nearer_host_by_median_one_slow_sample_is_no_verdict() -> None:
    choice = RegionChoice(URLS, Clock())
    choice.record({"default": [0.25, 0.24, 0.26], "us": [0.04, 0.9, 0.05]})
    assert choice.nearest == "us" and choice.url_for("en") == URLS["us"]
    assert choice.rtt_s == {"default": 0.25, "us": 0.05}


def test_language_rules_come_before_the_round_trip() -> None:
    choice = RegionChoice(URLS, Clock())
    choice.record({"default": [0.3], "us": [0.02]})
    assert choice.url_for("ta") == URLS["default"], "South Indian only on the default host"
    assert choice.url_for("multi-south-indic") == URLS["default"]
    choice.record({"default": [0.02], "us": [0.3]})
    assert choice.url_for("ja") == URLS["us"], "East Asian only on the US host"
    assert choice.url_for("multi-asian") == URLS["us"]
    assert choice.url_for("de") == URLS["default"]


def test_unmeasured_or_unreachable_means_the_default_host() -> None:
    choice = RegionChoice(URLS, Clock())
    assert choice.nearest == "default", "before any measurement"
    choice.record({"default": [None, None], "us": [None]})
    assert choice.nearest == "default", "nothing answered"
    choice.record({"default": [None], "us": [0.3]})
    assert choice.nearest == "us", "the only host that answers"
    assert "unreachable" in choice.describe() and "api.us.smallest.ai chosen" in choice.describe()


def test_a_tie_keeps_the_default_host() -> None:
    choice = RegionChoice(URLS, Clock())
    choice.record({"default": [0.1], "us": [0.1]})
    assert choice.nearest == "default"


def test_remeasured_every_ten_minutes() -> None:
    clock = Clock()
    choice = RegionChoice(URLS, clock)
    assert choice.due()
    choice.record({"default": [0.1], "us": [0.2]})
    clock.now = REMEASURE_S - 1
    assert not choice.due()
    clock.now = REMEASURE_S
    assert choice.due()


def test_the_vendor_hosts_keep_path_query_and_port() -> None:
    url = "wss://api.smallest.ai/waves/v1/stt/live?model=pulse"
    assert vendor_candidates(url) == {
        "default": url,
        "us": "wss://api.us.smallest.ai/waves/v1/stt/live?model=pulse",
    }
    assert swap_host("ws://127.0.0.1:81/p?q=1", "h") == "ws://h:81/p?q=1"
