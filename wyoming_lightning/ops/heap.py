"""When the server falls idle: collect garbage cycles and give the C heap's free pages back.

Why (issue 15): with the VAD engines pooled (vad/pool.py), bursts of 50 requests still left
the bridge about 12 MiB bigger per 1000 requests, with webrtc as with silero (soak, 20 bursts
of 50: silero 180 -> 191 MiB, webrtc 53 -> 65 MiB). Nothing stays referenced; two things keep
freed memory resident:

- garbage cycles (tasks, exceptions and their tracebacks, a handler and its callbacks) wait
  for a full collection, which comes rarely, so RSS saws upwards for hundreds of requests;
- glibc's allocator returns pages only from the top of its heap, which live allocations pin,
  so the thousands of buffers a burst frees (socket reads, audio, JSON) stay resident.
  ``malloc_trim(0)`` also releases free pages inside the heap (``madvise``): measured
  in-process, 12-15 MiB after every burst.

With trimming alone the soak still sawed (176 -> 184 MiB); with a full collection first it
stayed within 0.4 MiB of the first burst's RSS over 1000 requests.

Both run only when the last open connection has ended, never during a request. A full
collection walks every tracked object, the ~35,000 of a bridge with 50 silero engines: 15-20 ms
of CPU, every time a household's request ends. So the first one also freezes what survives it
(``gc.freeze``: the modules, settings and pooled engines a server keeps for its whole life,
which no collection could free anyway); later ones walk only what requests left, about 0.2 ms.
``malloc_trim`` costs well under a millisecond when there is little to give back. It is
glibc's: with another C library (musl, macOS) only the collection runs.
"""

from __future__ import annotations

import ctypes
import gc
from collections.abc import Callable
from typing import Final


def _find_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None)
    except OSError:
        return None
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    function: Callable[[int], int] = trim
    return function


_MALLOC_TRIM: Final = _find_malloc_trim()
_frozen = False


def release_free_memory() -> bool:
    """Collect garbage cycles (freezing the survivors the first time), then trim the heap.

    True if glibc gave pages back (always False without glibc).
    """
    global _frozen
    gc.collect()
    if not _frozen:
        gc.freeze()
        _frozen = True
    if _MALLOC_TRIM is None:
        return False
    return bool(_MALLOC_TRIM(0))


__all__ = ["release_free_memory"]
