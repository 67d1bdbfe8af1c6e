"""Which clients end their audio only in a pause: their speech may be read a little late.

Reading a stream a few chunks at a time while someone speaks (``--read-batch-ms``) moves no
decision of the server's (``Segmenter.undecided_ms``), but a client's ``audio-stop`` that comes
while the VAD still hears speech waits in the socket until the next read: up to a batch added
to the wait a user feels. Home Assistant never sends one there: with its own VAD it stops
0.7 s or more into the pause, and 2026.11 leaves the end to the server. A push-to-talk button,
or a client that sends a clip and stops at its last sample, does.

So the server learns it per client address, from what each one did: once a client has ended
its last :data:`TRUSTED_AFTER` requests in a pause (its ``audio-stop`` after the speech, or
none: the server ended the command), its speech is read in batches; an ``audio-stop`` while
the VAD heard speech and it is not, until it has again ended that many in a row in a pause.
Every address starts untrusted, so a client is never made to wait before it has shown how it
stops; a client that always stops in speech never is; one that does now and then (a button
released early once in a while) pays at most a batch once per such run. (Never trusting an
address again after one such stop was tried: one test clip sent from the same machine, as
the ``cost`` table's warm-up does, kept Home Assistant's streams from it read one by one.)
Bounded: a flood of addresses forgets the oldest.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

TRUSTED_AFTER: Final = 2
"""Requests ended in a pause in a row before a client's speech is read in batches."""

MAX_PEERS: Final = 1024
"""Addresses remembered; the least recently seen is forgotten first."""


class StopHabits:
    """How each client address has ended its audio so far (see the module docstring)."""

    def __init__(self, trusted_after: int = TRUSTED_AFTER, max_peers: int = MAX_PEERS) -> None:
        self._trusted_after = trusted_after
        self._max_peers = max_peers
        self._in_pause: OrderedDict[str, int] = OrderedDict()
        """Requests each address ended in a pause since it last stopped in speech."""

    def __len__(self) -> int:
        """Addresses remembered."""
        return len(self._in_pause)

    def may_wait(self, peer: str) -> bool:
        """Whether this client's speech may be read in batches."""
        return self._in_pause.get(peer, 0) >= self._trusted_after

    def ended(self, peer: str, *, in_speech: bool) -> None:
        """A request of ``peer`` ended its audio: while the VAD heard speech, or in a pause."""
        in_a_row = self._in_pause.pop(peer, 0)
        self._in_pause[peer] = 0 if in_speech else in_a_row + 1
        while len(self._in_pause) > self._max_peers:
            self._in_pause.popitem(last=False)
