"""An idle server collects its garbage cycles and trims the C heap (issue 15)."""

from __future__ import annotations

import gc
import platform
import weakref
from collections.abc import Iterator

import pytest

from tests.kit.bridge import bridge_port, bridge_settings, running_bridge, transcribe
from wyoming_lightning.emulator import EmulatorServer
from wyoming_lightning.ops.heap import release_free_memory


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def a_garbage_cycle() -> weakref.ref[Node]:
    a, b = Node(), Node()
    a.other, b.other = b, a
    return weakref.ref(a)


@pytest.fixture
def no_automatic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def test_cycles_are_collected_and_lasting_state_is_frozen(no_automatic_gc: None) -> None:
    release_free_memory()
    assert gc.get_freeze_count() > 0  # what lives on is not walked by later collections
    ref = a_garbage_cycle()
    assert ref() is not None
    release_free_memory()
    assert ref() is None


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_free_pages_inside_the_heap_go_back_to_the_os() -> None:
    # 64 kB blocks come from the heap (below the mmap threshold); freeing every other one
    # leaves free pages between live blocks, which only malloc_trim can give back.
    blocks = [bytearray(64 * 1024) for _ in range(400)]
    del blocks[::2]
    assert release_free_memory() is True
    del blocks


async def test_the_server_collects_once_its_last_connection_ends(
    emulator: EmulatorServer, no_automatic_gc: None
) -> None:
    ref = a_garbage_cycle()
    async with running_bridge(bridge_settings(emulator.pulse_url, vad="webrtc")) as server:
        answer = await transcribe(bridge_port(server), bytes(8000))
        assert answer.transcript is not None
    assert ref() is None
