"""README.md stays true: its configuration table is the parser's, its five-minute
walkthrough runs as written, and every flag and variable it names exists."""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tests.kit.net import free_port
from tests.kit.paths import ROOT
from wyoming_lightning import healthcheck
from wyoming_lightning.emulator.__main__ import build_parser as emulator_parser
from wyoming_lightning.ops import usage_report
from wyoming_lightning.settings.config import SETTINGS, build_parser
from wyoming_lightning.transcribe_cli import args as client_args

DOC = ROOT / "README.md"
TEXT = DOC.read_text(encoding="utf-8")


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("config_table", ROOT / "scripts/config_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def between(start: str, end: str) -> str:
    return TEXT.split(start, 1)[1].split(end, 1)[0]


def shell_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", TEXT, re.DOTALL)


def test_configuration_table_matches_the_parser() -> None:
    script = load_script()
    assert script.splice(TEXT, script.render()) == TEXT, (
        "README.md is stale: run python scripts/config_table.py --write"
    )
    # The generator itself covers every declared setting: none can be left out of the table.
    table = between("<!-- config-table:start -->", "<!-- config-table:end -->")
    for spec in SETTINGS:
        for name in (spec.flag, spec.env, spec.file_flag, spec.file_flag and spec.file_env):
            if name:
                assert f"`{name}" in table, f"{spec.name}: {name} missing from the table"


def run_walkthrough(
    tmp_path: Path, edit: tuple[str, str] = ("", "")
) -> subprocess.CompletedProcess[str]:
    block = between("<!-- walkthrough:start -->", "<!-- walkthrough:end -->")
    (script,) = re.findall(r"```sh\n(.*?)```", block, re.DOTALL)
    # Only the ports change, so that a busy 10300 on this machine cannot fail the test.
    emulator_port, server_port = free_port(), free_port()
    if edit[0]:
        assert edit[0] in script
        script = script.replace(*edit)
    script = script.replace(":10300", f":{server_port}").replace("8765", str(emulator_port))
    script = script.replace(
        "wyoming-lightning-healthcheck --wait",
        f"wyoming-lightning-healthcheck --uri tcp://127.0.0.1:{server_port} --wait",
    )
    script = script.replace(
        "wyoming-lightning-client hello.wav",
        f"wyoming-lightning-client hello.wav --uri tcp://127.0.0.1:{server_port}",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTNING_", "SMALLEST_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        ["bash", "-c", "set -e\ntrap 'kill $(jobs -p) 2>/dev/null' EXIT\n" + script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_the_five_minute_walkthrough_runs_as_written(tmp_path: Path) -> None:
    result = run_walkthrough(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[-1] == "one two three", result.stdout + result.stderr
    assert (tmp_path / "hello.wav").exists()
    # The servers log to their files, not into the client's progress on the terminal.
    assert "listening on" in (tmp_path / "server.log").read_text()
    assert "listening:" in (tmp_path / "emulator.log").read_text()
    assert " INFO " not in result.stderr, result.stderr


def test_the_walkthrough_without_webrtc_says_why_it_printed_nothing(tmp_path: Path) -> None:
    """As the README says: silero hears no speech in tones, and the client says so (exit 3)."""
    result = run_walkthrough(tmp_path, (" --vad webrtc", ""))
    assert result.returncode == 3, result.stdout + result.stderr
    assert "no text recognized: the server answered with an empty transcript" in result.stderr


PARSERS: dict[str, argparse.ArgumentParser] = {
    "wyoming-lightning": build_parser({}),
    "wyoming-lightning-client": client_args.build_parser(),
    "wyoming-lightning-healthcheck": healthcheck.build_parser(),
    "wyoming-lightning-emulator": emulator_parser(),
    "wyoming-lightning usage": usage_report.build_parser(),
}


def test_every_flag_in_the_examples_exists() -> None:
    checked = 0
    for block in shell_blocks():
        for command in block.replace("\\\n", " ").splitlines():
            words = command.split("#", 1)[0].split()
            program = next((w for w in words if w in PARSERS), None)
            if program is None:
                continue
            start = words.index(program) + 1
            if program == "wyoming-lightning" and words[start : start + 1] == ["usage"]:
                program, start = "wyoming-lightning usage", start + 1  # the subcommand
            known = {f for a in PARSERS[program]._actions for f in a.option_strings}
            for word in words[start:]:
                if word.startswith("--"):
                    flag = word.split("=", 1)[0]
                    assert flag in known, f"{program} has no {flag} (docs: {command.strip()})"
                    checked += 1
    assert checked >= 10, "the scan found too few flags to mean anything"


def test_every_environment_variable_named_exists() -> None:
    table = between("<!-- config-table:start -->", "<!-- config-table:end -->")
    known = set(re.findall(r"`(LIGHTNING_\w+)`", table))
    known.add("LIGHTNING_FOO_BAR")  # the naming rule's example
    assert healthcheck.default_uri({"LIGHTNING_HEALTHCHECK_URI": "tcp://h:1"}) == "tcp://h:1"
    known.add("LIGHTNING_HEALTHCHECK_URI")
    prose = TEXT.replace(table, "")  # the table's metavars (LIGHTNING_URL) are not variables
    named = set(re.findall(r"\b(LIGHTNING_[A-Z_]+)\b", prose))
    assert named - known == set()


def test_ci_runs_the_readme_test_command_inside_a_venv() -> None:
    """CI runs exactly the README's test command, and in a venv of its own, as users do: a test
    that works only when installed into the base interpreter fails there, not for a user."""
    first_screen = TEXT.split("<!-- end of first screen -->", 1)[0]
    (command,) = [line for line in first_screen.splitlines() if "pytest" in line]
    lines = (ROOT / ".ci/run").read_text(encoding="utf-8").splitlines()
    assert lines[-1] == command.strip()
    assert "python3 -m venv .venv" in lines
    activate = lines.index(". .venv/bin/activate")
    assert lines.index("python3 -m venv .venv") < activate < len(lines) - 1


def test_the_first_screen_answers_a_new_users_questions() -> None:
    """Two set-up commands (one serves, one tests), and what a user asks before running them:
    where a key comes from, what to paste into Home Assistant, whether a bad key shows at
    start-up, and how long and how big the test run is."""
    first_screen = TEXT.split("<!-- end of first screen -->", 1)[0]
    (block,) = re.findall(r"```sh\n(.*?)```", first_screen, re.DOTALL)
    commands = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    assert len(commands) == 2
    serve, test = commands
    assert "wyoming-lightning" in serve and "--check-key" in serve
    assert test.endswith("python -m pytest")
    assert "--check-key" in {
        a.option_strings[0] for a in build_parser({})._actions if a.option_strings
    }
    assert re.search(r"about \d+ minutes and\s+(#\s+)?[\d.]+ GB", block)
    assert "smallest.ai" in first_screen and "API" in first_screen
    assert "Repositories" in first_screen and re.search(r"`https://\S+`", first_screen)
