"""SIGKILL a real ``littrack run`` at several points; the next run must end as a clean one.

A cron job can be killed at any moment (OOM killer, reboot, a impatient admin), and SIGKILL
runs no cleanup. What must hold anyway: the store is consistent (a topic's rows, matches and
watermark are all there or none are), no report folder is half written, and the next run
completes the work, so its tables equal those of a run that was never interrupted and every
new record is reported exactly once.

Kill points are deterministic: either the fake kills the process when it receives its N-th
request (before answering it), or a wrapper kills the process from inside at a chosen line
(after a topic's watermark is written but before its COMMIT; after the first CSV of the
report). No sleeps: the test waits on the process itself, with a bound.
"""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from littrack.config import Settings, load_settings
from littrack.pipeline import run
from tests.corpus import Corpus, populate
from tests.fakes import CtgovFake, EutilsFake, Reply, RequestRecord
from tests.test_faults import differences, env_for, snapshot, tuned_config

REPORT_FILES = {"new_articles.csv", "new_trials.csv"}  # at least these, in every report


class Tripwire:
    """Kills ``pid`` when its fake receives the ``at``-th request counted from arming."""

    def __init__(self) -> None:
        self.at: int | None = None
        self.pid: int | None = None
        self.seen = 0
        self.fired = threading.Event()

    def arm(self, at: int) -> None:
        self.at, self.pid, self.seen = at, None, 0
        self.fired.clear()

    def hit(self) -> None:
        if self.at is None:
            return
        self.seen += 1
        if self.seen == self.at and self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            self.fired.set()


class KillingEutils(EutilsFake):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.tripwire = Tripwire()

    def rate_check(self, rec: RequestRecord) -> Reply | dict[str, str]:
        self.tripwire.hit()  # under the fake's lock: counts are exact across threads
        return super().rate_check(rec)


class KillingCtgov(CtgovFake):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(rate_limit_per_minute=None, **kwargs)
        self.tripwire = Tripwire()

    def rate_check(self, rec: RequestRecord) -> Reply | dict[str, str]:
        self.tripwire.hit()
        return super().rate_check(rec)


# Runs the CLI in a child that SIGKILLs itself at a chosen line.
SELF_KILL = """
import os, signal, sys
mode, config = sys.argv[1], sys.argv[2]
def die(*_):
    os.kill(os.getpid(), signal.SIGKILL)
if mode == "before-commit":  # the second topic wrote its watermark; COMMIT comes next
    from littrack.store import Store
    real, calls = Store.set_watermark, []
    def set_watermark(self, *args, **kwargs):
        real(self, *args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            die()
    Store.set_watermark = set_watermark
elif mode == "mid-report":  # one CSV of the report is written, the others are not
    import littrack.reports as reports
    real_rows = reports.write_rows
    def write_rows(*args, **kwargs):
        real_rows(*args, **kwargs)
        die()
    reports.write_rows = write_rows
from littrack.cli import cli
cli(["--config", config, "run"], prog_name="littrack")
"""


@dataclass
class World:
    """Fakes, corpus and the outcome of an uninterrupted run, shared by every kill point."""

    eutils: KillingEutils
    ctgov: KillingCtgov
    corpus: Corpus
    root: Path
    clean: dict[str, list[tuple[Any, ...]]]
    requests: dict[str, int]  # requests an uninterrupted run makes, per fake
    reported: dict[str, Counter[tuple[str, str]]] = field(default_factory=dict)

    def settings(self, name: str) -> Settings:
        config = tuned_config(self.root / name, batch_size=5, page_size=3)
        return load_settings(config, env=env_for(self.root / name / "data", self.eutils,
                                                 self.ctgov))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("crash")
    with KillingEutils() as eutils, KillingCtgov() as ctgov:
        probe = World(eutils, ctgov, Corpus({}, {}), root, {}, {})
        corpus = populate(probe.settings("probe"), eutils, ctgov, articles=40, trials=15,
                          seed=3)
        settings = probe.settings("clean")
        before = {"eutils": eutils.count(), "ctgov": ctgov.count()}
        result = run(settings)
        assert result.exit_code == 0, [r.error for r in result.results]
        requests = {"eutils": eutils.count() - before["eutils"],
                    "ctgov": ctgov.count() - before["ctgov"]}
        w = World(eutils, ctgov, corpus, root, snapshot(settings.db_path), requests)
        w.reported = reported(settings.reports_dir)
        assert w.reported["new_articles"] == Counter(corpus.matches("pubmed"))
        assert w.reported["new_trials"] == Counter(corpus.matches("ctgov"))
        yield w
    assert not eutils.errors and not ctgov.errors, (eutils.errors + ctgov.errors)[0]


