"""Word error rate, with the normalisation a fair comparison of spoken commands needs.

Recognizers write "10 minutes", "50%" and "Turn on the lights." where the reference says
"ten minutes", "fifty percent" and "turn on the lights": those are not errors. Nor are
hesitations: a transcript of spontaneous speech writes "uh" and "um", recognizers (Whisper
among them) leave them out, and no user wants them; both sides drop them, as Whisper's own
English normaliser does.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
#: Hesitation sounds, not words. ("er" is left alone: it is also "her", as in "know 'er".)
FILLERS = frozenset({"uh", "um", "uhm", "umm", "hm", "hmm", "mm", "mhm"})

_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _number_words(n: int) -> list[str]:
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        tens, ones = divmod(n, 10)
        return [_TENS[tens]] + ([_ONES[ones]] if ones else [])
    return [str(n)]


def normalise_words(text: str) -> list[str]:
    """Lower case, no punctuation or hesitations, numbers and % spelled out, hyphens split."""
    text = text.lower().replace("%", " percent ").replace("-", " ")
    words: list[str] = []
    for token in re.findall(r"[a-z0-9']+", text):
        if token.isdigit():
            words += _number_words(int(token))
        else:
            words.append(token.strip("'"))
    return [w for w in words if w and w not in FILLERS]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1]


def wer(pairs: Iterable[tuple[str, str]]) -> float:
    """Corpus WER over (reference, hypothesis) pairs: total edits / total reference words."""
    edits = words = 0
    for reference, hypothesis in pairs:
        ref, hyp = normalise_words(reference), normalise_words(hypothesis)
        edits += edit_distance(ref, hyp)
        words += len(ref)
    return edits / max(1, words)


def align(ref: list[str], hyp: list[str]) -> list[tuple[int | None, int | None]]:
    """One minimal-edit alignment: pairs (ref index, hyp index); ``None`` on one side is a
    deletion (no hyp) or an insertion (no ref), two indices of different words a substitution.

    Ties prefer a match or substitution, then a deletion, so a word heard differently lines up
    with the word it replaced rather than counting as one lost and one added.
    """
    rows, cols = len(ref) + 1, len(hyp) + 1
    cost = [[0] * cols for _ in range(rows)]
    for i in range(rows):
        cost[i][0] = i
    for j in range(cols):
        cost[0][j] = j
    for i in range(1, rows):
        for j in range(1, cols):
            cost[i][j] = min(
                cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]),
                cost[i - 1][j] + 1,
                cost[i][j - 1] + 1,
            )
    pairs: list[tuple[int | None, int | None]] = []
    i, j = len(ref), len(hyp)
    while i or j:
        if i and j and cost[i][j] == cost[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            i, j = i - 1, j - 1
            pairs.append((i, j))
        elif i and cost[i][j] == cost[i - 1][j] + 1:
            i -= 1
            pairs.append((i, None))
        else:
            j -= 1
            pairs.append((None, j))
    pairs.reverse()
    return pairs
