"""``littrack serve`` and ``littrack status``: APScheduler cron jobs that call the pipeline.

The scheduler only schedules: each job calls ``pipeline.run`` for its source (and topics),
under the same data-directory lock as ``littrack run`` from system cron, so the two can be
mixed on one machine without ever writing at the same time. Why it is shaped this way:

* **Crontab meaning, not APScheduler's.** Schedules are standard 5-field crontab lines.
  APScheduler 3's ``CronTrigger.from_crontab`` numbers weekdays from Monday = 0 and ANDs
  day-of-month with day-of-week; cron numbers from Sunday = 0 (7 too) and ORs them when both
  are restricted. ``cron_trigger`` translates, so ``0 6 * * 1`` is Monday here as in cron.
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
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from littrack.config import Schedule, Settings
from littrack.errors import ConfigError, LittrackError, LockTimeout
from littrack.vocab import utc_stamp

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

    from littrack.pipeline import RunResult
    from littrack.store import Store

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
SOURCES = ("pubmed", "ctgov")
DEFAULT_LOCK_WAIT = 300.0  # seconds a job waits for a `littrack run` from cron to finish
DEFAULT_STOP_TIMEOUT = 60.0  # below systemd's default TimeoutStopSec of 90 s

# The @-shortcuts of Vixie cron and cronie (@reboot has no meaning for a schedule).
_MACROS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")  # cron's numbering, 0 = Sunday


def _utcnow() -> datetime:
    return datetime.now(UTC)


# ---- schedules -----------------------------------------------------------------------------
def _day_number(token: str, *, upper: bool) -> int:
    """A crontab weekday (0-7 or a name) as cron's number; Sunday ends a range as 7."""
    token = token.strip().lower()
    if token.isdigit():
        n = int(token)
        if not 0 <= n <= 7:
            raise ValueError(f"day of week {token!r} is not 0-7")
        return n
    if token[:3] in _DAY_NAMES and len(token) >= 3:
        n = _DAY_NAMES.index(token[:3])
        return 7 if (upper and n == 0) else n
    raise ValueError(f"unknown day of week {token!r}")


def crontab_weekdays(text: str) -> str:
    """A crontab day-of-week field as APScheduler's: an explicit list of day names.

    Names are the only spelling both agree on; writing the days out also makes cron's
    ``*/2`` (Sun, Tue, Thu, Sat) and wrapping ranges such as ``5-0`` mean what cron means.
    """
    if text == "*":
        return "*"
    days: set[int] = set()
    for part in text.split(","):
        span, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"step {step_text!r} must be at least 1")
        if span == "*":
            low, high = 0, 6
        elif "-" in span:
            first, last = span.split("-", 1)
            low, high = _day_number(first, upper=False), _day_number(last, upper=True)
            if high < low:
                raise ValueError(f"range {span!r} runs backwards")
        else:
            low = _day_number(span, upper=False)
            high = 7 if step_text else low  # cron reads "1/2" as "1-7/2"
        days.update(d % 7 for d in range(low, high + 1, step))
    return ",".join(_DAY_NAMES[d] for d in sorted(days))


def cron_trigger(schedule: Schedule) -> BaseTrigger:
    """The APScheduler trigger of a schedule, with standard crontab semantics."""
    from apscheduler.triggers.combining import OrTrigger
    from apscheduler.triggers.cron import CronTrigger

    expr = _MACROS.get(schedule.cron.strip().lower(), schedule.cron)
    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"expected 5 fields (minute hour day month day-of-week), "
                         f"got {len(fields)}")
    minute, hour, day, month, weekday = fields
    weekdays = crontab_weekdays(weekday)

    def make(day: str, day_of_week: str) -> CronTrigger:
        return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                           day_of_week=day_of_week, timezone=schedule.timezone)

    if not day.startswith("*") and not weekday.startswith("*"):
        # cron: "0 0 13 * FRI" is every 13th *and* every Friday.
        return OrTrigger([make(day, "*"), make("*", weekdays)])
    return make(day, weekdays)


