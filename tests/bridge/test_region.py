"""``--region auto`` against two local stand-ins for the vendor's hosts (loopback only).

Two emulators play ``api.smallest.ai`` (Mumbai) and ``api.us.smallest.ai`` (Oregon); the far
one answers every handshake and health check after two round trips of 150 ms (its latency
model), the near one at once. The bridge, given both URLs with ``--region-urls``, measures them
at start and sends each request to the nearer, except languages only one region serves.
"""

from __future__ import annotations

import logging

import pytest

from tests.kit.bridge import API_KEY, bridge_port, bridge_settings, running_bridge, transcribe
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer
from wyoming_lightning.emulator.latency import LatencyModel
from wyoming_lightning.emulator.tones import encode_phrase, silence
from wyoming_lightning.wyoming.server import WyomingServer

FAR_RTT_MS = 150.0


def emulator(rtt_ms: float, region: str) -> EmulatorServer:
    config = EmulatorConfig(api_key=API_KEY, latency=LatencyModel(rtt_ms=rtt_ms), region=region)
    return EmulatorServer(config, host="127.0.0.1", port=0)


def gauge(server: WyomingServer, name: str, region: str) -> float | None:
    registry = server.services.guard.metrics.registry
    return registry.get_sample_value(f"wyoming_lightning_{name}", {"region": region})


@pytest.mark.parametrize("near", ["us", "default"])
async def test_auto_picks_the_nearer_host_within_the_language_rules(
    near: str, caplog: pytest.LogCaptureFixture
) -> None:
    far = "default" if near == "us" else "us"
    caplog.set_level(logging.INFO)
    async with emulator(0.0, near) as near_emu, emulator(FAR_RTT_MS, far) as far_emu:
        by_region = {near: near_emu, far: far_emu}
        urls = ",".join(by_region[r].live_url for r in ("default", "us"))
        settings = bridge_settings(
            near_emu.live_url, region="auto", region_urls=urls, metrics_port=None
        )
        async with running_bridge(settings) as server:
            port = bridge_port(server)
            pcm = silence(300) + encode_phrase("one two") + silence(700)
            answer = await transcribe(port, pcm, language="en")
            assert answer.transcript == "one two"
            assert len(near_emu.sessions) == 1 and not far_emu.sessions, "the nearer host"
            assert near_emu.health_checks >= 3 and far_emu.health_checks >= 3, "both timed"
            assert gauge(server, "region_chosen", near) == 1.0
            assert gauge(server, "region_chosen", far) == 0.0
            near_rtt = gauge(server, "region_round_trip_seconds", near)
            far_rtt = gauge(server, "region_round_trip_seconds", far)
            assert near_rtt is not None and far_rtt is not None and near_rtt < far_rtt
            # A language only the far region serves goes there, whatever the round trip.
            only_far = "ta" if far == "default" else "ja"
            await transcribe(port, pcm, language=only_far)
            assert len(far_emu.sessions) == 1 and far_emu.sessions[0].params["language"] == only_far
    assert "region auto: 127.0.0.1 chosen; measured default 127.0.0.1" in caplog.text


async def test_region_default_measures_nothing(emulator: EmulatorServer) -> None:
    async with running_bridge(bridge_settings(emulator.live_url)) as server:
        answer = await transcribe(bridge_port(server), encode_phrase("three") + silence(700))
        assert answer.transcript == "three"
        assert server.services.region is None and emulator.health_checks == 0
