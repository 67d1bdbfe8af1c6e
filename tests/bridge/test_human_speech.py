"""Real human speech through the bridge: nothing said is lost, and no word the recognizer gets.

Each recording of tests/data/human/ goes through the real bridge (default settings: silero
gate, default timeouts, today's Pulse URL) to the emulator's Whisper recognizer, padded with
the silence Home Assistant sends around speech and streamed in real time, as a microphone is.
The same recognizer also hears each bare file straight, in one piece: that is the bar. The
bridge may cut audio into utterances and stream it, but it may not lose an utterance nor cost
more than one point of WER, for short commands and for long dictation alike, and also when the
service is slow to settle.

The comparison is an accuracy bar, not a timing one: Whisper tiny.en on two shared cores is far
slower than the real service, and that is the point of the long and slow cases.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient

from tests.kit.bridge import (
    API_KEY,
    Answer,
    bridge_port,
    bridge_settings,
    read_answer,
    running_bridge,
)
from tests.kit.human_speech import (
    LONG_S,
    HumanClip,
    as_home_assistant_sends,
    load_human_speech,
    manifest,
)
from tests.kit.wer import normalise_words, wer
from wyoming_lightning.emulator import EmulatorConfig, EmulatorServer, Fault, create_recognizer
from wyoming_lightning.settings.config import DEFAULT_VAD, Settings

#: Requests in flight at once. Whisper tiny.en on two shared cores barely keeps up with one
#: real-time stream of a long monologue: short commands go two at a time (two satellites),
#: long ones one at a time, or the emulator, not the bridge, would be what falls behind.
PARALLEL_SHORT = 2
PARALLEL_LONG = 1
#: Audio chunk of the paced stream, as a satellite sends it.
CHUNK_S = 0.02
#: The issue's stand-in for a service that ignores finalize_on_words=false: a final every 3 words.
STAND_IN_WORDS = 3
#: The bar: WER through the bridge at most this much above the same recognizer on bare files.
MARGIN = 0.01
# The module takes 5.5 minutes here (real-time streaming of 5 minutes of speech, Whisper on
# two shared cores); the guard only turns a hang into a failure.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

LicenceOK = ("MIT", "CC-BY-4.0", "CC-BY-SA-3.0", "public domain", "BSD-2-Clause")


@pytest.fixture(scope="module")
def clips() -> list[HumanClip]:
    return load_human_speech()


class Straight(dict[str, str]):
    """What the recognizer writes for each bare file, whole (no gate, no streaming), by name.

    Filled on demand and kept for the module: each clip is decoded straight once.
    """

    def __init__(self, clips: Sequence[HumanClip]) -> None:
        super().__init__()
        self._clips = {c.name: c for c in clips}
        self._recognizer = create_recognizer("whisper")

    def __missing__(self, name: str) -> str:
        words = self._recognizer.transcribe(self._clips[name].pcm, "en")
        self[name] = text = " ".join(w.text for w in words)
        return text


@pytest.fixture(scope="module")
def straight(clips: list[HumanClip]) -> Straight:
    return Straight(clips)


def sample(clips: Sequence[HumanClip], long: bool, every: int) -> list[HumanClip]:
    """Every ``every``-th clip of one length class: each source and kind stays represented
    (the manifest groups them), and the module's run time stays a few minutes. The whole set
    goes through ``python -m benchmarks speech``."""
    return [c for c in clips if (c.seconds >= LONG_S) == long][::every]


def test_the_set_is_real_varied_and_documented(clips: list[HumanClip]) -> None:
    entries = manifest()
    assert len(clips) == len(entries) >= 40
    long = [c for c in clips if c.is_long]
    assert len(long) >= 5 and all(c.seconds <= 30 for c in long)
    assert sum(c.kind == "spontaneous" for c in clips) >= 10
    assert any(c.kind == "spontaneous" for c in long), "long spontaneous speech too"
    hesitant = [c for c in clips if {"uh", "um"} & set(c.text.split())]
    assert len(hesitant) >= 5
    for clip, entry in zip(clips, entries, strict=True):
        assert clip.text.strip() and normalise_words(clip.text), clip.name
        assert abs(clip.seconds - float(str(entry["duration_s"]))) < 0.01, clip.name
        assert clip.licence.startswith(LicenceOK), (clip.name, clip.licence)
        assert clip.speaker and clip.source, clip.name
    assert len({c.speaker.split(" (")[0] for c in clips}) >= 5


async def _through_bridge(
    settings: Settings, chosen: Sequence[HumanClip], parallel: int, burst: bool = False
) -> dict[str, Answer]:
    gate = asyncio.Semaphore(parallel)
    async with running_bridge(settings) as server:
        port = bridge_port(server)

        async def one(clip: HumanClip) -> tuple[str, Answer]:
            async with gate:
                pcm = as_home_assistant_sends(clip.pcm)
                return clip.name, await _spoken(port, pcm, paced=not burst)

        return dict(await asyncio.gather(*(one(c) for c in chosen)))


async def _spoken(port: int, pcm: bytes, paced: bool = True) -> Answer:
    """One request as Home Assistant streams a microphone: audio paced in real time (unpaced:
    a burst, as a satellite flushing what it buffered while the wake word was checked).

    The pacing is the input's, not a synchronisation: each chunk leaves when it would have been
    recorded (an absolute schedule, so no drift), then audio-stop, then the answer is read.
    """
    client = AsyncTcpClient("127.0.0.1", port)
    await client.connect()
    try:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
        loop = asyncio.get_running_loop()
        start = loop.time()
        step = round(2 * 16000 * CHUNK_S)
        for index, offset in enumerate(range(0, len(pcm), step)):
            chunk = AudioChunk(rate=16000, width=2, channels=1, audio=pcm[offset : offset + step])
            await client.write_event(chunk.event())
            if paced:
                await asyncio.sleep(max(0.0, start + (index + 1) * CHUNK_S - loop.time()))
        await client.write_event(AudioStop().event())
        return await read_answer(client, until=("transcript", "error"))
    finally:
        await client.disconnect()


@dataclass
class Run:
    """One condition's requests through the bridge, and what the service saw."""

    chosen: list[HumanClip]
    bar: list[HumanClip]
    """The clips its WER is reported on (for short and long: the bar)."""
    answers: dict[str, Answer]
    sessions: int
    session_faults: list[tuple[str, ...]]
    sent: list[str]
    """The text of every final each session sent (a session per request: sockets are cold)."""

    def lost(self, straight: Straight) -> dict[str, object]:
        """Clips the recognizer alone got words from that came back as an error or empty."""
        out: dict[str, object] = {}
        for clip in self.chosen:
            answer = self.answers[clip.name]
            if not (answer.transcript or "").strip() and straight[clip.name].strip():
                out[clip.name] = answer.error.data if answer.error else answer.transcript
        return out

    def report(self, straight: Straight) -> dict[str, object]:
        bridged = [(c.text, self.answers[c.name].transcript or "") for c in self.bar]
        bare = [(c.text, straight[c.name]) for c in self.bar]
        return {
            "utterances": len(self.chosen),
            "wer_over": len(self.bar),
            "wer_bridge": round(wer(bridged), 4),
            "wer_straight": round(wer(bare), 4),
            "lost": self.lost(straight),
            "sessions": self.sessions,
            "differ": {
                c.name: (straight[c.name], self.answers[c.name].transcript)
                for c in self.chosen
                if normalise_words(straight[c.name])
                != normalise_words(self.answers[c.name].transcript or "")
            },
        }