def schedule_key(schedule: Schedule) -> str:
    """The config key a schedule came from, as error messages name it."""
    where = f"topic {schedule.topic!r}.schedule" if schedule.topic else "schedule"
    return f"{where}.{schedule.source}"


def validate_schedule(schedule: Schedule, path: Path) -> None:
    """Fail at start, naming the key and the expression, not at the first missed run."""
    try:
        cron_trigger(schedule)
    except Exception as exc:  # apscheduler raises ValueError, zoneinfo its own errors
        raise ConfigError(f"{path}: {schedule_key(schedule)}: invalid cron "
                          f"{schedule.cron!r} / timezone {schedule.timezone!r}: {exc}") from None


@dataclass(frozen=True)
class Job:
    """What one schedule runs: a source for some topics (one, for a topic's own schedule)."""

    schedule: Schedule
    topics: tuple[str, ...]

    @property
    def source(self) -> str:
        return self.schedule.source

    @property
    def id(self) -> str:
        return f"{self.source}:{self.schedule.topic}" if self.schedule.topic else self.source

    def describe(self) -> str:
        who = self.schedule.topic or f"{len(self.topics)} topic(s)"
        return f"{self.source} {who} at '{self.schedule.cron}' ({self.schedule.timezone})"


def plan_jobs(settings: Settings) -> list[Job]:
    """One job per schedule; a topic's own schedule overrides the source-wide one for it."""
    own = {(s.topic, s.source) for s in settings.schedules if s.topic}
    jobs: list[Job] = []
    for sched in settings.schedules:
        if sched.topic:
            topic = settings.topic(sched.topic)
            if not topic.has(sched.source):
                raise ConfigError(f"{settings.config_path}: {schedule_key(sched)}: topic "
                                  f"{topic.name!r} has no [topics.{sched.source}] query")
            jobs.append(Job(sched, (topic.name,)))
            continue
        names = tuple(t.name for t in settings.topics
                      if t.has(sched.source) and (t.name, sched.source) not in own)
        if names:
            jobs.append(Job(sched, names))
        else:
            log.debug("%s: no topic left for this schedule", schedule_key(sched))
    return jobs


def parse_stamp(text: str | None) -> datetime | None:
    """A store timestamp ('2026-01-05T06:00:12Z') as an aware datetime."""
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def last_success(store: Store, job: Job) -> datetime | None:
    """When the job last succeeded for *all* its topics (None if one never did)."""
    stamps = [parse_stamp(store.last_success_at(job.source, t)) for t in job.topics]
    if not stamps or any(s is None for s in stamps):
        return None
    return min(s for s in stamps if s is not None)


def is_due(trigger: BaseTrigger, last_ok: datetime | None, now: datetime) -> bool:
    """Whether a slot passed since the last success: the catch-up test, with an injected now.

    Comparing slots rather than a "period" keeps irregular schedules right (weekdays only,
    the 1st of the month) and makes ten missed slots one catch-up, like one missed slot.
    Timestamps have whole seconds, so a run that ended in the slot's second covered it.
    """
    if last_ok is None:
        return True
    slot = trigger.get_next_fire_time(None, last_ok + timedelta(seconds=1))
    return slot is not None and slot <= now


def next_fire(trigger: BaseTrigger, now: datetime) -> datetime | None:
    """The first slot at or after ``now``."""
    result: datetime | None = trigger.get_next_fire_time(None, now)
    return result


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
        make = trigger_for or (lambda job: cron_trigger(job.schedule))
        self.triggers: dict[str, BaseTrigger] = {job.id: make(job) for job in self.jobs}
        if run is None:
            from littrack.pipeline import run as pipeline_run

            run = pipeline_run
        self._run = run
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
        if not self.settings.db_path.exists():
            return list(self.jobs)
        from littrack.store import Store

        now = self.clock()
        with Store(self.settings.db_path) as store:
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
        self.scheduler.start()

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


# ---- status --------------------------------------------------------------------------------
MAIN_COUNTS = ("articles", "trials", "topic_matches", "runs", "article_changes",
               "trial_changes", "trial_publication_links", "missing_records", "raw_records")


