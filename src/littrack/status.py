"""``littrack status``: per topic and source, the last run, the watermark and the next slot.

Read-only and lock-free; it plans the jobs as ``serve`` would (``littrack.jobs``) and asks
the crontab translation (``littrack.crontab``) for the next slot, without the service.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from littrack.config import Settings
from littrack.crontab import cron_trigger, is_due, next_fire
from littrack.database import parse  # names the database, never its credentials
from littrack.jobs import plan_jobs
from littrack.lock import is_held
from littrack.store import Store
from littrack.vocab import SOURCES, parse_stamp, utc_stamp

_SOURCE_WIDTH = max(map(len, SOURCES))  # columns line up for europepmc too

MAIN_COUNTS = ("articles", "trials", "topic_matches", "runs", "article_changes",
               "trial_changes", "trial_publication_links", "missing_records", "raw_records")


def status(settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """Per topic and source: last run, watermark, next slot; plus table row counts.

    Read-only and lock-free (SQLite WAL lets it read while a run writes), so it answers
    while ``serve`` or a cron run is busy. A missing database is reported, not created.
    """
    now = now or datetime.now(UTC)
    jobs = {(t, job.source): job for job in plan_jobs(settings) for t in job.topics}
    pairs = [(t.name, s) for t in settings.topics for s in SOURCES if t.has(s)]
    last: dict[tuple[str, str], dict[str, Any]] = {}
    marks: dict[tuple[str, str], dict[str, Any]] = {}
    counts: dict[str, int] = {}
    deliveries: dict[tuple[str, str], dict[str, Any]] = {}
    db = parse(settings.store_location).path or settings.db_path  # sqlite:///elsewhere too
    exists = settings.shared_store or db.exists()
    # With PostgreSQL, a 'running' row may be another worker's: never relabelled here.
    held = settings.shared_store or (db.exists() and is_held(settings.data_dir))
    if exists:
        with Store.for_reading(settings.store_location) as store:
            last = {(r["topic"], r["source"]): r for r in store.last_runs()}
            marks = {(r["topic"], r["source"]): r for r in store.watermarks()}
            counts = store.counts()
            deliveries = {(r["entry"], r["channel"]): r for r in store.delivery_status()}
        if not (held or is_held(settings.data_dir)):
            # "running" rows with no process behind them (killed): the next run closes them
            for r in last.values():
                if r["status"] == "running":
                    r["status"] = "interrupted"
                    r["error"] = r["error"] or ("the process ended before the topic "
                                                "finished; the next run resumes from the last "
                                                "committed state")
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
        trigger = cron_trigger(job.schedule.cron, job.schedule.timezone) if job else None
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

    return {"config": str(settings.config_path), "database": str(parse(settings.store_location)),
            "database_exists": exists, "now": utc_stamp(now),
            "topics": rows, "counts": counts, "notify": _notify_status(settings, deliveries)}


def _notify_status(settings: Settings, known: dict[tuple[str, str], dict[str, Any]]
                   ) -> list[dict[str, Any]]:
    """Per [[notify]] entry and channel: deliveries sent, pending (failed) and last error."""
    out = []
    for entry in settings.notify:
        for channel in entry.channels:
            row = known.get((entry.name, channel), {})
            out.append({"entry": entry.name, "channel": channel, "when": entry.when,
                        "sent": row.get("sent", 0), "pending": row.get("pending", 0),
                        "last_sent_at": row.get("last_sent_at"),
                        "checked_at": row.get("checked_at"),
                        "failing": bool(row.get("pending")), "error": row.get("error"),
                        "failed_at": row.get("failed_at")})
    return out


def _cell(value: object) -> str:
    return "-" if value is None else str(value)


def format_status(report: dict[str, Any]) -> str:
    """``status`` for people: one line per topic and source, errors underneath, counts."""
    out = [f"config {report['config']}; database {report['database']}"
           + ("" if report["database_exists"] else " (not created yet: no run so far)")]
    head = (f"{'topic':<28} {'source':<{_SOURCE_WIDTH}} {'last run (UTC)':<20} {'outcome':<11} "
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
            f"{row['topic']:<28} {row['source']:<{_SOURCE_WIDTH}} {_cell(when):<20} "
            f"{_cell(run.get('status')):<11} {_cell(run.get('n_found')):>5} "
            f"{_cell(run.get('n_new')):>5} {_cell(run.get('n_updated')):>4} "
            f"{_cell(run.get('n_requests')):>4}  {_cell(mark):<10}  {nxt}")
        if run.get("error"):
            out.append(f"    error: {run['error']}")
        if run.get("status") != "ok" and row["last_ok_at"]:
            out.append(f"    last success: {row['last_ok_at']}")
    for n in report.get("notify", []):
        state = (f"FAILING ({n['pending']} unconfirmed)" if n["failing"]
                 else "ok" if n["checked_at"] else "never delivered")
        out.append(f"notify {n['entry']} {n['channel']:<7} {state}; {n['sent']} sent, last "
                   f"{_cell(n['last_sent_at'])}")
        if n["error"]:
            out.append(f"    error at {_cell(n['failed_at'])}: {n['error']}")
    counts = report["counts"]
    if counts:
        out.append("rows: " + ", ".join(f"{name} {counts[name]}" for name in MAIN_COUNTS
                                        if name in counts))
    return "\n".join(out)
