"""Real human speech: WER through the bridge vs the same recognizer straight; a slow service.

Two tables, both over the recordings of tests/data/human/ (people, not synthesizers: read and
spontaneous English, 1 to 26 s; see its LICENSES.md), each padded as Home Assistant sends it
(0.3 s before, audio-stop 0.7 s after; tests/kit/human_speech.py).

``speech`` (Table 8): every clip straight to the emulator's Whisper recognizer (tiny.en) in one
Lightning session, no gate, no bridge; then through the bridge, with its default settings, once
per VAD engine. WER per length (short < 15 s, long 15-30 s), utterances lost (an error or an
empty answer where the recognizer alone wrote words), and sessions the service saw.

``slow`` (Table 9): the emulator's latency model (``--latency cloud``) and its ``slow`` fault
(each final held back while an interim repeats its text every 0.5 s), through the bridge with
default settings: sessions opened per request, audio the service received per second of audio
sent by Home Assistant, the answer time (audio-stop to transcript) and the WER against straight.

Why a clip reads differently through the bridge (a word cut by the gate, a command split into
utterances, an extra segment): ``python -m benchmarks.gate_diff`` prints it clip by clip, for
any gate setting, offline and faster than real time.

Audio is streamed in real time, as a satellite's microphone sends it, so that the answer time
means what a user waits; on this machine Whisper is the slow part, far slower than the real
service.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from tests.kit import human_speech as hs
from tests.kit.wer import wer
from wyoming_lightning.emulator.config import LIVE_PATH

from .harness import (
    BRIDGE_ENV,
    Pacer,
    Proc,
    Script,
    Table,
    direct_request,
    emulator_args,
    free_port,
    ha_request,
    median,
    progress,
    running,
)

ENGINES = ("silero", "webrtc", "off")
SESSION_LINE = re.compile(r"session \w+ \w+ lang=\S+ rate=\d+ audio=(\d+)B")
#: (label, emulator flags) of the slow-service table.
SERVICES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("cloud latency", ("--latency", "cloud")),
    ("cloud + slow 8 s", ("--latency", "cloud", "--fault", "slow", "--fault-delay-ms", "8000")),
)
#: Requests at a time in the WER table. One: Whisper tiny.en on two shared cores barely keeps
#: up with one real-time stream, and per-request session counts need requests apart. (The
#: whole set then takes about 10 minutes of real time per engine; --quick takes every fourth.)
SPEECH_PARALLEL = 1
REQUEST_GUARD_S = 300.0  # turns a hang into an error row; the bridge answers well before


@dataclass
class Outcome:
    clip: hs.HumanClip
    text: str
    error: str | None
    wait_s: float | None
    sessions: float
    service_audio_s: float


def _live_url(port: int) -> str:
    return f"ws://127.0.0.1:{port}{LIVE_PATH}?model=pulse"


def bridge_proc(emulator_port: int, *flags: str) -> tuple[Proc, int]:
    """The bridge with default settings but one: a socket per request
    (``--session-idle-timeout 0``), so that the sessions the emulator logs as they close are
    each request's own; a warm socket would stay open, and unlogged, across requests."""
    port = free_port()
    args = ["-m", "wyoming_lightning", "--uri", f"tcp://127.0.0.1:{port}"]
    args += ["--lightning-url", _live_url(emulator_port), "--session-idle-timeout", "0", *flags]
    return Proc("bridge", args, port, BRIDGE_ENV), port


def emulator_proc(*extra: str) -> tuple[Proc, int]:
    port = free_port()
    args = emulator_args(port, recognizer="whisper", log_level="info", extra=extra)
    return Proc("emulator", args, port), port


def _sessions_since(emulator: Proc, mark: int) -> tuple[int, float]:
    found = [int(m.group(1)) for m in SESSION_LINE.finditer(emulator.log_text()[mark:])]
    return len(found), sum(found) / hs.SAMPLE_RATE / 2


async def _settle_log(emulator: Proc, mark: int, at_least: int) -> tuple[int, float]:
    """The emulator logs a session when it closes, just after the answer: wait for the line."""
    for _ in range(100):
        count, audio = _sessions_since(emulator, mark)
        if count >= at_least:
            return count, audio
        await asyncio.sleep(0.05)
    return _sessions_since(emulator, mark)


async def straight(emulator_port: int, clips: Sequence[hs.HumanClip]) -> dict[str, str]:
    """Each bare file in one session straight to the emulator, all at once, then ``end``."""
    out: dict[str, str] = {}
    loop = asyncio.get_running_loop()
    for n, clip in enumerate(clips, 1):
        progress(f"straight to the service: {clip.name} ({n}/{len(clips)})")
        result = await direct_request(
            emulator_port, clip.pcm, start=loop.time() - 1e6, timeout=REQUEST_GUARD_S
        )
        out[clip.name] = result.text or ""
    return out


