"""Change over time, end to end: trial history, article corrections, links, and the report.

Two fakes over real HTTP: ClinicalTrials.gov changes a study's status, enrollment and dates
between runs; PubMed retracts an old article (``update_article`` with a new mdat) and
withdraws another. The run after that must record exactly those changes, flag the articles,
resolve the records the tracked ones link to (once), and say so in the report files.
"""

from __future__ import annotations

import csv
import random
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from littrack import changes
from littrack.config import Settings
from littrack.normalize.ctgov import normalize_study
from littrack.pipeline import LINKED_TOPIC, RunResult, run
from littrack.store import Store
from tests.builders.ctgov import study
from tests.builders.pubmed import article_xml
from tests.corpus import ctgov_matches, settings_for
from tests.fakes import CtgovFake, EutilsFake

TOPIC = "mdma-ptsd"
TRACKED = "NCT05000001"  # matched; changes between runs; cites a results paper
TEXT_ONLY = "NCT05000002"  # no topic matches it; an article's abstract names it
OVERDUE = "NCT05000003"  # matched; completed 2020, no results: unreported
REPORTED = "NCT05000004"  # matched; completed 2019 with results posted
LINKING, RETRACTED, WITHDRAWN = "31000001", "31000002", "31000003"
RESULTS_PAPER = "31000009"  # no topic matches it; TRACKED's RESULT reference
UNKNOWN_PMID = "39999998"  # TRACKED cites it, PubMed does not have it
HOSTILE_TITLE = 'MDMA <b>bold</b> & "quoted" | piped [link](http://x.test) trial'


def rows(db: Path, sql: str, *args: object) -> list[tuple]:
    con = sqlite3.connect(db)
    try:
        return [tuple(r) for r in con.execute(sql, args)]
    finally:
        con.close()


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass
class Scenario:
    settings: Settings
    eutils: EutilsFake
    ctgov: CtgovFake
    first: RunResult
    second: RunResult
    third: RunResult
    efetch_ids_third: list[str]
    studies_calls_third: list[dict[str, str]]

    @property
    def db(self) -> Path:
        return self.settings.db_path


def _tracked_study(*, status: str, primary: str, enrollment: int, last_update: str) -> dict:
    return study(TRACKED, title="MDMA-assisted therapy for PTSD, phase 3", status=status,
                 primary_completion=(primary, "ESTIMATED"), enrollment=(enrollment, "ACTUAL"),
                 last_update=last_update,
                 references=[(RESULTS_PAPER, "RESULT", "Doe J. Results. 2025."),
                             (UNKNOWN_PMID, "BACKGROUND", "Roe R. Background. 2019.")])


