"""A second process for pure, CPU-bound work, so it runs beside the storing thread.

CPython runs one thread's Python code at a time, and parsing an EFetch reply is Python code:
on a thread beside the store it would only take turns with it. A first backfill of
thousands of records is CPU-bound (with an API key, replies arrive faster than one core
parses and stores them), and a machine has a second core: a ``SideProcess`` runs the parser
there while the main process downloads, stores and commits.

* **spawned**, not forked: the parent has threads (downloads, searches run ahead), and a
  fork copies their locks in whatever state they are;
* **deaf to SIGINT and SIGTERM**: a stop is the parent's to decide (it rolls back and shuts
  the process down); a terminal's Ctrl-C reaches the whole process group. It ends itself
  when its parent is gone (killed), within half a second;
* **sharing the work**: it takes a job only while fewer than ``max_queued`` wait or run
  there. ``SharedJobs`` hands it numbered jobs as their inputs arrive, and the caller does
  the ones still waiting when it is free: the two split the work in whatever proportion
  keeps both busy (the caller also stores, so it takes fewer), and the caller never waits
  for a job it could have started;
* **files, not pipes**, for megabytes (``submit_bytes``): a pipe would carry a reply 64 KB
  at a time, each step needing the GIL the storing thread holds; the caller keeps no copy
  of what it sent (a failed job's input file stays for ``input_back``);
* **never in the way**: a process that cannot start, dies, or a job that raises, leaves the
  caller to do the job itself (``outcome`` returns None), so the parent's own run of it
  raises the real error with its context; after a breakdown nothing more is sent there.

Only worth its start (a fifth of a second, and the interpreter's memory) for large jobs:
the caller decides (``PubMed`` uses one for a fetch of several batches).
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import multiprocessing
import os
import pickle
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Generic, TypeVar

from littrack.memory import collector_paused, hand_back_large_blocks

log = logging.getLogger(__name__)

T = TypeVar("T")


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; a container's CPU set)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        return os.cpu_count() or 1


# How often the side process looks whether its parent is still there.
PARENT_CHECK_EVERY = 0.5


def _start(warm: str | None, parent: int, folder: str) -> None:
    """Runs first in the side process: leave stopping to the parent, but not outlive it;
    give large blocks back; import ahead."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    hand_back_large_blocks()  # (a reply is 6 MB: see memory.py)
    threading.Thread(target=_exit_with, args=(parent, folder), daemon=True,
                     name="parent-watch").start()
    if warm:
        importlib.import_module(warm)


def _exit_with(parent: int, folder: str) -> None:
    """End this process once its parent is gone (killed, say): the executor's queue would
    never tell, since this process holds both ends of that pipe itself. The parent's
    files in transit go too."""
    while os.getppid() == parent:
        time.sleep(PARENT_CHECK_EVERY)
    shutil.rmtree(folder, ignore_errors=True)
    os._exit(0)


# The side process's files cross in ``<temp dir>/littrack-side-<parent pid>-<random>``.
FOLDER_PREFIX = "littrack-side-"


def _sweep_orphans() -> None:
    """Remove the folders of side processes whose parent is gone.

    A parent killed before its side process started (which would have removed the folder
    on noticing) leaves its folder behind; the next littrack to start one clears it.
    """
    if os.name != "posix":  # (os.kill(pid, 0) asks after a process only there)
        return
    temp = tempfile.gettempdir()
    try:
        names = os.listdir(temp)
    except OSError:
        return
    for name in names:
        pid = name[len(FOLDER_PREFIX):].split("-", 1)[0]
        if not name.startswith(FOLDER_PREFIX) or not pid.isdigit():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            shutil.rmtree(os.path.join(temp, name), ignore_errors=True)
        except OSError:  # alive under another user (PermissionError), or unknowable
            continue


