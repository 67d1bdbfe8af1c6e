"""Where the gate loses words, clean and in steady noise: ``python -m benchmarks noise``.

Each recording of tests/data/human (a representative subset by default, see ``--every``) is
mixed with each noise of ``tests.kit.noisy_speech`` (fan, mains hum, pink, brown, a TV's
babble) at 20, 10, 5 and 0 dB SNR, and also left clean, and placed as Home Assistant sends it
at several placements (``human_speech.SHIFTS_S``: Whisper's text moves by words with a 50 ms
shift, so one placement cannot resolve half a point). The same stream goes:

- straight: the whole stream in one session of the emulator's Pulse core (Whisper tiny.en,
  word times), as the service gets it with ``--vad off``;
- through the bridge: the real request machine and gate (silero, the server's defaults)
  wired in-process to the same session core (``pause.through_machine``; no sockets, no time).

Every word the bridge loses or changes against straight is put where it happened. A reference
word right straight and wrong through the bridge is *lost*; a word the bridge adds is lost
too; a word wrong straight and right through the bridge is *gained* (so lost - gained is the
difference in errors, exactly). Each lost word is located on the stream (its time straight,
or the bridge's own word time for an added word, mapped back through the audio actually sent)
and given one cause:

- ``onset``: the word lies in audio the gate never sent before a segment (speech detected
  late, pre-roll too short), or within ``EDGE_S`` of the start of the first utterance;
- ``offset``: the same at the end (hangover, the pause tail);
- ``split``: within ``SPLIT_S`` of a cut between two utterances of the request (a pause that
  settled part of the command);
- ``context``: anywhere else: the words were sent whole, but with a different amount of noise
  or silence around them than the recognizer had straight, and it read them differently.

Also per condition: WER straight and through the bridge, utterances per request, audio sent
per second of recording, and the audio sent per request against the bound 1.3 x speech +
0.5 s (speech: the recording's length, as ``python -m benchmarks pause`` counts it).

Whisper tiny in noise sometimes loops ("harder harder harder ...", one phrase a dozen times):
one such request is 100-180 words of a 482-word row, and whether it happens moves with a few
hundred milliseconds of noise either way, straight as through the bridge. The WER columns
count every word (the bar's figure); beside them, ``loops`` counts the requests whose text
loops straight / through the bridge (``loops``), ``pts w/o loops`` is the difference over the
requests where neither does, and ``pts 95 %`` is a bootstrap interval of the difference that
resamples recordings (their placements together, as they share one noise), so a row says
whether its figure is resolved to the half point at all.

Usage::

    python -m benchmarks noise [--quick]
    python -m benchmarks.noise [--every N] [--shifts N] [--noises fan,hum] [--snrs 10,0]
        [--no-clean] [--only short|long] [--set KEY=VALUE ...] [--cache FILE] [--words]
        [--json FILE]
    python -m benchmarks.noise --report FILE   # tabulate a run saved with --json again

``--cache FILE`` keeps Whisper's words per audio (by SHA-1) across runs: the straight side
never changes with the gate, so a second run costs only the audio the gate sends differently.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.kit import human_speech as hs
from tests.kit import noisy_speech as ns
from tests.kit.wer import align, normalise_words
from wyoming_lightning.core.segmenter import billed_bound_s
from wyoming_lightning.core.vad import GateConfig, GateEvent, SpeechAudio, SpeechStart, VadGate
from wyoming_lightning.core.vad.engines import create_engine
from wyoming_lightning.emulator.recognizers import Recognizer, create_recognizer
from wyoming_lightning.services import gate_config
from wyoming_lightning.settings.config import VAD_LAG_MS, Settings

from . import pause
from .cached_recognizer import CachedRecognizer
from .harness import Table

BYTES_PER_S = 2 * hs.SAMPLE_RATE
CAUSES = ("onset", "offset", "split", "context")
EDGE_S = 0.3
"""A lost word this close to the first or last audio sent is put on that edge: Whisper's word
times are good to about this much."""
REPLAY_PIECE = 320
"""A re-sent command is located in the gate's output in pieces of this many bytes (10 ms): its
frames join audio the gate let out apart."""
SPLIT_S = 1.0
"""A lost word this close to a cut between two utterances is put on the split: the words on
either side of a cut are read without the other side's context, not only the nearest one."""
SETTINGS = Settings()
FINALIZE_MS = SETTINGS.finalize_after_ms
VAD_LAG = VAD_LAG_MS["silero"]
LOOP_WORDS = 12
"""A run of one phrase (1-8 words) repeated back to back that covers this many words more than
the longest such run in the reference is a recognizer loop (the reference's own "word word word
word word" is not)."""
BOOTSTRAP = 2000
DEFAULT_EVERY = 2
"""Every other clip of each length (22 commands, 5 long recordings): the whole set at every
condition and placement is some five hours of Whisper on two shared cores."""


