"""Home Assistant's own virtual environment for the real-HA test, built once and cached.

Home Assistant 2025.4.4 is the newest release that installs on the Python 3.13.0 these machines
have (pyenv); the project's venv may be any Python from 3.11, so HA lives in a venv of its own.
Building it takes minutes (a few hundred MB, some source builds), so the result is kept in
``~/.cache/wyoming-lightning/ha-<version>-<hash>``, keyed by the interpreter and every pinned
requirement below: change a pin and a new venv is built beside the old one.

Only what the integrations under test import is installed: ``homeassistant`` core (which already
carries the pins of ``assist_pipeline``, ``conversation``, ``tts`` and ``ffmpeg``) plus the
Wyoming integration's own ``wyoming`` pin, all resolved against HA's own
``package_constraints.txt`` as HA itself does. The driver runs HA with ``skip_pip``, so a
missing requirement is an import error there, never a download at run time.

A failure to build is an error, never a skip: CI reaches PyPI and has pyenv's 3.13.

Measured on this project's 2-core machines (`python -m tests.deploy.ha_env`, empty pip cache):
the first build takes 2 to 4 minutes (119 s with a light load, 226 s under a load average of 10) and
about 600 MB; later calls find the marker file and return in about a second.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tests.deploy.side_env import Say, cache_root, reuse_or_build, run_step

HA_VERSION: Final = "2025.4.4"

#: The integration manifests' pins in 2025.4.4 (homeassistant/components/*/manifest.json):
#: wyoming for the Wyoming integration; pymicro-vad and pyspeex-noise for assist_pipeline;
#: hassil and home-assistant-intents for conversation; mutagen for tts; ha-ffmpeg for ffmpeg.
#: All but ``wyoming`` are already core requirements of homeassistant; listing them makes the
#: build fail loudly if a pin ever disagrees.
REQUIREMENTS: Final = (
    f"homeassistant=={HA_VERSION}",
    "wyoming==1.5.4",
    "pymicro-vad==1.0.1",
    "pyspeex-noise==1.0.2",
    "hassil==2.2.3",
    "home-assistant-intents==2025.3.28",
    "mutagen==1.47.0",
    "ha-ffmpeg==3.2.2",
)

#: Modules the driver's integrations import, checked once the venv is built.
IMPORT_CHECK: Final = (
    "homeassistant.components.wyoming.stt",
    "homeassistant.components.assist_pipeline",
    "pymicro_vad",
    "pyspeex_noise",
    "hassil",
    "home_assistant_intents",
)

#: Bump when the build steps change, so old caches are not reused.
RECIPE: Final = "1"

PYTHON_ENV: Final = "WYOMING_LIGHTNING_HA_PYTHON"
"""Names the Python 3.13 interpreter to build with, when it is not found by itself."""

INSTALL_TIMEOUT_S: Final = 1800.0
STEP_TIMEOUT_S: Final = 300.0


class HaEnvError(Exception):
    """The environment could not be built; the message says why and where the log is."""


@dataclass(frozen=True)
class HaEnv:
    python: Path
    root: Path
    built: bool
    """True when this call built it; False when a cached one was reused."""
    seconds: float


def find_python313() -> Path:
    """The interpreter HA 2025.4.4 needs: $WYOMING_LIGHTNING_HA_PYTHON, python3.13, or pyenv's."""
    candidates: list[str] = []
    if os.environ.get(PYTHON_ENV):
        candidates.append(os.environ[PYTHON_ENV])
    if found := shutil.which("python3.13"):
        candidates.append(found)
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(glob.glob(f"{pyenv_root}/versions/3.13*/bin/python3"), reverse=True)
    for candidate in candidates:
        try:
            out = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2] == (3, 13))"],
                capture_output=True,
                text=True,
                timeout=30,
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if out.stdout.strip() == "True":
            return Path(candidate)
    raise HaEnvError(
        f"Home Assistant {HA_VERSION} needs Python 3.13 and none was found "
        f"(tried ${PYTHON_ENV}, python3.13 on PATH, {pyenv_root}/versions/3.13*): "
        "install it, e.g. `pyenv install 3.13.0`"
    )


def _key(python: Path) -> str:
    version = subprocess.run(
        [str(python), "-c", "import sys; print(sys.version)"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    blob = json.dumps({"python": version, "requirements": REQUIREMENTS, "recipe": RECIPE})
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _run(cmd: list[str], log: Path, timeout: float) -> None:
    run_step(
        cmd,
        log,
        timeout,
        building="Home Assistant's venv",
        shown=" ".join(cmd[2:]),
        error=HaEnvError,
    )


def _build(python: Path, root: Path) -> None:
    log = root.parent / (root.name + ".log")
    log.write_text(f"building {root} with {python}\n")
    _run([str(python), "-m", "venv", str(root)], log, STEP_TIMEOUT_S)
    venv_python = str(root / "bin" / "python")
    pip = [venv_python, "-m", "pip", "install", "--disable-pip-version-check"]
    # HA first, alone, to read its own constraints file; then everything against it.
    _run([*pip, "--no-deps", REQUIREMENTS[0]], log, STEP_TIMEOUT_S)
    constraints = subprocess.run(
        [
            venv_python,
            "-c",
            "import homeassistant, pathlib; "
            "print(pathlib.Path(homeassistant.__file__).with_name('package_constraints.txt'))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.strip()
    _run([*pip, "-c", constraints, *REQUIREMENTS], log, INSTALL_TIMEOUT_S)
    _run([venv_python, "-c", "; ".join(f"import {m}" for m in IMPORT_CHECK)], log, 120)


def ensure_ha_env(say: Say | None = None) -> HaEnv:
    """Reuse the cached venv for these pins, or build it (holding a lock: runs may share it);
    ``say`` hears when a build starts, which takes minutes."""
    started = time.monotonic()
    python = find_python313()
    root = cache_root() / f"ha-{HA_VERSION}-{_key(python)}"
    built = reuse_or_build(
        root,
        "wyoming-lightning-complete.json",
        json.dumps({"python": str(python), "requirements": REQUIREMENTS}),
        lambda: _build(python, root),
        say,
    )
    return HaEnv(root / "bin" / "python", root, built, round(time.monotonic() - started, 1))


if __name__ == "__main__":
    env = ensure_ha_env()
    print(f"{env.python} ({'built' if env.built else 'cached'} in {env.seconds} s)")
