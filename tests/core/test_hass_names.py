"""The home's names as keywords (hass/names.py), when they are read again (hass/refresh.py, on an
injected clock), how a request takes them (services.py) and how the emulator's Whisper gets
them (emulator/whisper.py). Real Home Assistant: tests/deploy/test_home_assistant_names.py."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from wyoming.asr import Transcribe

from wyoming_lightning.core.protocol import MAX_URL_BYTES, Keyword, build_url
from wyoming_lightning.emulator.whisper import keyword_prompt
from wyoming_lightning.hass.connection import HassConnection
from wyoming_lightning.hass.names import (
    MAX_NAME_CHARS,
    NAME_WEIGHT,
    PLACE_WEIGHT,
    URL_BUDGET_BYTES,
    Entity,
    Home,
    Place,
    home_from_answers,
    home_keywords,
)
from wyoming_lightning.hass.refresh import (
    FIRST_RETRY_S,
    MAX_RETRY_S,
    REFRESH_S,
    SETTLE_S,
    RefreshPlan,
)
from wyoming_lightning.hass.sensors import Link, Outcome
from wyoming_lightning.services import Services
from wyoming_lightning.settings.config import Settings
from wyoming_lightning.settings.declare import Secret


def _answers(**over: Any) -> dict[str, Any]:
    """Home Assistant's answers for a small home, as its websocket API spells them."""
    answers: dict[str, Any] = {
        "exposed": {
            "exposed_entities": {
                "climate.ecobee": {"conversation": True},
                "light.kitchen_west": {"conversation": True, "cloud.alexa": True},
                "switch.jacuzzi": {"conversation": True},
                "switch.secret_safe": {"cloud.alexa": True},  # not for Assist
            }
        },
        "states": [
            {"entity_id": "climate.ecobee", "attributes": {"friendly_name": "Ecobee"}},
            {"entity_id": "light.kitchen_west", "attributes": {"friendly_name": "Kitchen West"}},
            {"entity_id": "switch.jacuzzi", "attributes": {"friendly_name": "Jacuzzi"}},
            {"entity_id": "switch.secret_safe", "attributes": {"friendly_name": "Secret Safe"}},
            {"entity_id": "light.attic", "attributes": {"friendly_name": "Attic Lamp"}},
        ],
        "entries": {
            "climate.ecobee": {"aliases": ["thermostat", None], "device_id": "dev1"},
            "light.kitchen_west": {"aliases": [], "area_id": "kitchen"},
            "switch.jacuzzi": {"aliases": ["hot tub"], "area_id": None, "device_id": None},
        },
        "devices": [{"id": "dev1", "area_id": "hall"}],
        "areas": [
            {"area_id": "kitchen", "name": "Kitchen", "aliases": ["Cookery"], "floor_id": "ground"},
            {"area_id": "hall", "name": "Hallway", "aliases": [], "floor_id": None},
            {"area_id": "vault", "name": "Vault Room", "aliases": [], "floor_id": "cellar"},
        ],
        "floors": [
            {"floor_id": "ground", "name": "Ground Floor", "aliases": ["Downstairs"]},
            {"floor_id": "cellar", "name": "Cellar", "aliases": []},
        ],
    }
    answers.update(over)
    return answers


def _keywords(**over: Any) -> tuple[Keyword, ...]:
    return home_keywords(home_from_answers(**_answers(**over)))


def test_exposed_entities_their_aliases_areas_and_floors_in_rank_order() -> None:
    assert _keywords() == (
        # Device names first (sorted), then areas and floors, then every alias.
        Keyword("Ecobee", NAME_WEIGHT),
        Keyword("Jacuzzi", NAME_WEIGHT),
        Keyword("Kitchen West", NAME_WEIGHT),
        Keyword("Ground Floor", PLACE_WEIGHT),
        Keyword("Hallway", PLACE_WEIGHT),
        Keyword("Kitchen", PLACE_WEIGHT),
        Keyword("Cookery", PLACE_WEIGHT),
        Keyword("Downstairs", PLACE_WEIGHT),
        Keyword("hot tub", NAME_WEIGHT),
        Keyword("thermostat", NAME_WEIGHT),
    )


def test_nothing_unexposed_leaves_the_house() -> None:
    texts = {k.text for k in _keywords()}
    # Exposed to Alexa only; not exposed at all; an area and a floor holding nothing exposed.
    assert not texts & {"Secret Safe", "Attic Lamp", "Vault Room", "Cellar"}
    # Entity ids never, only names.
    assert not any("." in text for text in texts)


def test_an_entity_takes_its_devices_area_when_it_has_none_of_its_own() -> None:
    home = home_from_answers(**_answers())
    by_id = {e.entity_id: e for e in home.entities}
    assert by_id["climate.ecobee"].area_id == "hall"
    assert by_id["light.kitchen_west"].area_id == "kitchen"
    assert by_id["switch.jacuzzi"].area_id is None


