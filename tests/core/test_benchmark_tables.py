"""The benchmarks' printed tables fit 120 columns without losing a figure, and ``--help`` lists
every table (it used to end on a dangling heading)."""

from __future__ import annotations

import subprocess
import sys

from benchmarks.__main__ import DEFAULT, TABLES
from benchmarks.harness import MAX_WIDTH, Table
from tests.kit.paths import ROOT


def test_a_wide_table_is_printed_in_parts_that_fit_and_keep_every_figure() -> None:
    headers = ["configuration", *(f"figure number {i} (unit)" for i in range(12))]
    table = Table("wide", "A wide table", headers)
    for row in range(3):
        table.add([f"config {row}", *(f"{row}.{i:04d}" for i in range(12))])
    table.notes.append("a note " * 40)
    text = table.render()
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= MAX_WIDTH
    for row in table.rows:
        for cell in row:
            assert cell in text
    assert text.count("config 1") >= 2, "each part repeats the naming column"
    assert "(continued: columns" in text
    narrow = Table("narrow", "A narrow table", ["a", "b"])
    narrow.add(["x", "1"])
    assert "(continued" not in narrow.render()


def test_help_lists_every_table_and_which_run_by_default() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    epilog = done.stdout.split("Tables, in the order they run", 1)[1]
    for name in TABLES:
        entry = next(line for line in epilog.splitlines() if line.startswith(f"- ``{name}``"))
        assert ("not in the default run" in entry) is (name not in DEFAULT), entry
    assert not done.stdout.rstrip().endswith(":")
