"""LiveKit's Smallest plugin (``livekit-plugins-smallestai``), unchanged but for its base URL:
one stream, a turn, a flush (its ``finalize``), then a long silence in which the plugin's
5-second ``keepalive`` must be answered (the test says go once the emulator has seen them),
then the next turn, and the end of input (its ``close_stream``)."""

from __future__ import annotations

import asyncio

import aiohttp
from common import RATE, answer, arguments, read_pcm, wait_for_go
from livekit import rtc
from livekit.agents import stt as agents_stt
from livekit.plugins import smallestai

GUARD_S = 300.0  # only turns a hang into a failure
FRAME_SAMPLES = RATE // 100  # 10 ms frames, as a LiveKit room delivers them


def frames(pcm: bytes) -> list[rtc.AudioFrame]:
    step = FRAME_SAMPLES * 2
    return [
        rtc.AudioFrame(
            data=pcm[i : i + step],
            sample_rate=RATE,
            num_channels=1,
            samples_per_channel=len(pcm[i : i + step]) // 2,
        )
        for i in range(0, len(pcm), step)
    ]


async def main() -> None:
    args = arguments(__doc__ or "")
    http = args.url.replace("ws://", "http://", 1)
    async with aiohttp.ClientSession() as session:
        engine = smallestai.STT(api_key=args.key, base_url=http + "/waves/v1", http_session=session)
        stream = engine.stream()
        finals: list[str] = []
        kinds: list[str] = []
        turns = len(args.wav)

        async def read() -> None:
            async for event in stream:
                kinds.append(event.type.name)
                if event.type is agents_stt.SpeechEventType.FINAL_TRANSCRIPT:
                    finals.append(event.alternatives[0].text)

        reader = asyncio.create_task(read())
        for turn, path in enumerate(args.wav):
            for frame in frames(read_pcm(path)):
                stream.push_frame(frame)
            stream.flush()
            if turn < turns - 1:
                await asyncio.get_running_loop().run_in_executor(None, wait_for_go)
        stream.end_input()
        await asyncio.wait_for(reader, GUARD_S)
        await stream.aclose()
    answer({"finals": finals, "events": kinds})


if __name__ == "__main__":
    asyncio.run(main())
