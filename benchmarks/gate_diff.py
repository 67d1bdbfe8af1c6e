"""Per clip, what the VAD gate does to real speech: ``python -m benchmarks.gate_diff``.

For each recording of tests/data/human/ (padded as Home Assistant sends it) this prints where
the text through the gate differs from the same recognizer on the bare file, with the cause
in sight: the gate's segments, the utterances the request cuts from them (a pause of
``--finalize-after-ms`` settles one early, as ``request.py`` does), what each utterance reads,
and how much audio went out per second of speech. Then the totals (WER straight vs gated per
length class, audio sent per second of speech, the issue-14 budget 1.3 x speech + 0.5 s).

It runs offline and faster than real time: the gate and the utterance rule are fed the audio
in 20 ms chunks (the gate's events depend only on the audio), and the emulator's Whisper
recognizer reads each utterance as the emulator would settle it. It is a tool to find and
explain differences; the bar itself is measured through the real bridge by
tests/test_human_speech.py and ``python -m benchmarks speech``.

Usage::

    python -m benchmarks.gate_diff [--vad silero|webrtc] [--only short|long]
        [--set KEY=VALUE ...]   # GateConfig fields, e.g. --set hangover_ms=800
        [--finalize-after-ms MS]   # -1: no early finalize
        [--dictation-after S]   # the server's dictation rule; 0: off
        [--every N] [--every-long N]   # every N-th clip, as tests/test_human_speech.py samples
        [--all]   # print the clips that do not differ too
        [--shifts N]   # pool WER over N placements of each clip (50 ms of lead silence apart)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from tests.kit import human_speech as hs
from tests.kit.wer import edit_distance, normalise_words, wer
from wyoming_lightning.core.segmenter import billed_bound_s
from wyoming_lightning.core.vad import GateConfig, SpeechAudio, SpeechEnd, SpeechStart, VadGate
from wyoming_lightning.core.vad.engines import create_engine
from wyoming_lightning.emulator import create_recognizer
from wyoming_lightning.emulator.audio import dbfs
from wyoming_lightning.settings.config import VAD_LAG_MS, Settings

CHUNK_BYTES = 2 * 320  # 20 ms, as a satellite sends
BYTES_PER_S = 2 * hs.SAMPLE_RATE
SERVER_DEFAULTS = Settings()
#: The emulator settles a segment only if some 20 ms frame reaches this level.
VOICED_DBFS = -45.0


@dataclass
class Utterance:
    start_s: float
    audio: bytearray = field(default_factory=bytearray)
    text: str = ""


@dataclass
class Gated:
    """One clip through the gate and the request's utterance rule."""

    segments: list[tuple[float, float]]
    utterances: list[Utterance]
    sent_s: float
    speech_s: float


def gate_clip(
    pcm: bytes, gate: VadGate, finalize_after_ms: int | None, dictation_after_s: float | None
) -> Gated:
    """Mirror of the request's use of gate events (request.py ``_handle_gate_events`` and
    ``_finalize_on_pause``): an utterance closes at a pause of ``finalize_after_ms``; the
    audio after it is held and either opens the next utterance when speech resumes before the
    gate closes, or is dropped as silence when it closes. Once ``dictation_after_s`` of audio
    has been sent, no pause closes an utterance. Not mirrored: ``--pause-tail-ms`` (the request
    holds a pause back from its tail on, before the finalize), so the audio figure here counts
    the pause up to F; the request machine's own text and audio are ``python -m benchmarks
    pause``."""
    gate.reset()
    utterances: list[Utterance] = []
    segments: list[tuple[float, float]] = []
    current: Utterance | None = None
    held: bytearray | None = None
    dropped = 0
    at = 0
    streamed = 0
    dictation_bytes = math.inf if dictation_after_s is None else dictation_after_s * BYTES_PER_S

    def speech(data: bytes) -> None:
        nonlocal current, streamed
        streamed += len(data)
        if current is None:
            current = Utterance(start_s=at / BYTES_PER_S)
            utterances.append(current)
        current.audio += data

    def handle(events: Sequence[object]) -> None:
        nonlocal current, held, dropped
        for event in events:
            if isinstance(event, SpeechStart):
                segments.append((event.start_sample / hs.SAMPLE_RATE, -1.0))
                speech(event.pre_roll)
            elif isinstance(event, SpeechAudio):
                if held is not None:
                    held += event.data
                else:
                    speech(event.data)
            elif isinstance(event, SpeechEnd):
                segments[-1] = (segments[-1][0], at / BYTES_PER_S)
                if held is not None:
                    dropped += len(held)
                    held = None
                elif streamed < dictation_bytes:
                    current = None

    for offset in range(0, len(pcm), CHUNK_BYTES):
        chunk = pcm[offset : offset + CHUNK_BYTES]
        at = offset + len(chunk)
        handle(gate.process(chunk))
        silence = gate.silence_ms
        if finalize_after_ms is None or silence is None:
            continue
        if held is not None:
            if silence < finalize_after_ms:
                data, held = bytes(held), None
                speech(data)
        elif (
            current is not None
            and gate.is_open
            and silence >= finalize_after_ms
            and streamed < dictation_bytes
        ):
            held = bytearray()
            current = None
    handle(gate.flush())
    sent = gate.audio_out_ms / 1000 - dropped / BYTES_PER_S
    return Gated(segments, utterances, sent, gate.speech_ms / 1000)


