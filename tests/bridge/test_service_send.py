"""The cloud send path (``ServiceSession.send``) against the emulator over loopback.

A frame with nothing ahead of it is written by ``send`` itself, not by the send loop's next
turn; frames that meet a full write buffer queue behind it. Either way the service receives
them in the order they were given, and the session still closes cleanly.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import Future

import pytest

from wyoming_lightning.cloud.client import Callbacks, ServiceSession, Timeouts
from wyoming_lightning.core.protocol import Failure, ServiceMessage
from wyoming_lightning.emulator.config import EmulatorConfig
from wyoming_lightning.emulator.records import SessionRecord
from wyoming_lightning.emulator.server import EmulatorServer

KEY = "test-key-send-path"
GUARD = 20.0  # seconds; only turns a hang into a failure, never decides a pass


class EmulatorThread:
    """The emulator on its own event loop in its own thread: it reads while ours is blocked."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.server = EmulatorServer(EmulatorConfig(api_key=KEY), port=0)
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> EmulatorThread:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self.server.start(), self.loop).result(GUARD)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self.server.close(), self.loop).result(GUARD)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(GUARD)
        self.loop.close()

    def audio(self, nbytes: int) -> Future[SessionRecord]:
        """Done when one session has received ``nbytes`` of audio (waited on its own loop)."""
        return asyncio.run_coroutine_threadsafe(
            self.server.wait_for_audio(nbytes, GUARD), self.loop
        )

    def idle(self) -> None:
        asyncio.run_coroutine_threadsafe(self.server.wait_idle(GUARD), self.loop).result(GUARD)


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread() as emu:
        yield emu


class Owner:
    """What a session reports, as the request machine would receive it."""

    def __init__(self) -> None:
        self.opened = asyncio.Event()
        self.progress = 0
        self.failures: list[Failure] = []
        self.messages: list[ServiceMessage] = []

    def callbacks(self) -> Callbacks:
        def progress() -> None:
            self.progress += 1

        return Callbacks(
            opened=self.opened.set,
            message=self.messages.append,
            closed=lambda code, reason: None,
            failed=self.failures.append,
            progress=progress,
        )


async def open_session(emu: EmulatorThread, owner: Owner) -> ServiceSession:
    session = ServiceSession(emu.server.pulse_url, KEY, Timeouts(), owner.callbacks())
    session.start()
    async with asyncio.timeout(GUARD):
        await owner.opened.wait()
    await asyncio.sleep(0)  # the send loop's first turn: it waits for frames from here on
    return session


def test_a_frame_with_nothing_ahead_reaches_the_service_without_the_loop_turning(
    emulator: EmulatorThread,
) -> None:
    """Before: ``send`` only queued the frame, and nothing reached the service until the send
    loop's task ran; with our loop held here that never happened."""

    async def scenario() -> None:
        owner = Owner()
        session = await open_session(emulator, owner)
        frame = b"\x01\x00" * 1600
        session.send(frame)
        # Blocks this loop on purpose: only what ``send`` itself wrote can arrive.
        record = emulator.audio(len(frame)).result(GUARD)
        assert record.binary_frame_sizes == [len(frame)]
        assert owner.progress == 1  # the frame is off our hands: progress, as before
        session.close()
        await session.wait_closed()
        assert owner.failures == []

    asyncio.run(scenario())
    emulator.idle()


def test_frames_that_meet_a_full_buffer_queue_and_arrive_in_order(
    emulator: EmulatorThread,
) -> None:
    """Enough frames at once to fill the socket's buffers (our loop never yields while they are
    given): the first ones are written at once, the rest wait behind the full buffer, and the
    service receives every one, in order, sizes and all."""
    sizes = [16000 + 2 * i for i in range(600)]  # about 10 MB, each frame its own size

    async def scenario() -> None:
        owner = Owner()
        session = await open_session(emulator, owner)
        session.send('{"type": "keepalive"}')
        for size in sizes:
            session.send(b"\x00\x01" * (size // 2))
        session.probe()
        session.send(b"\x02\x00" * 100)
        assert session.audio_bytes_sent == sum(sizes) + 200
        # Fewer reports than frames: some frames had to wait for the buffer to drain.
        assert owner.progress < len(sizes)
        record = await asyncio.wrap_future(emulator.audio(sum(sizes) + 200))
        assert record.binary_frame_sizes == [*sizes, 200]
        assert record.text_frames_received[:1] == ['{"type": "keepalive"}']
        session.close()
        await session.wait_closed()
        assert owner.failures == []

    asyncio.run(scenario())
    emulator.idle()
