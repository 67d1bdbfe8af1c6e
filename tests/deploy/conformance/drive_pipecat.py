"""pipecat's Smallest STT service (``pipecat-ai``), unchanged but for its base URL, in a real
pipeline: audio frames in, the VAD's "user stopped speaking" after each turn (its
``finalize``), each turn's final transcription frame awaited, then the end of the pipeline."""

from __future__ import annotations

import asyncio

from common import RATE, answer, arguments, read_pcm, silence
from pipecat.frames.frames import (
    EndFrame,
    Frame,
    InputAudioRawFrame,
    TranscriptionFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.smallest.stt import SmallestSTTService

GUARD_S = 300.0  # only turns a hang into a failure


class Collector(FrameProcessor):
    """Keeps the final transcriptions and wakes the driver at each one."""

    def __init__(self) -> None:
        super().__init__()
        self.finals: list[str] = []
        self.arrived = asyncio.Event()

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, TranscriptionFrame):
            self.finals.append(frame.text)
            self.arrived.set()
        await self.push_frame(frame, direction)


async def main() -> None:
    args = arguments(__doc__ or "")
    service = SmallestSTTService(api_key=args.key, base_url=args.url, sample_rate=RATE)
    collector = Collector()
    task = PipelineTask(
        Pipeline([service, collector]),
        params=PipelineParams(audio_in_sample_rate=RATE),
    )
    runner = PipelineRunner(handle_sigint=False)
    running = asyncio.create_task(runner.run(task))
    for path in args.wav:
        pcm = read_pcm(path) + silence(0.3)
        await task.queue_frame(VADUserStartedSpeakingFrame())
        for i in range(0, len(pcm), 640):  # 20 ms, as a transport delivers them
            await task.queue_frame(
                InputAudioRawFrame(audio=pcm[i : i + 640], sample_rate=RATE, num_channels=1)
            )
        collector.arrived.clear()
        await task.queue_frame(VADUserStoppedSpeakingFrame())
        await asyncio.wait_for(collector.arrived.wait(), GUARD_S)
    await task.queue_frame(EndFrame())
    await asyncio.wait_for(running, GUARD_S)
    answer({"finals": collector.finals})


if __name__ == "__main__":
    asyncio.run(main())
