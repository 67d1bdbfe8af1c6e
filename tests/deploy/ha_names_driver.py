"""A real Home Assistant holding a home with unusual names, for the server to read them.

Runs inside Home Assistant's own venv (2026.11 in its forky root: ``forky_env.py``), like
``ha_driver.py``, whose ``boot`` it reuses, and adds ``websocket_api``, ``config`` and
``input_boolean``. It makes an administrator with a long-lived access token as the profile page
does, then builds the home through Home Assistant's own code paths: each device an
``input_boolean`` created with the ``input_boolean/create`` websocket command the helpers page
sends (so it is a real entity in the entity registry, whose rename updates its state), floors
and areas with aliases through the floor and area registries, entity aliases and areas through
the entity registry, and Assist exposure through ``exposed_entities``: :data:`DEVICES` exposed,
:data:`HIDDEN` not. Started with one JSON argument::

    {"config_dir": "...", "http_port": 12345, "token_file": "...", "plain_token_file": "..."}

it writes the token to ``token_file`` and one of a user who is no administrator to
``plain_token_file`` (mode 0600, never to stdout), prints
``{"ready": port, "exposed": [...names...], "hidden": [...], "areas": [...], "floors": [...],
"aliases": [...]}`` and then answers each line on stdin with one JSON line:
``rename ENTITY_ID NEW NAME`` renames an entity in the entity registry, ``revoke`` deletes the
token, ``stop`` stops Home Assistant (the driver then waits for end of input).
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

import aiohttp
from ha_driver import boot, write_token  # the same directory: run as a script
from ha_names_home import AREAS, DEVICES, FLOORS, HIDDEN  # copied beside this script
from homeassistant.components.homeassistant.exposed_entities import async_expose_entity
from homeassistant.helpers import area_registry as ar
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import floor_registry as fr
from homeassistant.setup import async_setup_component


async def create_helpers(port: int, token: str, names: list[str]) -> list[str]:
    """The input_booleans, created as the helpers page creates them; their entity ids."""
    url = f"http://127.0.0.1:{port}/api/websocket"
    async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
        assert (await ws.receive_json())["type"] == "auth_required"
        await ws.send_json({"type": "auth", "access_token": token})
        assert (await ws.receive_json())["type"] == "auth_ok"
        ids = []
        for ident, name in enumerate(names, start=1):
            await ws.send_json({"id": ident, "type": "input_boolean/create", "name": name})
            answer = await ws.receive_json()
            assert answer.get("success"), answer
            ids.append(answer["result"]["id"])
    return ids


async def build_home(hass: Any, port: int, token: str) -> dict[str, Any]:
    floors = fr.async_get(hass)
    floor_ids = {
        key: floors.async_create(name, aliases=aliases).floor_id
        for key, (name, aliases) in FLOORS.items()
    }
    areas = ar.async_get(hass)
    area_ids = {}
    for key, (name, aliases, floor) in AREAS.items():
        floor_id = floor_ids[floor] if floor else None
        area_ids[key] = areas.async_create(name, aliases=aliases, floor_id=floor_id).id
    everything = [*DEVICES, *HIDDEN]
    await create_helpers(port, token, [name for name, _a, _al in everything])
    await hass.async_block_till_done()
    entities = er.async_get(hass)
    by_name = {
        state.attributes.get("friendly_name"): state.entity_id
        for state in hass.states.async_all("input_boolean")
    }
    ids: dict[str, str] = {}
    for index, (name, area, aliases) in enumerate(everything):
        entity_id = by_name[name]
        ids[name] = entity_id
        entities.async_update_entity(
            entity_id, area_id=area_ids[area] if area else None, aliases=list(aliases)
        )
        async_expose_entity(hass, "conversation", entity_id, index < len(DEVICES))
    await hass.async_block_till_done()
    return {
        "exposed": [name for name, _a, _al in DEVICES],
        "hidden": [name for name, _a, _al in HIDDEN],
        "hidden_aliases": [a for _n, _ar, aliases in HIDDEN for a in aliases],
        "aliases": [a for _n, _ar, aliases in DEVICES for a in aliases],
        "areas": {key: name for key, (name, _al, _f) in AREAS.items()},
        "area_aliases": [a for _n, aliases, _f in AREAS.values() for a in aliases],
        "floors": [name for name, _al in FLOORS.values()],
        "floor_aliases": [a for _n, aliases in FLOORS.values() for a in aliases],
        "ids": ids,
    }


async def main(spec: dict[str, Any]) -> None:
    hass = await boot(spec["config_dir"], spec["http_port"])
    stopped = False
    try:
        for domain in ("websocket_api", "config", "input_boolean"):
            if not await async_setup_component(hass, domain, {}):
                raise RuntimeError(f"integration {domain} failed to set up")
        token, refresh = await write_token(
            hass,
            spec["token_file"],
            user="wyoming-lightning test",
            group="system-admin",
            client_name="wyoming-lightning names",
        )
        # A token of a user who is no administrator: the exposure list is refused to it.
        await write_token(
            hass, spec["plain_token_file"], "plain user", "system-users", "wyoming-lightning names"
        )
        home = await build_home(hass, spec["http_port"], token)
        print(json.dumps({"ready": spec["http_port"], **home}), flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            command, _, rest = line.strip().partition(" ")
            if command == "rename":
                entity_id, _, name = rest.partition(" ")
                er.async_get(hass).async_update_entity(entity_id, name=name)
                await hass.async_block_till_done()
                state = hass.states.get(entity_id)
                shown = state.attributes.get("friendly_name") if state else None
                print(json.dumps({"renamed": entity_id, "friendly_name": shown}), flush=True)
            elif command == "revoke":
                hass.auth.async_remove_refresh_token(refresh)
                print(json.dumps({"revoked": True}), flush=True)
            elif command == "stop":
                await hass.async_stop()
                stopped = True
                print(json.dumps({"stopped": True}), flush=True)
            else:
                print(json.dumps({"error": f"unknown command {command!r}"}), flush=True)
    finally:
        if not stopped:
            await hass.async_stop()


if __name__ == "__main__":
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(main(json.loads(sys.argv[1])))