def _voiced(audio: bytes) -> bool:
    step = CHUNK_BYTES
    return any(dbfs(audio[i : i + step]) >= VOICED_DBFS for i in range(0, len(audio), step))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gate_diff")
    parser.add_argument("--vad", default="silero", choices=("silero", "webrtc"))
    parser.add_argument("--only", choices=("short", "long"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument(
        "--finalize-after-ms",
        type=int,
        help="pause in judged gate frames that settles an utterance; -1: never early (default: "
        "the server's --finalize-after-ms less the VAD's lag, which it counts as pause)",
    )
    parser.add_argument(
        "--dictation-after",
        type=float,
        default=SERVER_DEFAULTS.dictation_after_s,
        help="audio sent after which pauses no longer split (0: never; default: the server's)",
    )
    parser.add_argument("--every", type=int, default=1, help="every N-th clip of each length")
    parser.add_argument("--every-long", type=int, help="every N-th long clip (default: --every)")
    parser.add_argument("--all", action="store_true", help="print every clip")
    parser.add_argument(
        "--shifts",
        type=int,
        default=1,
        choices=range(1, len(hs.SHIFTS_S) + 1),
        help="placements of each clip (50 ms of lead silence apart) the WER is pooled over",
    )
    args = parser.parse_args()

    overrides: dict[str, object] = {}
    fields = {f.name: f for f in dataclasses.fields(GateConfig)}
    for item in args.set:
        key, _, value = item.partition("=")
        if key not in fields:
            parser.error(f"unknown gate setting {key!r}; one of {', '.join(fields)}")
        overrides[key] = None if value == "None" else (float(value) if "." in value else int(value))
    config = GateConfig(**overrides)  # type: ignore[arg-type]
    gate = VadGate(create_engine(args.vad), config)
    if args.finalize_after_ms is None:
        args.finalize_after_ms = SERVER_DEFAULTS.finalize_after_ms - VAD_LAG_MS.get(args.vad, 0)
    finalize_ms = None if args.finalize_after_ms < 0 else args.finalize_after_ms
    recognizer = create_recognizer("whisper")

    every = args.every
    clips = [c for c in hs.load_human_speech() if not c.is_long][::every]
    clips += [c for c in hs.load_human_speech() if c.is_long][:: args.every_long or every]
    if args.only:
        clips = [c for c in clips if c.is_long == (args.only == "long")]
    print(
        f"gate: --vad {args.vad} {config}; finalize after {args.finalize_after_ms} ms; "
        f"dictation after {args.dictation_after:g} s"
    )
    pairs: dict[str, list[tuple[str, str, str]]] = {"short": [], "long": []}
    sent_s = speech_s = budget_s = 0.0
    shifts = hs.SHIFTS_S[: args.shifts]
    for clip, shift in ((c, s) for c in clips for s in shifts):
        straight = " ".join(w.text for w in recognizer.transcribe(hs.lead(clip.pcm, shift), "en"))
        sent = hs.as_home_assistant_sends(clip.pcm, hs.HA_LEAD_S + shift)
        gated = gate_clip(sent, gate, finalize_ms, args.dictation_after or None)
        for utterance in gated.utterances:
            audio = bytes(utterance.audio)
            if _voiced(audio):
                utterance.text = " ".join(w.text for w in recognizer.transcribe(audio, "en"))
        bridged = " ".join(u.text for u in gated.utterances if u.text)
        pairs["long" if clip.is_long else "short"].append((clip.text, straight, bridged))
        sent_s += gated.sent_s
        speech_s += gated.speech_s
        budget_s += billed_bound_s(gated.speech_s)
        ref = normalise_words(clip.text)
        e_straight = edit_distance(ref, normalise_words(straight))
        e_bridge = edit_distance(ref, normalise_words(bridged))
        if not args.all and normalise_words(straight) == normalise_words(bridged):
            continue
        placed = f", placed {1000 * shift:.0f} ms later" if shift else ""
        print(
            f"\n== {clip.name} ({clip.seconds:.1f} s, {len(ref)} words{placed}): errors "
            f"straight {e_straight}, gated {e_bridge} ({e_bridge - e_straight:+d}); sent "
            f"{gated.sent_s:.2f} s for {gated.speech_s:.2f} s of speech"
        )
        print(f"   reference: {clip.text}")
        print(f"   straight : {straight}")
        print(f"   gated    : {bridged}")
        print("   segments : " + ", ".join(f"{a:.2f}-{b:.2f}" for a, b in gated.segments))
        for u in gated.utterances:
            print(
                f"     utterance at {u.start_s:.2f} s "
                f"({len(u.audio) / BYTES_PER_S:.2f} s): {u.text!r}"
            )
    print()
    for part, rows in pairs.items():
        if rows:
            w_straight = 100 * wer((r, s) for r, s, _ in rows)
            w_bridge = 100 * wer((r, b) for r, _, b in rows)
            print(
                f"{part} ({len(rows) // len(shifts)} clips x {len(shifts)} placements): WER "
                f"straight {w_straight:.1f} %, gated "
                f"{w_bridge:.1f} % ({w_bridge - w_straight:+.1f} points)"
            )
    rows = pairs["short"] + pairs["long"]
    if pairs["short"] and pairs["long"]:
        w_straight = 100 * wer((r, s) for r, s, _ in rows)
        w_bridge = 100 * wer((r, b) for r, _, b in rows)
        print(
            f"all ({len(rows) // len(shifts)} clips): WER straight {w_straight:.1f} %, "
            f"gated {w_bridge:.1f} %"
        )
    print(
        f"audio sent {sent_s:.1f} s for {speech_s:.1f} s judged speech "
        f"({sent_s / max(speech_s, 1e-9):.2f} s per speech s; budget 1.3 x speech + 0.5 s per "
        f"request: {budget_s:.1f} s)"
    )


if __name__ == "__main__":
    main()