async def through_bridge(
    port: int,
    emulator: Proc,
    clips: Sequence[hs.HumanClip],
    parallel: int = 1,
    label: str = "through the bridge",
) -> list[Outcome]:
    """Each clip streamed in real time (as a microphone), ``parallel`` requests at a time.

    With one at a time the emulator's session lines are each request's own; with more, the
    sessions and audio are the run's totals, spread evenly (``sessions`` then is a mean).
    """
    pacer = Pacer(tick_s=0.005)
    pacer.start()
    gate = asyncio.Semaphore(parallel)
    mark = len(emulator.log_text())
    done: list[str] = []

    async def one(clip: hs.HumanClip) -> Outcome:
        async with gate:
            own_mark = len(emulator.log_text())
            script = Script.of(hs.as_home_assistant_sends(clip.pcm), clip.text, clip.name)
            result = await ha_request(port, script, pacer, timeout=REQUEST_GUARD_S)
            done.append(clip.name)
            progress(f"{label}: {clip.name} ({len(done)}/{len(clips)})")
            sessions, audio = 0, 0.0
            if parallel == 1:
                sessions, audio = await _settle_log(emulator, own_mark, 1)
            return Outcome(clip, result.text or "", result.error, result.wait, sessions, audio)

    try:
        outcomes = list(await asyncio.gather(*(one(c) for c in clips)))
    finally:
        await pacer.stop()
    if parallel > 1:
        sessions, audio = await _settle_log(emulator, mark, len(clips))
        total_s = sum(c.seconds for c in clips)
        for outcome in outcomes:
            outcome.sessions = sessions / len(outcomes)
            outcome.service_audio_s = audio * outcome.clip.seconds / total_s
    return outcomes


def _wer(pairs: Sequence[tuple[str, str]]) -> str:
    return f"{100 * wer(pairs):.1f}" if pairs else "-"


def _lost(outcomes: Sequence[Outcome], bare: dict[str, str]) -> int:
    return sum(1 for o in outcomes if (o.error or not o.text.strip()) and bare[o.clip.name].strip())


def _split(clips: Sequence[hs.HumanClip]) -> dict[str, list[hs.HumanClip]]:
    return {"short": [c for c in clips if not c.is_long], "long": [c for c in clips if c.is_long]}


async def run_speech(engines: Sequence[str] = ENGINES, quick: bool = False) -> Table:
    clips = hs.load_human_speech()
    if quick:
        clips = clips[::4]
    parts = _split(clips)
    quick_note = ["--quick: every fourth clip of the set"] if quick else []
    emulator, emulator_port = emulator_proc()
    bridges = {engine: bridge_proc(emulator_port, "--vad", engine) for engine in engines}
    table = Table(
        "speech",
        "Table 8. Real human speech: WER straight to the service vs through the bridge",
        [
            "path",
            f"WER % short ({len(parts['short'])})",
            f"WER % long ({len(parts['long'])})",
            "WER % all",
            "lost short",
            "lost long",
            "sessions / request",
            "service audio s / clip s",
        ],
    )
    clip_s = sum(c.seconds for c in clips)
    table.notes += [
        f"set: tests/data/human, {len(clips)} recordings ({clip_s:.0f} s; "
        f"{sum(c.kind == 'spontaneous' for c in clips)} spontaneous), padded 0.3 s before and "
        "0.7 s after (audio-stop) as Home Assistant sends them",
        "recognizer: the emulator's Whisper tiny.en (int8, offline), no latency model; "
        "WER via tests/kit/wer.py (numbers, punctuation and hesitations normalised)",
        "straight: each bare clip in one Lightning session to the emulator, then end",
        "bridge: default settings (Pulse live URL) except --vad and a socket per request; "
        "audio streamed in real time, "
        f"{SPEECH_PARALLEL} request(s) at a time",
        "lost: an error or an empty answer where the recognizer alone wrote words",
        *quick_note,
    ]
    async with running(emulator, *(proc for proc, _ in bridges.values())):
        mark = len(emulator.log_text())
        bare = await straight(emulator_port, clips)
        count, audio = await _settle_log(emulator, mark, len(clips))
        table.add(
            [
                "straight to the service",
                _wer([(c.text, bare[c.name]) for c in parts["short"]]),
                _wer([(c.text, bare[c.name]) for c in parts["long"]]),
                _wer([(c.text, bare[c.name]) for c in clips]),
                "-",
                "-",
                f"{count / len(clips):.2f}",
                f"{audio / clip_s:.2f}",
            ],
            path="straight",
            texts=bare,
        )
        for engine, (_proc, port) in bridges.items():
            outcomes = await through_bridge(
                port, emulator, clips, parallel=SPEECH_PARALLEL, label=f"--vad {engine}"
            )
            cells, record = _bridge_row(f"bridge, --vad {engine}", outcomes, bare, engine=engine)
            table.add(cells, **record)
    return table


