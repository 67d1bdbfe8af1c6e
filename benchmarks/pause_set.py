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
names as slot lists; ``@200``: utterances settled at 200 ms of pause unless the words are the
start of a command (``--turn-finalize-ms``; without it at ``--finalize-after-ms``, 550);
``+re-recognize``: a split command re-sent whole when speech resumes; ``+smart-turn``: the
acoustic model (smart_turn.py) asked at a pause whose words no template decides.

Time is the audio clock. The service's interims arrive as soon as their audio (every
``--interim-ms``, R = 0), its final C = 600 ms of audio after the finalize that asks for it
(``through_machine(settle_ms=C)``), so the turn rule sees the final's words when a live one
would. Columns: *cut* = turns ended before the clip's speech end (its last word), of the
spliced clips, of the human clips whose pauses are within the set's 200-900 ms, and of those
pausing longer (1.1-3.3 s, counted apart: tests/kit/pause_set.py ``RANGE_MS``); *wait* = speech
end -> transcript, median / p90, over the commands a template matches and over the others
(spliced and human); *WER* of the human clips against their reference, the same two groups
(straight to the service in the title: each clip in one session); *billed* =
audio sent over the speech (from the clip's lead to its last word, inner pauses included), and
how many clips went over 1.3 x speech + 0.5 s; *judge* and *smart-turn*: runs and CPU per
request.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from tests.kit import pause_set as ps
from tests.kit.wer import wer
from wyoming_lightning.core.segmenter import billed_bound_s
from wyoming_lightning.core.smart_turn import load_acoustic
from wyoming_lightning.core.turn import TurnJudge, TurnVerdict, load_judge
from wyoming_lightning.emulator.recognizers import create_recognizer
from wyoming_lightning.settings.config import VAD_LAG_MS, Settings

from .cached_recognizer import CachedRecognizer
from .harness import Table
from .pause import _core, through_machine

C_MS = 600
INTERIM_MS = 200
NAMES = (
    "kitchen", "kitchen lights", "bedroom", "bedroom fan", "garage door", "front door",
    "living room", "hallway", "hallway light", "thermostat",
)  # fmt: skip
DEFAULTS = Settings()
In = TypeVar("In")
Out = TypeVar("Out")


class _Timed(Generic[In, Out]):
    """A judge (of words or of audio) that counts its runs and the CPU time they take (per
    request: reset between clips)."""

    def __init__(self, inner: Callable[[In], Out]) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.calls = 0

    def __call__(self, said: In) -> Out:
        start = time.process_time()
        try:
            return self.inner(said)
        finally:
            self.seconds += time.process_time() - start
            self.calls += 1


def rule_settings(
    judge: Callable[[str], TurnVerdict] | None,
    turn_finalize_ms: int = 0,
    acoustic: Callable[[bytes], float] | None = None,
) -> dict[str, Any]:
    """The request settings of ``--endpointing`` at the server's defaults, plus ``judge``
    settling utterances at ``turn_finalize_ms`` of pause (0: at ``--finalize-after-ms``) and
    the ``acoustic`` model."""
    return dict(
        turn_acoustic=acoustic,
        endpoint_silence_ms=700,
        no_speech_timeout_s=DEFAULTS.no_speech_timeout_s,
        max_command_s=DEFAULTS.max_command_s,
        turn_judge=judge,
        turn_complete_ms=DEFAULTS.turn_complete_ms,
        turn_unfinished_ms=DEFAULTS.turn_unfinished_ms,
        turn_finalize_ms=turn_finalize_ms,
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


def straight(pcm: bytes, recognizer: CachedRecognizer) -> str:
    """The whole clip in one session, then its end: what the service makes of it alone (its
    finals come during the audio too, after a long enough silence, as well as at the end)."""
    core = _core(recognizer, 0)
    replies = [core.feed_audio(pcm[i : i + 3200]) for i in range(0, len(pcm), 3200)]
    replies.append(core.finish())
    finals = [m for r in replies for m in r.messages if m.get("is_final")]
    return " ".join(t for t in (str(m.get("transcript", "")) for m in finals) if t)


def run(quick: bool = False, interim_ms: int = INTERIM_MS, only: str | None = None) -> Table:
    clips = ps.pause_set()
    if quick:
        clips = [c for c in clips if c.kind == "spliced"][::3] + [
            c for c in clips if c.kind == "human"
        ][::6]
    inner = create_recognizer("whisper")
    recognizer = CachedRecognizer(inner, interims=True)
    recognizer.blocking = False  # offline: interims at a fixed cadence, as a live service sends
    recognizer.interim_interval_ms = interim_ms
    recognizer.warm_up()
    plain = load_judge("en")
    named = load_judge("en", NAMES)
    assert plain is not None and named is not None, "pip install '.[intents]'"
    matched = {c.text for c in clips if plain(c.text) is TurnVerdict.COMPLETE}
    early = DEFAULTS.turn_finalize_ms
    model = load_acoustic()
    rules: list[tuple[str, TurnJudge | None, int, bool, bool]] = [
        ("timer", None, 0, False, False),
        ("intents", plain, 0, False, False),
        ("intents+names", named, 0, False, False),
        (f"intents@{early}", plain, early, False, False),
        (f"intents@{early}+re-recognize", plain, early, False, True),
        (f"intents+names@{early}", named, early, False, False),
    ]
    if model is not None:
        rules.append((f"intents@{early}+smart-turn", plain, early, True, False))
    if only is not None:
        rules = [r for r in rules if r[0] in only.split(",")]
    humans = [c for c in clips if c.kind == "human"]
    straight_text = {c.name: straight(c.pcm, recognizer) for c in humans}

    def _wer(pairs: list[tuple[str, str]]) -> str:
        return f"{100 * wer(pairs):.1f}" if pairs else "-"

    straight_wer = " / ".join(
        _wer([(c.text, straight_text[c.name]) for c in humans if c.in_range is group])
        for group in (True, False)
    )
    table = Table(
        "pause_set",
        f"End of turn on the pause set ({len(clips)} clips), C = {C_MS} ms, R = 0, interims "
        f"every {interim_ms} ms of audio; WER straight to the service {straight_wer} % "
        f"(human clips, pauses up to {ps.RANGE_MS} ms / longer)",
        [
            "rule",
            "cut spliced",
            f"cut human (pauses <= {ps.RANGE_MS} ms)",
            "cut human (longer)",
            "wait matched ms (med / p90)",
            "wait unmatched ms",
            "WER human % (in range / longer)",
            "billed s / speech s (over bound)",
            "judge calls/req",
            "judge CPU ms/req (mean / max)",
            "smart-turn runs/req, CPU ms/req (mean / max)",
        ],
    )
    for name, judge, finalize_ms, smart, re_recognize in rules:
        timed = _Timed(judge) if judge is not None else None
        heard = _Timed(model) if smart and model is not None else None
        model_cpu: list[float] = []
        model_runs: list[int] = []
        cut = {"spliced": 0, "human": 0, "human, longer pauses": 0}
        total = dict.fromkeys(cut, 0)
        waits: dict[bool, list[float]] = {True: [], False: []}
        pairs: dict[bool, list[tuple[str, str]]] = {True: [], False: []}
        per_clip: list[dict[str, Any]] = []
        cpu: list[float] = []
        calls: list[int] = []
        cut_names: list[str] = []
        billed = speech = 0.0
        over: list[str] = []
        for clip in clips:
            if timed is not None:
                timed.seconds, timed.calls = 0.0, 0
            if heard is not None:
                heard.seconds, heard.calls = 0.0, 0
            outcome = through_machine(
                clip.pcm,
                recognizer,
                DEFAULTS.finalize_after_ms,
                re_recognize=re_recognize,
                vad_lag_ms=VAD_LAG_MS["silero"],
                settings=rule_settings(timed, finalize_ms, heard),
                audio_stop=False,
                settle_ms=C_MS,
            )
            ended = outcome.turn_ended_s
            group = clip.kind if clip.in_range else f"{clip.kind}, longer pauses"
            total[group] += 1
            was_cut = ended is not None and ended < clip.speech_end_s
            if was_cut:
                cut[group] += 1
                cut_names.append(clip.name)
            if clip.kind == "human":
                pairs[clip.in_range].append((clip.text, outcome.text))
            per_clip.append(
                dict(
                    clip=clip.name,
                    group=group,
                    pause_ms=clip.pause_ms,
                    speech_end_s=clip.speech_end_s,
                    ended_s=ended,
                    cut=was_cut,
                    text=outcome.text,
                    straight=straight_text.get(clip.name),
                )
            )
            if outcome.answered_s is not None:
                waits[clip.text in matched].append(1000 * (outcome.answered_s - clip.speech_end_s))
            said_s = clip.speech_end_s - ps.LEAD_S
            billed += outcome.sent_s
            speech += said_s
            if outcome.sent_s > billed_bound_s(said_s):
                over.append(f"{clip.name} {outcome.sent_s:.2f}/{said_s:.2f} s")
            if timed is not None:
                cpu.append(1000 * timed.seconds)
                calls.append(timed.calls)
            if heard is not None:
                model_cpu.append(1000 * heard.seconds)
                model_runs.append(heard.calls)
        table.add(
            [
                name,
                f"{cut['spliced']}/{total['spliced']}",
                f"{cut['human']}/{total['human']}",
                f"{cut['human, longer pauses']}/{total['human, longer pauses']}",
                _cell(waits[True]),
                _cell(waits[False]),
                f"{_wer(pairs[True])} / {_wer(pairs[False])}",
                f"{billed:.1f} / {speech:.1f} ({len(over)})",
                f"{statistics.mean(calls):.1f}" if calls else "-",
                f"{statistics.mean(cpu):.1f} / {max(cpu):.1f}" if cpu else "-",
                f"{statistics.mean(model_runs):.2f}, {statistics.mean(model_cpu):.0f} / "
                f"{max(model_cpu):.0f}"
                if model_cpu
                else "-",
            ],
            rule=name,
            cut=cut,
            total=total,
            cut_clips=cut_names,
            waits_ms={"matched": waits[True], "other": waits[False]},
            judge_cpu_ms=cpu,
            acoustic_cpu_ms=model_cpu,
            acoustic_runs=model_runs,
            billed_s=billed,
            speech_s=speech,
            over_bound=over,
            clips=per_clip,
        )
        if cut_names:
            table.notes.append(f"{name}: cut {', '.join(cut_names)}")
        if over:
            table.notes.append(f"{name}: billed over 1.3 x speech + 0.5 s: {', '.join(over)}")
        print(f"{name}: {table.rows[-1]}", file=sys.stderr, flush=True)  # progress
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a third of the clips")
    parser.add_argument(
        "--interim-ms",
        type=int,
        default=INTERIM_MS,
        help="audio between interims (the emulator's Whisper sends one about every 1000 ms)",
    )
    parser.add_argument("--rules", help="only these rules (comma-separated names)")
    parser.add_argument(
        "--json", type=Path, help="also write the table, each clip's outcome included, here"
    )
    args = parser.parse_args()
    table = run(args.quick, args.interim_ms, args.rules)
    print(table.render())
    for note in table.notes:
        print(note)
    if args.json:
        args.json.write_text(json.dumps(table.as_json(), indent=1, default=str), encoding="utf-8")


if __name__ == "__main__":
    main()
