"""A real Home Assistant with its REST API and a long-lived access token, for the usage sensors.

Runs inside Home Assistant's own venv (``ha_env.py``), like ``ha_driver.py``, whose ``boot`` it
reuses, then sets up the ``api`` integration and makes an administrator with a long-lived access
token exactly as the profile page does (``async_create_refresh_token`` with
``TOKEN_TYPE_LONG_LIVED_ACCESS_TOKEN``). Started with one JSON argument::

    {"config_dir": "...", "http_port": 12345, "token_file": "..."}

it writes the token to ``token_file`` (mode 0600, never to stdout), prints ``{"ready": port}``
and then answers each line on stdin: ``states`` prints the states of every
``sensor.wyoming_lightning_*`` entity as Home Assistant holds them; end of input stops it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from typing import Any

from ha_driver import boot, write_token  # the same directory: run as a script
from homeassistant.setup import async_setup_component


async def main(spec: dict[str, Any]) -> None:
    hass = await boot(spec["config_dir"], spec["http_port"])
    try:
        if not await async_setup_component(hass, "api", {}):
            raise RuntimeError("the api integration failed to set up")
        await write_token(
            hass,
            spec["token_file"],
            user="wyoming-lightning test",
            group="system-admin",
            client_name="wyoming-lightning sensors",
        )
        print(json.dumps({"ready": spec["http_port"]}), flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line:
                return
            if line.strip() == "states":
                states = {
                    s.entity_id: {"state": s.state, "attributes": dict(s.attributes)}
                    for s in hass.states.async_all("sensor")
                    if s.entity_id.startswith("sensor.wyoming_lightning_")
                }
                print(json.dumps(states), flush=True)
    finally:
        await hass.async_stop()


if __name__ == "__main__":
    logging.basicConfig(
        stream=sys.stderr, level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(main(json.loads(sys.argv[1])))