def server_gate_config(**overrides: Any) -> GateConfig:
    """The gate the server builds with its defaults (services.py ``new_gate``)."""
    return dataclasses.replace(gate_config(SETTINGS), **overrides)


class RecordingGate(VadGate):
    """The gate, noting where in the input stream each byte it lets out came from."""

    def __init__(self, engine: Any, config: GateConfig) -> None:
        super().__init__(engine, config)
        self.pieces: list[tuple[int, bytes]] = []  # (stream byte offset, data), in order
        self._at = 0

    def _note(self, events: list[GateEvent]) -> list[GateEvent]:
        for event in events:
            if isinstance(event, SpeechStart):
                # The pause the gate dropped (``gap``) goes out too when dictation keeps it.
                self._at = 2 * event.start_sample - len(event.gap)
                data = event.gap + event.pre_roll
            elif isinstance(event, SpeechAudio):
                data = event.data
            else:
                continue
            if data:
                self.pieces.append((self._at, data))
                self._at += len(data)
        return events

    def process(self, pcm: bytes | bytearray | memoryview) -> list[GateEvent]:
        return self._note(super().process(pcm))

    def flush(self) -> list[GateEvent]:
        return self._note(super().flush())


# ------------------------------------------------------------------ where the audio went


@dataclass
class Span:
    """Audio of one utterance: the stream ranges it was sent from (seconds), in order."""

    ranges: list[tuple[float, float]] = field(default_factory=list)

    @property
    def start(self) -> float:
        return self.ranges[0][0]

    @property
    def end(self) -> float:
        return self.ranges[-1][1]


