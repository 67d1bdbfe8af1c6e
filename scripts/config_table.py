#!/usr/bin/env python3
"""The configuration table of README.md, generated from the server's own setting declarations.

    python scripts/config_table.py            # print the table
    python scripts/config_table.py --write    # update README.md in place
    python scripts/config_table.py --check    # exit 1 if the document is out of date

The table sits between the ``<!-- config-table:start -->`` and ``<!-- config-table:end -->``
markers; tests/deploy/test_deploy_docs.py fails when it no longer matches the declarations in
``wyoming_lightning/settings/config.py``, so a new setting cannot ship undocumented.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "README.md"
START = "<!-- config-table:start -->"
END = "<!-- config-table:end -->"

Row = tuple[str, str, str, str]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def rows() -> list[Row]:
    """One row per flag in declaration order, then the secrets' variables (they have no flag)."""
    from wyoming_lightning.settings.config import SETTINGS
    from wyoming_lightning.settings.declare import Kind

    table: list[Row] = []
    secrets: list[Row] = []
    for spec in SETTINGS:
        if spec.kind is Kind.SECRET:
            metavar = spec.file_dest.upper()
            flag_help = f"file holding {spec.help}"
            table.append(
                (f"`{spec.file_flag} {metavar}`", f"`{spec.file_flag_env}`", "(unset)", flag_help)
            )
            secrets.append(("", f"`{spec.env}`", "", spec.help))
            secrets.append(("", f"`{spec.file_env}`", "", f"{flag_help} (e.g. a Docker secret)"))
            continue
        metavar = spec.metavar or spec.flag.removeprefix("--").replace("-", "_").upper()
        if spec.kind is Kind.SWITCH:
            flag = f"`{spec.flag}` / `--no-{spec.flag.removeprefix('--')}`"
            default = "on" if spec.default else "off"
        else:
            flag = (
                f"`{spec.flag} [{metavar}]`"
                if spec.kind is Kind.OPTIONAL
                else f"`{spec.flag} {metavar}`"
            )
            if spec.default is None and spec.const is not None:
                default = f"off (`{spec.flag}` alone: `{spec.const}`)"
            elif spec.default is None:
                default = "(unset)"
            elif spec.default == "":
                default = "(empty)"
            else:
                default = f"`{spec.default}`"
        meaning = spec.help
        if spec.choices:
            meaning += ": " + ", ".join(f"`{c}`" for c in spec.choices)
        table.append((flag, f"`{spec.env}`", default, meaning))
    return table + secrets


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
