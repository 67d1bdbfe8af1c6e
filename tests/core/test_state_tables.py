"""Every state diagram drawn in a core module's docstring is its table, move for move.

The request's four state sets (request.py, uplink.py) and the segmenter's (segmenter.py) are
enums whose moves are tabled; their docstrings draw them as ``A --cause--> B`` lines. A move
added to a table and not drawn, or drawn and not tabled, fails here, so the pictures a reader
trusts cannot drift from the code.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping

import pytest

from wyoming_lightning.core import request, segmenter, uplink
from wyoming_lightning.core.fsm import IllegalTransition, moved

ARROW = re.compile(r"\s*--(.+?)-->\s*")


def diagram(doc: str, name: str) -> list[str]:
    """The indented lines of the ``name``:: block (the first block after ``name`` is named)."""
    start = doc.index(f"``{name}``")
    lines = doc[start:].split("::\n", 1)[1].splitlines()
    block: list[str] = []
    for line in lines:
        if line.strip() and not line.startswith("    "):
            break
        if "-->" in line:
            block.append(line.strip())
    return block


def drawn_moves(doc: str, kind: type[enum.Enum]) -> set[tuple[enum.Enum, str, enum.Enum]]:
    """(from, cause, to) for every arrow of ``kind``'s diagram; ``any`` is every other state,
    ``A | B`` each of them, and a target that is not a state (a comment) draws nothing."""
    names = {state.name: state for state in kind}
    moves: set[tuple[enum.Enum, str, enum.Enum]] = set()
    for line in diagram(doc, kind.__name__):
        parts = ARROW.split(line)
        for i in range(0, len(parts) - 2, 2):
            sources, cause = parts[i], parts[i + 1]
            target = parts[i + 2].split()[0] if parts[i + 2].split() else ""
            if i > 0:
                sources = parts[i].split()[0]
            if target not in names:
                continue
            if sources.strip() == "any":
                froms = [s for s in kind if s.name != target]
            else:
                froms = [names[s.strip()] for s in sources.split("|")]
            moves |= {(s, cause.strip(), names[target]) for s in froms}
    return moves


def tabled(table: Mapping[enum.Enum, frozenset[enum.Enum]]) -> set[tuple[enum.Enum, enum.Enum]]:
    return {(old, new) for old, news in table.items() for new in news}


@pytest.mark.parametrize(
    ("module", "kind", "table"),
    [
        (request, request.Phase, request.PHASE_MOVES),
        (request, request.Route, request.ROUTE_MOVES),
        (request, uplink.UtteranceState, uplink.UTTERANCE_MOVES),
        (request, uplink.SessionState, uplink.SESSION_MOVES),
    ],
    ids=["Phase", "Route", "UtteranceState", "SessionState"],
)
def test_the_request_diagrams_are_its_tables(
    module: object, kind: type[enum.Enum], table: Mapping[enum.Enum, frozenset[enum.Enum]]
) -> None:
    doc = module.__doc__ or ""
    drawn = {(old, new) for old, _, new in drawn_moves(doc, kind)}
    assert set(table) == set(kind), "every state has a row"
    assert drawn == tabled(table), (
        f"drawn, not tabled: {sorted(map(str, drawn - tabled(table)))}; "
        f"tabled, not drawn: {sorted(map(str, tabled(table) - drawn))}"
    )


def test_the_segmenter_diagram_is_its_table_cue_for_cue() -> None:
    doc = segmenter.__doc__ or ""
    drawn = {
        ((old, segmenter.Cue(cause)), new)
        for old, cause, new in drawn_moves(doc, segmenter.SegmenterState)
    }
    assert drawn == set(segmenter.MOVES.items())


def test_a_move_off_the_table_is_refused() -> None:
    with pytest.raises(IllegalTransition, match="SETTLED -> OPEN"):
        moved(uplink.UTTERANCE_MOVES, uplink.UtteranceState.SETTLED, uplink.UtteranceState.OPEN)