class Wire:
    """Maps the audio a request sent back onto its input stream.

    The request sends the gate's output in order, less the pause it held back and dropped;
    each frame sent is found in the gate's output from where the last one ended. A command
    re-sent whole (a rejoin, re-recognition) is earlier output again: it is found in 10 ms
    pieces, and the utterances it repeats are marked replaced (their words are not the
    answer's).
    """

    def __init__(self, gate: RecordingGate, trace: pause.Trace) -> None:
        output = b"".join(data for _, data in gate.pieces)
        self._starts = np.cumsum([0] + [len(d) for _, d in gate.pieces])
        self._offsets = [at for at, _ in gate.pieces]
        # Per conn: (conn byte, stream byte, length) of each frame sent on it.
        self._conn: dict[int, list[tuple[int, int, int]]] = {}
        conn_at: dict[int, int] = {}
        pointer = 0
        back = 0  # where the re-sent command was last found
        for conn, data in trace.sent:
            found = pointer if output.startswith(data, pointer) else output.find(data, pointer)
            at = conn_at.get(conn, 0)
            conn_at[conn] = at + len(data)
            if found < 0:
                for piece in range(0, len(data), REPLAY_PIECE):
                    part = data[piece : piece + REPLAY_PIECE]
                    where = output.find(part, back)
                    where = output.find(part) if where < 0 else where
                    if where >= 0:
                        self._place(conn, at + piece, where, len(part))
                        back = where + len(part)
                continue
            back = 0
            pointer = found + len(data)
            self._place(conn, at, found, len(data))
        self._replaced: list[tuple[int, int, int]] = []
        """(conn, first byte, end byte) of each utterance a later one re-sent."""
        self.utterances = self._utterances(trace)

    def _place(self, conn: int, conn_at: int, found: int, length: int) -> None:
        """Note that ``length`` bytes sent at ``conn_at`` on ``conn`` are the gate's output at
        ``found`` (a frame may straddle two gate pieces)."""
        position, end = found, found + length
        while position < end:
            piece = int(np.searchsorted(self._starts, position, side="right")) - 1
            take = min(end, int(self._starts[piece + 1])) - position
            stream = self._offsets[piece] + position - int(self._starts[piece])
            self._conn.setdefault(conn, []).append((conn_at + position - found, stream, take))
            position += take

    def _utterances(self, trace: pause.Trace) -> list[Span]:
        spans: list[tuple[int, int, int, Span]] = []
        begun: dict[int, int] = {}
        for conn, at in trace.settled_at:
            span = Span()
            for conn_at, stream, length in sorted(self._conn.get(conn, [])):
                if begun.get(conn, 0) <= conn_at < at:
                    start, end = stream / BYTES_PER_S, (stream + length) / BYTES_PER_S
                    if span.ranges and abs(span.ranges[-1][1] - start) < 1e-9:
                        span.ranges[-1] = (span.ranges[-1][0], end)
                    else:
                        span.ranges.append((start, end))
            if span.ranges:
                spans.append((conn, begun.get(conn, 0), at, span))
            begun[conn] = at
        kept = []
        for index, (conn, first, end, span) in enumerate(spans):
            later = [s for _, _, _, s in spans[index + 1 :]]
            if any(s.start <= span.start + 0.05 and s.end >= span.end - 0.05 for s in later):
                self._replaced.append((conn, first, end))
            else:
                kept.append(span)
        return sorted(kept, key=lambda s: s.start)

    def replaced(self, conn: int, session_s: float) -> bool:
        """A word at this time of a conn's session belongs to an utterance re-sent later."""
        at = round(session_s * BYTES_PER_S)
        return any(c == conn and first <= at < end for c, first, end in self._replaced)

    def stream_s(self, conn: int, session_s: float) -> float | None:
        """Where a time on a conn's session lies on the input stream."""
        frames = self._conn.get(conn, [])
        at = round(session_s * BYTES_PER_S)
        index = bisect_right([f[0] for f in frames], at) - 1
        if index < 0:
            return None
        conn_at, stream, length = frames[index]
        return (stream + min(at - conn_at, length)) / BYTES_PER_S


def _tokens(words: Sequence[dict[str, Any]], place: Any) -> list[tuple[str, float, float]]:
    """Normalised tokens with stream times (``place`` maps a word's time, or gives None)."""
    out = []
    for word in words:
        start, end = place(float(word["start"])), place(float(word["end"]))
        if start is None or end is None:
            continue
        out += [(token, start, end) for token in normalise_words(str(word["word"]))]
    return out


def cause(start: float, end: float, spans: Sequence[Span]) -> str:
    """Which edge of the audio sent a lost word at ``start..end`` (stream seconds) belongs to."""
    if not spans:
        return "onset"
    middle = (start + end) / 2
    ranges = [r for span in spans for r in span.ranges]
    inside = any(a <= middle <= b for a, b in ranges)
    if not inside:
        if middle < ranges[0][0]:
            return "onset"
        if middle > ranges[-1][1]:
            return "offset"
        before = max(b for a, b in ranges if b < middle)
        after = min(a for a, b in ranges if a > middle)
        return "onset" if after - middle < middle - before else "offset"
    for index, span in enumerate(spans):
        if span.start - SPLIT_S <= middle <= span.end + SPLIT_S:
            if index > 0 and middle - span.start < SPLIT_S:
                return "split"
            if index < len(spans) - 1 and span.end - middle < SPLIT_S:
                return "split"
    if middle - spans[0].start < EDGE_S:
        return "onset"
    if spans[-1].end - middle < EDGE_S:
        return "offset"
    # Inside an utterance held open over a closed gate (dictation): that segment's edges.
    for a, b in ranges:
        if a <= middle <= b:
            if middle - a < EDGE_S:
                return "onset"
            if b - middle < EDGE_S:
                return "offset"
    return "context"


