"""Run ``python -m MODULE ARGS…`` and write its peak RSS (MB) to a file when it exits.

``ru_maxrss`` of a child also counts what its parent had when it forked (the benchmark
parent holds whole corpora in its fakes), so the peak is read from the child's own
``/proc/self/status`` (``VmHWM``, reset by exec) instead. A second figure is the largest
peak among the processes littrack itself started and ended (its parser process), so a
run's memory is not understated by work moved out of the main process.

    python bench/peak_rss.py OUT_FILE MODULE|SCRIPT.py ARGS...
"""

from __future__ import annotations

import atexit
import runpy
import sys
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


if __name__ == "__main__":
    out, module, *rest = sys.argv[1:]
    atexit.register(lambda: Path(out).write_text(f"{vm_hwm_mb():.1f} {children_mb():.1f}\n"))
    sys.argv = [module, *rest]
    if module.endswith(".py"):
        runpy.run_path(module, run_name="__main__")
    else:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
