"""``--check-key``: one empty session at start-up, so a bad key is reported before anyone speaks."""

from __future__ import annotations

import asyncio

from wyoming_lightning.cloud.client import Callbacks, ServiceSession, Timeouts
from wyoming_lightning.core.errors import ErrorCode
from wyoming_lightning.core.protocol import (
    Dialect,
    Failure,
    ServiceMessage,
    detect_dialect,
    with_model,
)


async def check_key(
    url: str, api_key: str, timeouts: Timeouts, dialect: Dialect | None = None
) -> Failure | None:
    """None when the service accepted the key; otherwise why not."""
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[Failure | None] = loop.create_future()

    def settle(value: Failure | None) -> None:
        if not outcome.done():
            outcome.set_result(value)

    session: ServiceSession

    def opened() -> None:
        session.send(detect_dialect(url, dialect).end_message)

    def message(_message: ServiceMessage) -> None:
        settle(None)  # any answer at all means the handshake, and so the key, was accepted

    session = ServiceSession(
        with_model(url),
        api_key,
        timeouts,
        Callbacks(
            opened=opened,
            message=message,
            closed=lambda _code, _reason: settle(None),
            failed=settle,
        ),
    )
    session.start()
    try:
        async with asyncio.timeout(timeouts.connect_s + timeouts.send_s + 5):
            return await outcome
    except TimeoutError:
        return Failure(ErrorCode.TIMEOUT, "the service did not answer the key check", True)
    finally:
        session.close()
        await session.wait_closed()
