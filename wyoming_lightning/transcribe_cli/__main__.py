"""The command ``wyoming-lightning-client``, also ``python -m wyoming_lightning.transcribe_cli``."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from wyoming_lightning.settings.cli import run_main
from wyoming_lightning.transcribe_cli.args import DEFAULT_MIC_SECONDS, build_parser
from wyoming_lightning.transcribe_cli.exchange import transcribe
from wyoming_lightning.transcribe_cli.mic import (
    EndOfSpeech,
    Microphone,
    default_gate,
    sounddevice_microphone,
    until_end_of_speech,
)
from wyoming_lightning.transcribe_cli.progress import Progress
from wyoming_lightning.transcribe_cli.status import (
    EXIT_EMPTY,
    EXIT_OK,
    EXIT_SERVER,
    PROG,
    ClientError,
)
from wyoming_lightning.transcribe_cli.wav import WavAudio, blocks_of, paced, read_wav


async def amain(
    argv: Sequence[str] | None = None,
    *,
    microphone: Microphone = sounddevice_microphone,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
) -> int:
    """The whole command; ``microphone`` is the seam tests use to play recorded speech."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.mic == (args.file is not None):
        parser.error("give a WAV file or --mic (one of them)")
    if args.chunk_ms <= 0 or args.timeout <= 0 or args.end_silence <= 0:
        parser.error("--chunk-ms, --timeout and --end-silence must be positive")
    progress = Progress(err, enabled=not args.quiet)
    try:
        if args.mic:
            device = int(args.device) if str(args.device).isdigit() else args.device
            seconds = DEFAULT_MIC_SECONDS if args.seconds is None else args.seconds
            async with microphone(device) as (fmt, recording):
                endpoint = EndOfSpeech(fmt, default_gate(args.vad, args.end_silence), seconds)
                progress.note(f"listening ({fmt.rate} Hz); speak now, stop talking to finish")
                outcome = await transcribe(
                    args.uri,
                    fmt,
                    until_end_of_speech(recording, endpoint),
                    language=args.language,
                    progress=progress,
                    timeout_s=args.timeout,
                    describe_stop=lambda: endpoint.reason or "",
                )
        else:
            audio = read_wav(args.file)
            if args.seconds is not None:
                keep = int(args.seconds * audio.fmt.rate) * audio.fmt.frame_bytes
                audio = WavAudio(audio.fmt, audio.pcm[:keep])
            progress.note(
                f"{args.file}: {audio.seconds:.2f} s, {audio.fmt.rate} Hz, "
                f"{audio.fmt.width * 8}-bit, {audio.fmt.channels} channel(s)"
            )
            outcome = await transcribe(
                args.uri,
                audio.fmt,
                paced(blocks_of(audio.pcm, audio.fmt, args.chunk_ms), audio.fmt, args.realtime),
                language=args.language,
                progress=progress,
                timeout_s=args.timeout,
            )
    except ClientError as error:
        print(f"{PROG}: {error}", file=err)
        return error.code
    if outcome.error_text is not None:
        code = f" [{outcome.error_code}]" if outcome.error_code else ""
        print(f"{PROG}: server error{code}: {outcome.error_text}", file=err)
        return EXIT_SERVER
    if outcome.text is None:
        print(f"{PROG}: the server closed the connection without a transcript", file=err)
        return EXIT_SERVER
    if not outcome.text.strip():
        print(
            f"{PROG}: no text recognized: the server answered with an empty transcript "
            "(a server that gates audio with a voice-activity detector heard no speech)",
            file=err,
        )
        return EXIT_EMPTY
    language = f" ({outcome.language})" if outcome.language else ""
    progress.finish(f"transcript{language}")
    print(outcome.text, file=out)
    out.flush()
    return EXIT_OK


def run() -> None:
    run_main(PROG, lambda: asyncio.run(amain()))


if __name__ == "__main__":
    run()
