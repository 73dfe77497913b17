"""Reports a researcher can rely on (issue 11): unreported trials by the FDAAA TrialsTracker's
rules, status-not-updated apart, one list separator, richer combined lists, bar charts.

A real SQLite store filled through the store's own API with records from our builders.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pandas as pd

from littrack.normalize import Normalized
from littrack.normalize.ctgov import normalize_study
from littrack.normalize.pubmed_efetch import parse_efetch
from littrack.reports import report_frames, write_report
from littrack.reports.charts import publications_grid
from littrack.store import Store
from tests.builders.ctgov import study
from tests.builders.pubmed import article_xml, efetch_xml

RUN1, WHEN1 = "20260101T060000Z-aaaaaa", "2026-01-01T06:00:00Z"
RUN2, WHEN2 = "20260201T060000Z-bbbbbb", "2026-02-01T06:00:00Z"
TODAY = date(2026, 3, 1)


def articles(*specs: tuple[str, dict]) -> list[Normalized]:
    xml = efetch_xml([article_xml(pmid, **kw) for pmid, kw in specs])
    return [r for r in parse_efetch(xml) if isinstance(r, Normalized)]


def save(store: Store, run_id: str, when: str, topic: str, source: str,
         records: Sequence[Normalized]) -> None:
    store.start_run(run_id, topic, source, when, (None, when[:10]))
    with store.transaction():
        store.save_records(records, when, run_id)
        store.match(topic, source, [r.record_id for r in records], run_id)
        store.finish_run(run_id, topic, source, when, "ok", n_found=len(records))


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def trial(nct: str, **kw: object) -> Normalized:
    return normalize_study(study(nct, references=kw.pop("references", ()), **kw))  # type: ignore[arg-type]


# ---- point 6: unreported trials ----------------------------------------------------------
def unreported_store(path: Path) -> Store:
    store = Store(path)
    save(store, RUN1, WHEN1, "t", "ctgov", [
        # not started, estimated dates long past: the record was never updated
        trial("NCT00000001", status="NOT_YET_RECRUITING", fda_drug=True,
              start=("2022-01", "ESTIMATED"), primary_completion=("2023-01", "ESTIMATED"),
              completion=("2023-06", "ESTIMATED")),
        # applicable clinical trial: due 1 year + 30 days after primary completion
        trial("NCT00000002", status="COMPLETED", fda_drug=True, phases=("PHASE2",),
              start=("2018-01-10", "ACTUAL"), primary_completion=("2024-06-15", "ACTUAL"),
              completion=("2024-07-01", "ACTUAL")),
        # ... with a certificate of delay: 3 years + 30 days, not due yet
        trial("NCT00000003", status="COMPLETED", fda_drug=True, delay_certificate="2024-01-05",
              start=("2018-01-10", "ACTUAL"), primary_completion=("2023-06-15", "ACTUAL"),
              completion=("2023-06-15", "ACTUAL")),
        # results submitted, still in QC review: reported
        trial("NCT00000004", status="COMPLETED", fda_drug=True,
              results_first_submitted="2021-05-01", start=("2018-01-10", "ACTUAL"),
              primary_completion=("2020-03-01", "ACTUAL"), completion=("2020-03-01", "ACTUAL")),
        # not FDA-regulated: the plain 12-month rule, labelled as such
        trial("NCT00000005", status="COMPLETED", fda_drug=False,
              start=("2019-02-01", "ACTUAL"), primary_completion=("2024-03-31", "ACTUAL"),
              completion=("2024-03-31", "ACTUAL")),
        # started before the final rule, completed after it: probable ACT
        trial("NCT00000006", status="COMPLETED", fda_device=True, phases=("NA",),
              start=("2015-01", "ACTUAL"), primary_completion=("2018-01-31", "ACTUAL"),
              completion=("2018-01-31", "ACTUAL"),
              references=[("1111", "BACKGROUND", "An invented background paper."),
                          ("2222", "DERIVED", "An invented derived paper.")]),
        # phase 1: not an applicable clinical trial
        trial("NCT00000007", status="COMPLETED", fda_drug=True, phases=("PHASE1",),
              start=("2019-01-01", "ACTUAL"), primary_completion=("2024-12-31", "ACTUAL"),
              completion=("2024-12-31", "ACTUAL")),
    ])
    save(store, RUN1, WHEN1, "t", "pubmed", articles(("2222", {"title": "Derived."})))
    return store


def test_unreported_follows_fdaaa_and_lists_stale_records_apart(tmp_path: Path) -> None:
    with unreported_store(tmp_path / "s.sqlite") as store:
        frames = report_frames(store, [RUN1], TODAY)
    due = {r["nct_id"]: r for r in frames["unreported_trials"].to_dict("records")}
    assert set(due) == {"NCT00000002", "NCT00000005", "NCT00000006", "NCT00000007"}
    assert due["NCT00000002"]["due_date"] == "2025-07-15"
    assert due["NCT00000002"]["rule"] == "FDAAA 801: applicable clinical trial"
    assert due["NCT00000005"]["due_date"] == "2025-03-31"
    assert due["NCT00000005"]["rule"].startswith("not FDAAA-covered")
    assert due["NCT00000006"]["rule"] == "FDAAA 801: probable applicable clinical trial"
    assert due["NCT00000007"]["rule"].startswith("not FDAAA-covered")
    # the PMIDs themselves; one was never fetched, so the row cannot be verified
    assert due["NCT00000006"]["linked_pmids"] == "1111|2222"
    assert due["NCT00000006"]["verification"] == "unverified"
    assert due["NCT00000002"]["verification"] == "checked"
    stale = frames["status_not_updated"]
    assert list(stale["nct_id"]) == ["NCT00000001"]
    assert list(stale["status"]) == ["NOT_YET_RECRUITING"]


def test_the_views_in_the_store_say_the_same(tmp_path: Path) -> None:
    with unreported_store(tmp_path / "s.sqlite") as store:
        view = set(store.frame("trials_due_unreported")["nct_id"])
        stale = set(store.frame("trials_status_not_updated")["nct_id"])
    assert "NCT00000001" not in view and stale == {"NCT00000001"}
    assert {"NCT00000002", "NCT00000005"} <= view


def test_a_certificate_of_delay_becomes_due_after_three_years(tmp_path: Path) -> None:
    with unreported_store(tmp_path / "s.sqlite") as store:
        later = report_frames(store, [RUN1], date(2026, 7, 16))["unreported_trials"]
    row = later[later["nct_id"] == "NCT00000003"].to_dict("records")
    assert [(r["due_date"], r["rule"]) for r in row] == [
        ("2026-07-15", "FDAAA 801: applicable clinical trial (certificate of delay)")]


# ---- points 15 and 17: one separator, richer combined lists --------------------------------
def rich_store(path: Path) -> Store:
    store = Store(path)
    arts = articles(("3001", {"title": "Shared finding.", "pmcid": "PMC900001",
                              "nct_ids": ("NCT00000101",),
                              "publication_types": ("Journal Article",
                                                    "Randomized Controlled Trial")}))
    save(store, RUN1, WHEN1, "alpha", "pubmed", arts)
    save(store, RUN1, WHEN1, "beta", "pubmed", arts)
    save(store, RUN1, WHEN1, "alpha", "ctgov", [
        trial("NCT00000101", conditions=("PTSD", "Anxiety"),
              interventions=(("DRUG", "MDMA", ()), ("BEHAVIORAL", "Therapy", ())),
              locations=(("Site A", "Oslo", None, "Norway", None),
                         ("Site B", "Bern", None, "Switzerland", None)))])
    save(store, RUN2, WHEN2, "alpha", "pubmed", articles(
        ("3001", {"title": "Shared finding, corrected.", "pmcid": "PMC900001",
                  "nct_ids": ("NCT00000101",),
                  "publication_types": ("Journal Article", "Randomized Controlled Trial")})))
    return store


def test_new_articles_once_with_all_topics_and_everything_a_reader_needs(
        tmp_path: Path) -> None:
    with rich_store(tmp_path / "s.sqlite") as store:
        out = write_report(store, tmp_path / "r", [RUN1], "t", TODAY)
    rows = read_csv(out / "new_articles.csv")
    assert len(rows) == 1
    row = rows[0]
    assert row["topics"] == "alpha|beta"
    assert row["publication_types"] == "Journal Article|Randomized Controlled Trial"
    assert row["pmcid"] == "PMC900001" and row["nct_ids"] == "NCT00000101"
    assert row["abstract"] and row["mesh_terms"] and "|" in row["authors"]
    trials = read_csv(out / "new_trials.csv")
    assert [(t["conditions"], t["interventions"], t["countries"], t["has_results"],
             t["primary_completion_date_type"]) for t in trials] == [
        ("Anxiety|PTSD", "MDMA|Therapy", "Norway|Switzerland", "0", "ESTIMATED")]
    for name in ("new_articles", "new_trials", "links", "unreported_trials"):
        for r in read_csv(out / f"{name}.csv"):
            for column in ("topics", "publication_types", "countries", "linked_pmids"):
                assert "; " not in (r.get(column) or ""), (name, column)


def test_updated_articles_say_which_fields_changed_and_html_says_yes_no(
        tmp_path: Path) -> None:
    with rich_store(tmp_path / "s.sqlite") as store:
        out = write_report(store, tmp_path / "r", [RUN2], "t", TODAY)
    rows = read_csv(out / "updated_articles.csv")
    assert [(r["pmid"], r["changed_fields"], r["topics"]) for r in rows] == [
        ("3001", "title", "alpha|beta")]
    html = (out / "summary.html").read_text(encoding="utf-8")
    assert "<td>title</td><td>no</td>" in html  # changed fields, then "retracted: no"


# ---- point 8: bars per year, empty years as zero ------------------------------------------
def test_publications_grid_fills_empty_years_and_keeps_equal_topics_apart() -> None:
    data = pd.DataFrame({"topic": ["a", "a", "b", "b"], "year": [2001, 2004, 2001, 2004],
                         "n": [2, 1, 2, 1]})
    years, grid = publications_grid(data)
    assert years == [2001, 2002, 2003, 2004]
    assert grid == {"a": [2, 0, 0, 1], "b": [2, 0, 0, 1]}


def test_publication_panels_share_one_count_axis() -> None:
    """Stacked panels with their own scales drew 3 articles as tall as 4 (seen in a
    screenshot of summary.html): every panel now has the same y range."""
    from littrack.reports.charts import publications_figure

    fig = publications_figure([2001, 2002], {"a": [1, 3], "b": [40, 0], "c": [0, 0]})
    limits = {ax.get_ylim() for ax in fig.axes}
    assert len(fig.axes) == 3 and len(limits) == 1
    assert limits.pop()[1] >= 40


def test_chart_draws_one_year_and_forty(tmp_path: Path) -> None:
    from littrack.reports.charts import chart_publications

    for span, name in ((1, "one"), (40, "forty")):
        with Store(tmp_path / f"{name}.sqlite") as store:
            specs = [(str(4000 + i), {"pub_date": (str(1986 + i), "Jan", "1")})
                     for i in range(span)]
            save(store, RUN1, WHEN1, "t", "pubmed", articles(*specs))
            image = chart_publications(store, tmp_path / f"{name}.png")
        assert image is not None and (tmp_path / f"{name}.png").stat().st_size > 1000


def test_runs_table_goes_run_by_run_and_says_which_run(tmp_path: Path) -> None:
    """Seen in a screenshot of a week's report: rows of three runs interleaved by start
    second and topic name, with no run column, and every error repeating its row's topic
    and source."""
    with Store(tmp_path / "s.sqlite") as store:
        # the first run's topics start in different seconds, ctgov's between pubmed's
        for topic, source, when in (("zeta", "pubmed", "2026-01-01T06:00:00Z"),
                                    ("alpha", "ctgov", "2026-01-01T06:00:01Z"),
                                    ("alpha", "pubmed", "2026-01-01T06:00:02Z")):
            save(store, RUN1, when, topic, source, [])
        store.start_run(RUN2, "zeta", "pubmed", WHEN2, (None, WHEN2[:10]))
        store.finish_run(RUN2, "zeta", "pubmed", WHEN2, "failed",
                         error="[pubmed topic 'zeta'] pubmed unreachable at http://127.0.0.1:9")
        out = write_report(store, tmp_path / "r", [RUN1, RUN2], "t", TODAY)
    md = (out / "summary.md").read_text(encoding="utf-8")
    runs = md.split("## Runs", 1)[1].split("\n## ", 1)[0]
    rows = [line.split(" | ")[:3] for line in runs.splitlines() if line.startswith("| 2026")]
    assert rows == [["| 2026-01-01 06:00", "alpha", "ctgov"],
                    ["| 2026-01-01 06:00", "zeta", "pubmed"],
                    ["| 2026-01-01 06:00", "alpha", "pubmed"],
                    ["| 2026-02-01 06:00", "zeta", "pubmed"]]
    assert "| pubmed unreachable at http://127.0.0.1:9 |" in runs
    assert "[pubmed topic" not in runs
    # in the HTML, only the error column wraps (topic names wrapped at every hyphen)
    html = (out / "summary.html").read_text(encoding="utf-8")
    assert '<table class="runs">' in html
    assert "table.runs td:not(:last-child) { white-space: nowrap; }" in html