# ------------------------------------------------------------------ one case


@dataclass(frozen=True)
class Case:
    clip: hs.HumanClip
    condition: ns.Condition
    shift_s: float

    @property
    def stream(self) -> bytes:
        return ns.noisy_stream(self.clip, self.condition, self.shift_s)


@dataclass
class Result:
    case: Case
    words: int
    errors_straight: int
    errors_bridge: int
    lost: Counter[str]
    gained: int
    utterances: int
    sent_s: float
    straight: str = ""
    bridge: str = ""
    notes: list[str] = field(default_factory=list)


def run_case(case: Case, recognizer: Recognizer, config: GateConfig) -> Result:
    stream = case.stream
    straight_finals = pause.straight_finals(stream, recognizer)
    straight = _tokens([w for m in straight_finals for w in m.get("words", [])], lambda t: t)
    gate = RecordingGate(create_engine("silero"), config)
    trace = pause.Trace()
    outcome = pause.through_machine(
        stream, recognizer, FINALIZE_MS, False, VAD_LAG, gate=gate, trace=trace
    )
    wire = Wire(gate, trace)
    bridge: list[tuple[str, float, float]] = []
    for conn, words in trace.finals:
        kept = [w for w in words if not wire.replaced(conn, float(w["start"]))]
        bridge += _tokens(kept, lambda t, c=conn: wire.stream_s(c, t))
    bridge.sort(key=lambda t: t[1])
    ref = normalise_words(case.clip.text)
    right_straight = _right(ref, [t for t, _, _ in straight])
    right_bridge = _right(ref, [t for t, _, _ in bridge])
    spans = wire.utterances
    lost: Counter[str] = Counter()
    notes = []
    # Where each reference word was heard straight (its time), to place a word the bridge lost.
    heard = {
        r: straight[h]
        for r, h in align(ref, [t for t, _, _ in straight])
        if r is not None and h is not None
    }
    for index, word in enumerate(ref):
        if right_straight[index] and not right_bridge[index]:
            _, start, end = heard[index]
            why = cause(start, end, spans)
            lost[why] += 1
            notes.append(f"{why}: {word!r} at {start:.2f}-{end:.2f} s")
    gained = sum(1 for i in range(len(ref)) if right_bridge[i] and not right_straight[i])
    for r, h in align(ref, [t for t, _, _ in bridge]):
        if r is None and h is not None:
            token, start, end = bridge[h]
            why = cause(start, end, spans)
            lost[why] += 1
            notes.append(f"{why}: added {token!r} at {start:.2f}-{end:.2f} s")
    gained += sum(1 for r, h in align(ref, [t for t, _, _ in straight]) if r is None)
    errors_straight = len(ref) - sum(right_straight) + _insertions(ref, straight)
    errors_bridge = len(ref) - sum(right_bridge) + _insertions(ref, bridge)
    return Result(
        case,
        len(ref),
        errors_straight,
        errors_bridge,
        lost,
        gained,
        len(spans),
        outcome.sent_s,
        " ".join(t for t, _, _ in straight),
        " ".join(t for t, _, _ in bridge),
        notes,
    )


def longest_repeat(words: Sequence[str]) -> int:
    """Words covered by the longest back-to-back repetition of one phrase of 1-8 words."""
    best = 0
    for n in range(1, 9):
        run = 0  # words since ``n`` back that each equal the word ``n`` before them
        for at in range(n, len(words)):
            run = run + 1 if words[at] == words[at - n] else 0
            if run >= n:  # the phrase at least twice
                best = max(best, run + n)
    return best


def loops(text: str, reference: str) -> bool:
    """True when ``text`` repeats a phrase far beyond anything the reference repeats."""
    return longest_repeat(text.split()) >= longest_repeat(reference.split()) + LOOP_WORDS


