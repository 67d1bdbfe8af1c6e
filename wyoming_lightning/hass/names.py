"""Which of a home's names go to the service as ``keywords``, free of I/O.

Home Assistant 2026.11 sends only ``transcribe(language)``, never ``transcript_names``, so the
words a command depends on most ("Ecobee", "kitchen west", "Jacuzzi") would be recognised like
any others. This module turns what Home Assistant's registries say (the answers of its websocket
API, parsed here) into the bias list, by these rules:

- **Only what Assist may use leaves the house**: entities exposed to Assist (the
  ``conversation`` assistant), their names as Home Assistant shows them (the state's
  ``friendly_name``) and aliases; the areas that hold an exposed entity (its own area, else its
  device's) and the floors of those areas, with their aliases. Nothing else: not an unexposed
  entity, not an empty area, not an entity id.
- **As Home Assistant spells them**: Pulse matches keywords case-sensitively. Home Assistant
  keeps one spelling per name (its registries have no per-language names), so the list is the
  same for every language the request may use.
- **Weights**: the vendor's advice is an intensifier of 1 to 3 (above 5 it hallucinates the
  word). Device names, the words a general model gets wrong most, get :data:`NAME_WEIGHT`;
  areas and floors, often ordinary words, get less (:data:`PLACE_WEIGHT`).
- **Ranked and cut to a budget**: the session URL carries the list, and servers refuse request
  lines over 8 KiB, so the home gets at most :data:`URL_BUDGET_BYTES` of it. When it does not
  fit, aliases go first, then areas and floors, then device names (a command names a device
  more often than it names its alias).
- **Stable**: the same registries give the same list in the same order (sorted within a rank),
  so a refresh that changed nothing keeps the URL, and the warm sockets keyed by it, unchanged.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote_plus

from wyoming_lightning.core.protocol import Keyword, _keyword_text

ASSISTANT = "conversation"
"""Home Assistant's name for Assist in its exposure settings."""
NAME_WEIGHT = 2.0
PLACE_WEIGHT = 1.5
URL_BUDGET_BYTES = 4000
"""The home's share of the session URL, encoded: half of the 8000 the bridge builds at most,
leaving the rest for the other options and for the names a client sends itself."""
MAX_NAME_CHARS = 60
"""A longer "name" is a description, not a word to listen for."""


class Rank(enum.IntEnum):
    """What kind of name; the lower, the later it is cut."""

    DEVICE = 0
    PLACE = 1
    ALIAS = 2


@dataclass(frozen=True)
class Entity:
    entity_id: str
    name: str
    aliases: tuple[str, ...] = ()
    area_id: str | None = None


@dataclass(frozen=True)
class Place:
    """An area or a floor; ``parent`` is an area's floor."""

    place_id: str
    name: str
    aliases: tuple[str, ...] = ()
    parent: str | None = None


@dataclass(frozen=True)
class Home:
    """What Home Assistant holds that matters here: exposed entities only."""

    entities: tuple[Entity, ...] = ()
    areas: Mapping[str, Place] = field(default_factory=dict)
    floors: Mapping[str, Place] = field(default_factory=dict)


