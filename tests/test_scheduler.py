"""`littrack serve` and `status`: schedules, catch-up, no overlap, busy lock, stop, status.

The service runs in-process here, against the loopback fakes and a real SQLite file. No test
waits for a cron period: catch-up decisions take an injected clock (or a store whose last
success is dated days back), and jobs that must fire repeatedly get second-level triggers.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apscheduler.triggers.interval import IntervalTrigger

from littrack import pipeline, status
from littrack.config import Schedule, Settings, load_settings
from littrack.crontab import cron_trigger, is_due, next_fire
from littrack.errors import ConfigError
from littrack.jobs import Job, plan_jobs
from littrack.lock import DataDirLock
from littrack.scheduler import Service
from littrack.store import Store
from tests.corpus import Corpus, fake_env, populate, write_test_config
from tests.dbutil import db_rows
from tests.fakes import CtgovFake, EutilsFake

MINIMAL = """
[[topics]]
name = "t1"
[topics.pubmed]
query = "MDMA[tiab]"
"""


# ---- helpers -------------------------------------------------------------------------------
def scheduled_config(tmp_path: Path, *, pubmed_cron: str | None = "0 6 * * *",
                     ctgov_cron: str | None = "0 15 * * MON", extra: str = "") -> Path:
    """The test config with its two source schedules replaced (None drops one)."""
    path = write_test_config(tmp_path, extra=extra)
    text = path.read_text(encoding="utf-8")
    for source, cron in (("pubmed", pubmed_cron), ("ctgov", ctgov_cron)):
        block = re.compile(rf'(?m)^\[schedule\.{source}\]\ncron = "[^"]*"\ntimezone = "UTC"\n')
        assert block.search(text), f"shipped config lost its [schedule.{source}] block"
        new = f'[schedule.{source}]\ncron = "{cron}"\ntimezone = "UTC"\n' if cron else ""
        text = block.sub(new, text)
    path.write_text(text, encoding="utf-8")
    return path


def scheduled_settings(tmp_path: Path, eutils: EutilsFake, ctgov: CtgovFake,
                       **kw: Any) -> Settings:
    return load_settings(scheduled_config(tmp_path, **kw), env=fake_env(tmp_path, eutils, ctgov))



def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def matches(db: Path, topic: str, source: str) -> set[tuple[str, str]]:
    return set(db_rows(db, "SELECT topic, record_id FROM topic_matches WHERE topic=? AND "
                           "source=?", (topic, source)))


def expected(corpus: Corpus, topic: str, source: str) -> set[tuple[str, str]]:
    return {m for m in corpus.matches(source) if m[0] == topic}


def at(days_ago: float) -> Callable[[], datetime]:
    fixed = (datetime.now(UTC) - timedelta(days=days_ago)).replace(microsecond=0)
    return lambda: fixed


# ---- schedules: crontab semantics and validation -------------------------------------------
def fires(cron: str, start: datetime, n: int, tz: str = "UTC") -> list[datetime]:
    trigger = cron_trigger(cron, tz)
    out: list[datetime] = []
    prev = None
    for _ in range(n):
        prev = trigger.get_next_fire_time(prev, prev or start)
        out.append(prev)
    return out


MONDAY = datetime(2026, 1, 5, tzinfo=UTC)  # 2026-01-05 is a Monday


@pytest.mark.parametrize("weekday, days", [
    ("1", {"Monday"}),  # APScheduler's from_crontab alone would say Tuesday
    ("0", {"Sunday"}),
    ("7", {"Sunday"}),
    ("MON", {"Monday"}),
    ("1-5", {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday"}),
    ("5-7", {"Friday", "Saturday", "Sunday"}),
    ("*/2", {"Sunday", "Tuesday", "Thursday", "Saturday"}),
    ("sat,sun", {"Saturday", "Sunday"}),
])
def test_weekdays_mean_what_cron_means(weekday: str, days: set[str]) -> None:
    got = {d.strftime("%A") for d in fires(f"0 6 * * {weekday}", MONDAY, 14)}
    assert got == days


def test_day_of_month_and_weekday_are_ored_like_cron() -> None:
    """cron runs "0 0 13 * FRI" on every 13th and on every Friday, not on Friday the 13th."""
    got = fires("0 0 13 * FRI", datetime(2026, 1, 1, tzinfo=UTC), 4)
    assert [d.date() for d in got] == [date(2026, 1, 2), date(2026, 1, 9), date(2026, 1, 13),
                                       date(2026, 1, 16)]


def test_macros_and_time_zones() -> None:
    assert fires("@daily", MONDAY, 2) == [MONDAY, MONDAY + timedelta(days=1)]
    (berlin,) = fires("0 6 * * *", MONDAY, 1, tz="Europe/Berlin")
    assert berlin.astimezone(UTC) == MONDAY.replace(hour=5)  # 06:00 CET is 05:00 UTC


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "littrack.toml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("text, key, fragment", [
    ("[schedule.pubmed]\ncron = '0 25 * * *'\n" + MINIMAL, "schedule.pubmed", "'0 25 * * *'"),
    ("[schedule.ctgov]\ncron = '0 6 * *'\n" + MINIMAL, "schedule.ctgov", "expected 5 fields"),
    ("[schedule.pubmed]\ncron = '0 6 * * 1-9'\n" + MINIMAL, "schedule.pubmed", "'0 6 * * 1-9'"),
    ("[schedule.pubmed]\ncron = '@reboot'\n" + MINIMAL, "schedule.pubmed", "'@reboot'"),
    ("[schedule.pubmed]\ncron = '0 6 * * *'\ntimezone = 'Europe/Nowhere'\n" + MINIMAL,
     "schedule.pubmed", "'Europe/Nowhere'"),
    (MINIMAL + "[topics.schedule.pubmed]\ncron = '99 * * * *'\n",
     "topic 't1'.schedule.pubmed", "'99 * * * *'"),
    (MINIMAL + "[topics.schedule.ctgov]\ncron = '0 6 * * *'\n",
     "topic 't1'.schedule.ctgov", "has no [topics.ctgov] query"),
    (MINIMAL + "[topics.schedule.embase]\ncron = '0 6 * * *'\n",
     "topic 't1'.schedule.embase", "unknown source"),
])
def test_bad_schedules_name_the_key_and_the_expression(tmp_path: Path, text: str, key: str,
                                                       fragment: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env={})
    assert str(err.value).startswith(f"{path}: {key}: ")
    assert fragment in str(err.value)


def test_serve_refuses_a_bad_schedule_with_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, "[schedule.pubmed]\ncron = '0 6 * * 8'\n" + MINIMAL)
    proc = subprocess.run([sys.executable, "-m", "littrack", "--config", str(path), "serve"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LITTRACK_DATA_DIR": str(tmp_path / "data")})
    assert proc.returncode == 2, proc.stderr
    assert "schedule.pubmed: invalid cron '0 6 * * 8'" in proc.stderr
    assert not (tmp_path / "data").exists()


def test_serve_without_schedules_says_so(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL)
    proc = subprocess.run([sys.executable, "-m", "littrack", "--config", str(path), "serve"],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "LITTRACK_DATA_DIR": str(tmp_path / "data")})
    assert proc.returncode == 2
    assert "no schedule to serve" in proc.stderr and "[schedule.pubmed]" in proc.stderr


def test_a_topic_schedule_takes_its_topic_out_of_the_source_job(tmp_path: Path) -> None:
    extra = '[topics.schedule.pubmed]\ncron = "30 7 * * *"\ntimezone = "Europe/Paris"\n'
    settings = load_settings(scheduled_config(tmp_path, extra=extra), env={})
    jobs = {j.id: j for j in plan_jobs(settings)}
    assert set(jobs) == {"pubmed", "ctgov", "pubmed:mdma-autism-social-anxiety"}
    assert jobs["pubmed"].topics == ("mdma-ptsd", "mdma-end-of-life")
    assert jobs["pubmed:mdma-autism-social-anxiety"].topics == ("mdma-autism-social-anxiety",)
    assert jobs["pubmed:mdma-autism-social-anxiety"].schedule.timezone == "Europe/Paris"
    assert len(jobs["ctgov"].topics) == 3


# ---- catch-up: pure decisions with an injected clock ---------------------------------------
def test_is_due_compares_slots_not_periods() -> None:
    daily = cron_trigger("0 6 * * *")
    ok = datetime(2026, 1, 5, 6, 0, 40, tzinfo=UTC)  # Monday's run finished at 06:00:40
    assert not is_due(daily, ok, ok + timedelta(hours=23))  # before Tuesday 06:00
    assert is_due(daily, ok, datetime(2026, 1, 6, 6, 0, tzinfo=UTC))  # Tuesday's slot passed
    assert is_due(daily, ok, ok + timedelta(days=30))  # thirty missed slots: still one answer
    assert is_due(daily, None, ok)  # never succeeded
    weekdays = cron_trigger("0 6 * * 1-5")
    friday = datetime(2026, 1, 9, 7, tzinfo=UTC)
    assert not is_due(weekdays, friday, friday + timedelta(days=2, hours=22))  # the weekend
    assert is_due(weekdays, friday, friday + timedelta(days=3))  # Monday 07:00
    # a run that ended in the slot's own second covered it (stamps have whole seconds)
    assert not is_due(daily, datetime(2026, 1, 5, 6, tzinfo=UTC),
                      datetime(2026, 1, 5, 12, tzinfo=UTC))


# ---- the service against the fakes ---------------------------------------------------------
@pytest.fixture
def corpus_settings(tmp_path: Path, eutils_fake: EutilsFake,
                    ctgov_fake: CtgovFake) -> tuple[Settings, Corpus]:
    settings = scheduled_settings(tmp_path, eutils_fake, ctgov_fake, pubmed_cron="0 * * * *")
    return settings, populate(settings, eutils_fake, ctgov_fake, articles=9, trials=6)


def test_catch_up_after_downtime_runs_once(corpus_settings: tuple[Settings, Corpus]) -> None:
    """Ten days down (240 missed hourly PubMed slots, one weekly CT.gov slot): one run each."""
    settings, corpus = corpus_settings
    first = pipeline.run(settings, clock=at(10))
    assert first.exit_code == 0
    service = Service(settings, lock_wait=5)
    assert {j.id for j in service.due_now()} == {"pubmed", "ctgov"}
    service.start()
    try:
        outcomes = service.wait_for(2, timeout=90)
        now = datetime.now(UTC)
        assert sorted((o.job_id, o.reason) for o in outcomes) == [
            ("ctgov", "catch-up"), ("pubmed", "catch-up")]
        assert all(o.result is not None and o.result.exit_code == 0 for o in outcomes)
        for job in service.jobs:  # nothing else queued: the next firing is the next slot
            slot = next_fire(service.triggers[job.id], now)
            assert service.next_run_time(job.id) == slot and slot is not None and slot > now
    finally:
        assert service.shutdown(30)
    assert len(service.outcomes) == 2
    runs = db_rows(settings.db_path, "SELECT source, COUNT(DISTINCT run_id) FROM runs "
                                     "WHERE run_id != ? GROUP BY source", (first.run_id,))
    assert sorted(runs) == [("ctgov", 1), ("pubmed", 1)]
    assert set(db_rows(settings.db_path, "SELECT topic, record_id FROM topic_matches WHERE "
                                         "source='pubmed'")) == corpus.matches("pubmed")


def test_a_recent_success_waits_for_its_next_slot(
        corpus_settings: tuple[Settings, Corpus]) -> None:
    settings, _ = corpus_settings
    assert pipeline.run(settings).exit_code == 0
    service = Service(settings)
    assert service.due_now() == []
    later = Service(settings, clock=lambda: datetime.now(UTC) + timedelta(days=8))
    assert {j.id for j in later.due_now()} == {"pubmed", "ctgov"}  # injected downtime
    n_runs = len(db_rows(settings.db_path, "SELECT * FROM runs"))
    service.start()
    try:
        now = datetime.now(UTC)
        for job in service.jobs:
            when = service.next_run_time(job.id)
            assert when is not None and when > now
            assert when == next_fire(service.triggers[job.id], now)
    finally:
        assert service.shutdown(10)
    assert service.outcomes == []
    assert len(db_rows(settings.db_path, "SELECT * FROM runs")) == n_runs


def test_once_now_runs_every_schedule_then_keeps_it(
        corpus_settings: tuple[Settings, Corpus]) -> None:
    settings, _ = corpus_settings
    assert pipeline.run(settings).exit_code == 0
    service = Service(settings)
    service.start(once_now=True)
    try:
        outcomes = service.wait_for(2, timeout=90)
        assert sorted((o.job_id, o.reason, o.skipped) for o in outcomes) == [
            ("ctgov", "once-now", None), ("pubmed", "once-now", None)]
        now = datetime.now(UTC)
        for job in service.jobs:
            assert service.next_run_time(job.id) == next_fire(service.triggers[job.id], now)
    finally:
        assert service.shutdown(10)


def test_a_job_skips_while_another_littrack_holds_the_lock(
        corpus_settings: tuple[Settings, Corpus], caplog: pytest.LogCaptureFixture) -> None:
    """Like a `littrack run` from cron holding the data dir: log, skip, run at the next slot."""
    settings, corpus = corpus_settings
    service = Service(settings, lock_wait=0.3)
    caplog.set_level(logging.INFO)
    with DataDirLock(settings.data_dir):
        service.start()  # fresh data dir: both jobs catch up at once
        outcomes = service.wait_for(2, timeout=30)
    try:
        assert [o.result for o in outcomes] == [None, None]
        for o in outcomes:
            assert o.skipped and o.skipped.startswith("busy: ")
            assert str(settings.data_dir) in o.skipped and "another littrack" in o.skipped
        busy = [r for r in caplog.records if "skipped, the data directory is busy" in r.message]
        assert {r.levelno for r in busy} == {logging.WARNING} and len(busy) == 2
        assert db_rows(settings.db_path, "SELECT * FROM runs") == []
        service.scheduler.modify_job("pubmed", next_run_time=datetime.now(UTC))  # "next slot"
        (*_, last) = service.wait_for(3, timeout=60)
        assert last.job_id == "pubmed" and last.result and last.result.exit_code == 0
    finally:
        assert service.shutdown(30)
    assert set(db_rows(settings.db_path, "SELECT topic, record_id FROM topic_matches")
               ) == corpus.matches("pubmed")


def test_a_job_never_runs_twice_at_once(tmp_path: Path, eutils_fake: EutilsFake,
                                        ctgov_fake: CtgovFake,
                                        caplog: pytest.LogCaptureFixture) -> None:
    """Fired every 0.4 s while each run takes seconds: runs stay one at a time."""
    settings = scheduled_settings(tmp_path, eutils_fake, ctgov_fake, ctgov_cron=None)
    populate(settings, eutils_fake, None, articles=6)
    eutils_fake.latency = 0.2
    active, peak, lock = [0], [0], threading.Lock()

    def counting_run(*args: Any, **kw: Any) -> pipeline.RunResult:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        try:
            return pipeline.run(*args, **kw)
        finally:
            with lock:
                active[0] -= 1

    caplog.set_level(logging.WARNING, logger="apscheduler")
    service = Service(settings, run=counting_run,
                      trigger_for=lambda job: IntervalTrigger(seconds=0.4))
    service.start()
    try:
        outcomes = service.wait_for(3, timeout=90)
    finally:
        assert service.shutdown(30)
    assert peak[0] == 1
    assert all(o.result is not None for o in outcomes[:3])
    assert any("maximum number of running instances reached" in r.message
               for r in caplog.records)  # the guard was exercised, not just unneeded
    spans = db_rows(settings.db_path, "SELECT MIN(started_at), MAX(finished_at) FROM runs "
                                      "GROUP BY run_id ORDER BY 1")
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start


def test_stop_rolls_back_the_running_topic_and_the_next_run_resumes(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    settings = scheduled_settings(tmp_path, eutils_fake, ctgov_fake, ctgov_cron=None)
    corpus = populate(settings, eutils_fake, None, articles=9)
    eutils_fake.latency = 0.4
    service = Service(settings)
    service.start(once_now=True)
    db = settings.db_path
    try:
        wait_until(lambda: bool(db_rows(db, "SELECT * FROM watermarks")), 60,
                   "the first topic to commit")
    finally:
        assert service.shutdown(30)  # the running topic rolls back well within the bound
    (outcome,) = service.outcomes
    assert outcome.result is not None and outcome.result.stopped
    assert db_rows(db, "SELECT * FROM runs WHERE status='running'") == []
    done = {t for (t,) in db_rows(db, "SELECT topic FROM watermarks WHERE source='pubmed'")}
    assert 1 <= len(done) < 3
    for topic in ("mdma-ptsd", "mdma-end-of-life", "mdma-autism-social-anxiety"):
        want = expected(corpus, topic, "pubmed") if topic in done else set()
        assert matches(db, topic, "pubmed") == want
    with DataDirLock(settings.data_dir):  # released
        pass
    eutils_fake.latency = 0
    assert pipeline.run(settings, sources=["pubmed"]).exit_code == 0
    assert set(db_rows(db, "SELECT topic, record_id FROM topic_matches")) == corpus.matches(
        "pubmed")


def test_the_run_logs_one_summary_line(corpus_settings: tuple[Settings, Corpus],
                                       caplog: pytest.LogCaptureFixture) -> None:
    settings, corpus = corpus_settings
    caplog.set_level(logging.INFO, logger="littrack")
    result = pipeline.run(settings, sources=["ctgov"])
    (line,) = [r.message for r in caplog.records if r.message.startswith(f"run {result.run_id}")]
    # each trial once, however many topics found it (issue 11, point 7)
    assert re.search(rf"3 ok, 0 failed; found {len(corpus.trials)}, new "
                     rf"{len(corpus.trials)}, updated 0, \d+ requests \(0 retries\) "
                     rf"in \d+\.\ds; report ", line)


# ---- status --------------------------------------------------------------------------------
def test_status_reports_runs_watermarks_next_slots_and_counts(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    extra = '[topics.schedule.pubmed]\ncron = "30 7 * * *"\ntimezone = "Europe/Paris"\n'
    settings = scheduled_settings(tmp_path, eutils_fake, ctgov_fake, extra=extra)
    corpus = populate(settings, eutils_fake, ctgov_fake, articles=9, trials=6)
    bad = settings.topic("mdma-end-of-life").pubmed_query or ""
    eutils_fake.register_query(bad, field_not_found="MDMA[NoSuchField]")
    result = pipeline.run(settings)
    assert result.exit_code == 1
    now = datetime.now(UTC).replace(microsecond=0)
    report = status.status(settings, now)

    rows = {(r["topic"], r["source"]): r for r in report["topics"] if r["in_config"]}
    assert len(rows) == 6
    failed = rows[("mdma-end-of-life", "pubmed")]
    assert failed["last_run"]["status"] == "failed" and failed["watermark"] is None
    assert "mdma-end-of-life" in failed["last_run"]["error"]
    assert "MDMA[NoSuchField]" in failed["last_run"]["error"]
    assert failed["overdue"] is True  # never succeeded: serve would run it at start
    ok = rows[("mdma-ptsd", "pubmed")]
    assert ok["last_run"]["status"] == "ok" and ok["last_run"]["run_id"] == result.run_id
    assert ok["last_run"]["n_new"] == len(expected(corpus, "mdma-ptsd", "pubmed"))
    assert ok["watermark"]["watermark"] == now.date().isoformat() and not ok["overdue"]
    daily = next_fire(cron_trigger("0 6 * * *"), now)
    assert ok["next_run"] == daily.isoformat() and ok["schedule"]["job"] == "pubmed"
    own = rows[("mdma-autism-social-anxiety", "pubmed")]
    assert own["schedule"] == {"job": "pubmed:mdma-autism-social-anxiety",
                               "cron": "30 7 * * *", "timezone": "Europe/Paris"}
    assert own["next_run"].endswith(("+01:00", "+02:00"))
    assert rows[("mdma-ptsd", "ctgov")]["schedule"]["cron"] == "0 15 * * MON"
    with Store(settings.db_path) as store:
        assert report["counts"] == store.counts()
    assert report["counts"]["trials"] == len(corpus.trials)


def test_status_cli_text_and_json(tmp_path: Path, eutils_fake: EutilsFake,
                                  ctgov_fake: CtgovFake) -> None:
    config = scheduled_config(tmp_path)
    env = {**os.environ, **fake_env(tmp_path, eutils_fake, ctgov_fake)}
    base = [sys.executable, "-m", "littrack", "--config", str(config)]
    settings = load_settings(config, env=env)
    populate(settings, eutils_fake, ctgov_fake, articles=6, trials=4)
    assert subprocess.run([*base, "run"], env=env, capture_output=True,
                          timeout=120).returncode == 0

    text = subprocess.run([*base, "status"], env=env, capture_output=True, text=True,
                          timeout=60)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0].startswith(f"config {config}; database ")
    for topic in ("mdma-ptsd", "mdma-end-of-life", "mdma-autism-social-anxiety"):
        for source in ("pubmed", "ctgov"):
            (line,) = [x for x in lines if x.split()[:2] == [topic, source]]
            assert " ok " in line and date.today().isoformat() in line
    assert lines[-1].startswith("rows: articles 6, trials 4, topic_matches ")

    js = subprocess.run([*base, "status", "--json"], env=env, capture_output=True, text=True,
                        timeout=60)
    assert js.returncode == 0, js.stderr
    report = json.loads(js.stdout)
    assert report["counts"]["articles"] == 6
    assert {r["last_run"]["status"] for r in report["topics"] if r["in_config"]} == {"ok"}


def test_status_without_a_database_creates_nothing(tmp_path: Path) -> None:
    settings = load_settings(scheduled_config(tmp_path),
                             env={"LITTRACK_DATA_DIR": str(tmp_path / "data")})
    report = status.status(settings)
    assert report["database_exists"] is False and report["counts"] == {}
    assert all(r["last_run"] is None and r["overdue"] for r in report["topics"])
    assert not (tmp_path / "data").exists()
    assert "not created yet" in status.format_status(report)


def test_jobs_are_named_by_source_and_topic() -> None:
    job = Job(Schedule("ctgov", "0 15 * * MON", topic="mdma-ptsd"), ("mdma-ptsd",))
    assert job.id == "ctgov:mdma-ptsd" and "'0 15 * * MON' (UTC)" in job.describe()