def _right(ref: list[str], hyp: list[str]) -> list[bool]:
    right = [False] * len(ref)
    for r, h in align(ref, hyp):
        if r is not None and h is not None and ref[r] == hyp[h]:
            right[r] = True
    return right


def _insertions(ref: list[str], hyp: Sequence[tuple[str, float, float]]) -> int:
    return sum(1 for r, _ in align(ref, [t for t, _, _ in hyp]) if r is None)


# ------------------------------------------------------------------ the table


def cases(
    every: int,
    shifts: int,
    conditions: Sequence[ns.Condition],
    long_shifts: int | None = None,
    only: str | None = None,
) -> list[Case]:
    clips = [] if only == "long" else hs.short_clips()[::every]
    clips += [] if only == "short" else hs.long_clips()[::every]
    out = []
    for condition in conditions:
        for clip in clips:
            count = long_shifts if clip.is_long and long_shifts else shifts
            out += [Case(clip, condition, s) for s in hs.SHIFTS_S[:count]]
    return out


def _points(results: Sequence[Result]) -> float:
    words = sum(r.words for r in results)
    return 100 * sum(r.errors_bridge - r.errors_straight for r in results) / max(1, words)


def interval(results: Sequence[Result], seed: int = 26) -> tuple[float, float]:
    """95 % bootstrap interval of the WER difference (points), resampling recordings whole."""
    by_clip: dict[str, list[Result]] = {}
    for r in results:
        by_clip.setdefault(r.case.clip.name, []).append(r)
    groups = list(by_clip.values())
    words = np.array([sum(r.words for r in g) for g in groups], dtype=float)
    diff = np.array([sum(r.errors_bridge - r.errors_straight for r in g) for g in groups], float)
    picks = np.random.default_rng(seed).integers(0, len(groups), (BOOTSTRAP, len(groups)))
    points = 100 * diff[picks].sum(axis=1) / np.maximum(1.0, words[picks].sum(axis=1))
    low, high = np.percentile(points, [2.5, 97.5])
    return float(low), float(high)


def _row(label: str, results: Sequence[Result]) -> tuple[list[object], dict[str, Any]]:
    words = sum(r.words for r in results)
    straight = 100 * sum(r.errors_straight for r in results) / max(1, words)
    bridge = 100 * sum(r.errors_bridge for r in results) / max(1, words)
    loop_straight = [loops(r.straight, r.case.clip.text.lower()) for r in results]
    loop_bridge = [loops(r.bridge, r.case.clip.text.lower()) for r in results]
    steady = [r for r, a, b in zip(results, loop_straight, loop_bridge, strict=True) if not a | b]
    low, high = interval(results)
    lost = sum((r.lost for r in results), Counter())
    gained = sum(r.gained for r in results)
    over = [r.sent_s - billed_bound_s(r.case.clip.seconds) for r in results]
    cells: list[object] = [
        label,
        len(results),
        words,
        f"{straight:.2f}",
        f"{bridge:.2f}",
        f"{bridge - straight:+.2f}",
        f"{low:+.1f}..{high:+.1f}",
        f"{sum(loop_straight)}/{sum(loop_bridge)}",
        f"{_points(steady):+.2f}" if steady else "-",
        *(lost[c] for c in CAUSES),
        gained,
        f"{sum(r.utterances for r in results) / len(results):.2f}",
        f"{sum(r.sent_s for r in results) / sum(r.case.clip.seconds for r in results):.2f}",
        f"{sum(1 for o in over if o > 0)} ({max(over):+.2f})",
    ]
    record = {
        "label": label,
        "requests": len(results),
        "words": words,
        "wer_straight_pct": straight,
        "wer_bridge_pct": bridge,
        "points_95": [low, high],
        "loops_straight": sum(loop_straight),
        "loops_bridge": sum(loop_bridge),
        "points_without_loops": _points(steady) if steady else None,
        "lost": dict(lost),
        "gained": gained,
        "over_bound": sum(1 for o in over if o > 0),
        "worst_vs_bound_s": max(over),
    }
    return cells, record


