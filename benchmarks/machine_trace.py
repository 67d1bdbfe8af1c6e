"""The request machine on real speech, offline, action by action:
``python -m benchmarks.machine_trace``.

Each recording of tests/data/human/ (as Home Assistant sends it) goes through a
:class:`~wyoming_lightning.core.request.RequestMachine` built as the server builds it (silero gate,
the server's pause rule), in 20 ms chunks, on a fake clock that follows the audio. Every
handshake succeeds at once and every ``finalize``/end is answered at once with a final naming
its turn, so the trace is the machine's own work and nothing else: where it cut utterances,
what it sent, when it finalized, what it answered.

Per clip it prints one line: utterances, audio sent (bytes), the finalize times on the audio
clock, the answer, and a digest of the whole action sequence. Two runs of different code that
print the same lines made the same decisions, byte for byte: this is how a refactoring of the
machine (issue 22: the segmenter) is shown to change nothing. The totals line sums the sent
audio per second of speech heard.

Usage::

    python -m benchmarks.machine_trace [--dialect pulse|lightning] [--re-recognize]
        [--dictation-after S] [--every N]
    python -m benchmarks.machine_trace --time 5 [--vad silero|webrtc|off]   # the per-chunk cost

The per-chunk cost is the process's CPU time (all threads) over the chunks, best of N runs:
unlike wall time it does not count the time another process held the core, though a busy
machine still slows it through the caches.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import time
from dataclasses import dataclass

from tests.kit import human_speech as hs
from wyoming_lightning.core import actions as act
from wyoming_lightning.core.audio import PcmFormat
from wyoming_lightning.core.protocol import Result, SessionOptions
from wyoming_lightning.core.request import (
    AudioIn,
    RequestConfig,
    RequestMachine,
    SessionMessage,
    SessionOpened,
    StartAudio,
    StopAudio,
)
from wyoming_lightning.core.vad.engines import create_engine
from wyoming_lightning.core.vad.gate import VadGate
from wyoming_lightning.services import gate_config
from wyoming_lightning.settings.config import VAD_LAG_MS, Settings

URLS = {
    "pulse": "ws://127.0.0.1:1/waves/v1/pulse/get_text",
    "lightning": "ws://127.0.0.1:1/api/v1/lightning/get_text",
}
CHUNK_BYTES = 640  # 20 ms
BYTES_PER_S = 32000


@dataclass
class Trace:
    """One clip through the machine: what it sent and decided, and how long the chunks took."""

    sent: int
    speech_s: float
    finalizes: list[float]
    answer: str
    digest: str
    chunks: int
    chunk_s: float


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def trace(
    pcm: bytes, dialect: str, re_recognize: bool, dictation_after: float, vad: str = "silero"
) -> Trace:
    s = Settings()
    config = RequestConfig(
        base_url=URLS[dialect],
        session=SessionOptions(language="en", external_session_id="trace"),
        response_language="en",
        finalize_after_ms=s.finalize_after_ms or None,
        vad_lag_ms=VAD_LAG_MS.get("silero", 0),
        dictation_after_s=dictation_after or None,
        pause_tail_ms=s.pause_tail_ms,
        re_recognize=re_recognize,
        keep_session=dialect == "pulse",
        connect_at_start=dialect == "lightning",
    )
    gate = VadGate(
        None if vad == "off" else create_engine(vad),
        gate_config(dataclasses.replace(s, vad=vad)),
    )
    clock = Clock()
    machine = RequestMachine(config, gate, clock)
    digest = hashlib.sha256()
    sent = 0
    finalizes: list[float] = []
    answer = ""
    turns = 0

    def run(event: object) -> None:
        nonlocal sent, answer, turns
        queue = [event]
        while queue:
            for action in machine.handle(queue.pop(0)):  # type: ignore[arg-type]
                if isinstance(action, act.SendAudio):
                    sent += len(action.data)
                    digest.update(b"A%d:" % action.conn + hashlib.sha256(action.data).digest())
                    continue
                if isinstance(action, act.Log):
                    continue  # wording may change; decisions may not
                digest.update(repr(action).encode())
                if isinstance(action, act.Connect):
                    queue.append(SessionOpened(action.conn))
                elif isinstance(action, act.SendText):
                    kind = json.loads(action.text).get("type")
                    if kind in ("finalize", "end", "close_stream"):
                        finalizes.append(round(clock.now, 3))
                        turns += 1
                        result = Result(
                            f"t{turns}",
                            is_final=True,
                            is_last=kind != "finalize",
                            from_finalize=kind == "finalize",
                        )
                        queue.append(SessionMessage(action.conn, result))
                elif isinstance(action, act.Transcript):
                    answer = action.text

    run(StartAudio(PcmFormat(16000, 2, 1)))
    chunk_format = PcmFormat(16000, 2, 1)  # as the handler passes it: every chunk, its own object
    started = time.process_time()
    for i in range(0, len(pcm), CHUNK_BYTES):
        clock.now = (i + CHUNK_BYTES) / BYTES_PER_S
        run(AudioIn(pcm[i : i + CHUNK_BYTES], chunk_format))
    chunk_s = time.process_time() - started
    run(StopAudio())
    return Trace(
        sent=sent,
        speech_s=gate.speech_ms / 1000,
        finalizes=finalizes,
        answer=answer,
        digest=digest.hexdigest()[:16],
        chunks=-(-len(pcm) // CHUNK_BYTES),
        chunk_s=chunk_s,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dialect", choices=sorted(URLS), default="pulse")
    parser.add_argument("--re-recognize", action="store_true")
    parser.add_argument("--dictation-after", type=float, default=Settings().dictation_after_s)
    parser.add_argument("--every", type=int, default=1)
    parser.add_argument("--vad", choices=("silero", "webrtc", "off"), default="silero")
    parser.add_argument(
        "--time",
        type=int,
        default=0,
        metavar="N",
        help="instead of the trace: the per-chunk cost (best of N runs over the set)",
    )
    args = parser.parse_args()
    clips = hs.load_human_speech()[:: args.every]
    if args.time:
        best = math.inf
        for _ in range(args.time):
            runs = [
                trace(
                    hs.as_home_assistant_sends(c.pcm),
                    args.dialect,
                    args.re_recognize,
                    args.dictation_after,
                    args.vad,
                )
                for c in clips
            ]
            chunks = sum(r.chunks for r in runs)
            best = min(best, sum(r.chunk_s for r in runs))
        print(
            f"per chunk (20 ms, vad {args.vad}): {best / chunks * 1e6:.1f} us "
            f"over {chunks} chunks, best of {args.time}"
        )
        return
    total_sent = total_speech = 0.0
    for clip in clips:
        out = trace(
            hs.as_home_assistant_sends(clip.pcm),
            args.dialect,
            args.re_recognize,
            args.dictation_after,
            args.vad,
        )
        total_sent += out.sent / BYTES_PER_S
        total_speech += out.speech_s
        print(
            f"{clip.name:40} sent {out.sent:>8} B  finalize at {out.finalizes}  "
            f"answer {out.answer!r}  digest {out.digest}",
            flush=True,
        )
    print(
        f"total: sent {total_sent:.2f} s for {total_speech:.2f} s of speech heard "
        f"({total_sent / max(total_speech, 1e-9):.3f} s per s)"
    )


if __name__ == "__main__":
    main()
