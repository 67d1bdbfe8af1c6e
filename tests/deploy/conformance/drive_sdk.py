"""The vendor's own SDK (``smallestai``), unchanged but for its base URL: one session, a
``finalize`` after every turn but the last, ``close_stream`` at the end, keywords given
without weights, as the SDK's documentation shows them."""

from __future__ import annotations

import asyncio
from typing import Any

from common import answer, arguments, read_pcm, silence
from smallestai import AsyncSmallestAI
from smallestai.environment import SmallestAIEnvironment
from smallestai.waves import CloseStream, FinalizeSignal
from smallestai.waves.helpers import stream_speech_to_text

GUARD_S = 300.0  # only turns a hang into a failure


async def main() -> None:
    args = arguments(__doc__ or "")
    http = args.url.replace("ws://", "http://", 1)
    environment = SmallestAIEnvironment(atoms=http, waves=http, waves_ws=args.url, payment=http)
    client = AsyncSmallestAI(api_key=args.key, environment=environment)
    events: list[dict[str, Any]] = []
    async with stream_speech_to_text(
        client,
        language="en",
        sample_rate=16000,
        word_timestamps=True,
        keywords=["Kitchen", "garage door"],
    ) as socket:

        async def read() -> None:
            async for event in socket:
                fields = event if isinstance(event, dict) else event.dict()
                events.append(fields)
                if fields.get("is_last"):
                    return

        reader = asyncio.create_task(read())
        for turn, path in enumerate(args.wav):
            pcm = read_pcm(path) + silence(0.3)
            for i in range(0, len(pcm), 3200):
                await socket.send_audio_chunk_out(pcm[i : i + 3200])
            if turn < len(args.wav) - 1:
                await socket.send_finalize_signal(FinalizeSignal(type="finalize"))
        await socket.send_close_stream(CloseStream(type="close_stream"))
        await asyncio.wait_for(reader, GUARD_S)
    finals = [e for e in events if e.get("is_final")]
    answer(
        {
            "finals": [e.get("transcript") or e.get("transcription") or "" for e in finals],
            "from_finalize": [e.get("from_finalize") for e in finals],
            "is_last": [bool(e.get("is_last")) for e in finals],
            "types": sorted({str(e.get("type")) for e in events}),
        }
    )


if __name__ == "__main__":
    asyncio.run(main())