def reported(reports: Path) -> dict[str, Counter[tuple[str, str]]]:
    """(topic, id) rows over every finished report folder, counted (duplicates show)."""
    out: dict[str, Counter[tuple[str, str]]] = {"new_articles": Counter(),
                                                "new_trials": Counter()}
    for folder in reports.iterdir():
        if folder.name.startswith("."):
            continue
        for name, key in (("new_articles", "pmid"), ("new_trials", "nct_id")):
            with open(folder / f"{name}.csv", encoding="utf-8-sig", newline="") as fh:
                out[name].update((topic, row[key]) for row in csv.DictReader(fh)
                                 for topic in row["topics"].split("|"))
    return out


def assert_consistent(settings: Settings, world: World) -> None:
    """What a killed run may leave: whole topics or nothing, and only whole reports."""
    con = sqlite3.connect(settings.db_path)
    try:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        marks = {(t, s) for t, s in con.execute("SELECT topic, source FROM watermarks")}
        matches = Counter((t, s) for t, s in con.execute(
            "SELECT topic, source FROM topic_matches"))
    finally:
        con.close()
    expected = Counter((m[0], m[1]) for m in world.clean["topic_matches"])
    for key, n in expected.items():
        # a topic with a watermark has all its matches; one without has none
        assert matches[key] == (n if key in marks else 0), key
    if settings.reports_dir.exists():
        for folder in settings.reports_dir.iterdir():
            if not folder.name.startswith("."):
                assert REPORT_FILES <= {p.name for p in folder.iterdir()}, folder


def kill_and_resume(world: World, name: str, command: list[str],
                    tripwire: Tripwire | None = None, at: int = 0) -> Settings:
    settings = world.settings(name)
    env = {**os.environ, **env_for(settings.data_dir, world.eutils, world.ctgov)}
    if tripwire is not None:
        tripwire.arm(at)
    log = settings.data_dir.parent / "killed.log"
    with open(log, "w") as err:
        proc = subprocess.Popen(command, env=env, stdout=err, stderr=err)
        if tripwire is not None:
            tripwire.pid = proc.pid
        code = proc.wait(timeout=120)
    if tripwire is not None:
        tripwire.at = None
        assert tripwire.fired.is_set(), "the run ended before the kill point"
    assert code == -signal.SIGKILL, log.read_text()

    assert_consistent(settings, world)
    resumed = run(settings)
    assert resumed.exit_code == 0, [r.error for r in resumed.results]
    assert differences(world.clean, snapshot(settings.db_path)) == {}
    con = sqlite3.connect(settings.db_path)
    try:
        assert con.execute("SELECT COUNT(*) FROM runs WHERE status='running'").fetchone() == (0,)
    finally:
        con.close()
    # every new record reported once, across the killed run's and the resumed run's reports
    assert reported(settings.reports_dir) == world.reported
    assert not [p for p in settings.reports_dir.iterdir() if p.name.startswith(".")]
    return settings


def cli_command(world: World, name: str) -> list[str]:
    config = tuned_config(world.root / name, batch_size=5, page_size=3)
    return [sys.executable, "-m", "littrack", "--config", str(config), "run"]


@pytest.mark.parametrize("share", [0.15, 0.6])
def test_killed_during_pubmed_requests(world: World, share: float) -> None:
    """Killed while the N-th E-utilities request is in flight (searches, then EFetch)."""
    name = f"pubmed-{share}"
    at = max(1, int(world.requests["eutils"] * share))
    kill_and_resume(world, name, cli_command(world, name), world.eutils.tripwire, at)


@pytest.mark.parametrize("share", [0.5])
def test_killed_during_ctgov_paging(world: World, share: float) -> None:
    """Killed mid-walk through ClinicalTrials.gov pages, after the PubMed topics committed."""
    name = f"ctgov-{share}"
    at = max(2, int(world.requests["ctgov"] * share))
    kill_and_resume(world, name, cli_command(world, name), world.ctgov.tripwire, at)


@pytest.mark.parametrize("mode", ["before-commit", "mid-report"])
def test_killed_inside_a_commit_or_a_report(world: World, mode: str) -> None:
    """Killed with a topic's watermark written but not committed, or with one CSV written."""
    name = f"self-{mode}"
    settings = world.settings(name)  # writes the config the wrapper is given
    kill_and_resume(world, name, [sys.executable, "-c", SELF_KILL, mode,
                                  str(settings.config_path)])