def test_spelling_and_case_are_home_assistants() -> None:
    states = [
        {"entity_id": "climate.ecobee", "attributes": {"friendly_name": "eCobee  Premium"}},
    ]
    texts = [k.text for k in _keywords(states=states)]
    assert "eCobee Premium" in texts  # runs of spaces fold; case stays as written


def test_list_separators_in_a_name_cannot_split_it() -> None:
    states = [{"entity_id": "climate.ecobee", "attributes": {"friendly_name": "Lamp, big:3"}}]
    assert Keyword("Lamp big 3", NAME_WEIGHT) in _keywords(states=states)


def test_a_name_that_is_also_an_alias_is_sent_once_at_its_best_rank_and_weight() -> None:
    entries = dict(_answers()["entries"])
    entries["climate.ecobee"] = {"aliases": ["Kitchen"], "device_id": "dev1"}
    out = _keywords(entries=entries)
    kitchens = [k for k in out if k.text == "Kitchen"]
    assert kitchens == [Keyword("Kitchen", NAME_WEIGHT)]
    # At the area's rank (above aliases), with the device alias' weight.
    assert [k.text for k in out].index("Kitchen") < [k.text for k in out].index("Cookery")


def test_too_long_a_name_is_left_out() -> None:
    long = "x" * (MAX_NAME_CHARS + 1)
    states = [{"entity_id": "climate.ecobee", "attributes": {"friendly_name": long}}]
    assert long not in {k.text for k in _keywords(states=states)}


@pytest.mark.parametrize(
    "broken",
    [
        {"exposed": None},
        {"exposed": {"exposed_entities": ["climate.ecobee"]}},
        {"states": [None, 3, {"entity_id": 5}, {"entity_id": "climate.ecobee"}]},
        {"entries": None},
        {"entries": {"climate.ecobee": "junk"}},
        {"devices": [None, {"area_id": "x"}]},
        {"areas": [None, {"area_id": "kitchen"}, {"name": "No Id"}]},
        {"floors": [{"floor_id": "ground", "name": None}]},
        {"states": [{"entity_id": "climate.ecobee", "attributes": {"friendly_name": 7}}]},
    ],
)
def test_malformed_answers_are_skipped_never_raised(broken: dict[str, Any]) -> None:
    out = _keywords(**broken)
    assert all(isinstance(k.text, str) and k.text for k in out)


def test_nothing_exposed_means_no_keywords() -> None:
    assert _keywords(exposed={"exposed_entities": {}}) == ()


def _big_home(count: int) -> Home:
    entities = tuple(
        Entity(f"light.l{i}", f"Lamp number {i:04d}", (f"alias {i:04d}",), "a")
        for i in range(count)
    )
    return Home(entities, {"a": Place("a", "Attic", ("Loft",), "f")}, {"f": Place("f", "Top")})


def test_the_cut_keeps_the_budget_and_drops_aliases_then_places_then_names() -> None:
    out = home_keywords(_big_home(400))
    url = build_url("ws://127.0.0.1:1/waves/v1/pulse/get_text", _options(out))
    keywords = parse_qs(urlsplit(url).query)["keywords"][0]
    assert len(url) <= MAX_URL_BYTES
    assert len(keywords.encode()) < URL_BUDGET_BYTES  # decoded: shorter than its encoding
    texts = [k.text for k in out]
    assert texts[0] == "Lamp number 0000"
    # Names alone overflow the budget: no area, floor or alias made it in.
    assert not {"Attic", "Top", "Loft"} & set(texts)
    assert not any(t.startswith("alias") for t in texts)
    # A small home keeps everything.
    small = {k.text for k in home_keywords(_big_home(3))}
    assert {"Attic", "Top", "Loft", "alias 0002"} <= small


def test_a_budget_cut_is_a_prefix_of_the_uncut_list() -> None:
    home = _big_home(60)
    full = home_keywords(home, budget_bytes=10**6)
    for budget in (0, 50, 333, 1200, 2500):
        cut = home_keywords(home, budget_bytes=budget)
        assert cut == full[: len(cut)]
    assert home_keywords(home, budget_bytes=0) == ()


def test_the_same_home_in_another_order_gives_the_same_list() -> None:
    answers = _answers()
    shuffled = dict(answers)
    shuffled["states"] = list(reversed(answers["states"]))
    shuffled["areas"] = list(reversed(answers["areas"]))
    shuffled["floors"] = list(reversed(answers["floors"]))
    exposed = answers["exposed"]["exposed_entities"]
    shuffled["exposed"] = {"exposed_entities": dict(reversed(list(exposed.items())))}
    assert home_keywords(home_from_answers(**shuffled)) == _keywords()


