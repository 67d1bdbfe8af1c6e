"""Home Assistant 2026.11 in a Debian "forky" root of its own, built once and cached.

Home Assistant 2026.3 and later need Python >= 3.14.2. These machines run Debian 12, whose
newest Python is 3.11 (pyenv adds 3.13); Debian's testing suite "forky" ships python3.14, and
its packages come from the same Debian mirror the machine already uses. So the environment is a
minimal forky root (``debootstrap --variant=minbase``) holding python3.14 and a venv with Home
Assistant and the pins of the integrations under test, entered with ``chroot``. The root shares
the host's network namespace, so Home Assistant inside it reaches the server and the emulator on
loopback exactly as a Home Assistant on the same machine would.

Three obstacles, each handled below: Debian 12's debootstrap has no forky script (sid's is the
same recipe); the mirror's forky ``Release`` file may be past its ``Valid-Until`` date (apt is told
not to check it); ``pip`` inside the root must trust the same certificate authorities as the
host (the host's bundle is copied in). ``pymicro-vad`` and ``pyspeex-noise`` have no wheels for
Python 3.14, so the root gets ``build-essential`` and ``python3.14-dev`` to build them.

Building needs root (``debootstrap`` and ``chroot``) and the ``debootstrap`` package; CI runs
as root and ``.ci/run`` installs it. Measured on this project's 2-core machines: about 4 minutes
and 1.7 GB the first time (debootstrap 60 s, python3.14 and the build tools 45 s, pip 100 s);
later runs find the marker file and take a second. Every step prints one line as it starts,
so a long first build is never silent.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import pytest

from tests.deploy.side_env import Say, cache_root, reuse_or_build, run_step, terminal

HA_VERSION: Final = "2026.11.0"
WYOMING_PIN: Final = "1.10.2"

#: The integration manifests' pins in 2026.11.0 (``homeassistant/components/*/manifest.json``):
#: wyoming; pymicro-vad and pyspeex-noise for assist_pipeline; gazetteer-matcher, hassil and
#: home-assistant-intents for conversation; mutagen for tts; ha-ffmpeg for ffmpeg. All are
#: resolved against HA's own ``package_constraints.txt``, so a disagreeing pin fails the build.
REQUIREMENTS: Final = (
    f"homeassistant=={HA_VERSION}",
    f"wyoming=={WYOMING_PIN}",
    "pymicro-vad==1.0.1",
    "pyspeex-noise==1.0.2",
    "gazetteer-matcher==1.1.0",
    "hassil==3.12.1",
    "home-assistant-intents==2026.10.27",
    "mutagen==1.48.1",
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

#: Debian packages inside the root: the interpreter, venv, and what builds the two C extensions.
DEBIAN_PACKAGES: Final = ("python3.14", "python3.14-venv", "python3.14-dev", "build-essential")

SUITE: Final = "forky"
#: Debian 12's debootstrap has no script for forky; sid's builds any current suite.
DEBOOTSTRAP_SCRIPT: Final = "/usr/share/debootstrap/scripts/sid"
#: Inside the root: where Home Assistant's venv lives.
VENV_IN_ROOT: Final = "/opt/ha"

#: Bump when the build steps change, so old caches are not reused.
RECIPE: Final = "1"

STEP_TIMEOUT_S: Final = 900.0
INSTALL_TIMEOUT_S: Final = 1800.0


class ForkyEnvError(Exception):
    """The environment cannot be had here; the message says why and what to do."""


class ForkyEnvNeedsRoot(ForkyEnvError):
    """Not root: the root cannot be built or entered. The tests skip (as the Docker smoke test
    does); CI runs as root, so there they always run."""


@dataclass(frozen=True)
class ForkyEnv:
    root: Path
    """The forky root; paths inside it are reached by the driver as ``/`` + relative path."""
    built: bool
    seconds: float

    @property
    def python(self) -> str:
        """Home Assistant's interpreter, as seen from inside the root."""
        return f"{VENV_IN_ROOT}/bin/python"

    def command(self, *args: str) -> list[str]:
        """``args`` run inside the root, with a clean environment (nothing of ours leaks in)."""
        return [
            "env",
            "-i",
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME=/root",
            "LANG=C.UTF-8",
            "chroot",
            str(self.root),
            *args,
        ]

    def inside(self, path: Path) -> str:
        """The path of ``path`` (a file under the root) as the root's processes see it."""
        return "/" + str(path.relative_to(self.root))


def debian_mirror() -> str:
    """The Debian archive this machine's apt already uses (deb822 ``.sources`` or a one-line
    ``sources.list``): the forky root's packages come from the same place."""
    candidates = sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))
    candidates.append(Path("/etc/apt/sources.list"))
    for path in candidates:
        try:
            text = path.read_text()
        except OSError:
            continue
        for uri in re.findall(r"^\s*URIs:\s*(\S+)", text, re.MULTILINE) + re.findall(
            r"^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)", text, re.MULTILINE
        ):
            if uri.rstrip("/").endswith("/debian"):
                return str(uri)
    raise ForkyEnvError("no Debian archive found in /etc/apt (sources.list or *.sources)")


