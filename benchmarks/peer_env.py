"""The peers' own virtual environment: wyoming-openai and wyoming-faster-whisper from PyPI.

Their ``wyoming`` pins may differ from ours, so they never go into the project's environment:
one venv is built from the package registry under the cache root the tests use
(``tests/side_env.py``), named by a hash of what goes in, and reused by later runs.

Two things are not plain ``pip install``, and the table says so:

- wyoming-openai 0.8 declares Python >= 3.12, and the machine has 3.11. Its code needs 3.12
  only for two PEP 695 generic signatures (``def f[T](...)``); they are rewritten to plain
  signatures under postponed annotations, which changes no behaviour;
- the binary wheels the peers share with us (PyAV, CTranslate2, ONNX Runtime, tokenizers,
  NumPy) are pinned to the versions already installed here, because the newest PyAV has no
  wheel for this Python and would be compiled against FFmpeg headers the machine lacks.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.deploy.side_env import Say, cache_root, reuse_or_build

PEERS = ("wyoming-openai==0.8.0", "wyoming-faster-whisper==3.8.1")
SHARED_WHEELS = ("av", "ctranslate2", "onnxruntime", "tokenizers", "numpy")
PORT_VERSION = "1"  # bump when the 3.11 port below changes
_GENERIC_DEF = re.compile(r"^(\s*def \w+)\[[^\]]*\]\(", re.MULTILINE)
_PORTED_FILES = ("wyoming_openai/utilities.py", "wyoming_openai/handler.py")


@dataclass(frozen=True)
class PeerEnv:
    python: Path
    versions: dict[str, str]
    notes: tuple[str, ...]


def requirements() -> list[str]:
    pins = []
    for name in SHARED_WHEELS:
        try:
            pins.append(f"{name}=={importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            continue
    return [*PEERS, *pins]


def _site_packages(venv: Path) -> Path:
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    return venv / "lib" / python / "site-packages"


def port_source(text: str) -> str:
    """One module's source with its PEP 695 signatures made plain (the same text if none)."""
    ported = _GENERIC_DEF.sub(r"\1(", text)
    if ported == text:
        return text
    # Postponed annotations: the type parameters named in them are never evaluated.
    return "from __future__ import annotations\n" + ported


def port_to_this_python(site_packages: Path) -> list[str]:
    """Rewrite wyoming-openai's PEP 695 signatures when this Python predates them."""
    if sys.version_info >= (3, 12):
        return []
    changed = []
    for relative in _PORTED_FILES:
        path = site_packages / relative
        text = path.read_text(encoding="utf-8")
        ported = port_source(text)
        if ported != text:
            path.write_text(ported, encoding="utf-8")
            changed.append(relative)
    return changed


def _say_to_stderr(line: str) -> None:
    print(f"peers' venv: {line}", file=sys.stderr, flush=True)


def _build(venv: Path, reqs: list[str], say: Say) -> None:
    log = venv.parent / (venv.name + ".log")
    started = time.monotonic()

    def step(what: str) -> None:
        say(f"[{time.monotonic() - started:4.0f} s] {what} (log: {log})")

    with log.open("w") as out:
        step(f"python -m venv {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=out)
        step(f"pip install {' '.join(reqs)}, a few minutes the first time")
        subprocess.run(
            [
                str(venv / "bin" / "python"),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--ignore-requires-python",  # see the module docstring
                *reqs,
            ],
            check=True,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1200,
        )
    port_to_this_python(_site_packages(venv))
    step("ready")


def peer_env(say: Say = _say_to_stderr) -> PeerEnv:
    """Build (once) or reuse the peers' venv; raises RuntimeError with a one-line reason.
    ``say`` hears each build step (a first build takes minutes and must not be silent)."""
    reqs = requirements()
    stamp = "\n".join([sys.version, PORT_VERSION, *reqs])
    digest = hashlib.sha256(stamp.encode()).hexdigest()[:12]
    venv = cache_root() / f"peers-{digest}"
    try:
        reuse_or_build(venv, ".ready", stamp, lambda: _build(venv, reqs, say), say)
    except (OSError, subprocess.SubprocessError) as err:
        raise RuntimeError(
            f"could not build the peers' venv ({err}); see {venv.parent / (venv.name + '.log')}"
        ) from err
    python = venv / "bin" / "python"
    versions = {}
    for name in ("wyoming-openai", "wyoming-faster-whisper", "wyoming", "faster-whisper"):
        done = subprocess.run(
            [str(python), "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
            capture_output=True,
            text=True,
            check=False,
        )
        versions[name] = done.stdout.strip() or "?"
    notes = []
    if sys.version_info < (3, 12):
        notes.append(
            f"wyoming-openai {versions['wyoming-openai']} wants Python >= 3.12; run on "
            f"{sys.version_info.major}.{sys.version_info.minor} with its two PEP 695 generic "
            "signatures rewritten as plain ones (benchmarks/peer_env.py), nothing else changed"
        )
    return PeerEnv(python, versions, tuple(notes))
