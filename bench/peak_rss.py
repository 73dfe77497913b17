"""Run ``python -m MODULE ARGS…`` and write its peak RSS (MB) to a file when it exits.

``ru_maxrss`` of a child also counts what its parent had when it forked (the benchmark
parent holds whole corpora in its fakes), so the peak is read from the child's own
``/proc/self/status`` (``VmHWM``, reset by exec) instead. A second figure is the largest
peak among the processes littrack itself started and ended (its parser process); that
figure can include what the parent had when the child was forked, so a third one is the run's
*whole* peak: this process's and every descendant's resident sizes added up at the same
moment, sampled every 20 ms (``VmRSS`` from ``/proc``). Work moved out of the main process
is then counted, not hidden. Last, the CPU seconds of the process and of its ended children
(where the time goes when two processes share the work).

    python bench/peak_rss.py OUT_FILE MODULE|SCRIPT.py ARGS...
"""

from __future__ import annotations

import atexit
import os
import runpy
import sys
import threading
from pathlib import Path


def vm_hwm_mb() -> float:
    """This process's peak resident set size in MB (Linux), or ru_maxrss elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def vm_rss_mb() -> float:
    """This process's current resident set size in MB (Linux; 0 elsewhere)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def children_mb() -> float:
    """The largest peak RSS (MB) among this process's ended children (0 if none)."""
    import resource

    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def cpu_seconds() -> str:
    """CPU seconds (user + system) of this process and of its ended children."""
    import resource

    me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF,
                                                 resource.RUSAGE_CHILDREN))
    return f"{me.ru_utime + me.ru_stime:.2f} {kids.ru_utime + kids.ru_stime:.2f}"


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                kids = Path(f"/proc/{p}/task/{t}/children").read_text().split()
            except OSError:
                continue
            found += map(int, kids)
            todo += map(int, kids)
    return found


class Together:
    """The largest sum of this process's and its descendants' RSS, sampled in a thread."""

    def __init__(self, every: float = 0.02) -> None:
        self.peak_kb = 0
        self.every = every
        self.done = threading.Event()
        threading.Thread(target=self._sample, daemon=True, name="peak-rss").start()

    def _sample(self) -> None:
        me = os.getpid()
        while not self.done.wait(self.every):
            total = _rss_kb(me) + sum(_rss_kb(p) for p in _descendants(me))
            self.peak_kb = max(self.peak_kb, total)

    def mb(self) -> float:
        self.done.set()
        return max(self.peak_kb / 1024, vm_hwm_mb())


if __name__ == "__main__":
    out, module, *rest = sys.argv[1:]
    together = Together()
    atexit.register(lambda: Path(out).write_text(
        f"{vm_hwm_mb():.1f} {children_mb():.1f} {together.mb():.1f} {cpu_seconds()}\n"))
    sys.argv = [module, *rest]
    if module.endswith(".py"):
        runpy.run_path(module, run_name="__main__")
    else:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
