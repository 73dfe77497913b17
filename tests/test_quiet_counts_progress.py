"""Counts that add up (point 7), quiet runs that are quiet (point 9), progress that means
something (point 10): issue 11, against the loopback fakes."""

from __future__ import annotations

import io
import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from littrack.pipeline import run
from littrack.progress import Progress
from littrack.vocab import LINKED_TOPIC
from littrack.windows import Window
from tests.builders.ctgov import study
from tests.corpus import ctgov_matches, fake_env, populate, settings_for, write_test_config
from tests.fakes import CtgovFake, EutilsFake


# ---- point 7: counts ------------------------------------------------------------------------
def test_run_totals_count_each_record_once(tmp_path: Path, eutils_fake: EutilsFake,
                                           ctgov_fake: CtgovFake) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    corpus = populate(settings, eutils_fake, ctgov_fake, articles=30, trials=10)
    shared = [p for p, topics in corpus.articles.items() if len(topics) > 1]
    assert shared  # the corpus has articles found by two topics
    result = run(settings, write_report=False)
    per_topic = [r for r in result.results if r.topic != LINKED_TOPIC]
    assert sum(r.n_found for r in per_topic) == (
        sum(len(t) for t in corpus.articles.values()) + sum(len(t) for t in corpus.trials.values()))
    assert result.totals.found == len(corpus.articles) + len(corpus.trials)
    assert result.totals.new == len(corpus.articles) + len(corpus.trials) + sum(
        r.n_new for r in result.results if r.topic == LINKED_TOPIC)
    assert result.totals.requests == sum(r.n_requests for r in result.results)


def test_stdout_and_log_agree_and_the_linked_line_says_what_was_missing(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    populate(settings, eutils_fake, ctgov_fake, articles=8, trials=3)
    ghost = study("NCT07000001", references=[("99999991", "RESULT", "A paper PubMed lacks.")])
    ctgov_fake.add_study(ghost, matches=[ctgov_matches(settings, "mdma-ptsd")])
    config = write_test_config(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "littrack", "--config", str(config), "run"],
                          env={**os.environ, **fake_env(tmp_path, eutils_fake, ctgov_fake)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    linked = [x for x in proc.stdout.splitlines() if "pubmed" in x and LINKED_TOPIC in x]
    assert len(linked) == 1 and re.search(r"asked\s+\d+\s+not returned\s+1\b", linked[0])
    out = re.search(r"total \(each record once\): found (\d+), new (\d+), updated (\d+), "
                    r"(\d+) requests \((\d+) retries\)", proc.stdout)
    log = re.search(r"run \S+: \d+ ok, \d+ failed; found (\d+), new (\d+), updated (\d+), "
                    r"(\d+) requests \((\d+) retries\)", proc.stderr)
    assert out and log and out.groups() == log.groups()
    listed = sum(int(m) for m in re.findall(r"requests\s+(\d+)", proc.stdout))
    assert listed == int(out.group(4))


# ---- point 9: quiet ---------------------------------------------------------------------------
def test_quiet_run_with_nothing_wrong_prints_nothing(tmp_path: Path, eutils_fake: EutilsFake,
                                                    ctgov_fake: CtgovFake) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    populate(settings, eutils_fake, ctgov_fake, articles=6, trials=3)
    eutils_fake.faults.push("503", "esearch.fcgi")  # retried and recovered: nothing wrong
    config = write_test_config(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "littrack", "--config", str(config), "-q",
                           "run"],
                          env={**os.environ, **fake_env(tmp_path, eutils_fake, ctgov_fake)},
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0
    assert (proc.stdout, proc.stderr) == ("", "")


def test_phrases_not_found_make_one_info_line_per_topic(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    populate(settings, eutils_fake, ctgov_fake, articles=6, trials=3)
    query = settings.topic("mdma-ptsd").pubmed_query or ""
    eutils_fake.register_query(query, phrases_not_found=["midomafetamine", "mdma-at", "x-y"])
    with caplog.at_level(logging.DEBUG, logger="littrack"):
        assert run(settings, sources=["pubmed"], write_report=False).exit_code == 0
    about = [r for r in caplog.records if "PhraseNotFound" in r.getMessage()]
    assert len(about) == 1 and about[0].levelno == logging.INFO
    assert all(t in about[0].getMessage() for t in ("midomafetamine", "mdma-at", "x-y"))
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    messages = [r.getMessage() for r in caplog.records]
    assert any(": window everything … " in m for m in messages)  # -v: every window
    assert not [m for m in messages if "Window(" in m]


def test_windows_read_as_days() -> None:
    from datetime import date

    assert str(Window(None, date(2026, 11, 30))) == "everything … 2026-11-30"
    assert str(Window(date(2026, 11, 27), date(2026, 11, 30))) == "2026-11-27 … 2026-11-30"


# ---- point 10: progress -----------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_off_a_terminal_a_progress_line_at_least_every_ten_seconds(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    progress = Progress(terminal=False, every=10.0, clock=clock)
    with caplog.at_level(logging.INFO, logger="littrack.progress"):
        progress.start("pubmed t", 1000)
        for at, n in ((4.0, 100), (10.5, 100), (15.0, 100), (21.0, 100)):
            clock.now = at
            progress.advance(n)
        progress.done()
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["pubmed t: 200 of 1,000 records stored (19/s, about 42 s left)",
                     "pubmed t: 400 of 1,000 records stored (19/s, about 32 s left)"]


def test_on_a_terminal_a_bar_per_topic_with_total_rate_and_eta() -> None:
    out = io.StringIO()
    progress = Progress(terminal=True, file=out, mininterval=0.0)
    progress.start("ctgov t", None)
    progress.total(250)
    progress.advance(100)
    progress.done()
    text = out.getvalue()
    assert "ctgov t" in text and "100/250" in text and "rec/s" in text


def test_a_run_reports_progress_against_the_search_count(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    corpus = populate(settings, eutils_fake, ctgov_fake, articles=12, trials=4)
    with caplog.at_level(logging.INFO, logger="littrack.progress"):
        run(settings, sources=["pubmed"], write_report=False, progress_every=0.0)
    expected = sum("mdma-ptsd" in t for t in corpus.articles.values())
    lines = [r.getMessage() for r in caplog.records if r.name == "littrack.progress"
             and r.getMessage().startswith("pubmed mdma-ptsd:")]
    assert lines and lines[-1].startswith(f"pubmed mdma-ptsd: {expected} of {expected} records")