def build_scenario(tmp_path: Path, eutils: EutilsFake, ctgov: CtgovFake) -> Scenario:
    """Fill the fakes, run, change the data, run, run again unchanged; return everything."""
    settings = settings_for(tmp_path, eutils, ctgov)
    for t in settings.topics:
        eutils.register_query(t.pubmed_query or "")
    query = settings.topic(TOPIC).pubmed_query or ""
    matches = [ctgov_matches(settings, TOPIC)]
    long_ago = date(2024, 3, 1)
    eutils.add_article(LINKING, article_xml(
        LINKING, title=HOSTILE_TITLE, nct_ids=[TRACKED], entrez_date=long_ago,
        abstract="Secondary analysis; the extension study is registered as NCT 05000002."),
        edat=long_ago, queries=[query])
    eutils.add_article(RETRACTED, article_xml(RETRACTED, entrez_date=long_ago),
                       edat=long_ago, queries=[query])
    eutils.add_article(WITHDRAWN, article_xml(WITHDRAWN, entrez_date=long_ago),
                       edat=long_ago, queries=[query])
    eutils.add_article(RESULTS_PAPER, article_xml(
        RESULTS_PAPER, entrez_date=long_ago,
        publication_types=("Journal Article", "Randomized Controlled Trial")), edat=long_ago)
    ctgov.add_study(_tracked_study(status="RECRUITING", primary="2026-06", enrollment=60,
                                   last_update="2025-01-10"), matches=matches)
    ctgov.add_study(study(TEXT_ONLY, title="Open-label extension", references=(),
                          primary_completion=("2027-01", "ESTIMATED")))
    ctgov.add_study(study(OVERDUE, title="Completed, never reported", status="COMPLETED",
                          primary_completion=("2020-05", "ACTUAL"), references=()),
                    matches=matches)
    ctgov.add_study(study(REPORTED, title="Completed and reported", status="COMPLETED",
                          primary_completion=("2019-02", "ACTUAL"), has_results=True,
                          results_first_posted="2020-03-01", references=()), matches=matches)
    first = run(settings)

    today = datetime.now(UTC).date()  # the day the pipeline's windows end
    ctgov.update_study(_tracked_study(status="ACTIVE_NOT_RECRUITING", primary="2026-09",
                                      enrollment=72, last_update=today.isoformat()))
    ctgov.bump()
    eutils.update_article(RETRACTED, article_xml(
        RETRACTED, entrez_date=long_ago, comments=[("RetractionIn", "31000100")],
        publication_types=("Journal Article", "Retracted Publication")), mdat=today)
    eutils.deleted_citations.add(WITHDRAWN)
    eutils.update_article(WITHDRAWN, article_xml(WITHDRAWN, entrez_date=long_ago), mdat=today)
    second = run(settings)

    # Nothing changes, but both services are asked again (CT.gov refreshed its data).
    ctgov.bump()
    n_efetch, n_studies = len(eutils.requests("efetch.fcgi")), len(ctgov.requests("/studies"))
    third = run(settings)
    efetched = [p for r in eutils.requests("efetch.fcgi")[n_efetch:]
                for p in r.params.get("id", "").split(",") if p]
    studies = [r.params for r in ctgov.requests("/studies")[n_studies:]]
    return Scenario(settings, eutils, ctgov, first, second, third, efetched, studies)


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    """One scenario for the whole module: three runs against the fakes take a few seconds."""
    with EutilsFake() as eutils, CtgovFake() as ctgov:
        yield build_scenario(tmp_path_factory.mktemp("changes"), eutils, ctgov)
        assert not eutils.errors and not ctgov.errors


def test_all_runs_succeed(scenario: Scenario) -> None:
    for r in (scenario.first, scenario.second, scenario.third):
        assert r.exit_code == 0, [x.error for x in r.results if x.error]


# ---- trial history -----------------------------------------------------------------------
def test_first_sighting_is_not_a_change(scenario: Scenario) -> None:
    assert rows(scenario.db, "SELECT COUNT(*) FROM trial_changes WHERE run_id=?",
                scenario.first.run_id) == [(0,)]
    assert rows(scenario.db, "SELECT COUNT(*) FROM article_changes WHERE run_id=?",
                scenario.first.run_id) == [(0,)]


def test_changed_trial_appends_one_row_per_changed_field(scenario: Scenario) -> None:
    got = rows(scenario.db, "SELECT nct_id, field, old_value, new_value FROM trial_changes "
                            "WHERE run_id=? ORDER BY field", scenario.second.run_id)
    assert got == [
        (TRACKED, "enrollment", "60", "72"),
        (TRACKED, "overall_status", "RECRUITING", "ACTIVE_NOT_RECRUITING"),
        (TRACKED, "primary_completion_date", "2026-06", "2026-09"),
    ]
    (observed,) = rows(scenario.db, "SELECT DISTINCT observed_at FROM trial_changes")
    assert observed[0].startswith(datetime.now(UTC).date().isoformat()[:7])
    assert rows(scenario.db, "SELECT overall_status, enrollment FROM trials WHERE nct_id=?",
                TRACKED) == [("ACTIVE_NOT_RECRUITING", 72)]