def test_a_rename_changes_only_that_name() -> None:
    states = [dict(s) for s in _answers()["states"]]
    states[0] = {"entity_id": "climate.ecobee", "attributes": {"friendly_name": "Nest"}}
    before, after = _keywords(), _keywords(states=states)
    assert set(before) ^ set(after) == {
        Keyword("Ecobee", NAME_WEIGHT),
        Keyword("Nest", NAME_WEIGHT),
    }


def _options(keywords: tuple[Keyword, ...]) -> Any:
    from wyoming_lightning.core.protocol import SessionOptions

    return SessionOptions(language="en", keywords=keywords)


# --- the schedule -------------------------------------------------------------------------


def test_first_read_at_once_then_every_refresh() -> None:
    plan = RefreshPlan()
    assert plan.next_wake(100.0) == 0.0
    assert plan.read(100.0) is Outcome.QUIET
    assert plan.link is Link.UP
    assert plan.next_wake(100.0) == REFRESH_S
    assert plan.next_wake(100.0 + REFRESH_S) == 0.0


def test_a_registry_change_is_read_after_it_settles() -> None:
    plan = RefreshPlan()
    plan.read(0.0)
    plan.changed(10.0)
    assert plan.next_wake(10.0) == SETTLE_S
    plan.changed(10.5)  # a burst: the first event's settle time stands
    assert plan.next_wake(10.5) == pytest.approx(SETTLE_S - 0.5)


def test_failures_back_off_doubling_to_the_cap_and_log_once() -> None:
    plan = RefreshPlan()
    now = 0.0
    outcomes = []
    waits = []
    for _ in range(12):
        outcomes.append(plan.failed(now))
        waits.append(plan.next_wake(now))
        now += waits[-1]
    assert outcomes[0] is Outcome.FIRST_FAILURE
    assert set(outcomes[1:]) == {Outcome.QUIET}
    assert waits[:3] == [FIRST_RETRY_S, FIRST_RETRY_S * 2, FIRST_RETRY_S * 4]
    assert max(waits) == MAX_RETRY_S and waits[-1] == MAX_RETRY_S
    # While backing off, a registry event does not bring the retry forward.
    failed_at = now - waits[-1]
    plan.changed(failed_at)
    assert plan.next_wake(failed_at) == MAX_RETRY_S
    assert plan.read(now) is Outcome.RECOVERED
    assert plan.failed(now) is Outcome.FIRST_FAILURE
    assert plan.next_wake(now) == FIRST_RETRY_S  # the back-off starts over


# --- how a request takes them -------------------------------------------------------------


def _services(**over: Any) -> Services:
    return Services(Settings(api_key=Secret("k"), **over))


def test_a_request_uses_the_names_cached_when_it_starts() -> None:
    services = _services()
    home = (Keyword("Ecobee", NAME_WEIGHT), Keyword("Kitchen", PLACE_WEIGHT))
    services.home_keywords = home
    config = services.request_config(Transcribe(language="en"), "en")
    assert tuple(config.session.keywords) == home
    services.home_keywords = ()  # a later read changes later requests only
    assert tuple(config.session.keywords) == home
    assert tuple(services.request_config(None, "en").session.keywords) == ()


def test_a_clients_own_names_come_before_the_homes_and_the_configured_list_after() -> None:
    services = _services(keywords=(Keyword("Zigbee"),))
    services.home_keywords = (Keyword("Ecobee", NAME_WEIGHT), Keyword("Kitchen", PLACE_WEIGHT))
    transcribe = Transcribe(language="en", context={})
    transcribe.transcript_names = ["Kitchen"]
    keywords = services.request_config(transcribe, "en").session.keywords
    assert [k.text for k in keywords] == ["Kitchen", "Ecobee", "Zigbee"]


# --- the connection's addresses -------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "websocket"),
    [
        ("http://homeassistant.local:8123", "ws://homeassistant.local:8123/api/websocket"),
        ("https://ha.example.org/", "wss://ha.example.org/api/websocket"),
        ("http://supervisor/core", "ws://supervisor/core/websocket"),
    ],
)
def test_the_websocket_api_beside_the_rest_api(url: str, websocket: str) -> None:
    connection = HassConnection(url, Secret("t0ken-9"))
    assert connection.websocket_url == websocket
    assert "t0ken-9" not in repr(connection.auth_message().keys())


# --- the emulator's Whisper ---------------------------------------------------------------


def test_the_keyword_prompt_ends_on_the_strongest_keywords_and_drops_unboosted_ones() -> None:
    # faster-whisper keeps the end of a long prompt: the strongest keywords are written last.
    assert keyword_prompt([("Kitchen", 1.5), ("Ecobee", 2.0), ("off", 0.0), ("Jacuzzi", 2.0)]) == (
        "Kitchen, Jacuzzi, Ecobee."
    )
    assert keyword_prompt([]) is None
