"""The one rule of every state set in the core: a move not in its table is a bug.

Each machine (request.py, uplink.py, segmenter.py) names its states in enums and tables their
legal moves, as h11 does; :func:`moved` checks a move against such a table.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import TypeVar


class IllegalTransition(RuntimeError):
    """A move that its table does not allow: a bug in the core, never the client's fault."""


_S = TypeVar("_S", bound=enum.Enum)


def moved(table: Mapping[_S, frozenset[_S]], old: _S, new: _S) -> _S:
    """``new``, if the table lets ``old`` move there; else :class:`IllegalTransition`."""
    if new not in table[old]:
        raise IllegalTransition(f"{type(old).__name__}: {old.name} -> {new.name}")
    return new