def _texts(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list | tuple | set):
        return ()
    return tuple(v for v in values if isinstance(v, str))  # None: "the entity's own name"


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def home_from_answers(
    *,
    exposed: Mapping[str, Any],
    states: Iterable[Mapping[str, Any]],
    entries: Mapping[str, Any],
    devices: Iterable[Mapping[str, Any]],
    areas: Iterable[Mapping[str, Any]],
    floors: Iterable[Mapping[str, Any]],
) -> Home:
    """A :class:`Home` from the answers to ``homeassistant/expose_entity/list``,
    ``get_states``, ``config/entity_registry/get_entries``, ``config/device_registry/list``,
    ``config/area_registry/list`` and ``config/floor_registry/list``. Anything malformed is
    skipped, never raised: a strange registry must not stop the server."""
    shown = exposed.get("exposed_entities", {}) if isinstance(exposed, Mapping) else {}
    exposed_ids = {
        entity_id
        for entity_id, to in (shown.items() if isinstance(shown, Mapping) else ())
        if isinstance(to, Mapping) and to.get(ASSISTANT) is True
    }
    device_area = {
        d["id"]: _str(d.get("area_id")) for d in devices if isinstance(d, Mapping) and "id" in d
    }
    names: dict[str, str] = {}
    for state in states:
        if not isinstance(state, Mapping):
            continue
        entity_id = state.get("entity_id")
        attributes = state.get("attributes")
        if (
            isinstance(entity_id, str)
            and entity_id in exposed_ids
            and isinstance(attributes, Mapping)
            and (name := _str(attributes.get("friendly_name")))
        ):
            names[entity_id] = name
    entities: list[Entity] = []
    for entity_id in sorted(names):
        entry = entries.get(entity_id) if isinstance(entries, Mapping) else None
        entry = entry if isinstance(entry, Mapping) else {}
        area = _str(entry.get("area_id")) or device_area.get(entry.get("device_id"))
        entities.append(Entity(entity_id, names[entity_id], _texts(entry.get("aliases")), area))
    area_places = {
        a["area_id"]: Place(
            a["area_id"], a["name"], _texts(a.get("aliases")), _str(a.get("floor_id"))
        )
        for a in areas
        if isinstance(a, Mapping) and _str(a.get("area_id")) and _str(a.get("name"))
    }
    floor_places = {
        f["floor_id"]: Place(f["floor_id"], f["name"], _texts(f.get("aliases")))
        for f in floors
        if isinstance(f, Mapping) and _str(f.get("floor_id")) and _str(f.get("name"))
    }
    return Home(tuple(entities), area_places, floor_places)


def _candidates(home: Home) -> list[tuple[Rank, float, str]]:
    out: list[tuple[Rank, float, str]] = []
    used_areas: set[str] = set()
    for entity in home.entities:
        out.append((Rank.DEVICE, NAME_WEIGHT, entity.name))
        out += [(Rank.ALIAS, NAME_WEIGHT, alias) for alias in entity.aliases]
        if entity.area_id is not None and entity.area_id in home.areas:
            used_areas.add(entity.area_id)
    used_floors: set[str] = set()
    for area_id in used_areas:
        area = home.areas[area_id]
        out.append((Rank.PLACE, PLACE_WEIGHT, area.name))
        out += [(Rank.ALIAS, PLACE_WEIGHT, alias) for alias in area.aliases]
        if area.parent is not None and area.parent in home.floors:
            used_floors.add(area.parent)
    for floor_id in used_floors:
        floor = home.floors[floor_id]
        out.append((Rank.PLACE, PLACE_WEIGHT, floor.name))
        out += [(Rank.ALIAS, PLACE_WEIGHT, alias) for alias in floor.aliases]
    return out


def _entry_bytes(text: str, weight: float) -> int:
    """What one entry adds to the URL: ``text:weight`` encoded, and its comma."""
    return len(quote_plus(f"{text}:{weight:g}")) + len(quote_plus(","))


def home_keywords(home: Home, budget_bytes: int = URL_BUDGET_BYTES) -> tuple[Keyword, ...]:
    """The bias list for ``home``: see the module doc for what, in which order, and the cut."""
    best: dict[str, tuple[Rank, float]] = {}
    for rank, weight, raw in _candidates(home):
        text = _keyword_text(raw)
        if not text or len(text) > MAX_NAME_CHARS:
            continue
        # A text that is both a name and an alias keeps its best rank and its highest weight.
        old_rank, old_weight = best.get(text, (rank, weight))
        best[text] = (min(rank, old_rank), max(weight, old_weight))
    ordered = sorted(best.items(), key=lambda item: (item[1][0], item[0].casefold(), item[0]))
    out: list[Keyword] = []
    used = 0
    for text, (_rank, weight) in ordered:
        used += _entry_bytes(text, weight)
        if used > budget_bytes:
            break  # a prefix: what is cut is always the lowest ranked, so the cut is stable
        out.append(Keyword(text, weight))
    return tuple(out)