def _through_files(fn: Callable[[bytes], Any], path: str) -> str:
    """Runs over there: ``fn`` on the bytes in ``path``; the result pickled beside it."""
    with open(path, "rb") as fh:
        data = fh.read()
    result = fn(data)
    os.unlink(path)  # (kept when ``fn`` fails: the parent takes its input back)
    out = path[:-len(".in")] + ".out"
    with open(out, "wb") as fh:
        pickle.dump(result, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return out


class SideProcess:
    """One spawned worker process, started on first use, for jobs a caller could do itself.

    ``warm`` names a module the process imports as it starts, so the first job does not
    wait for it. ``what`` names the work in the one log line a breakdown earns.
    """

    def __init__(self, what: str, warm: str | None = None, max_queued: int = 2) -> None:
        self.what = what
        self.warm = warm
        self.max_queued = max_queued
        self._pool: ProcessPoolExecutor | None = None
        self._folder: str | None = None  # where submit_bytes's files cross
        # Jobs being sent, and jobs sent whose done callback has not run yet (callers submit
        # from several threads). ``queued`` counts those not done: a caller that sees a job
        # done sees the room it left, before its callback runs.
        self._sending = 0
        self._live: set[Future[Any]] = set()
        self._lock = threading.Lock()
        self._start_lock = threading.Lock()
        self.broken = False
        self.jobs = 0  # jobs sent over (``start``'s not counted), for the figures
        self._inputs: dict[Future[str], str] = {}  # submit_bytes's input files, by job
        self._standby: list[SharedJobs[Any]] = []  # held ones, offered it when idle

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T] | None:
        """Start ``fn(*args)`` over there; None when the caller should do it itself."""
        return self._send(fn, args, counted=True)

    def _send(self, fn: Callable[..., T], args: tuple[Any, ...],
              counted: bool) -> Future[T] | None:
        with self._lock:
            if self.broken or self._busy() >= self.max_queued:
                return None
            self._sending += 1
            self.jobs += counted
        try:
            future = self._started().submit(fn, *args)
        except (BrokenProcessPool, OSError, RuntimeError) as exc:
            with self._lock:
                self._sending -= 1
            self._break(exc)
            return None
        with self._lock:
            self._sending -= 1
            self._live.add(future)
        future.add_done_callback(self._finished)
        return future

    def _busy(self) -> int:
        return self._sending + sum(not f.done() for f in self._live)

    @property
    def standby(self) -> list[SharedJobs[Any]]:
        """Held ``SharedJobs`` that may use the process while it has nothing queued."""
        with self._lock:
            return list(self._standby)

    def stand_by(self, jobs: SharedJobs[Any]) -> None:
        with self._lock:
            self._standby.append(jobs)

    def withdraw(self, jobs: SharedJobs[Any]) -> None:
        with self._lock:
            if jobs in self._standby:
                self._standby.remove(jobs)

    def offer_idle(self) -> None:
        """Nothing queued: each held caller on standby may send one job ahead."""
        if not self.queued:
            for jobs in self.standby:
                jobs.offer()

    def _started(self) -> ProcessPoolExecutor:
        with self._start_lock:
            if self._pool is None:
                if self._folder is None:
                    _sweep_orphans()
                    self._folder = tempfile.mkdtemp(prefix=f"{FOLDER_PREFIX}{os.getpid()}-")
                self._pool = ProcessPoolExecutor(
                    max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_start, initargs=(self.warm, os.getpid(), self._folder))
            return self._pool

    @property
    def queued(self) -> int:
        """Jobs sent over and not finished."""
        with self._lock:
            return self._busy()

    @property
    def started(self) -> bool:
        """Whether the process was started (and is not closed)."""
        return self._pool is not None

    def start(self) -> None:
        """Start the process now (a job of nothing), so it is ready when work arrives."""
        self._send(os.getpid, (), counted=False)

    def submit_bytes(self, fn: Callable[[bytes], Any], data: bytes) -> Future[str] | None:
        """``fn(data)`` over there, the data and the pickled result crossing in files.

        A pipe carries megabytes 64 KB at a time, and every step on this side needs the GIL,
        which the storing thread holds most of the time: the side process would wait on a
        half-sent reply or a half-read result. A file is written in one call that lets go
        of the GIL. Read the result with ``outcome_file``.
        """
        with self._lock:
            if self.broken or self._busy() >= self.max_queued:
                return None  # (before writing the file for nothing)
        try:
            self._started()
        except (OSError, RuntimeError) as exc:
            self._break(exc)
            return None
        fd, path = tempfile.mkstemp(dir=self._folder, suffix=".in")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        future = self.submit(_through_files, fn, path)
        if future is None:
            os.unlink(path)
        else:
            self._inputs[future] = path
        return future

    def input_back(self, future: Future[str]) -> bytes | None:
        """The input of a ``submit_bytes`` job that failed (``outcome_file`` gave None), for
        the caller to do it itself without keeping a copy meanwhile; None if it is gone."""
        path = self._inputs.pop(future, None)
        if path is None:
            return None
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError:
            return None
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)

    def outcome_file(self, future: Future[str] | None) -> Any:
        """The result of a ``submit_bytes`` job; None as for ``outcome``."""
        path = self.outcome(future)
        if path is None:
            return None
        if future is not None:
            self._inputs.pop(future, None)  # (read and removed over there)
        try:
            with open(path, "rb") as fh, collector_paused():
                return pickle.load(fh)
        finally:
            os.unlink(path)

    def _finished(self, future: Future[Any]) -> None:
        with self._lock:
            self._live.discard(future)

    def outcome(self, future: Future[T] | None) -> T | None:
        """The job's result; None when it was not sent, or failed there for any reason."""
        if future is None:
            return None
        try:
            return future.result()
        except BrokenProcessPool as exc:
            self._break(exc)
        except Exception:  # noqa: BLE001 - the caller's own run raises it with its context
            log.debug("%s in the side process failed; done in this process", self.what,
                      exc_info=True)
        return None

    def _break(self, exc: BaseException) -> None:
        with self._lock:
            already, self.broken = self.broken, True
        if not already:
            log.warning("%s: the side process is unavailable (%s); continuing in this "
                        "process", self.what, exc or type(exc).__name__)

    def close(self) -> None:
        """Stop the process: jobs not started are dropped, a running one is waited for."""
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None
        self._inputs.clear()

    def __enter__(self) -> SideProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SharedJobs(Generic[T]):
    """Jobs numbered 0 … ``total`` - 1, each done either by the side process or by the
    caller, whichever is free first, and consumed by the caller as they are done.

    Inputs arrive from any thread (``ready``); the side process is fed the lowest-numbered
    waiting ones while it has room. The caller, each time it comes round, collects a job
    the side process has ``finished``, or else ``claim``s a waiting one and does it itself
    (the last-numbered: the furthest from the side process's turn), or else waits for one
    of the two (``running``). Neither side ever waits while the other holds work it could
    start; the order in which jobs come out is whatever keeps both busy (a consumer that
    needs them in order would wait for the slower side at every turn).

    The last job is not queued behind a busy side process: the caller, free sooner, does
    it, and the run does not end waiting for one process alone.

    Jobs made ``held`` (work started ahead: the next topic's replies) wait here while the
    side process has other work, and go over one at a time whenever it falls idle: when
    one of their inputs arrives, or when another caller's jobs leave it with nothing to do
    (``SideProcess.standby``). Sent earlier, they would crowd out the work due now; kept
    until ``release``, they left the second core idle through the end of one topic and
    the next one's first reply parsed here (a backfill of three topics with 0.5 s a
    request: the two later topics took 5.37 s instead of 5.95, medians of ten A/B runs).
    """

    def __init__(self, side: SideProcess, fn: Callable[[bytes], T], total: int, *,
                 held: bool = False) -> None:
        self.side = side
        self.fn = fn
        self.total = total
        self.held = held  # inputs go over only to an idle side process until ``release``
        self._lock = threading.Lock()
        self._waiting: dict[int, bytes] = {}
        self._sent: dict[int, Future[str]] = {}
        self._given = 0  # jobs sent over or kept by the caller
        self._mine: set[int] = set()
        if held:
            side.stand_by(self)

    def ready(self, i: int, arg: bytes) -> bool:
        """Job ``i``'s input has arrived: True when this object holds it now (waiting, or
        sent over), False when it is the caller's (``keep``)."""
        with self._lock:
            if i in self._mine:
                return False
            self._waiting[i] = arg
            self._feed()
            return True

    def release(self) -> None:
        """Send inputs to the side process whenever it has room (made ``held``: only
        while it is idle, for work started ahead, not to crowd out what is due now)."""
        self.withdraw()
        with self._lock:
            self.held = False
            self._feed()

    def keep(self, i: int) -> None:
        """Job ``i`` is the caller's (its input is not sent over when it arrives)."""
        with self._lock:
            if i not in self._mine:
                self._mine.add(i)
                self._given += 1
            self._waiting.pop(i, None)

    def finished(self) -> tuple[int, Future[str]] | None:
        """The lowest-numbered job the side process has finished, handed over (its result:
        ``result``); None when none is. Waiting inputs go over to any room it has left."""
        with self._lock:
            self._feed()
            for j in sorted(self._sent):
                if self._sent[j].done():
                    return j, self._sent.pop(j)
            return None

    def claim(self) -> tuple[int, bytes] | None:
        """The last-numbered job still waiting, now the caller's; None when none waits."""
        with self._lock:
            if not self._waiting:
                return None
            j = max(self._waiting)
            self._mine.add(j)
            self._given += 1
            return j, self._waiting.pop(j)

    def running(self) -> list[Future[str]]:
        """The jobs over there not yet handed over (to wait for one of them)."""
        with self._lock:
            return list(self._sent.values())

    def result(self, future: Future[str]) -> tuple[T | None, bytes | None]:
        """What a job done over there gave, or (None, its input) when it failed there: the
        caller does it after all (input None: lost, the caller fetches it again)."""
        result: T | None = self.side.outcome_file(future)
        if result is not None:
            return result, None
        return None, self.side.input_back(future)

    def _feed(self) -> None:
        if self.held:
            if not self.side.queued:  # idle over there: one job ahead, not an idle core
                self._send_over(min(self._waiting, default=None))
            return
        for j in sorted(self._waiting):
            if self.total - self._given <= 1 and self.side.queued:
                return  # the last job, and the side process busy: the caller's to take
            if not self._send_over(j):
                return
        self.side.offer_idle()  # (none of ours left waiting)

    def offer(self) -> None:
        """The side process fell idle under another caller's jobs: send one of these ahead."""
        with self._lock:
            if self.held:
                self._feed()

    def withdraw(self) -> None:
        """No more of these go over ahead (their caller is closing)."""
        self.side.withdraw(self)

    def _send_over(self, j: int | None) -> bool:
        if j is None:
            return False
        future = self.side.submit_bytes(self.fn, self._waiting[j])
        if future is None:
            return False
        self._sent[j] = future
        self._given += 1
        del self._waiting[j]
        return True