def check_can_build() -> None:
    """Root and debootstrap: say exactly what is missing instead of failing half-way."""
    if os.geteuid() != 0:
        raise ForkyEnvNeedsRoot(
            f"Home Assistant {HA_VERSION} runs in a Debian forky root, which needs root to build "
            "and enter (debootstrap, chroot): run the tests as root (CI does)"
        )
    if shutil.which("debootstrap") is None or not Path(DEBOOTSTRAP_SCRIPT).exists():
        raise ForkyEnvError(
            "debootstrap is not installed: apt-get install debootstrap (.ci/run does)"
        )


def _key() -> str:
    blob = json.dumps({"requirements": REQUIREMENTS, "packages": DEBIAN_PACKAGES, "recipe": RECIPE})
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def _run(cmd: list[str], log: Path, timeout: float) -> None:
    run_step(
        cmd, log, timeout, building="the forky root", shown=" ".join(cmd[-4:]), error=ForkyEnvError
    )


def _build(root: Path, say: Say) -> None:
    log = root.parent / (root.name + ".log")
    log.write_text(f"building {root}\n")
    env = ForkyEnv(root, True, 0.0)
    started = time.monotonic()

    def step(what: str) -> None:
        say(f"[{time.monotonic() - started:5.0f} s] {what} (log: {log})")

    step(f"debootstrap {SUITE} (minbase), about a minute")
    mirror = debian_mirror()
    _run(
        [
            "debootstrap",
            "--variant=minbase",
            "--include=ca-certificates",
            SUITE,
            str(root),
            mirror,
            DEBOOTSTRAP_SCRIPT,
        ],
        log,
        STEP_TIMEOUT_S,
    )
    # The suite's Release file may be past Valid-Until between the mirror's updates.
    (root / "etc/apt/apt.conf.d/99wyoming-lightning").write_text(
        'Acquire::Check-Valid-Until "false";\n'
    )
    shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    # pip inside the root must trust what the host trusts (a host may add its own CAs).
    host_bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if host_bundle.exists():
        shutil.copyfile(host_bundle, root / "etc/ssl/certs/ca-certificates.crt")
    step(f"apt-get install {' '.join(DEBIAN_PACKAGES)}, about a minute")
    _run(
        env.command(
            "sh",
            "-c",
            "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "
            f"--no-install-recommends {' '.join(DEBIAN_PACKAGES)}",
        ),
        log,
        STEP_TIMEOUT_S,
    )
    step(f"Home Assistant {HA_VERSION} and its integrations' pins with pip, about two minutes")
    pip = [f"{VENV_IN_ROOT}/bin/pip", "install", "--disable-pip-version-check", "-q"]
    _run(env.command("python3.14", "-m", "venv", VENV_IN_ROOT), log, STEP_TIMEOUT_S)
    # HA first, alone, to read its own constraints file; then everything against it.
    _run(env.command(*pip, "--no-deps", REQUIREMENTS[0]), log, INSTALL_TIMEOUT_S)
    constraints = (
        next((root / VENV_IN_ROOT.lstrip("/")).glob("lib/python3.*/site-packages/homeassistant"))
        / "package_constraints.txt"
    )
    _run(env.command(*pip, "-c", env.inside(constraints), *REQUIREMENTS), log, INSTALL_TIMEOUT_S)
    _run(env.command(env.python, "-c", "; ".join(f"import {m}" for m in IMPORT_CHECK)), log, 300)
    step("ready")


def ensure_forky_env(say: Say = print) -> ForkyEnv:
    """Reuse the cached root for these pins, or build it (holding a lock: runs may share it).
    ``say`` gets one line per build step."""
    check_can_build()
    started = time.monotonic()
    root = cache_root() / f"ha-{HA_VERSION}-{SUITE}-{_key()}"
    built = reuse_or_build(
        root,
        "wyoming-lightning-complete.json",
        json.dumps({"requirements": REQUIREMENTS, "packages": DEBIAN_PACKAGES}),
        lambda: _build(root, say),
    )
    return ForkyEnv(root, built, round(time.monotonic() - started, 1))


def forky_env_for(config: pytest.Config) -> ForkyEnv:
    """The environment for a test module's fixture: built (saying each step on the terminal)
    or reused; a skip when not root, a failure for anything else."""
    say = terminal(config, f"Home Assistant {HA_VERSION}")
    try:
        return ensure_forky_env(say)
    except ForkyEnvNeedsRoot as exc:
        pytest.skip(str(exc))
    except ForkyEnvError as exc:
        pytest.fail(f"cannot build Home Assistant {HA_VERSION}'s root: {exc}", pytrace=False)


if __name__ == "__main__":
    try:
        made = ensure_forky_env()
    except ForkyEnvError as err:
        raise SystemExit(str(err)) from None
    print(f"{made.root} ({'built' if made.built else 'cached'} in {made.seconds} s)")