def status(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Per topic and source: last run, watermark, next slot; plus table row counts.

    Read-only and lock-free (SQLite WAL lets it read while a run writes), so it answers
    while ``serve`` or a cron run is busy. A missing database is reported, not created.
    """
    now = now or _utcnow()
    jobs = {(t, job.source): job for job in plan_jobs(settings) for t in job.topics}
    pairs = [(t.name, s) for t in settings.topics for s in SOURCES if t.has(s)]
    last: dict[tuple[str, str], dict[str, Any]] = {}
    marks: dict[tuple[str, str], dict[str, Any]] = {}
    counts: dict[str, int] = {}
    db = settings.db_path
    if db.exists():
        from littrack.store import Store

        with Store(db) as store:
            last = {(r["topic"], r["source"]): r for r in store.last_runs()}
            marks = {(r["topic"], r["source"]): r for r in store.watermarks()}
            counts = store.counts()
    pairs += sorted(k for k in (set(last) | set(marks)) if k not in pairs)
    rows = []
    for topic, source in pairs:
        job = jobs.get((topic, source))
        run = dict(last.get((topic, source)) or {}) or None
        last_ok = run.pop("last_ok_at", None) if run else None
        for key in ("topic", "source"):
            if run:
                run.pop(key, None)
        mark = dict(marks[(topic, source)]) if (topic, source) in marks else None
        if mark:
            mark.pop("topic", None)
            mark.pop("source", None)
        trigger = cron_trigger(job.schedule) if job else None
        nxt = next_fire(trigger, now) if trigger else None
        rows.append({
            "topic": topic, "source": source,
            "in_config": any(t.name == topic and t.has(source) for t in settings.topics),
            "schedule": {"job": job.id, "cron": job.schedule.cron,
                         "timezone": job.schedule.timezone} if job else None,
            "next_run": nxt.isoformat() if nxt else None,
            "overdue": bool(trigger and is_due(trigger, parse_stamp(last_ok), now)),
            "last_run": run, "last_ok_at": last_ok, "watermark": mark,
        })
    return {"config": str(settings.config_path), "database": str(db),
            "database_exists": db.exists(), "now": utc_stamp(now),
            "topics": rows, "counts": counts}


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def format_status(report: dict[str, Any]) -> str:
    """``status`` for people: one line per topic and source, errors underneath, counts."""
    out = [f"config {report['config']}; database {report['database']}"
           + ("" if report["database_exists"] else " (not created yet: no run so far)")]
    head = (f"{'topic':<28} {'source':<6} {'last run (UTC)':<20} {'outcome':<7} "
            f"{'found':>5} {'new':>5} {'upd':>4} {'req':>4}  {'watermark':<10}  next run")
    out.append(head)
    for row in report["topics"]:
        run = row["last_run"] or {}
        nxt = "not scheduled"
        if row["next_run"] and row["schedule"]:
            nxt = f"{row['next_run'][:16].replace('T', ' ')} {row['schedule']['timezone']}"
        if row["overdue"]:
            nxt += " (overdue)"
        if not row["in_config"]:
            # "(linked)": records linked from tracked ones, fetched by every run
            nxt = "with every run" if row["topic"].startswith("(") else "not in the config"
        mark = (row["watermark"] or {}).get("watermark")
        when = run.get("finished_at") or run.get("started_at")
        out.append(
            f"{row['topic']:<28} {row['source']:<6} {_cell(when):<20} "
            f"{_cell(run.get('status')):<7} {_cell(run.get('n_found')):>5} "
            f"{_cell(run.get('n_new')):>5} {_cell(run.get('n_updated')):>4} "
            f"{_cell(run.get('n_requests')):>4}  {_cell(mark):<10}  {nxt}")
        if run.get("error"):
            out.append(f"    error: {run['error']}")
        if run.get("status") != "ok" and row["last_ok_at"]:
            out.append(f"    last success: {row['last_ok_at']}")
    counts = report["counts"]
    if counts:
        out.append("rows: " + ", ".join(f"{name} {counts[name]}" for name in MAIN_COUNTS
                                        if name in counts))
    return "\n".join(out)
