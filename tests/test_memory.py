"""The allocator settings of littrack's own processes (``littrack.memory``).

Each case runs in a fresh interpreter: the allocator's state is process-wide, and this
test process has its own history of large blocks.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from littrack.memory import _glibc

# Allocates and frees an 8 MB block three times; prints the resident MB before, during
# and after each (the block is written to, so its pages are resident).
CHURN = """
import sys
from littrack.memory import hand_back_large_blocks
if sys.argv[1] == "set":
    hand_back_large_blocks()
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
base = rss()
for _ in range(3):
    block = bytearray(8_000_000)
    block[::4096] = b"x" * len(block[::4096])
    during = rss()
    del block
    print(base, during, rss())
"""


needs_glibc = pytest.mark.skipif(
    _glibc("mallopt") is None or not os.path.exists("/proc/self/status"),
    reason="glibc's mallopt and /proc only")


def churn(mode: str, **env: str) -> list[tuple[float, float, float]]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True,
                         check=True, env={**clean, **env})
    rows = [tuple(float(x) for x in line.split()) for line in out.stdout.splitlines()]
    return [(a, b, c) for a, b, c in rows]


def kept(rows: list[tuple[float, float, float]]) -> list[bool]:
    """For each round, whether the freed block stayed resident (more than half of it)."""
    return [after - base > 4 for base, _, after in rows]


@needs_glibc
def test_freed_large_blocks_go_back_to_the_system() -> None:
    """Without the setting glibc keeps the second 8 MB block once the first was freed
    (the threshold follows the freed block up); with it, every one goes back."""
    assert all(during - base > 6 for base, during, _ in churn("set"))  # (the block is there)
    assert kept(churn("plain"))[1:] == [True, True]
    assert kept(churn("set")) == [False, False, False]


@needs_glibc
def test_a_threshold_set_by_the_user_stays() -> None:
    """``MALLOC_MMAP_THRESHOLD_`` in the environment is the user's choice: left alone (here
    16 MB, with freed heap kept up to 64 MB: the 8 MB blocks stay)."""
    assert kept(churn("set", MALLOC_MMAP_THRESHOLD_=str(16 << 20),
                      MALLOC_TRIM_THRESHOLD_=str(64 << 20))) == [True, True, True]