def test_unchanged_rerun_appends_nothing(scenario: Scenario) -> None:
    # The third run did receive the tracked study again (CT.gov data refreshed) ...
    assert any("filter.advanced" in p for p in scenario.studies_calls_third)
    # ... and recorded no change at all.
    for table in ("trial_changes", "article_changes"):
        assert rows(scenario.db, f"SELECT COUNT(*) FROM {table} WHERE run_id=?",
                    scenario.third.run_id) == [(0,)]
    assert rows(scenario.db, "SELECT COUNT(*) FROM trial_changes") == [(3,)]


# ---- article corrections -----------------------------------------------------------------
def test_retraction_of_an_old_article_is_caught_and_flagged(scenario: Scenario) -> None:
    assert rows(scenario.db, "SELECT is_retracted, has_erratum, is_deleted FROM articles "
                             "WHERE pmid=?", RETRACTED) == [(1, 0, 0)]
    assert rows(scenario.db, "SELECT field, old_value, new_value, run_id FROM article_changes "
                             "WHERE pmid=?", RETRACTED) == [
        ("is_retracted", "0", "1", scenario.second.run_id)]
    # It was re-fetched because ESearch asked for records modified since the watermark.
    terms = [r.params["term"] for r in scenario.eutils.requests("esearch.fcgi")]
    assert any("[mdat]" in t for t in terms)


def test_deleted_citation_is_flagged_never_dropped(scenario: Scenario) -> None:
    assert rows(scenario.db, "SELECT is_deleted, title IS NOT NULL FROM articles WHERE pmid=?",
                WITHDRAWN) == [(1, 1)]
    assert rows(scenario.db, "SELECT field, old_value, new_value FROM article_changes "
                             "WHERE pmid=?", WITHDRAWN) == [("is_deleted", "0", "1")]
    assert rows(scenario.db, "SELECT COUNT(*) FROM topic_matches WHERE record_id=?",
                WITHDRAWN) == [(1,)]


# ---- links -------------------------------------------------------------------------------
def test_links_from_databank_text_and_references(scenario: Scenario) -> None:
    got = set(rows(scenario.db, "SELECT nct_id, pmid, evidence FROM trial_publication_links"))
    assert got == {
        (TRACKED, LINKING, "pubmed_databank"),
        (TEXT_ONLY, LINKING, "pubmed_text"),
        (TRACKED, RESULTS_PAPER, "ctgov_reference"),
        (TRACKED, UNKNOWN_PMID, "ctgov_reference"),
    }


def test_linked_records_are_fetched_once_and_saved_without_topic(scenario: Scenario) -> None:
    db = scenario.db
    assert rows(db, "SELECT source, record_id, outcome, run_id FROM linked_fetches "
                    "ORDER BY source, record_id") == [
        ("ctgov", TEXT_ONLY, "saved", scenario.first.run_id),
        ("pubmed", RESULTS_PAPER, "saved", scenario.first.run_id),
        ("pubmed", UNKNOWN_PMID, "not_found", scenario.first.run_id),
    ]
    assert rows(db, "SELECT brief_title FROM trials WHERE nct_id=?", TEXT_ONLY) == [
        ("Open-label extension",)]
    assert rows(db, "SELECT COUNT(*) FROM articles WHERE pmid=?", RESULTS_PAPER) == [(1,)]
    assert rows(db, "SELECT COUNT(*) FROM topic_matches WHERE record_id IN (?, ?)",
                TEXT_ONLY, RESULTS_PAPER) == [(0,)]
    # Counted in the run, under its own pseudo-topic.
    linked = {(r.source, r.n_found, r.n_new) for r in scenario.first.results
              if r.topic == LINKED_TOPIC}
    assert linked == {("pubmed", 2, 1), ("ctgov", 1, 1)}
    assert rows(db, "SELECT source, status, n_new FROM runs WHERE topic=? ORDER BY source",
                LINKED_TOPIC) == [("ctgov", "ok", 1), ("pubmed", "ok", 1)]
    # Never again: the third run asked PubMed for no PMID and CT.gov for no id list.
    assert UNKNOWN_PMID not in scenario.efetch_ids_third
    assert not any("filter.ids" in p for p in scenario.studies_calls_third)
    assert not [r for r in scenario.third.results if r.topic == LINKED_TOPIC]


