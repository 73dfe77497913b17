"""One writer per data directory, across processes (``littrack run`` from cron and ``serve``).

An ``flock`` on ``<data_dir>/.littrack.lock``: the kernel drops it when the holding process
dies, however it dies, so a killed run never leaves a stale lock behind. The file records the
holder's pid and start time only to make the "busy" message useful.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from littrack.errors import LockTimeout
from littrack.vocab import utc_now

POLL_SECONDS = 0.2


class DataDirLock:
    """Context manager; waits up to ``timeout`` seconds, then raises LockTimeout."""

    def __init__(self, data_dir: Path, timeout: float = 0.0) -> None:
        self.path = Path(data_dir) / ".littrack.lock"
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
                    os.close(fd)
                    raise LockTimeout(
                        f"{self.path.parent}: another littrack is running "
                        f"({holder or 'unknown holder'}); waited {self.timeout:g}s. "
                        f"Try again later or raise --wait.") from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()} since {utc_now()}".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
