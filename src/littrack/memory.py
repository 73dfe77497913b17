"""Working with the allocator and the cyclic collector, where bulk work would fight them.

Both helpers exist for the same reason: a first run builds and drops hundreds of thousands
of small objects a batch (parsed records, their rows), which neither the collector nor
the allocator expects.
"""

from __future__ import annotations

import ctypes
import gc
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache


@contextmanager
def collector_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector (if it runs) while a bounded bulk step runs.

    Parsing a reply, or unpickling what another process parsed, makes no reference cycles,
    but the objects it accumulates would make the collector traverse them again and again
    (a quarter of the parse time; a third of an unpickle). Process-wide, so only around
    steps bounded by one batch, and put back as it was.
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def give_back_memory() -> None:
    """Return the heap's free pages to the system (glibc ``malloc_trim``; elsewhere nothing).

    A topic's batches are freed when it commits, but the allocator keeps the pages and
    the next topic, the report or an idle ``serve`` would start from that high-water mark:
    a first run's peak would grow with its largest topic. Trimming between topics keeps
    it near what one batch needs (bench/memory.py).
    """
    trim = _glibc("malloc_trim")
    if trim is not None:
        trim(0)


@cache
def _glibc(name: str) -> Callable[..., int] | None:
    """A glibc allocator function, or None (another C library)."""
    try:  # the symbols already loaded (no library search, which would start a process)
        fn: Callable[..., int] = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError, TypeError):
        return None
    return fn


# glibc's mallopt parameter, and the size from which freed blocks go back to the system
# at once: an EFetch reply of 100 records or more.
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 1 << 20


def hand_back_large_blocks() -> None:
    """Have blocks of a megabyte or more mapped on their own, so that freeing one returns it
    to the system (glibc; elsewhere nothing).

    glibc starts so, but once such a block is freed it raises the threshold to that block's
    size: from then on each 6 MB EFetch reply is carved from the heap, whose freed pages it
    keeps, and a run's peak grows with its size. A first run of 12,000 articles and 2,500
    trials peaked at 227–238 MB, 3,000 + 600 at 195–201 MB; with the threshold held, 188–199
    and 180 MB (``bench/memory.py``), in the same time within the machine's noise.

    Process-wide, so only for processes littrack owns: the command line's and its side
    process. A threshold the user set (``MALLOC_MMAP_THRESHOLD_``) stays.
    """
    mallopt = _glibc("mallopt")
    if mallopt is not None and "MALLOC_MMAP_THRESHOLD_" not in os.environ:
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
