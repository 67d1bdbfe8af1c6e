"""Commands cut before their last word, and the wait after the speech, by end-of-turn rule:
``python -m benchmarks.pause_set [--quick]``.

Every clip of the pause set (tests/kit/pause_set.py: espeak-ng commands split by 200-900 ms of
room tone after "the", "for", "to" or a hesitation, and the real recordings of
tests/data/human) goes through the bridge's own request machine, segmenter and silero gate into
the emulator's Pulse session core (Whisper tiny.en, interims every :data:`INTERIM_MS` of audio)
as Home Assistant 2026.11 sends it with server endpointing: no audio-stop, audio until the
server ends the turn. Both sides are sans-I/O and wired in this process (benchmarks/pause.py
``through_machine``), so every decision is the one a loopback run makes, without real time.

Rules: ``timer`` is today's ``--endpointing`` (700 ms of silence); ``intents`` adds the turn
judge (turn.py: HA's templates with wildcards), ``intents+names`` the judge with the home's
names as slot lists.

Columns: *cut* = turns ended before the clip's speech end (its last word), of the spliced and
the human clips; *wait* = speech end -> transcript modelled at C = 600 ms, R = 0 as
max(turn end, last finalize + C) - speech end (the service answers C after a finalize;
interims arrive as soon as their audio, which a real service does not quite do), median / p90
over the spliced commands a template matches and over those none does; *WER* of the human
clips against their reference; *judge* = template matches run and their CPU per request.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from tests.kit import pause_set as ps
from tests.kit.wer import wer
from wyoming_lightning.core.turn import TurnJudge, TurnVerdict, load_judge
from wyoming_lightning.emulator.recognizers import create_recognizer
from wyoming_lightning.settings.config import VAD_LAG_MS, Settings

from .harness import Table
from .pause import _FinalsOnly, through_machine

C_MS = 600
INTERIM_MS = 200
NAMES = (
    "kitchen", "kitchen lights", "bedroom", "bedroom fan", "garage door", "front door",
    "living room", "hallway", "hallway light", "thermostat",
)  # fmt: skip
DEFAULTS = Settings()


class _Timed:
    """A judge that counts the CPU time it takes (per request: reset between clips)."""

    def __init__(self, judge: TurnJudge) -> None:
        self.judge = judge
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, text: str) -> TurnVerdict:
        start = time.process_time()
        try:
            return self.judge(text)
        finally:
            self.seconds += time.process_time() - start
            self.calls += 1


def rule_settings(judge: Callable[[str], TurnVerdict] | None) -> dict[str, Any]:
    """The request settings of ``--endpointing`` at the server's defaults, plus ``judge``."""
    return dict(
        endpoint_silence_ms=700,
        no_speech_timeout_s=DEFAULTS.no_speech_timeout_s,
        max_command_s=DEFAULTS.max_command_s,
        turn_judge=judge,
        turn_complete_ms=DEFAULTS.turn_complete_ms,
        turn_unfinished_ms=DEFAULTS.turn_unfinished_ms,
    )


def _p90(values: list[float]) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.0f} / {_p90(values):.0f}"


def run(quick: bool = False) -> Table:
    clips = ps.pause_set()
    if quick:
        clips = [c for c in clips if c.kind == "spliced"][::3] + [
            c for c in clips if c.kind == "human"
        ][::6]
    inner = create_recognizer("whisper")
    recognizer = _FinalsOnly(inner, interims=True)
    recognizer.blocking = False  # offline: interims at a fixed cadence, as a live service sends
    recognizer.interim_interval_ms = INTERIM_MS
    recognizer.warm_up()
    plain = load_judge("en")
    named = load_judge("en", NAMES)
    assert plain is not None and named is not None, "pip install '.[intents]'"
    matched = {c.text for c in clips if plain(c.text) is TurnVerdict.COMPLETE}
    rules: list[tuple[str, TurnJudge | None]] = [
        ("timer", None),
        ("intents", plain),
        ("intents+names", named),
    ]
    table = Table(
        "pause_set",
        f"End of turn on the pause set ({len(clips)} clips), C = {C_MS} ms, R = 0",
        [
            "rule",
            "cut spliced",
            "cut human",
            "wait matched ms (med / p90)",
            "wait other ms",
            "WER human %",
            "judge calls/req",
            "judge CPU ms/req (mean / max)",
        ],
    )
    for name, judge in rules:
        timed = _Timed(judge) if judge is not None else None
        cut = {"spliced": 0, "human": 0}
        total = {"spliced": 0, "human": 0}
        waits: dict[bool, list[float]] = {True: [], False: []}
        pairs: list[tuple[str, str]] = []
        cpu: list[float] = []
        calls: list[int] = []
        cut_names: list[str] = []
        for clip in clips:
            if timed is not None:
                timed.seconds, timed.calls = 0.0, 0
            outcome = through_machine(
                clip.pcm,
                recognizer,
                DEFAULTS.finalize_after_ms,
                re_recognize=False,
                vad_lag_ms=VAD_LAG_MS["silero"],
                settings=rule_settings(timed),
                audio_stop=False,
            )
            ended = outcome.turn_ended_s
            total[clip.kind] += 1
            if ended is not None and ended < clip.speech_end_s:
                cut[clip.kind] += 1
                cut_names.append(clip.name)
            if clip.kind == "human":
                pairs.append((clip.text, outcome.text))
            elif ended is not None:
                answered = max(ended, max(outcome.finalizes_at_s, default=ended) + C_MS / 1000)
                waits[clip.text in matched].append(1000 * (answered - clip.speech_end_s))
            if timed is not None:
                cpu.append(1000 * timed.seconds)
                calls.append(timed.calls)
        table.add(
            [
                name,
                f"{cut['spliced']}/{total['spliced']}",
                f"{cut['human']}/{total['human']}",
                _cell(waits[True]),
                _cell(waits[False]),
                f"{100 * wer(pairs):.1f}" if pairs else "-",
                f"{statistics.mean(calls):.1f}" if calls else "-",
                f"{statistics.mean(cpu):.1f} / {max(cpu):.1f}" if cpu else "-",
            ],
            rule=name,
            cut=cut,
            total=total,
            cut_clips=cut_names,
            waits_ms={"matched": waits[True], "other": waits[False]},
            judge_cpu_ms=cpu,
        )
        if cut_names:
            table.notes.append(f"{name}: cut {', '.join(cut_names)}")
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a third of the clips")
    args = parser.parse_args()
    table = run(args.quick)
    print(table.render())
    for note in table.notes:
        print(note)


if __name__ == "__main__":
    main()