def _case_record(r: Result) -> dict[str, Any]:
    return {
        "clip": r.case.clip.name,
        "condition": r.case.condition.label,
        "shift_s": r.case.shift_s,
        "words": r.words,
        "errors_straight": r.errors_straight,
        "errors_bridge": r.errors_bridge,
        "lost": dict(r.lost),
        "gained": r.gained,
        "utterances": r.utterances,
        "sent_s": r.sent_s,
        "straight": r.straight,
        "bridge": r.bridge,
    }


def _from_record(record: dict[str, Any], clips: dict[str, hs.HumanClip]) -> Result:
    """A case saved by ``--json`` back as a ``Result`` (for ``--report``)."""
    label = str(record["condition"])
    if label == "clean":
        condition = ns.CLEAN
    else:
        kind, snr, _ = label.split()
        condition = ns.Condition(kind, float(snr))  # type: ignore[arg-type]
    return Result(
        Case(clips[record["clip"]], condition, float(record["shift_s"])),
        int(record["words"]),
        int(record["errors_straight"]),
        int(record["errors_bridge"]),
        Counter(record["lost"]),
        int(record["gained"]),
        int(record["utterances"]),
        float(record["sent_s"]),
        str(record["straight"]),
        str(record["bridge"]),
    )


def report(saved: dict[str, Any]) -> Table:
    """Tabulate a run saved with ``--json`` again (with this version's columns)."""
    clips = {c.name: c for c in hs.load_human_speech()}
    cases = next(r["cases"] for r in saved["records"] if "cases" in r)
    note = saved["notes"][0] if saved.get("notes") else ""
    return table([_from_record(c, clips) for c in cases], note)


def table(results: Sequence[Result], title_note: str) -> Table:
    out = Table(
        "noise",
        "Words the bridge loses against straight, by cause, per condition (real speech)",
        [
            "condition",
            "requests",
            "words",
            "WER % straight",
            "WER % bridge",
            "pts",
            "pts 95 %",
            "loops",
            "pts w/o loops",
            *(f"lost {c}" for c in CAUSES),
            "gained",
            "utt / req",
            "sent / clip s",
            "over bound (worst s)",
        ],
    )
    groups: dict[str, list[Result]] = {}
    pooled: dict[str, list[Result]] = {}
    longs: dict[str, list[Result]] = {}
    for r in results:
        condition = r.case.condition
        snr = "clean" if condition.noise is None else f"all noises {condition.snr_db:g} dB"
        if r.case.clip.is_long:
            longs.setdefault(f"long, {snr}", []).append(r)
        else:
            groups.setdefault(condition.label, []).append(r)
            if condition.noise is not None:
                pooled.setdefault(snr, []).append(r)
    for label, rows in [*groups.items(), *pooled.items(), *longs.items()]:
        cells, record = _row(label, rows)
        out.add(cells, **record)
    out.records.append({"cases": [_case_record(r) for r in results]})
    out.notes += [
        title_note,
        "rows per condition: the commands (clips under 15 s, as Home Assistant caps a command); "
        "'long': the 15-30 s recordings (dictation), pooled per SNR",
        "straight: the whole stream (0.3 s + placement before, 0.7 s after, noise throughout) in "
        "one session of the emulator's Pulse core; bridge: the request machine and gate "
        "(silero, server defaults) wired to the same core; Whisper tiny.en int8",
        "lost: reference words right straight and wrong through the bridge, plus words the "
        "bridge added; gained: the reverse; lost - gained = the difference in errors",
        f"causes: onset/offset = in audio never sent before/after a segment, or within "
        f"{EDGE_S:g} s of the first/last audio sent; split = within {SPLIT_S:g} s of a cut between "
        "utterances; context = sent whole, read differently",
        "sent / clip: audio sent over the recordings' length; over bound: requests sending more "
        "than 1.3 x clip + 0.5 s (the worst's excess in brackets, negative: under)",
        f"pts 95 %: bootstrap interval of pts ({BOOTSTRAP} resamples of the recordings, "
        "placements together); loops: requests whose text repeats a phrase over "
        f"{LOOP_WORDS} words beyond the reference, straight/bridge; pts w/o loops: pts over "
        "the requests where neither side loops (WER counts every request)",
    ]
    return out


