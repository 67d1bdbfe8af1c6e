#!/usr/bin/env python3
"""The configuration table of README.md, generated from the server's own parser.

    python scripts/config_table.py            # print the table
    python scripts/config_table.py --write    # update README.md in place
    python scripts/config_table.py --check    # exit 1 if the document is out of date

The table sits between the ``<!-- config-table:start -->`` and ``<!-- config-table:end -->``
markers; tests/test_deploy_docs.py fails when it no longer matches ``build_parser``, so a new
flag cannot ship undocumented.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "README.md"
START = "<!-- config-table:start -->"
END = "<!-- config-table:end -->"

#: Settings that are not flags: the key is never accepted on the command line.
KEY_ROWS = [
    ("", "`SMALLEST_API_KEY`", "", "the Smallest.ai API key"),
    ("", "`SMALLEST_API_KEY_FILE`", "", "file holding the key (e.g. a Docker secret)"),
]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _default(action: argparse.Action) -> str:
    if isinstance(action, argparse.BooleanOptionalAction):
        return "on" if action.default else "off"
    if action.default is None:
        if action.const is not None:
            return f"off (`{action.option_strings[0]}` alone: `{action.const}`)"
        return "(unset)"
    if action.default == "":
        return "(empty)"
    return f"`{action.default}`"


def rows() -> list[tuple[str, str, str, str]]:
    sys.path.insert(0, str(ROOT))
    from wyoming_lightning.config import build_parser

    table: list[tuple[str, str, str, str]] = []
    for action in build_parser({})._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        if action.dest in ("help", "version"):
            continue
        help_text = action.help or ""
        found = re.search(r"\s*\[env (\w+)\]$", help_text)
        env = f"`{found.group(1)}`" if found else ""
        meaning = help_text[: found.start()] if found else help_text
        if action.choices:
            meaning += ": " + ", ".join(f"`{c}`" for c in action.choices)
        flag = " / ".join(f"`{f}`" for f in action.option_strings)
        if action.nargs == "?":
            flag = f"`{action.option_strings[0]} [NAME]`"
        elif not isinstance(action, argparse.BooleanOptionalAction) and action.nargs != 0:
            flag = f"`{action.option_strings[0]} {action.dest.upper()}`"
        table.append((flag, env, _default(action), meaning))
    return table + KEY_ROWS


def render() -> str:
    lines = ["| flag | environment variable | default | meaning |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows()]
    return "\n".join(lines)


def splice(document: str, table: str) -> str:
    """The document with the text between the markers replaced by ``table``."""
    head, start, rest = document.partition(START)
    _old, end, tail = rest.partition(END)
    if not start or not end:
        raise ValueError(f"{DOC} lacks the {START} / {END} markers")
    return f"{head}{START}\n{table}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--write", action="store_true", help=f"update {DOC.name}")
    group.add_argument("--check", action="store_true", help=f"fail if {DOC.name} is stale")
    args = parser.parse_args(argv)
    table = render()
    if not (args.write or args.check):
        print(table)
        return 0
    document = DOC.read_text(encoding="utf-8")
    updated = splice(document, table)
    if args.check:
        if updated != document:
            print(f"{DOC} is out of date: run python scripts/config_table.py --write")
            return 1
        return 0
    DOC.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
