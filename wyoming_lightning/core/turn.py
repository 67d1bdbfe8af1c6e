"""Is the command over? What was said, judged against Home Assistant's own sentence templates.

A silence timer cannot tell "turn on the kitchen lights" (over: answer now) from "turn on the"
(the speaker is looking for a name: wait). Home Assistant matches commands with ``hassil`` and
the templates of ``home-assistant-intents``; the same match on the service's interim text says
which of the two a pause follows. The verdict is one of :class:`TurnVerdict`; the segmenter
(segmenter.py) turns it into how long a pause must last before the turn ends.

Both packages are optional (the ``intents`` extra): without them, or for a language they do not
cover, :func:`load_judge` returns ``None`` and the segmenter keeps its silence timer alone.

The home's names (hass/names.py), when known, are the ``name``, ``area`` and ``floor`` slot
lists, so "turn on the kitchen" matches only if the home has a kitchen; otherwise any words
fill those slots (wildcards), and a slot filled by a word that only leads into a name ("the",
"my") or only stands in for one ("it", "there") does not count as a match.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from typing import Any

_LEAD_INS = (
    "the a an my our your this that these those "
    "to for on off in into at of by with from and or but set turn"
)
_HESITATIONS = "please um uh er erm hmm ah like so is"
LEAD_INS = frozenset(f"{_LEAD_INS} {_HESITATIONS}".split(" "))
"""Words after which a sentence is not over whatever it matched: articles and demonstratives,
prepositions, the verbs that start a command, hesitations. Ending on one of them, the speaker is
still going. (Demonstratives: "turn off that ... lamp"; and a recognizer that heard "the" of a
command cut off by a pause writes it "that" as often as not: Whisper tiny's "Open that.",
"Lock that.", "turn off that" for the pause set's "open the", "lock the", "turn off the".)"""

_FILLERS = "it its there here them they him her one ones this that these those"
FILLERS = frozenset(_FILLERS.split(" "))
"""Words that stand in for a name without being one: pronouns and place adverbs ("lock it",
"play some jazz in there", "this one"). A wildcard slot filled by these alone is no match:
Whisper writes the "the" of a command cut off by a pause as "it" ("Lock it.", "Set a timer for
it." on HA 2026.11), and "set it to 50 percent" took "it" for an area. Only a wildcard slot is
refused (a name the home gave is a name), and the words of a template are matched as they are
("what time is it")."""

MAX_WORDS = 16
"""Longer than any command a template matches: past it the speaker is dictating or talking to an
agent, and the words are not matched at all (the cost of a match grows with the sentence)."""

WILDCARD_MAX_WORDS = 4
"""A wildcard slot stands for a name ("kitchen", "front door lock"); one that took more words
took a sentence that is not a command: "to hear the next message press 6" is HassLightSet with
the area "to hear the next message press", and ended a recorded message at its first pause."""

_WORD = re.compile(r"[\w'%]+")


class TurnVerdict(enum.Enum):
    """What the words so far say about the turn."""

    COMPLETE = "a whole command: a short pause ends it"
    UNFINISHED = "the start of one: wait for the rest"
    UNKNOWN = "no template says either way: the silence timer decides"


_CUT_STAND_IN = re.compile(
    r"\b(?:" + "|".join(sorted(FILLERS)) + r")[.?!,]+\s+(?=\w)", re.IGNORECASE
)
"""A stand-in that ends a sentence with more words after it: a final cut by a pause, in which
Whisper wrote the word the pause followed, or nothing, as "it" / "that" ("Set a timer for it.
10 minutes.", "Open that. Garage door."). Dropped before matching the whole request."""


def joined(text: str) -> str:
    """``text`` with the stand-ins of :data:`_CUT_STAND_IN` dropped."""
    return _CUT_STAND_IN.sub("", text)


def words(text: str) -> list[str]:
    """The lower-case words of ``text``, punctuation dropped (as hassil compares them)."""
    return _WORD.findall(text.lower())


class TurnJudge:
    """Judges text against one language's templates; remembers its last text (interims repeat).

    ``names``: the home's names (entities, areas), or ``None`` for wildcards.
    """

    def __init__(self, intents: Any, slot_lists: dict[str, Any], language: str) -> None:
        self._intents = intents
        self._slot_lists = slot_lists
        self.language = language
        self.calls = 0
        """Matches actually run (a repeated text is not matched again)."""
        self._last: tuple[str, TurnVerdict] | None = None

    def __call__(self, text: str) -> TurnVerdict:
        said = words(joined(text))
        if not said:
            return TurnVerdict.UNKNOWN
        key = " ".join(said)
        if self._last is not None and self._last[0] == key:
            return self._last[1]
        verdict = self._judge(said, key)
        self._last = (key, verdict)
        return verdict

    def _judge(self, said: list[str], key: str) -> TurnVerdict:
        if len(said) > MAX_WORDS:
            return TurnVerdict.UNKNOWN
        if said[-1] in LEAD_INS:
            return TurnVerdict.UNFINISHED
        from hassil import recognize

        self.calls += 1
        result = recognize(key, self._intents, slot_lists=self._slot_lists)
        if result is None:
            return TurnVerdict.UNKNOWN
        for entity in result.entities.values():
            filled = words(str(entity.text or entity.value))
            if not filled or all(w in LEAD_INS for w in filled):
                return TurnVerdict.UNKNOWN  # a wildcard took only a lead-in ("turn on the")
            if entity.is_wildcard and all(w in LEAD_INS or w in FILLERS for w in filled):
                return TurnVerdict.UNKNOWN  # or only a stand-in ("set it to 50 percent")
            if entity.is_wildcard and len(filled) > WILDCARD_MAX_WORDS:
                return TurnVerdict.UNKNOWN  # no name is that long
            if entity.is_wildcard and said[-len(filled) :] == filled:
                # A wildcard ends the sentence ("play some jazz in the living ..."): it would
                # take any further words as well, so the match says nothing about the end.
                return TurnVerdict.UNKNOWN
        return TurnVerdict.COMPLETE


def load_judge(language: str | None, names: Iterable[str] | None = None) -> TurnJudge | None:
    """A judge for ``language`` ("en", "en-US"), or ``None`` when the optional packages are
    missing or have no templates for it: the caller then keeps its silence timer."""
    try:
        from hassil import Intents
        from hassil.intents import TextSlotList, WildcardSlotList
        from home_assistant_intents import get_intents
    except ImportError:
        return None
    code = (language or "en").split("-")[0].split("_")[0].lower()
    data = get_intents(code)
    if not data:
        return None
    intents = Intents.from_dict(data)
    known = sorted({n.strip() for n in names or () if n and n.strip()})
    slot_lists: dict[str, Any] = {}
    for slot in ("name", "area", "floor"):
        if known:
            slot_lists[slot] = TextSlotList.from_strings(known, name=slot)
        else:
            slot_lists[slot] = WildcardSlotList(slot)
    judge = TurnJudge(intents, slot_lists, code)
    judge("turn on the lights")  # hassil compiles its templates on first use (~150 ms): now
    judge.calls = 0
    return judge
