"""The ``--allow`` setting's values: networks, with bare addresses as networks of one host.

A setting's parsing lives with the settings, so that :mod:`~wyoming_lightning.settings.config`
reads ``--allow`` without importing the access policy that later acts on it
(:mod:`~wyoming_lightning.ops.access`)."""

from __future__ import annotations

import ipaddress

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_network(text: str) -> IpNetwork:
    """One ``--allow`` value: a network, or a bare address as a network of one host.

    Host bits are allowed (``192.168.1.7/24`` is ``192.168.1.0/24``); raises ValueError.
    """
    return ipaddress.ip_network(text.strip(), strict=False)
