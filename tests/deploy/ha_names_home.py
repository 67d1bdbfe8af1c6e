"""The home of the names tests and benchmark: floors, areas, exposed and hidden devices.

Plain data and the standard library only: ``ha_names_driver.py`` reads it inside Home
Assistant's root (copied beside it, as ``ha_driver.py`` is), and ``benchmarks/names.py`` reads it
to build the same home for the server, so the two cannot drift apart.
"""

from __future__ import annotations

#: floor id: (name, aliases).
FLOORS = {"mezzanine": ("Mezzanine", {"Half Floor"}), "ground": ("Ground Floor", set())}
#: area id: (name, aliases, floor id).
AREAS = {
    "orangery": ("Orangery", {"Glasshouse"}, "mezzanine"),
    "snug": ("Snug", set(), "ground"),
    "scullery": ("Scullery", {"Back Kitchen"}, "ground"),
    "boot_room": ("Boot Room", set(), None),
    "panic_room": ("Panic Room", set(), None),  # holds only hidden devices: never sent
}
#: Exposed to Assist: (name, area, aliases).
DEVICES = (
    ("Ecobee", "snug", ("thermostat",)),
    ("Jacuzzi", "orangery", ("hot tub",)),
    ("Kitchen West", "scullery", ()),
    ("Shelly Plug", "boot_room", ()),
    ("Tado Valve", "snug", ()),
    ("Nanoleaf Canvas", "orangery", ("light panels",)),
    ("Roborock", None, ("Robbie",)),
    ("Sonos Arc", "snug", ()),
    ("Hue Gradient", None, ()),
    ("Aqara Cube", None, ()),
    ("Meross Garage", "boot_room", ()),
    ("Eve Weather", None, ()),
    ("Switchbot Curtain", "orangery", ()),
    ("Wiz Bulb", None, ()),
    ("Govee Strip", "scullery", ()),
    ("Tuya Kettle", "scullery", ()),
    ("Dyson Purifier", None, ()),
    ("Xiaomi Humidifier", None, ()),
    ("Netatmo Station", None, ()),
    ("Somfy Blind", "orangery", ()),
    ("Lutron Caseta", None, ()),
    ("Zooz Dimmer", None, ("Zoozie",)),
)
#: Not exposed to Assist: their names, aliases and area must not leave the house.
HIDDEN = (
    ("Secret Safe", "panic_room", ("strongbox",)),
    ("Diary Lamp", "panic_room", ()),
    ("Alarm Keypad", None, ()),
)
