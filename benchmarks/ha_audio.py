"""A/B: the real-speech set as Home Assistant would send it, with its gain and noise processing
on and off, read by the emulator's Whisper recognizer.

    python -m benchmarks.ha_audio [--gain 31] [--noise 2] [--json out.json]

Home Assistant's own ``assist_pipeline`` audio enhancer (``MicroVadSpeexEnhancer``: pyspeex-noise's
speex processor for automatic gain and noise suppression) runs for real, from Home Assistant's
own package in the side environment ``tests/deploy/ha_env.py`` builds (cached), over each clip in
its 10 ms chunks, as the pipeline feeds it. ``--gain`` is the pipeline's ``auto_gain_dbfs``
(0-31) and ``--noise`` its ``noise_suppression_level`` (0-4). The same Whisper tiny.en the
emulator serves then reads the untouched and the processed audio of every clip, whole; the
table gives the WER of each, for short commands and long dictation, and how many clips each
way reads better. The question it answers: should the bridge tell Home Assistant it prefers
untouched audio (``prefers_auto_gain_enabled``/``prefers_noise_reduction_enabled`` false)?
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Sequence

from tests.deploy.ha_env import ensure_ha_env
from tests.kit import human_speech as hs
from tests.kit.wer import edit_distance, normalise_words, wer

from .harness import Table

#: Run inside Home Assistant's environment: stdin PCM (16 kHz mono s16le) through HA's enhancer,
#: chunk by chunk as the pipeline does, to stdout. Calls HA's class; copies none of its code.
DRIVER = """
import sys
from homeassistant.components.assist_pipeline.audio_enhancer import MicroVadSpeexEnhancer
from homeassistant.components.assist_pipeline.const import BYTES_PER_CHUNK
gain, noise = int(sys.argv[1]), int(sys.argv[2])
enhancer = MicroVadSpeexEnhancer(gain, noise, False)
pcm = sys.stdin.buffer.read()
out = bytearray()
for i in range(0, len(pcm) - len(pcm) % BYTES_PER_CHUNK, BYTES_PER_CHUNK):
    out += enhancer.enhance_chunk(pcm[i : i + BYTES_PER_CHUNK], i // 32).audio
sys.stdout.buffer.write(bytes(out))
"""


def enhance(python: str, pcm: bytes, gain: int, noise: int) -> bytes:
    done = subprocess.run(
        [python, "-c", DRIVER, str(gain), str(noise)],
        input=pcm,
        capture_output=True,
        check=True,
        timeout=600,
    )
    return done.stdout


def run(gain: int, noise: int) -> Table:
    from wyoming_lightning.emulator import create_recognizer

    env = ensure_ha_env()
    recognizer = create_recognizer("whisper")
    clips = hs.load_human_speech()
    table = Table(
        "ha_audio",
        f"Home Assistant's audio enhancer (auto_gain_dbfs {gain}, noise_suppression_level "
        f"{noise}) on and off: Whisper tiny.en WER on the real-speech set ({len(clips)} clips)",
        ["clips", "n", "WER untouched", "WER processed", "better untouched", "better processed"],
    )
    rows: dict[str, list[tuple[str, str, str]]] = {"short": [], "long": []}
    for clip in clips:
        processed = enhance(str(env.python), clip.pcm, gain, noise)
        plain = " ".join(w.text for w in recognizer.transcribe(clip.pcm, "en"))
        treated = " ".join(w.text for w in recognizer.transcribe(processed, "en"))
        rows["long" if clip.is_long else "short"].append((clip.text, plain, treated))
    for kind, found in (*rows.items(), ("all", rows["short"] + rows["long"])):
        if not found:
            continue
        off = wer([(ref, plain) for ref, plain, _ in found])
        on = wer([(ref, treated) for ref, _, treated in found])
        edits = [
            (
                edit_distance(normalise_words(ref), normalise_words(plain)),
                edit_distance(normalise_words(ref), normalise_words(treated)),
            )
            for ref, plain, treated in found
        ]
        better_off = sum(a < b for a, b in edits)
        better_on = sum(b < a for a, b in edits)
        table.add(
            [kind, len(found), f"{off:.4f}", f"{on:.4f}", better_off, better_on],
            clips=kind,
            n=len(found),
            wer_untouched=off,
            wer_processed=on,
            better_untouched=better_off,
            better_processed=better_on,
            gain=gain,
            noise=noise,
        )
    return table


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ha_audio", description=__doc__)
    parser.add_argument("--gain", type=int, default=31, help="auto_gain_dbfs, 0-31")
    parser.add_argument("--noise", type=int, default=2, help="noise_suppression_level, 0-4")
    parser.add_argument("--json", help="also write the table here")
    args = parser.parse_args(argv)
    table = run(args.gain, args.noise)
    print(table.render())
    if args.json:
        with open(args.json, "w") as out:
            json.dump(table.as_json(), out, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