def _bridge_row(
    label: str, outcomes: Sequence[Outcome], bare: dict[str, str], **extra: Any
) -> tuple[list[object], dict[str, Any]]:
    parts = {
        "short": [o for o in outcomes if not o.clip.is_long],
        "long": [o for o in outcomes if o.clip.is_long],
    }
    padded_s = sum(o.clip.seconds + hs.HA_LEAD_S + hs.HA_TRAIL_S for o in outcomes)
    clip_s = sum(o.clip.seconds for o in outcomes)
    cells: list[object] = [
        label,
        _wer([(o.clip.text, o.text) for o in parts["short"]]),
        _wer([(o.clip.text, o.text) for o in parts["long"]]),
        _wer([(o.clip.text, o.text) for o in outcomes]),
        _lost(parts["short"], bare),
        _lost(parts["long"], bare),
        f"{sum(o.sessions for o in outcomes) / len(outcomes):.2f}",
        f"{sum(o.service_audio_s for o in outcomes) / clip_s:.2f}",
    ]
    record = {
        "path": label,
        **extra,
        "padded_s": padded_s,
        "rows": [
            {
                "clip": o.clip.name,
                "seconds": o.clip.seconds,
                "reference": o.clip.text,
                "straight": bare[o.clip.name],
                "bridge": o.text,
                "error": o.error,
                "wait_s": o.wait_s,
                "sessions": o.sessions,
                "service_audio_s": o.service_audio_s,
            }
            for o in outcomes
        ],
    }
    return cells, record


def slow_subset(clips: Sequence[hs.HumanClip], quick: bool) -> list[hs.HumanClip]:
    """Every other long clip and every sixth short one (a third of that when quick)."""
    parts = _split(clips)
    step = 3 if quick else 1
    return parts["short"][:: 6 * step] + parts["long"][:: 2 * step]


async def run_slow(quick: bool = False) -> Table:
    clips = slow_subset(hs.load_human_speech(), quick)
    table = Table(
        "slow",
        "Table 9. A slow service: sessions, audio billed and the answer time, real speech",
        [
            "service",
            "requests",
            "sessions / request",
            "max sessions",
            "service audio s / clip s",
            "answer s median",
            "answer s max",
            "WER % bridge",
            "WER % straight",
            "lost",
        ],
    )
    table.notes += [
        f"clips: {len(clips)} of tests/data/human ({sum(c.is_long for c in clips)} of 15-30 s), "
        "padded as Home Assistant sends them, streamed in real time, one request at a time",
        "service: the emulator's Whisper tiny.en with its latency model --latency cloud "
        "(settle 250 ms + 30 ms per audio s, lognormal sigma 0.7, 60 ms round trip) and the "
        "slow fault (every final held back by the delay, an interim every 0.5 s meanwhile)",
        "bridge: default settings (silero, Pulse live URL) but a socket per request "
        "(--session-idle-timeout 0), so that each request's sessions can be counted",
        "answer: audio-stop to transcript, as the client saw it; it includes Whisper's own time "
        "on this machine (the 'cloud latency' row is the floor)",
        "service audio / clip: what the emulator received, per second of recording; 1.00 + "
        "padding means nothing was sent twice",
    ]
    # The straight baseline, without latency or fault: they change the timing, not the text.
    bare_emulator, bare_port = emulator_proc()
    async with running(bare_emulator):
        bare = await straight(bare_port, clips)
    for label, flags in SERVICES:
        emulator, emulator_port = emulator_proc(*flags)
        bridge, port = bridge_proc(emulator_port)
        async with running(emulator, bridge):
            outcomes = await through_bridge(port, emulator, clips, label=f"service {label}")
        waits = [o.wait_s for o in outcomes if o.wait_s is not None]
        clip_s = sum(c.seconds for c in clips)
        table.add(
            [
                label,
                len(outcomes),
                f"{sum(o.sessions for o in outcomes) / len(outcomes):.2f}",
                max(o.sessions for o in outcomes),
                f"{sum(o.service_audio_s for o in outcomes) / clip_s:.2f}",
                f"{median(waits):.1f}" if waits else "-",
                f"{max(waits):.1f}" if waits else "-",
                _wer([(o.clip.text, o.text) for o in outcomes]),
                _wer([(c.text, bare[c.name]) for c in clips]),
                _lost(outcomes, bare),
            ],
            **_bridge_row(label, outcomes, bare, flags=list(flags))[1],
        )
    return table
