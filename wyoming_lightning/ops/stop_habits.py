"""Which clients end their audio only in a pause: their speech may be read a little late.

Reading a stream a few chunks at a time while someone speaks (``--read-batch-ms``) moves no
decision of the server's (``Segmenter.undecided_ms``), but a client's ``audio-stop`` that comes
while the VAD still hears speech waits in the socket until the next read: up to a batch added
to the wait a user feels. Home Assistant never sends one there: with its own VAD it stops
0.7 s or more into the pause, and 2026.11 leaves the end to the server. A push-to-talk button,
or a client that sends a clip and stops at its last sample, does.

So the server learns it per client address, from what each one did: once a client has ended
its last :data:`TRUSTED_AFTER` requests in a pause (its ``audio-stop`` after the speech, or
none: the server ended the command), its speech is read in batches, and its pauses too up to
the shortest pause it has stopped in since; an ``audio-stop`` while the VAD heard speech and
it is not, until it has again ended that many in a row in a pause.
Every address starts untrusted, so a client is never made to wait before it has shown how it
stops; a client that always stops in speech never is; one that does now and then (a button
released early once in a while) pays at most a batch once per such run. (Never trusting an
address again after one such stop was tried: one test clip sent from the same machine, as
the ``cost`` table's warm-up does, kept Home Assistant's streams from it read one by one.)
Bounded: a flood of addresses forgets the oldest.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Final

TRUSTED_AFTER: Final = 2
"""Requests ended in a pause in a row before a client's speech is read in batches."""

STOP_MARGIN_MS: Final = 200
"""Within a pause, reading late stops this much before the shortest pause the client has
stopped in: Home Assistant's own VAD calls the end of speech a little differently each time.
Without it, 1 of 12 requests of ``python -m benchmarks wait --quick`` that stopped sooner into
its pause than any before waited 100 ms more (704.8 ms against 604-607)."""

MAX_PEERS: Final = 1024
"""Addresses remembered; the least recently seen is forgotten first."""


class StopHabits:
    """How each client address has ended its audio so far (see the module docstring)."""

    def __init__(self, trusted_after: int = TRUSTED_AFTER, max_peers: int = MAX_PEERS) -> None:
        self._trusted_after = trusted_after
        self._max_peers = max_peers
        self._peers: OrderedDict[str, tuple[int, float]] = OrderedDict()
        """Per address: requests ended in a pause since it last stopped in speech, and the
        shortest pause it has stopped in since (``math.inf``: none seen)."""

    def __len__(self) -> int:
        """Addresses remembered."""
        return len(self._peers)

    def stop_room_ms(self, peer: str, pause_ms: float | None) -> float:
        """How much more audio may come before this client may send ``audio-stop``, ``pause_ms``
        into a pause (0: it speaks; ``None``: no speech yet): none for a client not trusted;
        while it speaks (or before), any (it stops only in pauses); in a pause, up to
        :data:`STOP_MARGIN_MS` before the shortest pause it has stopped in."""
        in_a_row, earliest_ms = self._peers.get(peer, (0, math.inf))
        if in_a_row < self._trusted_after:
            return 0.0
        if not pause_ms:
            return math.inf
        return max(0.0, earliest_ms - STOP_MARGIN_MS - pause_ms)

    def ended(self, peer: str, pause_ms: float | None) -> None:
        """A request of ``peer`` ended its audio ``pause_ms`` into a pause: 0 while the VAD
        heard speech; ``None`` with nothing to learn of the pause (no speech, or the server
        ended the command)."""
        in_a_row, earliest_ms = self._peers.pop(peer, (0, math.inf))
        if pause_ms == 0.0:
            self._peers[peer] = (0, math.inf)
        else:
            shortest = earliest_ms if pause_ms is None else min(earliest_ms, pause_ms)
            self._peers[peer] = (in_a_row + 1, shortest)
        while len(self._peers) > self._max_peers:
            self._peers.popitem(last=False)