#: Which clips each condition sends: (long or short, every n-th of that class). The short and
#: long samples are the WER bars; the slow condition's clips also go through without the fault
#: (they are added to the short and long runs, outside their bars), so that its answers can be
#: compared word for word with the same clips through a prompt service.
BARS: dict[str, tuple[bool, int]] = {"short": (False, 2), "long": (True, 2)}
#: Pulse's live defaults, which the bridge asks the service to turn off: the same short clips
#: in a burst (every final after the finalize), and through a service that ignores the bridge
#: (a final every 3 words and after each 800 ms pause, in real time and in a burst).
LIVE: dict[str, tuple[bool, Fault | None]] = {
    "burst": (True, None),
    "ignores": (False, Fault("live-defaults")),
    "ignores-burst": (True, Fault("live-defaults")),
}
SLOW_SAMPLE: tuple[tuple[bool, int], ...] = ((False, 15), (True, 5))
PARALLEL = {"short": PARALLEL_SHORT, "long": PARALLEL_LONG, "slow": PARALLEL_LONG}
PARALLEL.update(dict.fromkeys(LIVE, PARALLEL_SHORT))
FAULTS = {"slow": Fault("slow", delay_ms=8000)}


def bar_clips(clips: Sequence[HumanClip], condition: str) -> list[HumanClip]:
    """The clips a condition's WER bar is measured on."""
    long, every = BARS[condition]
    return sample(clips, long, every)


def slow_clips(clips: Sequence[HumanClip]) -> list[HumanClip]:
    return [c for long, every in SLOW_SAMPLE for c in sample(clips, long, every)]


def chosen_clips(clips: Sequence[HumanClip], condition: str) -> list[HumanClip]:
    """Everything a condition's run sends: its bar's clips, and for short and long also the slow
    condition's clips of that class that the bar does not hold."""
    if condition == "slow":
        return slow_clips(clips)
    if condition in LIVE:
        return bar_clips(clips, "short")
    chosen = bar_clips(clips, condition)
    long = BARS[condition][0]
    return chosen + [c for c in slow_clips(clips) if c.is_long == long and c not in chosen]


