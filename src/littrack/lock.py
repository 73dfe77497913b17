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

from littrack.errors import DataDirError, LockTimeout
from littrack.vocab import utc_now

POLL_SECONDS = 0.2


def require_folder(data_dir: Path) -> None:
    """A file where the data directory (or a folder above it) should be, named as such: a
    reader would otherwise say "no database here", a writer fail on a lower-level error."""
    for p in (data_dir, *data_dir.parents):
        if p.exists():
            if not p.is_dir():
                raise DataDirError(f"{data_dir}: data directory is a file, not a folder"
                                   if p == data_dir else
                                   f"{data_dir}: data directory cannot be used: {p} is a file")
            return


def open_lock_file(data_dir: Path) -> int:
    """The lock file's descriptor, or one clear ``DataDirError`` for a data directory that
    cannot be written (a file in its place, no permission, a read-only file system)."""
    data_dir = Path(data_dir)
    require_folder(data_dir)
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(data_dir / ".littrack.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise DataDirError(f"{data_dir}: data directory cannot be written: "
                           f"{exc.strerror or exc}") from None
    db = data_dir / "littrack.sqlite"
    if db.exists() and not os.access(db, os.W_OK):
        os.close(fd)
        raise DataDirError(f"{db}: the store is read-only for this user")
    return fd


def check_writable(data_dir: Path) -> None:
    """Fail now, with one line, if a writer could not use ``data_dir`` (``serve`` checks
    before it starts its schedules, not in a job hours later)."""
    os.close(open_lock_file(data_dir))


def is_held(data_dir: Path) -> bool:
    """Whether some process holds the data directory now (a read-only probe: a user who may
    only read the folder can ask, and a run that dies releases the lock with it)."""
    try:
        fd = os.open(Path(data_dir) / ".littrack.lock", os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the probe's own lock, if it got one
    return False


class DataDirLock:
    """Context manager; waits up to ``timeout`` seconds, then raises LockTimeout."""

    def __init__(self, data_dir: Path, timeout: float = 0.0) -> None:
        self.path = Path(data_dir) / ".littrack.lock"
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = open_lock_file(self.path.parent)
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
