"""The pause rule chosen by measurement: ``python -m benchmarks pause [--quick]``.

Two tables.

``pause`` (the sweep): for each pause rule F (``--finalize-after-ms``) and re-recognition off
or on, every clip of the real human-speech set (tests/data/human) as Home Assistant sends it
(0.3 s before, audio-stop 0.7 s after) goes through the bridge's own request machine and VAD
gate (silero, default gate flags) into the emulator's own Pulse session core with its Whisper
tiny.en recognizer. Both are sans-I/O, so they are wired together in this process without
sockets or pacing: the text, the audio sent and the audio-clock point of each finalize are
exactly what a loopback run gives, without waiting the clips out in real time (a socket run
of one setting is the ``wait`` table below and ``tests/test_pause_bridge.py``). Interims are
not computed (the bridge only logs them). Straight to the service = each bare clip in one
session, as benchmarks/human.py does it. The wait at HA's stop point is modelled from the
audio clock: max(0, last finalize - audio-stop + R + C) with C = 600 ms, which is the floor
the socket table measures against.

``pause-wait`` (over sockets): the bridge as a subprocess in front of the emulator (Pulse
dialect, tone recognizer, latency model ``--settle-ms 600 --rtt-ms R``), HA-style requests in
real time, 4 at a time; the median wait after audio-stop next to its floor max(0, F + R + C -
700). Long commands: the 12 espeak commands of tests/data/speech; short: the last 0.3-0.6 s
of each (cut at its quietest 10 ms), 0.3 s of silence before, audio-stop 0.7 s after.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.kit import human_speech as hs
from tests.kit import speech_data as sd
from tests.kit.paths import ROOT
from tests.kit.wer import wer
from wyoming_lightning.core import actions as act
from wyoming_lightning.core.audio import PcmFormat
from wyoming_lightning.core.pipeline_format import BYTES_PER_SECOND
from wyoming_lightning.core.protocol import SessionOptions, parse_message
from wyoming_lightning.core.request import (
    AudioIn,
    Event,
    Phase,
    RequestConfig,
    RequestMachine,
    SessionClosed,
    SessionMessage,
    SessionOpened,
    StartAudio,
    StopAudio,
)
from wyoming_lightning.core.segmenter import billed_bound_s
from wyoming_lightning.core.vad.engines import create_engine
from wyoming_lightning.core.vad.gate import GateConfig, VadGate
from wyoming_lightning.emulator.config import LIVE_PATH
from wyoming_lightning.emulator.config import Dialect as EmulatorDialect
from wyoming_lightning.emulator.params import SessionParams
from wyoming_lightning.emulator.recognizers import Recognizer, create_recognizer
from wyoming_lightning.emulator.session import SessionCore
from wyoming_lightning.services import gate_config
from wyoming_lightning.settings.config import VAD_LAG_MS, Settings

from .cached_recognizer import CachedRecognizer
from .harness import (
    BRIDGE_ENV,
    CHUNK_BYTES,
    HA_STOP_AFTER_S,
    Pacer,
    Proc,
    Script,
    Table,
    emulator_args,
    floor_ms,
    free_port,
    ha_request,
    median,
    ms,
    running,
)

SETTLE_MS = 600
LEAD_S = hs.HA_LEAD_S
PULSE_URL = f"ws://127.0.0.1:1{LIVE_PATH}"
PAUSES_MS = (0, 200, 300, 400, 450, 500, 550, 600)
"""0 is ``--finalize-after-ms 0``: settled only when the gate closes (the 500 ms hangover)."""
QUICK_PAUSES_MS = (400, 500, 550)
SERVER_DEFAULTS = Settings()
"""The server's defaults: every setting is swept with its dictation point and pause tail (the
default F once without the dictation point), re-recognition at its F."""
DEFAULT_PAUSE_MS = SERVER_DEFAULTS.finalize_after_ms
RE_RECOGNIZE_AT_MS = (DEFAULT_PAUSE_MS,)
SILERO_LAG_MS = VAD_LAG_MS["silero"]
"""Every F is swept with silero's own lag counted (the server's default), so F is the pause
after the speech ends."""
RTTS_MS = (0, 150)
DICTATION_AFTER_S = SERVER_DEFAULTS.dictation_after_s or None
PAUSE_TAIL_MS = SERVER_DEFAULTS.pause_tail_ms
HA_FORMAT = PcmFormat(16000, 2, 1)


# ------------------------------------------------------------------ the sans-I/O pair


@dataclass
class Outcome:
    text: str
    sent_s: float
    finalizes_at_s: list[float] = field(default_factory=list)
    """Audio-clock time of every finalize / end sent (seconds since the request's first byte)."""
    error: str | None = None
    turn_ended_s: float | None = None
    """Audio-clock time at which the server ended the turn (``audio_stop=False``), else None."""
    answered_s: float | None = None
    """Audio-clock time at which the transcript went out."""


@dataclass
class Trace:
    """What went over the wire of one request, for a benchmark that locates words in it."""

    sent: list[tuple[int, bytes]] = field(default_factory=list)
    """Every audio frame sent, (conn, data), in order."""
    settled_at: list[tuple[int, int]] = field(default_factory=list)
    """(conn, bytes sent on it so far) at each finalize or end: where an utterance ends."""
    finals: list[tuple[int, list[dict[str, Any]]]] = field(default_factory=list)
    """(conn, words) of each final, word times in seconds of the audio sent on that conn."""


def _core(recognizer: Recognizer, conn: int) -> SessionCore:
    # What the bridge asks of Pulse: word times, no server endpointing (see services.py).
    params = SessionParams(word_timestamps=True, endpointing=False)
    return SessionCore(
        session_id=f"s{conn}",
        dialect=EmulatorDialect.PULSE,
        params=params,
        recognizer=recognizer,
        eou_timeout_ms=800,
    )


def through_machine(
    pcm: bytes,
    recognizer: Recognizer,
    finalize_after_ms: int,
    re_recognize: bool,
    vad_lag_ms: int = 0,
    dictation_after_s: float | None = DICTATION_AFTER_S,
    pause_tail_ms: int = PAUSE_TAIL_MS,
    gate: VadGate | None = None,
    trace: Trace | None = None,
    settings: dict[str, Any] | None = None,
    audio_stop: bool = True,
    settle_ms: int = 0,
) -> Outcome:
    """One HA-style request: the bridge's request machine and gate (silero with the default
    settings unless ``gate`` is given), the emulator's session; ``trace`` records the wire.

    ``settings``: further request settings (endpointing, the turn judge). ``audio_stop=False``:
    the client is Home Assistant 2026.11 with server endpointing, which sends no audio-stop and
    streams until the answer; the clip's audio then runs until the server ends the turn
    (``Outcome.turn_ended_s``), audio-stop only if it never does.

    ``settle_ms``: the service's answers to a finalize (its final) reach the machine this much
    audio later, as from a service that settles in C ms (interims at once: R = 0); a session's
    messages keep their order. ``Outcome.answered_s`` is then when the transcript went out."""
    config = RequestConfig(
        **(settings or {}),
        dictation_after_s=dictation_after_s,
        pause_tail_ms=pause_tail_ms,
        base_url=PULSE_URL,
        session=SessionOptions(language="en", word_timestamps=True, server_endpointing=False),
        response_language="en",
        finalize_after_ms=finalize_after_ms or None,
        re_recognize=re_recognize,
        vad_lag_ms=vad_lag_ms,
    )
    if gate is None:  # the server's own gate (silero's quiet-frame skip included)
        gate = VadGate(create_engine("silero"), gate_config(Settings(vad="silero")))
    machine = RequestMachine(config, gate, lambda: 0.0)
    conn_bytes: dict[int, int] = {}
    cores: dict[int, SessionCore] = {}
    outcome = Outcome("", 0.0)
    position = 0
    late: list[tuple[int, int, list[Event]]] = []
    """(due position, conn, events): answers to a finalize not yet delivered."""

    def run(first: Event) -> None:
        events: list[Event] = [first]
        while events:
            for action in machine.handle(events.pop(0)):
                events += _carry(action)

    def deliver(until: int | None) -> None:
        nonlocal position
        while late and (until is None or late[0][0] <= until):
            due, _, events = late.pop(0)
            if until is None:
                position = max(position, due)  # the audio is over: the clock runs on
            for event in events:
                run(event)

    def _carry(action: act.Action) -> list[Event]:
        events = _reply(action)
        if isinstance(action, act.Transcript) and outcome.answered_s is None:
            outcome.answered_s = position / BYTES_PER_SECOND
        conn = getattr(action, "conn", None)
        delay = round(settle_ms * BYTES_PER_SECOND / 1000)
        queued = any(c == conn for _, c, _ in late)
        if events and conn is not None and (queued or (delay and isinstance(action, act.SendText))):
            due = max(
                [position + delay if isinstance(action, act.SendText) else position]
                + [d for d, c, _ in late if c == conn]
            )
            late.append((due, conn, events))
            late.sort(key=lambda item: item[0])
            return []
        return events

    def _reply(action: act.Action) -> list[Event]:
        replies = []
        if isinstance(action, act.Connect):
            cores[action.conn] = _core(recognizer, action.conn)
            return [SessionOpened(action.conn)]
        if isinstance(action, act.SendAudio):
            outcome.sent_s += len(action.data) / BYTES_PER_SECOND
            conn_bytes[action.conn] = conn_bytes.get(action.conn, 0) + len(action.data)
            if trace is not None:
                trace.sent.append((action.conn, action.data))
            replies = [(action.conn, cores[action.conn].feed_audio(action.data))]
        elif isinstance(action, act.SendText):
            settles = json.loads(action.text)["type"] in ("finalize", "close_stream")
            if settles and machine.phase is not Phase.DONE:  # not the goodbye after the answer
                outcome.finalizes_at_s.append(position / BYTES_PER_SECOND)
                if trace is not None:
                    trace.settled_at.append((action.conn, conn_bytes.get(action.conn, 0)))
            replies = [(action.conn, cores[action.conn].feed_text(action.text))]
        elif isinstance(action, act.Transcript):
            outcome.text = action.text
        elif isinstance(action, act.Error):
            outcome.error = action.text
        out: list[Event] = []
        for conn, reply in replies:
            if trace is not None:
                trace.finals += [
                    (conn, m.get("words", [])) for m in reply.messages if m.get("is_final")
                ]
            out += [SessionMessage(conn, parse_message(json.dumps(m))) for m in reply.messages]
            if reply.end_of_session:
                out.append(SessionClosed(conn, 1000))
        return out

    run(StartAudio(HA_FORMAT))
    for offset in range(0, len(pcm), CHUNK_BYTES):
        position = offset + min(CHUNK_BYTES, len(pcm) - offset)
        run(AudioIn(pcm[offset : offset + CHUNK_BYTES]))
        deliver(position)
        if not audio_stop and machine.phase is not Phase.STREAMING:
            outcome.turn_ended_s = position / BYTES_PER_SECOND
            break
    run(StopAudio())
    deliver(None)
    if not machine.done:
        outcome.error = outcome.error or "no answer"
    return outcome


def straight(pcm: bytes, recognizer: Recognizer) -> str:
    """The bare clip in one session, then its end: what the service makes of it alone."""
    texts = [str(m.get("transcript", "")) for m in straight_finals(pcm, recognizer)]
    return " ".join(t for t in texts if t)


def straight_finals(pcm: bytes, recognizer: Recognizer) -> list[dict[str, Any]]:
    """The final messages (with word times in seconds of ``pcm``) of ``pcm`` in one session.

    Every final counts, those the session sends while the audio flows too: like Pulse, the
    emulator settles an utterance on its own after 800 ms of silence or at a sentence end, and
    the finish then only holds what came after (nothing, when the stream ends in silence)."""
    core = _core(recognizer, 0)
    messages = []
    for offset in range(0, len(pcm), 3200):
        messages += core.feed_audio(pcm[offset : offset + 3200]).messages
    messages += core.finish().messages
    return [m for m in messages if m.get("is_final")]


# ------------------------------------------------------------------ the sweep


def ha_stop_s(sent: bytes) -> float:
    """Where Home Assistant sends audio-stop in ``sent`` (a clip as HA sends it): 0.7 s after
    the speech ends, not after the file ends (a recording may trail off in silence). The speech
    end is the silero gate's (HA's own VAD also calls it with a lag of its own)."""
    gate = VadGate(create_engine("silero"), GateConfig())
    gate.process(sent)
    end_ms = gate.speech_end_ms
    trail_s = hs.HA_TRAIL_S
    return (end_ms / 1000 if end_ms is not None else len(sent) / 32000 - trail_s) + HA_STOP_AFTER_S


def _modelled_wait_s(outcome: Outcome, stop_s: float, rtt_ms: float) -> float:
    last = max(outcome.finalizes_at_s, default=stop_s)
    return max(0.0, last - stop_s + (rtt_ms + SETTLE_MS) / 1000)


def _wer_pct(pairs: Sequence[tuple[str, str]]) -> float:
    return 100 * wer(pairs) if pairs else math.nan


def _pct(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.1f}"


@dataclass(frozen=True)
class Case:
    """One clip placed ``shift_s`` later in the stream than HA's usual lead."""

    clip: hs.HumanClip
    shift_s: float

    @property
    def key(self) -> tuple[str, float]:
        return self.clip.name, self.shift_s

    @property
    def text(self) -> str:
        return self.clip.text

    @property
    def sent(self) -> bytes:
        return hs.as_home_assistant_sends(self.clip.pcm, LEAD_S + self.shift_s)


def sweep_cases(quick: bool) -> list[Case]:
    """Every clip under 15 s (commands and sentences; the long ones are dictation, which
    benchmarks/human.py covers), each at the four placements of ``hs.SHIFTS_S``: Whisper's text
    moves by words when a clip sits 50 ms later, and one placement cannot resolve the half point
    the issue asks for. Quick: every fourth clip, one placement. Whisper on every setting is the
    run's cost (some 15 min of CPU for the full sweep on this machine)."""
    clips = hs.short_clips()
    if quick:
        return [Case(c, 0.0) for c in clips[::4]]
    return [Case(c, shift) for c in clips for shift in hs.SHIFTS_S]


def run_sweep(quick: bool = False) -> Table:
    cases = sweep_cases(quick)
    recognizer = CachedRecognizer(create_recognizer("whisper"))
    recognizer.warm_up()
    bare = {c.key: straight(hs.lead(c.clip.pcm, c.shift_s), recognizer) for c in cases}
    reference = [(c.text, bare[c.key]) for c in cases]
    read = [c for c in cases if c.clip.kind == "read"]
    spontaneous = [c for c in cases if c.clip.kind == "spontaneous"]
    table = Table(
        "pause",
        "The pause rule on real human speech: WER and audio sent against the wait at HA's stop",
        [
            "F ms",
            "VAD lag ms",
            "dictation after s",
            "re-recognize",
            f"WER % all ({len(cases)})",
            f"read ({len(read)})",
            f"spontaneous ({len(spontaneous)})",
            "vs straight pts",
            "splits / request",
            "sent / speech",
            "over 1.3x+0.5s",
            "wait R=0 ms",
            "wait R=150 ms",
        ],
    )
    straight_wer = _wer_pct(reference)
    table.add(
        [
            "straight",
            "-",
            "-",
            "-",
            _pct(straight_wer),
            _pct(_wer_pct([(c.text, bare[c.key]) for c in read])),
            _pct(_wer_pct([(c.text, bare[c.key]) for c in spontaneous])),
            "0.0",
            "-",
            "-",
            "-",
            "-",
            "-",
        ],
        setting="straight",
        wer_pct=straight_wer,
    )
    pauses = QUICK_PAUSES_MS if quick else PAUSES_MS
    dictation = DICTATION_AFTER_S
    settings = [(f, SILERO_LAG_MS, False, dictation) for f in pauses]
    settings += [] if quick else [(DEFAULT_PAUSE_MS, SILERO_LAG_MS, False, None)]
    settings += [
        (f, SILERO_LAG_MS, True, dictation) for f in (pauses[-1:] if quick else RE_RECOGNIZE_AT_MS)
    ]
    for pause_ms, lag_ms, again, dictation_s in settings:
        outcomes = {
            c.key: through_machine(c.sent, recognizer, pause_ms, again, lag_ms, dictation_s)
            for c in cases
        }
        texts = {key: o.text for key, o in outcomes.items()}
        all_wer = _wer_pct([(c.text, texts[c.key]) for c in cases])
        stop = {c.key: ha_stop_s(c.sent) for c in cases}
        waits = {
            rtt: [_modelled_wait_s(outcomes[c.key], stop[c.key], rtt) for c in cases]
            for rtt in RTTS_MS
        }
        splits = [max(0, len(o.finalizes_at_s) - 1) for o in outcomes.values()]
        ratios = [outcomes[c.key].sent_s / c.clip.seconds for c in cases]
        over = sum(1 for c in cases if outcomes[c.key].sent_s > billed_bound_s(c.clip.seconds))
        errors = sum(1 for o in outcomes.values() if o.error)
        table.add(
            [
                pause_ms or "gate",
                lag_ms,
                f"{dictation_s:g}" if dictation_s else "off",
                "on" if again else "off",
                _pct(all_wer),
                _pct(_wer_pct([(c.text, texts[c.key]) for c in read])),
                _pct(_wer_pct([(c.text, texts[c.key]) for c in spontaneous])),
                f"{all_wer - straight_wer:+.1f}",
                f"{statistics.mean(splits):.2f}",
                f"{statistics.mean(ratios):.2f} (max {max(ratios):.2f})",
                f"{over}/{len(cases)}" + (f", {errors} errors" if errors else ""),
                ms(median(waits[0])),
                ms(median(waits[150])),
            ],
            finalize_after_ms=pause_ms,
            vad_lag_ms=lag_ms,
            dictation_after_s=dictation_s,
            re_recognize=again,
            wer_pct=all_wer,
            wer_vs_straight=all_wer - straight_wer,
            splits_mean=statistics.mean(splits),
            sent_ratio_mean=statistics.mean(ratios),
            sent_ratio_max=max(ratios),
            over_bar=over,
            errors=errors,
            wait_median_s={str(r): median(w) for r, w in waits.items()},
            texts={f"{name}@{1000 * shift:.0f}ms": text for (name, shift), text in texts.items()},
        )
    table.notes += [
        "the bridge's request machine + silero gate (default flags) wired in-process to the "
        "emulator's Pulse session core with Whisper tiny.en (beam 1, the emulator's own "
        "settings); no sockets, no pacing: text, audio sent and finalize points are what a "
        "loopback run gives; interims not computed",
        "F 'gate': --finalize-after-ms 0, settled when the gate closes (500 ms hangover); "
        f"VAD lag: --vad-lag-ms, silero's own {SILERO_LAG_MS} ms (the server's default; "
        "measured by the pause-budget table)",
        "splits / request: finalizes before the last one; sent / speech: audio sent over the "
        "clip's length; over 1.3x+0.5s: requests that sent more than 1.3 x clip + 0.5 s",
        f"wait: modelled from the audio clock, max(0, last finalize - HA's stop + R + "
        f"{SETTLE_MS} ms), HA's stop {HA_STOP_AFTER_S} s after the gate's end of speech (the "
        "recordings trail off in silence: audio-stop itself comes later); median",
        (
            "clips: every 4th clip under 15 s of tests/data/human, as HA sends it"
            if quick
            else "clips: every clip under 15 s of tests/data/human, each at 4 placements (HA's "
            "0.3 s lead + 0, 50, 100, 150 ms): WER and counts pool the placements"
        ),
    ]
    return table


async def run_sweep_async(quick: bool = False) -> Table:
    """The sweep is CPU work without I/O: run it off the event loop."""
    return await asyncio.to_thread(run_sweep, quick)


# ------------------------------------------------------------------ where the ms go


def _energy_end_s(pcm: bytes) -> float:
    """Where the speech ends by its energy (the last 10 ms above -45 dBFS): the speaker's stop."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    voiced = np.nonzero((frames**2).mean(axis=1) > (10 ** (-45 / 10)) * 32768**2)[0]
    return (int(voiced[-1]) + 1) / 100 if voiced.size else 0.0


def run_budget(pause_ms: int = 200, lags_ms: Sequence[int] = (0, 32, 48)) -> Table:
    """From the speaker's stop to the finalize, on the audio clock: the VAD's lag, the old rule's
    rounding to whole gate frames, and the rule now (with and without the lag counted)."""
    recognizer = create_recognizer("tones")  # the text does not matter here, only the cut
    frame_ms = 512 * 1000 / 16000
    table = Table(
        "pause-budget",
        f"Where the ms go from the end of speech to the finalize (F = {pause_ms} ms, silero)",
        ["commands", "step", "median ms after the speech ends", "min", "max"],
    )
    for name, commands in command_sets().items():
        lag: list[float] = []
        old: list[float] = []
        now: dict[int, list[float]] = {lag_ms: [] for lag_ms in lags_ms}
        for pcm in commands:
            audio = sd.with_silence(pcm, LEAD_S, HA_STOP_AFTER_S)
            end_s = LEAD_S + _energy_end_s(pcm)
            gate = VadGate(create_engine("silero"), GateConfig())
            gate.process(audio)
            vad_end_s = (gate.speech_end_ms or 0.0) / 1000
            lag.append(vad_end_s - end_s)
            # The rule before: whole judged frames of silence, decided at a frame's end.
            old.append(vad_end_s + math.ceil(pause_ms / frame_ms) * frame_ms / 1000 - end_s)
            for lag_ms in lags_ms:
                outcome = through_machine(audio, recognizer, pause_ms, False, lag_ms)
                now[lag_ms].append(max(outcome.finalizes_at_s, default=math.nan) - end_s)
        rows = [("VAD lag: its last speech frame ends", lag), ("finalize, rule before", old)]
        rows += [(f"finalize, audio-clock rule, --vad-lag-ms {k}", v) for k, v in now.items()]
        for step, values in rows:
            table.add(
                [name, step, ms(median(values)), ms(min(values)), ms(max(values))],
                commands=name,
                step=step,
                median_s=median(values),
                values_s=values,
            )
    table.notes += [
        "end of speech: the last 10 ms above -45 dBFS of the espeak command; audio fed in 10 ms "
        "chunks (0.3 s before, 0.7 s after) to the silero gate and the request machine; the rule "
        "before this branch counted whole judged 32 ms frames of silence",
    ]
    return table


# ------------------------------------------------------------------ the wait over sockets


def _quietest_cut(pcm: bytes, low_s: float, high_s: float) -> int:
    """Byte offset of the quietest 10 ms between ``high_s`` and ``low_s`` before the end of
    the speech (its energy end), so the short command is a natural word ending."""
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
    energy = (frames**2).mean(axis=1)
    voiced = np.nonzero(energy > (10 ** (-45 / 10)) * 32768**2)[0]
    end = int(voiced[-1]) + 1 if voiced.size else len(frames)
    first = max(0, end - round(high_s * 100))
    last = max(first + 1, end - round(low_s * 100))
    quietest = first + int(np.argmin(energy[first:last]))
    return quietest * 320


def command_sets() -> dict[str, list[bytes]]:
    long = [s.pcm for s in sd.load_speech()]
    short = [pcm[_quietest_cut(pcm, 0.3, 0.6) :] for pcm in long]
    return {"short (0.3-0.6 s)": short, "long (0.8-3 s)": long}


BEFORE = -1
"""A design's lag of -1: the bridge of $PAUSE_BASELINE_ROOT (the code before), F = 200."""
WAIT_DESIGNS: tuple[tuple[int, int], ...] = ((200, 0), (200, 48), (400, 48), (550, 48))
"""(F, VAD lag) of each bridge in the wait table."""


async def run_wait(
    quick: bool = False, designs: Sequence[tuple[int, int]] = WAIT_DESIGNS, lag_flag: bool = True
) -> Table:
    table = Table(
        "pause-wait",
        f"The wait after audio-stop at HA's stop point, cloud settling in {SETTLE_MS} ms "
        "(over sockets)",
        [
            "R ms",
            "commands",
            "F ms",
            "VAD lag ms",
            "median wait ms",
            "floor ms",
            "excess ms",
            "requests",
            "errors",
        ],
    )
    reps = 1 if quick else 2
    baseline = os.environ.get("PAUSE_BASELINE_ROOT")
    if baseline:
        designs = [(200, BEFORE), *designs]
    for rtt in RTTS_MS:
        emulator_port = free_port()
        extra = ["--settle-ms", str(SETTLE_MS), "--rtt-ms", str(rtt)]
        emulator = Proc("emulator", emulator_args(emulator_port, extra=extra), emulator_port)
        bridges: dict[tuple[int, int], tuple[Proc, int]] = {}
        for pause_ms, lag_ms in designs:
            port = free_port()
            args = ["-m", "wyoming_lightning", "--uri", f"tcp://127.0.0.1:{port}"]
            args += ["--lightning-url", f"ws://127.0.0.1:{emulator_port}{LIVE_PATH}?model=pulse"]
            args += ["--finalize-after-ms", str(pause_ms), "--max-requests-per-client", "2000"]
            root = ROOT
            if lag_ms == BEFORE:
                # The bridge of another checkout (the code before this change), same flags.
                assert baseline, "BEFORE is a column only with PAUSE_BASELINE_ROOT"
                root = Path(baseline)
            elif lag_flag:
                args += ["--vad-lag-ms", str(lag_ms)]
            name = f"bridge-{pause_ms}-{lag_ms}"
            bridges[(pause_ms, lag_ms)] = (Proc(name, args, port, BRIDGE_ENV, root), port)
        async with running(emulator, *(p for p, _ in bridges.values())):
            for name, commands in command_sets().items():
                scripts = [
                    Script.of(sd.with_silence(pcm, LEAD_S, HA_STOP_AFTER_S), None, str(i))
                    for i, pcm in enumerate(commands)
                ] * reps
                waits, errors = await _paced(scripts, {f: p for f, (_, p) in bridges.items()})
                for design in designs:
                    pause_ms, lag_ms = design
                    floor = floor_ms(pause_ms, rtt, SETTLE_MS) / 1000
                    wait = median(waits[design])
                    table.add(
                        [
                            rtt,
                            name,
                            pause_ms,
                            "before" if lag_ms == BEFORE else lag_ms if lag_flag else "-",
                            ms(wait),
                            ms(floor),
                            ms(wait - floor),
                            len(scripts),
                            errors[design],
                        ],
                        rtt_ms=rtt,
                        commands=name,
                        finalize_after_ms=pause_ms,
                        vad_lag_ms=lag_ms if lag_flag else None,
                        median_wait_s=wait,
                        floor_s=floor,
                        waits_s=waits[design],
                        errors=errors[design],
                    )
    table.notes += [
        "bridge: default flags but --finalize-after-ms F (silero, hangover 500 ms), Pulse "
        "dialect; emulator: fast-tones recognizer, --settle-ms 600 --rtt-ms R (answer to a "
        "finalize 600 ms + R late; R before every message)",
        "requests: HA-style, 10 ms chunks in real time, 4 at a time, every bridge fed the "
        "same command at the same moment; floor = max(0, F + R + 600 - 700)",
        "VAD lag 'before': the bridge of $PAUSE_BASELINE_ROOT (another checkout), F = 200",
    ]
    return table


Design = tuple[int, int]


async def _paced(
    scripts: list[Script], ports: dict[Design, int], parallel: int = 4
) -> tuple[dict[Design, list[float]], dict[Design, int]]:
    loop = asyncio.get_running_loop()
    pacer = Pacer()
    pacer.start()
    waits: dict[Design, list[float]] = {f: [] for f in ports}
    errors: dict[Design, int] = dict.fromkeys(ports, 0)
    try:
        for first in range(0, len(scripts), parallel):
            base = loop.time() + 0.1
            jobs: list[tuple[Design, Any]] = []
            for offset, script in enumerate(scripts[first : first + parallel]):
                start = base + 0.137 * offset
                for pause_ms, port in ports.items():
                    jobs.append((pause_ms, ha_request(port, script, pacer, start=start)))
            results = await asyncio.gather(*(job for _, job in jobs))
            for (pause_ms, _), result in zip(jobs, results, strict=True):
                if result.error is None and result.wait is not None:
                    waits[pause_ms].append(result.wait)
                else:
                    errors[pause_ms] += 1
    finally:
        await pacer.stop()
    return waits, errors
