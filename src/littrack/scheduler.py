"""``littrack serve``: APScheduler cron jobs that call the pipeline.

The scheduler only schedules: each job calls ``pipeline.run`` for its source (and topics),
under the same data-directory lock as ``littrack run`` from system cron, so the two can be
mixed on one machine without ever writing at the same time. Why it is shaped this way:

* **Crontab meaning, not APScheduler's**: ``littrack.crontab`` translates the lines.
* **One job per schedule**; a ``[topics.schedule.<source>]`` takes its topic out of the
  source-wide job. Jobs never overlap: one worker thread, ``max_instances=1``, and missed
  slots (a suspended laptop, a long run) are coalesced into one run.
* **Catch-up once, from the store.** The job store is in memory, so what was missed while
  the service was down is read from the ``runs`` table: a job whose first slot after its last
  successful run has passed runs once at start, however many slots it missed.
* **Busy is not an error.** A job that cannot get the data-dir lock within ``lock_wait``
  logs and skips; the next slot (or the next start's catch-up) picks the work up.
* **Stopping is cooperative.** SIGTERM/SIGINT set the pipeline's stop event: the running
  topic rolls back at its next batch boundary, nothing new starts, the lock is released.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from littrack.config import Settings
from littrack.crontab import cron_trigger, is_due, next_fire
from littrack.errors import ConfigError, LittrackError, LockTimeout
from littrack.jobs import Job, last_success, plan_jobs
from littrack.pipeline import RunResult
from littrack.pipeline import run as pipeline_run
from littrack.store import Store

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
DEFAULT_LOCK_WAIT = 300.0  # seconds a job waits for a `littrack run` from cron to finish
DEFAULT_STOP_TIMEOUT = 60.0  # below systemd's default TimeoutStopSec of 90 s

def _utcnow() -> datetime:
    return datetime.now(UTC)


# ---- the service ---------------------------------------------------------------------------
@dataclass
class Outcome:
    """What one firing of a job did, for logs and tests."""

    job_id: str
    reason: str  # "catch-up", "once-now" or "scheduled"
    result: RunResult | None = None
    skipped: str | None = None  # why it did not run (busy, stopping, an error)


@dataclass
class _Done:
    outcomes: list[Outcome] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)


class Service:
    """The APScheduler side of ``littrack serve``, without signals or exit codes (testable).

    ``trigger_for`` replaces the cron triggers (tests drive jobs with second-level interval
    triggers), ``run`` the pipeline entry point, and ``clock`` the "now" of catch-up
    decisions (tests inject days of downtime without waiting for them).
    """

    def __init__(self, settings: Settings, *, stop: threading.Event | None = None,
                 lock_wait: float = DEFAULT_LOCK_WAIT, clock: Clock = _utcnow,
                 trigger_for: Callable[[Job], BaseTrigger] | None = None,
                 run: Callable[..., RunResult] | None = None) -> None:
        from apscheduler.events import EVENT_JOB_EXECUTED
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self.settings = settings
        self.stop = stop or threading.Event()
        self.lock_wait = lock_wait
        self.clock = clock
        self.jobs = plan_jobs(settings)
        make = trigger_for or (lambda job: cron_trigger(job.schedule.cron,
                                                            job.schedule.timezone))
        self.triggers: dict[str, BaseTrigger] = {job.id: make(job) for job in self.jobs}
        self._run = run or pipeline_run
        self._first: dict[str, str] = {}  # job id -> why its first firing is immediate
        self._idle = threading.Event()
        self._idle.set()
        self._done = _Done()
        # One worker: jobs queue behind each other instead of contending for the lock.
        self.scheduler = BackgroundScheduler(
            timezone=UTC, executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None})
        self.scheduler.add_listener(self._executed, EVENT_JOB_EXECUTED)

    @property
    def outcomes(self) -> list[Outcome]:
        with self._done.cond:
            return list(self._done.outcomes)

    def due_now(self) -> list[Job]:
        """Jobs whose last success predates their latest slot (all, on a fresh data dir)."""
        if not self.settings.shared_store and not self.settings.db_path.exists():
            return list(self.jobs)
        now = self.clock()
        with Store(self.settings.store_location) as store:
            return [j for j in self.jobs
                    if is_due(self.triggers[j.id], last_success(store, j), now)]

    def start(self, *, once_now: bool = False) -> None:
        """Add one job per schedule; catch-up (or ``once_now``) jobs fire immediately."""
        due = list(self.jobs) if once_now else self.due_now()
        self._first = {j.id: "once-now" if once_now else "catch-up" for j in due}
        now = datetime.now(UTC)  # APScheduler's own clock, whatever self.clock says
        for job in self.jobs:
            first = self._first.get(job.id)
            when = now if first else next_fire(self.triggers[job.id], now)
            log.info("schedule %s: %s; first run %s", job.id, job.describe(),
                     f"now ({first})" if first else when.isoformat() if when else "never")
            extra: dict[str, Any] = {"next_run_time": now} if first else {}
            self.scheduler.add_job(self._fire, self.triggers[job.id], args=[job], id=job.id,
                                   name=job.describe(), **extra)
        self._add_digest_jobs(now, once_now)
        self.scheduler.start()

    def _add_digest_jobs(self, now: datetime, once_now: bool) -> None:
        """One job per daily/weekly [[notify]] digest; one that missed its slot fires now."""
        digests = [e for e in self.settings.notify if e.when != "after-run"]
        if not digests:
            return
        due: set[str] = {e.name for e in digests} if once_now else set()
        if not once_now and self.settings.db_path.exists():
            from littrack.notify import is_due
            from littrack.store import Store

            with Store(self.settings.db_path) as store:
                due = {e.name for e in digests if is_due(store, e, self.clock())}
        for entry in digests:
            schedule = entry.schedule()
            trigger = cron_trigger(schedule.cron, schedule.timezone)
            extra: dict[str, Any] = {"next_run_time": now} if entry.name in due else {}
            log.info("notify %s: %s digest at %s (%s)%s", entry.name, entry.when, entry.at,
                     entry.timezone, "; catching up now" if entry.name in due else "")
            self.scheduler.add_job(self._digest, trigger, args=[entry.name],
                                   id=f"notify:{entry.name}", name=f"notify {entry.name}",
                                   **extra)

    def _digest(self, name: str) -> None:
        """A digest's slot: deliver that entry (never raises; failures are logged)."""
        if self.stop.is_set():
            return
        from littrack.notify import deliver

        try:
            deliver(self.settings, names=[name], lock_timeout=self.lock_wait)
        except LittrackError as exc:
            log.warning("notify %s: not delivered now (%s); the next slot catches up",
                        name, exc)
        except Exception:  # a bug: keep serving the other schedules
            log.exception("notify %s: unexpected error", name)

    def next_run_time(self, job_id: str) -> datetime | None:
        job = self.scheduler.get_job(job_id)
        return job.next_run_time if job is not None else None

    def _fire(self, job: Job) -> Outcome:
        """Run one job; never raises (APScheduler would only log it less clearly)."""
        reason = self._first.pop(job.id, "scheduled")
        outcome = Outcome(job.id, reason)
        self._idle.clear()  # before the stop check, so shutdown() cannot miss this run
        if self.stop.is_set():
            self._idle.set()
            outcome.skipped = "stopping"
            return outcome
        started = time.monotonic()
        try:
            log.info("%s: starting %s run of %s", job.id, reason, ", ".join(job.topics))
            outcome.result = self._run(self.settings, topics=job.topics, sources=[job.source],
                                       stop=self.stop, lock_timeout=self.lock_wait)
        except LockTimeout as exc:
            outcome.skipped = f"busy: {exc}"
            log.warning("%s: skipped, the data directory is busy: %s", job.id, exc)
        except LittrackError as exc:
            outcome.skipped = f"error: {exc}"
            log.error("%s: run failed: %s", job.id, exc)
        except Exception as exc:  # a bug: keep serving the other schedules
            outcome.skipped = f"internal error: {exc!r}"
            log.exception("%s: unexpected error", job.id)
        else:
            if outcome.result is not None and not outcome.result.stopped \
                    and self.settings.notify:
                from littrack.notify import after_run

                after_run(self.settings, lock_timeout=self.lock_wait)
        finally:
            self._idle.set()
            state = ("stopped" if outcome.result and outcome.result.stopped
                     else "skipped" if outcome.skipped else "done")
            when = None if self.stop.is_set() else self.next_run_time(job.id)
            log.info("%s: %s after %.1fs%s", job.id, state, time.monotonic() - started,
                     f"; next run {when.isoformat()}" if when else "")
        return outcome

    def _executed(self, event: Any) -> None:
        """APScheduler's "job executed" event: by then the job's instance is released."""
        if isinstance(event.retval, Outcome):
            with self._done.cond:
                self._done.outcomes.append(event.retval)
                self._done.cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> list[Outcome]:
        """Block until ``count`` firings finished (or the timeout); return them all."""
        with self._done.cond:
            self._done.cond.wait_for(lambda: len(self._done.outcomes) >= count, timeout)
            return list(self._done.outcomes)

    def shutdown(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> bool:
        """Stop scheduling, let the running topic finish or roll back; False on timeout."""
        self.stop.set()
        if self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        return self._idle.wait(timeout)


def serve(settings: Settings, *, stop: threading.Event, once_now: bool = False,
          lock_wait: float = DEFAULT_LOCK_WAIT,
          stop_timeout: float = DEFAULT_STOP_TIMEOUT) -> bool:
    """Serve in the foreground until ``stop`` is set; False if a run outlived stop_timeout."""
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        # APScheduler logs each firing twice at INFO; littrack's own lines say more, once.
        # Its warnings (a slot skipped because the job still runs) stay visible.
        logging.getLogger("apscheduler").setLevel(logging.WARNING)
    service = Service(settings, stop=stop, lock_wait=lock_wait)
    if not service.jobs:
        raise ConfigError(f"{settings.config_path}: no schedule to serve: add a "
                          f"[schedule.pubmed] or [schedule.ctgov] table with a cron line")
    service.start(once_now=once_now)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        log.info("stopping: no new runs; waiting up to %gs for the current one", stop_timeout)
        clean = service.shutdown(stop_timeout)
    return clean
