"""The Dockerfile read as Docker reads it: stages, instructions, ARG and ENV values, and what
``COPY`` sends through ``.dockerignore``; shared by the image's and the add-on's tests."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from tests.kit.paths import ROOT

DOCKERFILE = ROOT / "Dockerfile"
ENTRYPOINT_SCRIPT = ROOT / "config" / "docker" / "entrypoint.sh"


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str]:
        """``["a", "b"]`` as a list; fails on the shell form, which Docker wraps in sh -c."""
        value = json.loads(self.args)
        assert isinstance(value, list), f"line {self.line}: not the exec (JSON) form"
        return [str(v) for v in value]


def parse_dockerfile(path: Path) -> list[list[Instruction]]:
    """Instructions grouped by stage (each list starts at a FROM; ARGs before the first FROM
    form a stage of their own). Continuation lines are joined, comments dropped."""
    stages: list[list[Instruction]] = [[]]
    pending = ""
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        text = pending + stripped
        pending = ""
        keyword, _, args = text.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip(), start)
        if instruction.keyword == "FROM":
            stages.append([])
        stages[-1].append(instruction)
    assert not pending, "the file ends inside a continued line"
    return stages


def of(stage: list[Instruction], keyword: str) -> list[Instruction]:
    return [i for i in stage if i.keyword == keyword]


def arg_defaults(stages: list[list[Instruction]]) -> dict[str, str]:
    defaults: dict[str, str] = {}
    for stage in stages:
        for arg in of(stage, "ARG"):
            name, _, value = arg.args.partition("=")
            defaults.setdefault(name, value.strip('"'))
    return defaults


def env_values(stage: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for env in of(stage, "ENV"):
        for item in shlex.split(env.args):
            name, _, value = item.partition("=")
            values[name] = value
    return values


class DockerIgnore:
    """Docker's rule, as far as this project uses it: the last matching pattern wins, ``!``
    re-includes, and a pattern that matches a directory matches everything inside it."""

    def __init__(self, text: str) -> None:
        self.rules: list[tuple[bool, re.Pattern[str]]] = []
        for line in text.splitlines():
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            negate = line.startswith("!")
            self.rules.append((negate, re.compile(self._regex(line.lstrip("!").strip("/")))))

    @staticmethod
    def _regex(pattern: str) -> str:
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        return regex + "(?:/.*)?"

    def ignores(self, rel: str) -> bool:
        ignored = False
        for negate, regex in self.rules:
            if regex.fullmatch(rel):
                ignored = not negate
        return ignored


def copy_targets(root: Path, sources: list[str], dest: str) -> dict[Path, str]:
    """What ``COPY sources... dest`` puts where (relative to WORKDIR): a directory source's
    contents, a file source by name into a ``/``-ending destination. Only files that survive
    ``.dockerignore`` reach the daemon."""
    ignore_file = root / ".dockerignore"
    ignore = DockerIgnore(ignore_file.read_text() if ignore_file.exists() else "")
    targets: dict[Path, str] = {}
    for source in sources:
        top = root / source
        assert top.exists(), f"COPY source {source!r} does not exist"
        if top.is_dir():
            for path in sorted(p for p in top.rglob("*") if p.is_file()):
                if not ignore.ignores(path.relative_to(root).as_posix()):
                    targets[path] = f"{dest.rstrip('/')}/{path.relative_to(top).as_posix()}"
        elif not ignore.ignores(source):
            targets[top] = f"{dest}{top.name}" if dest.endswith("/") else dest
    return targets


def copy_instructions(stage: list[Instruction]) -> list[tuple[list[str], str]]:
    pairs = []
    for copy in of(stage, "COPY"):
        words = [w for w in shlex.split(copy.args) if not w.startswith("--")]
        pairs.append((words[:-1], words[-1]))
    return pairs


STAGES = parse_dockerfile(DOCKERFILE)
BUILD = next(s for s in STAGES if s and s[0].keyword == "FROM" and " AS build" in s[0].args)
FINAL = STAGES[-1]