def run(
    every: int = DEFAULT_EVERY,
    shifts: int = 2,
    conditions: Sequence[ns.Condition] | None = None,
    config: GateConfig | None = None,
    cache: Path | None = None,
    show_words: bool = False,
    long_shifts: int | None = None,
    only: str | None = None,
) -> Table:
    conditions = list(conditions or ns.conditions())
    config = config or server_gate_config()
    recognizer = CachedRecognizer(create_recognizer("whisper"), path=cache)
    recognizer.warm_up()
    all_cases = cases(every, shifts, conditions, long_shifts, only)
    results = []
    try:
        for case in all_cases:
            result = run_case(case, recognizer, config)
            results.append(result)
            if show_words and result.errors_bridge != result.errors_straight:
                print(
                    f"{case.condition.label} {case.clip.name} +{1000 * case.shift_s:.0f} ms: "
                    f"{result.errors_straight} -> {result.errors_bridge} errors, "
                    f"{result.utterances} utt, sent {result.sent_s:.2f} s\n"
                    f"   ref     {case.clip.text}\n   straight {result.straight}\n"
                    f"   bridge   {result.bridge}\n   " + "; ".join(result.notes),
                    flush=True,
                )
    finally:
        recognizer.save()
    clips = len({c.clip.name for c in all_cases})
    note = (
        f"{clips} recordings of tests/data/human (1 in {every} of each length) x "
        f"{len(conditions)} conditions x {shifts} placements"
        + (f" ({long_shifts} for long ones)" if long_shifts else "")
        + f"; gate {config}"
    )
    return table(results, note)


async def run_async(quick: bool = False) -> Table:
    if quick:
        conditions = [ns.CLEAN, ns.Condition("fan", 10), ns.Condition("babble", 0)]
        return await asyncio.to_thread(run, 6, 1, conditions)
    return await asyncio.to_thread(run)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.noise")
    parser.add_argument("--every", type=int, default=DEFAULT_EVERY)
    parser.add_argument("--shifts", type=int, default=2, choices=range(1, len(hs.SHIFTS_S) + 1))
    parser.add_argument("--long-shifts", type=int, choices=range(1, len(hs.SHIFTS_S) + 1))
    parser.add_argument("--noises", default=",".join(ns.NOISES))
    parser.add_argument("--snrs", default=",".join(str(s) for s in ns.SNRS_DB))
    parser.add_argument("--no-clean", action="store_true")
    parser.add_argument("--only", choices=("short", "long"), help="only commands or long ones")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--cache", type=Path, help="JSON file of Whisper's words per audio")
    parser.add_argument("--words", action="store_true", help="print each request that differs")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--report", type=Path, help="only tabulate a run saved with --json")
    args = parser.parse_args()
    if args.report:
        print(report(json.loads(args.report.read_text(encoding="utf-8"))).render())
        return
    noises = tuple(n for n in args.noises.split(",") if n)
    unknown = [n for n in noises if n not in ns.NOISES]
    if unknown:
        parser.error(f"unknown noise {unknown[0]!r}; choose from {', '.join(ns.NOISES)}")
    snrs = tuple(float(s) for s in args.snrs.split(",") if s)
    conditions = ns.conditions(noises, snrs)
    if args.no_clean:
        conditions = conditions[1:]
    fields = {f.name for f in dataclasses.fields(GateConfig)}
    overrides: dict[str, Any] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in fields:
            parser.error(f"unknown gate setting {key!r}; one of {', '.join(sorted(fields))}")
        overrides[key] = None if value == "None" else (float(value) if "." in value else int(value))
    out = run(
        args.every,
        args.shifts,
        conditions,
        server_gate_config(**overrides),
        args.cache,
        args.words,
        args.long_shifts,
        args.only,
    )
    print(out.render(), flush=True)
    if args.json:
        args.json.write_text(json.dumps(out.as_json(), indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