def test_unreported_trials_view(scenario: Scenario) -> None:
    # TRACKED is not due yet; REPORTED has results; TEXT_ONLY is not due either.
    assert rows(scenario.db, "SELECT nct_id, due_date, topics FROM trials_due_unreported") == [
        (OVERDUE, "2021-05-31", TOPIC)]


# ---- the report of the run that saw the changes -------------------------------------------
def test_report_files_say_what_changed(scenario: Scenario) -> None:
    folder = scenario.second.report_dir
    assert folder is not None
    changed = read_csv(folder / "trial_changes.csv")
    assert {(r["nct_id"], r["field"], r["old_value"], r["new_value"]) for r in changed} == {
        (TRACKED, "enrollment", "60", "72"),
        (TRACKED, "overall_status", "RECRUITING", "ACTIVE_NOT_RECRUITING"),
        (TRACKED, "primary_completion_date", "2026-06", "2026-09"),
    }
    assert {r["topics"] for r in changed} == {TOPIC}
    corrected = read_csv(folder / "article_changes.csv")
    assert {(r["pmid"], r["field"], r["new_value"]) for r in corrected} == {
        (RETRACTED, "is_retracted", "1"), (WITHDRAWN, "is_deleted", "1")}
    assert read_csv(folder / "links.csv") == []  # all links were found by the first run
    assert [r["nct_id"] for r in read_csv(folder / "unreported_trials.csv")] == [OVERDUE]

    first = scenario.first.report_dir
    assert first is not None
    links = read_csv(first / "links.csv")
    assert {(r["nct_id"], r["pmid"], r["evidence"]) for r in links} == set(
        rows(scenario.db, "SELECT nct_id, pmid, evidence FROM trial_publication_links"))
    by_pmid = {r["pmid"]: r for r in links}
    assert by_pmid[RESULTS_PAPER]["article_title"]  # the linked paper resolved to a row
    assert by_pmid[UNKNOWN_PMID]["article_title"] == ""  # PubMed did not have it


def test_summary_shows_the_changes_per_topic(scenario: Scenario) -> None:
    folder = scenario.second.report_dir
    assert folder is not None
    md = (folder / "summary.md").read_text(encoding="utf-8")
    topic_part = md.split(f"## Topic {TOPIC}")[1].split("\n## ")[0]
    assert "Trial changes (status, phase, enrollment, dates, results): 3" in topic_part
    assert "RECRUITING | ACTIVE\\_NOT\\_RECRUITING" in topic_part
    assert "Article corrections (retractions, errata, concerns, deletions): 2" in topic_part
    assert f"[{OVERDUE}](https://clinicaltrials.gov/study/{OVERDUE})" in topic_part
    assert ("In this window: 0 new and 2 updated articles, 0 new and 1 updated trials, "
            "0 new preprints.") in topic_part
    html = (folder / "summary.html").read_text(encoding="utf-8")
    assert "<td>ACTIVE_NOT_RECRUITING</td>" in html
    assert (folder / "charts" / "trials_by_phase_status.png").stat().st_size > 1000


def test_summary_escapes_record_text(scenario: Scenario) -> None:
    folder = scenario.first.report_dir
    assert folder is not None
    html = (folder / "summary.html").read_text(encoding="utf-8")
    assert "MDMA &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot; | piped" in html
    assert "<b>" not in html and 'href="http://x.test"' not in html
    md = (folder / "summary.md").read_text(encoding="utf-8")
    assert "MDMA \\<b\\>bold\\</b\\> \\& \"quoted\" \\| piped \\[link\\](http://x.test)" in md


