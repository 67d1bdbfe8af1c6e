"""A throwaway virtual environment that sees the packages of the one running the tests.

The deployment tests replay the Dockerfiles' install steps offline: they need a fresh venv to
install into, whose dependencies are already present. ``venv --system-site-packages`` gives a
venv the *base* interpreter's packages, which is right only when the tests run outside a venv;
run from a venv (as the README says to), the dependencies live in that venv and would be
missing. So the inner venv is made without system packages and a ``.pth`` file adds the
running environment's site directories after its own: what is installed into the inner venv
comes first, everything else is found where the test run finds it.
"""

from __future__ import annotations

import shlex
import site
import sys
import sysconfig
from pathlib import Path


def outer_site_dirs() -> list[str]:
    """The site directories of the running interpreter, in its own order."""
    dirs = [*site.getsitepackages()]
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if path not in dirs:
            dirs.append(path)
    return dirs


def inner_site_packages(venv: Path) -> Path:
    """Where a venv made by this interpreter keeps its packages."""
    path = sysconfig.get_path("purelib", scheme="venv", vars={"base": str(venv)})
    return Path(path)


def make_venv_command(venv: Path) -> str:
    """A shell command that makes ``venv`` (no pip of its own: the outer one is seen)."""
    line = "import site; " + "; ".join(f"site.addsitedir({d!r})" for d in outer_site_dirs())
    pth = inner_site_packages(venv) / "_outer_environment.pth"
    return (
        f"{shlex.quote(sys.executable)} -m venv --without-pip {shlex.quote(str(venv))} && "
        f"printf '%s\\n' {shlex.quote(line)} > {shlex.quote(str(pth))}"
    )
