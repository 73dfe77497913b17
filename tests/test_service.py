"""littrack as deployed: real processes against the loopback fakes and one data directory.

Overlapping `run`s (from cron) and `serve` share the data-dir lock; SIGTERM, SIGINT and even
SIGKILL mid-run leave a consistent store that the next run completes; the shipped crontab
lines and systemd unit are parsed and their commands run exactly as written (only the
install path of the executable is swapped for this checkout's).
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from littrack.config import load_settings
from littrack.crontab import cron_trigger, next_fire
from littrack.lock import DataDirLock
from tests.corpus import Corpus, fake_env, populate, write_test_config
from tests.dbutil import db_rows as rows
from tests.fakes import CtgovFake, EutilsFake

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy"
TOPICS = ("mdma-ptsd", "mdma-end-of-life", "mdma-autism-social-anxiety")
SOURCES = ("pubmed", "ctgov")
LITTRACK = Path(sys.executable).with_name("littrack")  # the console script of this venv


# ---- helpers -------------------------------------------------------------------------------

def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process ended ({proc.returncode}) before {what}: "
                                 f"{proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def n_committed(db: Path) -> int:
    return len(rows(db, "SELECT * FROM watermarks"))


def n_running(db: Path) -> int:
    return len(rows(db, "SELECT * FROM runs WHERE status='running'"))


def assert_consistent(db: Path, corpus: Corpus, *, killed: bool = False
                      ) -> set[tuple[str, str]]:
    """Integrity, and each topic either fully committed or absent.

    A process that stopped cleanly leaves no run 'running'; a killed one leaves its current
    topic's row so (the next run closes it), and nothing else of that topic.
    """
    assert rows(db, "PRAGMA integrity_check") == [("ok",)]
    running = rows(db, "SELECT run_id, topic, source FROM runs WHERE status='running'")
    assert len(running) == (1 if killed else 0), running
    done = set(rows(db, "SELECT topic, source FROM watermarks"))
    for source in SOURCES:
        for topic in TOPICS:
            got = set(rows(db, "SELECT topic, record_id FROM topic_matches WHERE topic=? AND "
                               "source=?", (topic, source)))
            want = {m for m in corpus.matches(source) if m[0] == topic}
            assert got == (want if (topic, source) in done else set()), (topic, source)
    for source, table, key in (("pubmed", "articles", "pmid"), ("ctgov", "trials", "nct_id")):
        orphans = rows(db, f"SELECT COUNT(*) FROM topic_matches m WHERE source=? AND NOT "
                           f"EXISTS (SELECT 1 FROM {table} r WHERE r.{key}=m.record_id)",
                       (source,))
        assert orphans == [(0,)]
    return done


def assert_complete(db: Path, corpus: Corpus) -> None:
    assert assert_consistent(db, corpus) == {(t, s) for t in TOPICS for s in SOURCES}
    assert rows(db, "SELECT COUNT(*) FROM topic_matches") == [
        (len(corpus.matches("pubmed")) + len(corpus.matches("ctgov")),)]


class Deployment:
    """A config, a data dir and the fakes' URLs, as a `littrack` process sees them."""

    def __init__(self, tmp_path: Path, eutils: EutilsFake, ctgov: CtgovFake) -> None:
        self.config = write_test_config(tmp_path)
        self.env = {**os.environ, **fake_env(tmp_path, eutils, ctgov)}
        self.env.pop("LITTRACK_CONFIG", None)
        self.settings = load_settings(self.config, env=self.env)
        self.db = self.settings.db_path
        self.corpus = populate(self.settings, eutils, ctgov, articles=9, trials=6)

    def argv(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "littrack", "--config", str(self.config), *args]

    def start(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(self.argv(*args), env=self.env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(self.argv(*args), env=self.env, capture_output=True, text=True,
                              timeout=timeout)


@pytest.fixture
def deployment(tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> Deployment:
    return Deployment(tmp_path, eutils_fake, ctgov_fake)


def slow(eutils: EutilsFake, ctgov: CtgovFake, seconds: float = 0.4) -> None:
    eutils.latency = ctgov.latency = seconds


def reap(proc: subprocess.Popen) -> None:
    """Kill a process a failed test left behind, and close its pipes."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate()


def stop(proc: subprocess.Popen, sig: int, bound: float) -> tuple[float, str, str]:
    """Send ``sig``; return how long the process took to exit, and its output."""
    sent = time.monotonic()
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=bound)
    return time.monotonic() - sent, out, err


# ---- overlapping runs ----------------------------------------------------------------------
def test_an_overlapping_run_is_refused_with_exit_3(deployment: Deployment,
                                                   eutils_fake: EutilsFake,
                                                   ctgov_fake: CtgovFake) -> None:
    slow(eutils_fake, ctgov_fake)
    first = deployment.start("run")
    try:
        wait_until(lambda: bool(rows(deployment.db, "SELECT * FROM runs")), 60,
                   "the first run to start", first)
        second = deployment.run("run", "--wait", "0.5")
        assert second.returncode == 3, second.stderr
        assert f"{deployment.settings.data_dir}: another littrack is running (pid {first.pid} " \
               in second.stderr
        assert "waited 0.5s" in second.stderr
        out, err = first.communicate(timeout=120)
    finally:
        reap(first)
    assert first.returncode == 0, err
    assert_complete(deployment.db, deployment.corpus)
    assert len(rows(deployment.db, "SELECT DISTINCT run_id FROM runs")) == 1


def test_overlapping_runs_that_wait_are_serialized(deployment: Deployment,
                                                   eutils_fake: EutilsFake,
                                                   ctgov_fake: CtgovFake) -> None:
    slow(eutils_fake, ctgov_fake, 0.2)
    first = deployment.start("run", "--wait", "120")
    try:
        wait_until(lambda: bool(rows(deployment.db, "SELECT * FROM runs")), 60,
                   "the first run to start", first)
        second = deployment.run("run", "--wait", "120", timeout=180)
        assert second.returncode == 0, second.stderr
        _, err = first.communicate(timeout=120)
    finally:
        reap(first)
    assert first.returncode == 0, err
    assert_complete(deployment.db, deployment.corpus)
    spans = rows(deployment.db, "SELECT MIN(started_at), MAX(finished_at) FROM runs "
                                "GROUP BY run_id ORDER BY 1")
    assert len(spans) == 2
    assert spans[0][1] <= spans[1][0]  # the second began after the first ended


# ---- stopping ------------------------------------------------------------------------------
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_mid_run_leaves_the_store_consistent_and_the_next_run_completes(
        deployment: Deployment, eutils_fake: EutilsFake, ctgov_fake: CtgovFake,
        sig: int) -> None:
    slow(eutils_fake, ctgov_fake)
    proc = deployment.start("run")
    try:
        wait_until(lambda: n_committed(deployment.db) >= 1, 60, "a first topic to commit",
                   proc)
        took, out, err = stop(proc, sig, 30)
    finally:
        reap(proc)
    assert proc.returncode == 128 + sig, err  # 130 after SIGINT, 143 after SIGTERM
    assert took < 15
    assert "stopped on request" in out and "STOPPED" in out
    statuses = {s for (s,) in rows(deployment.db, "SELECT status FROM runs")}
    assert "stopped" in statuses and "failed" not in statuses, statuses
    done = assert_consistent(deployment.db, deployment.corpus)
    assert 1 <= len(done) < len(TOPICS) * len(SOURCES)  # really stopped mid-run
    with DataDirLock(deployment.settings.data_dir):  # released
        pass

    slow(eutils_fake, ctgov_fake, 0)
    again = deployment.run("run")
    assert again.returncode == 0, again.stderr
    assert_complete(deployment.db, deployment.corpus)


def test_sigterm_stops_serve_cleanly_and_the_next_start_resumes(
        deployment: Deployment, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    slow(eutils_fake, ctgov_fake)
    proc = deployment.start("serve", "--once-now")
    try:
        wait_until(lambda: n_committed(deployment.db) >= 1, 60, "a first topic to commit",
                   proc)
        took, _, err = stop(proc, signal.SIGTERM, 30)
    finally:
        reap(proc)
    assert proc.returncode == 0, err
    assert took < 15
    assert "received SIGTERM" in err and "stopped; the next start resumes" in err
    done = assert_consistent(deployment.db, deployment.corpus)
    assert 1 <= len(done) < len(TOPICS) * len(SOURCES)
    with DataDirLock(deployment.settings.data_dir):
        pass

    slow(eutils_fake, ctgov_fake, 0)
    again = deployment.run("run")
    assert again.returncode == 0, again.stderr
    assert_complete(deployment.db, deployment.corpus)


def test_serve_exits_on_a_second_signal_without_waiting(
        deployment: Deployment, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    """A stalled request would keep the first stop waiting: a second signal exits at once."""
    proc = deployment.start("serve", "--once-now", "--stop-timeout", "600")
    try:
        wait_until(lambda: n_committed(deployment.db) >= 1, 60, "a first topic to commit",
                   proc)
        eutils_fake.latency = ctgov_fake.latency = 8  # the next request hangs
        time.sleep(0.5)  # let the run enter that request
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        took, _, err = stop(proc, signal.SIGTERM, 30)
    finally:
        reap(proc)
    assert proc.returncode == 0, err
    assert took < 5
    assert "exiting without waiting for the running topic" in err
    assert_consistent(deployment.db, deployment.corpus, killed=True)
    with DataDirLock(deployment.settings.data_dir):
        pass

    eutils_fake.latency = ctgov_fake.latency = 0
    again = deployment.run("run", "--wait", "0")
    assert again.returncode == 0, again.stderr
    assert_complete(deployment.db, deployment.corpus)


def test_a_killed_run_leaves_no_stale_lock(deployment: Deployment, eutils_fake: EutilsFake,
                                           ctgov_fake: CtgovFake) -> None:
    slow(eutils_fake, ctgov_fake)
    proc = deployment.start("run")
    try:
        # Kill inside a topic, not in the gap between two (where no run is 'running').
        wait_until(lambda: n_committed(deployment.db) >= 1 and n_running(deployment.db) == 1,
                   60, "a first topic to commit and the next to start", proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        reap(proc)
    assert proc.returncode == -signal.SIGKILL
    assert_consistent(deployment.db, deployment.corpus, killed=True)
    assert f"pid {proc.pid} " in (deployment.settings.data_dir / ".littrack.lock").read_text()

    slow(eutils_fake, ctgov_fake, 0)
    again = deployment.run("run", "--wait", "0")  # no waiting on the dead holder
    assert again.returncode == 0, again.stderr
    assert "closed 1 run(s) left 'running'" in again.stderr
    assert_complete(deployment.db, deployment.corpus)
    (error,) = rows(deployment.db, "SELECT error FROM runs WHERE status='failed'")
    assert error[0].startswith("interrupted")


# ---- deploy/crontab and deploy/littrack.service --------------------------------------------
def crontab_entries(path: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """(environment lines, [(5 schedule fields, command)]) as cron reads the file."""
    env: dict[str, str] = {}
    jobs: list[tuple[str, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$", line)
        if m:
            env[m.group(1)] = m.group(2)
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, f"not a crontab job line: {line!r}"
        jobs.append((" ".join(fields[:5]), fields[5]))
    return env, jobs


def installed_path(argv0: str) -> str:
    assert argv0 == "/opt/littrack/venv/bin/littrack", argv0  # what the README installs
    return str(LITTRACK)


def test_crontab_lines_run_against_the_fakes(deployment: Deployment,
                                             tmp_path: Path) -> None:
    env, jobs = crontab_entries(DEPLOY / "crontab")
    assert env["SHELL"] == "/bin/sh"
    assert set(env) >= {"LITTRACK_CONFIG", "LITTRACK_DATA_DIR"}
    assert [cron for cron, _ in jobs] == ["0 6 * * *", "0 15 * * 1"]
    # the config's schedules; "1" is Monday for cron, and for littrack's parser alike
    monday = next_fire(cron_trigger(jobs[1][0]), datetime.now(UTC))
    assert monday is not None and monday.strftime("%A %H:%M") == "Monday 15:00"
    sources = []
    for _, command in jobs:
        assert "%" not in command  # cron would turn it into a newline
        argv = shlex.split(command)
        sources.append(argv[argv.index("--source") + 1])
        command = command.replace(argv[0], installed_path(argv[0]), 1)
        run_env = {**deployment.env, **env,  # the crontab's variables, pointed at this test
                   "LITTRACK_CONFIG": str(deployment.config),
                   "LITTRACK_DATA_DIR": str(deployment.settings.data_dir)}
        proc = subprocess.run(["/bin/sh", "-c", command], env=run_env, capture_output=True,
                              text=True, timeout=120, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == ""  # >/dev/null: cron mails only what -q lets through
    assert sources == ["pubmed", "ctgov"]
    assert_complete(deployment.db, deployment.corpus)


def unit_file(path: Path) -> dict[str, dict[str, list[str]]]:
    """Sections of a systemd unit, each key's values in order (keys may repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze here")
def test_systemd_unit_verifies(tmp_path: Path) -> None:
    text = (DEPLOY / "littrack.service").read_text(encoding="utf-8")
    unit = tmp_path / "littrack.service"
    unit.write_text(text.replace("/opt/littrack/venv/bin/littrack", str(LITTRACK)),
                    encoding="utf-8")
    proc = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    # unknown keys and unparsable values are only warnings: none may mention our unit
    assert [x for x in (proc.stdout + proc.stderr).splitlines() if "littrack" in x] == []


def test_systemd_execstart_serves_and_stops_on_sigterm(deployment: Deployment,
                                                       tmp_path: Path) -> None:
    service = unit_file(DEPLOY / "littrack.service")["Service"]
    env = dict(shlex.split(v)[0].split("=", 1) for v in service["Environment"])
    assert env == {"LITTRACK_CONFIG": "/etc/littrack/littrack.toml",
                   "LITTRACK_DATA_DIR": "/var/lib/littrack"}
    assert service["KillSignal"] == ["SIGTERM"]
    timeout_stop = float(service["TimeoutStopSec"][0])
    (exec_start,) = service["ExecStart"]
    argv = shlex.split(exec_start)
    assert argv[1] == "serve"
    stop_timeout = float(argv[argv.index("--stop-timeout") + 1])
    assert stop_timeout < timeout_stop  # littrack gives up before systemd's SIGKILL

    run_env = {**deployment.env, **env, "LITTRACK_CONFIG": str(deployment.config),
               "LITTRACK_DATA_DIR": str(deployment.settings.data_dir)}
    proc = subprocess.Popen([installed_path(argv[0]), *argv[1:]], env=run_env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:  # a fresh data dir: every schedule is overdue, so serve catches up at once
        wait_until(lambda: n_committed(deployment.db) == len(TOPICS) * len(SOURCES), 120,
                   "the catch-up runs", proc)
        wait_until(lambda: not rows(deployment.db, "SELECT * FROM runs WHERE "
                                                   "status='running'"), 30,
                   "the runs to finish", proc)
        took, _, err = stop(proc, signal.SIGTERM, timeout_stop)
    finally:
        reap(proc)
    assert proc.returncode == 0, err
    assert took < stop_timeout
    assert_complete(deployment.db, deployment.corpus)


def test_the_readme_shows_the_shipped_deploy_files() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    deployment = readme.split("## Deployment", 1)[1].split("\n## ", 1)[0]
    _, jobs = crontab_entries(DEPLOY / "crontab")
    for cron, command in jobs:
        assert re.search(rf"(?m)^{re.escape(cron)}\s+{re.escape(command)}$", deployment)
    (exec_start,) = unit_file(DEPLOY / "littrack.service")["Service"]["ExecStart"]
    assert f"ExecStart={exec_start}" in deployment