# ---- the pure parts ----------------------------------------------------------------------
def test_diff_compares_as_text_and_ignores_untracked_fields() -> None:
    old = {"overall_status": "RECRUITING", "enrollment": 60, "why_stopped": None, "title": "a"}
    new = {"overall_status": "RECRUITING", "enrollment": "60", "why_stopped": "", "title": "b"}
    assert changes.diff(old, new, changes.TRIAL_TRACKED) == []
    new["why_stopped"] = "funding"
    assert changes.diff(old, new, changes.TRIAL_TRACKED) == [("why_stopped", None, "funding")]


@pytest.mark.parametrize(("text", "found"), [
    ("Registered as NCT01234567.", ["NCT01234567"]),
    ("registered (nct 01234567; NCT07654321)", ["NCT01234567", "NCT07654321"]),
    ("NCT0123456 has seven digits, NCT012345678 nine", []),
    ("XNCT01234567 and NCT01234567X are not numbers", []),
])
def test_nct_numbers_in_text_are_validated(text: str, found: list[str]) -> None:
    from littrack.normalize.pubmed import normalize_raw

    rec = normalize_raw(article_xml("1", abstract=text).encode())
    assert [n for n, _, ev in changes.links(rec) if ev == "pubmed_text"] == found


def test_the_quick_check_for_trial_numbers_never_misses_one() -> None:
    """``may_name_a_trial`` skips the regex: it must say yes wherever the regex matches
    (and mostly no where "nct" is only part of a word)."""
    rng = random.Random(15)
    pieces = ["NCT", "nct", "Nc", "t", "N", "CT", " ", "\t", "\xa0", "01234567", "0123",
              "٠١٢٣٤٥٦٧", "İ", "ß", "x", "-", "function", "distinct"]
    texts = ["".join(rng.choice(pieces) for _ in range(rng.randrange(1, 12)))
             for _ in range(20000)]
    matching = [t for t in texts if changes.NCT_IN_TEXT.search(t)]
    assert len(matching) > 100  # the pieces do make trial numbers
    assert all(changes.may_name_a_trial(t) for t in matching)
    assert not changes.may_name_a_trial("function and distinct junctions")
    assert sum(map(changes.may_name_a_trial, texts)) < len(texts) / 2


def test_store_logs_only_tracked_fields(tmp_path: Path) -> None:
    """A changed title updates the row but is no history; a changed phase is."""
    with Store(tmp_path / "s.sqlite") as store:
        store.save_records([normalize_study(study("NCT00000001"))], "2026-01-01T00:00:00Z", "r1")
        store.save_records([normalize_study(study("NCT00000001", title="Renamed"))],
                           "2026-01-02T00:00:00Z", "r2")
        store.save_records([normalize_study(study("NCT00000001", title="Renamed",
                                                  phases=("PHASE2", "PHASE3")))],
                           "2026-01-03T00:00:00Z", "r3")
        got = [tuple(r) for r in store.db.execute(
            "SELECT run_id, field, old_value, new_value FROM trial_changes")]
    assert got == [("r3", "phase", "PHASE2", "PHASE2|PHASE3")]


def test_unreported_due_date_uses_the_end_of_a_partial_date(tmp_path: Path) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        store.save_records([normalize_study(study("NCT00000001", references=(),
                                                  primary_completion=("2024-05", "ACTUAL")))],
                           "2026-01-01T00:00:00Z", "r1")

        def due(today: date) -> list[str]:
            return list(store.query("unreported_trials", today=today.isoformat())["nct_id"])

        assert due(date(2025, 5, 31)) == []
        assert due(date(2025, 5, 31) + timedelta(days=1)) == ["NCT00000001"]