class Runs:
    """Each condition run once for the module (its own emulator and bridge), on first use."""

    def __init__(self, clips: Sequence[HumanClip]) -> None:
        self._clips = clips
        self._done: dict[str, Run] = {}

    def __getitem__(self, condition: str) -> Run:
        if condition not in self._done:
            self._done[condition] = asyncio.run(self._run(condition))
        return self._done[condition]

    async def _run(self, condition: str) -> Run:
        chosen = chosen_clips(self._clips, condition)
        burst, live_fault = LIVE.get(condition, (False, None))
        config = EmulatorConfig(
            api_key=API_KEY,
            recognizer="whisper",
            words_per_final=STAND_IN_WORDS,
            # The live probe saw no from_finalize: under the live defaults nothing rests on it.
            from_finalize=condition not in LIVE,
        )
        async with EmulatorServer(config, host="127.0.0.1", port=0) as emulator:
            fault = FAULTS.get(condition) or live_fault
            if fault is not None:
                emulator.inject(fault, count=None)
            # Under the live defaults the question is how finals join: a split stays a split
            # there (a rejoin replaces the first part's final on purpose).
            settings = bridge_settings(
                emulator.live_url, vad=DEFAULT_VAD, rejoin=condition not in LIVE
            )
            answers = await _through_bridge(settings, chosen, PARALLEL[condition], burst)
            await emulator.wait_idle(60)
            records = list(emulator.sessions)
        bar = chosen if condition in ("slow", *LIVE) else bar_clips(self._clips, condition)
        sent = [r.transcript for r in records]
        return Run(chosen, bar, answers, len(records), [r.faults for r in records], sent)


@pytest.fixture(scope="module")
def runs(clips: list[HumanClip]) -> Runs:
    return Runs(clips)


@pytest.mark.parametrize("condition", ["short", "long", "slow"])
def test_no_utterance_is_lost(runs: Runs, straight: Straight, condition: str) -> None:
    """Every clip the recognizer alone gets words from comes back with words: no error, no
    empty answer, whatever its length, also when every final is held back 8 s."""
    run = runs[condition]
    report = run.report(straight)
    print(json.dumps(report, indent=1))
    assert not run.lost(straight), report
    if condition == "slow":
        assert all(f == ("slow",) for f in run.session_faults), "the fault was on throughout"
        assert run.sessions == len(run.chosen), ("one session per request, no replay", report)


@pytest.mark.parametrize("condition", ["short", "long"])
def test_wer_within_one_point_of_straight(runs: Runs, straight: Straight, condition: str) -> None:
    """The issue's bar: WER through the bridge at most 1 point above the recognizer alone.

    Measured on one placement of each clip, so it guards against regressions rather than
    resolving a fraction of a point: Whisper's text for a clip moves by words when the clip
    sits 50 ms later in the stream (``python -m benchmarks.gate_diff --shifts 4`` pools four
    placements of the whole set and is the figure to quote)."""
    run = runs[condition]
    report = run.report(straight)
    assert float(str(report["wer_bridge"])) <= float(str(report["wer_straight"])) + MARGIN, report


def test_a_slow_service_changes_no_word(runs: Runs) -> None:
    """With every final held back 8 s (interims meanwhile), each answer is word for word the
    answer the same clip gets from a prompt service: slowness costs no word, so the WER bar
    holds with the slow fault on wherever it holds without it."""
    slow = runs["slow"]
    prompt = {**runs["short"].answers, **runs["long"].answers}
    differ = {
        c.name: (prompt[c.name].transcript, slow.answers[c.name].transcript)
        for c in slow.chosen
        if prompt[c.name].transcript != slow.answers[c.name].transcript
    }
    assert not differ, differ


@pytest.mark.parametrize("condition", [*LIVE])
def test_every_word_the_service_sent_comes_back_once(runs: Runs, condition: str) -> None:
    """Whatever the finals look like (one per turn, in a burst; every 3 words and after each
    pause), each answer is exactly the words its session's finals carried: none lost, none
    twice, one session per request. (With ``--rejoin``, the default, a command split at a
    pause and re-sent whole answers with the whole reading, not the first part's final: these
    runs turn it off.)"""
    run = runs[condition]
    assert run.sessions == len(run.chosen), "one service session per request"
    answers = Counter(tuple(normalise_words(a.transcript or "")) for a in run.answers.values())
    sent = Counter(tuple(normalise_words(t)) for t in run.sent)
    exact = len(run.sent) - sum((sent - answers).values())
    print(f"{condition}: {exact} of {len(run.sent)} requests exact")
    assert answers == sent, {"sent, not answered": sent - answers, "answered": answers - sent}
