"""Reports from the store alone: `littrack report --since`, the summary, charts, unreported.

The store here is a real SQLite file filled through the store's own API with records built
in the exact service formats, as two runs two months apart would leave it; no request is
made (the HTTP client is booby-trapped to prove it).
"""

from __future__ import annotations

import csv
import re
import struct
from collections.abc import Sequence
from datetime import date
from pathlib import Path

import pytest
from click.testing import CliRunner

from littrack.cli import cli
from littrack.normalize import Normalized
from littrack.normalize.ctgov import normalize_study
from littrack.normalize.pubmed_efetch import parse_efetch
from littrack.reports import summary, write_report
from littrack.store import Store
from tests.builders.ctgov import study
from tests.builders.pubmed import article_xml, efetch_xml
from tests.corpus import write_test_config

RUN1, WHEN1 = "20260101T060000Z-aaaaaa", "2026-01-01T06:00:00Z"
RUN2, WHEN2 = "20260301T060000Z-bbbbbb", "2026-03-01T06:00:00Z"
TOPIC = "mdma-ptsd"
HOSTILE = '<script>alert("x")</script> & | [a](http://evil.test) *MDMA*'


def articles(*specs: tuple[str, dict]) -> list[Normalized]:
    xml = efetch_xml([article_xml(pmid, **kw) for pmid, kw in specs])
    return [r for r in parse_efetch(xml) if isinstance(r, Normalized)]


def record_run(store: Store, run_id: str, when: str, topic: str, source: str,
               records: Sequence[Normalized], status: str = "ok",
               error: str | None = None) -> None:
    """What the pipeline leaves for one topic: rows, matches and the run row, committed."""
    store.start_run(run_id, topic, source, when, (None, when[:10]))
    with store.transaction():
        saved = store.save_records(records, when, run_id)
        n_new = store.match(topic, source, [r.record_id for r in records], run_id)
        store.finish_run(run_id, topic, source, when, status, n_found=len(records),
                         n_new=n_new, n_updated=len(saved.updated), error=error)


def seed(data_dir: Path, *, trials: bool = True) -> Path:
    """Two runs: January finds two articles and two trials; March one more article, a
    retraction of an old one, a status change, and a topic that failed."""
    db = data_dir / "littrack.sqlite"
    with Store(db) as store:
        record_run(store, RUN1, WHEN1, TOPIC, "pubmed", articles(
            ("1001", {"title": HOSTILE, "pub_date": ("2023", "Jan", "5")}),
            ("1002", {"pub_date": ("2024", "Feb", "1")})))
        if trials:
            record_run(store, RUN1, WHEN1, TOPIC, "ctgov", [
                normalize_study(study("NCT00000101", status="RECRUITING", references=())),
                normalize_study(study("NCT00000102", status="COMPLETED", references=(),
                                      title=HOSTILE, primary_completion=("2020-01", "ACTUAL"))),
            ])
        record_run(store, RUN2, WHEN2, TOPIC, "pubmed", articles(
            ("1003", {"pub_date": ("2026", "Feb", "20")}),
            ("1002", {"pub_date": ("2024", "Feb", "1"),
                      "publication_types": ("Journal Article", "Retracted Publication")})))
        if trials:
            record_run(store, RUN2, WHEN2, TOPIC, "ctgov", [
                normalize_study(study("NCT00000101", status="COMPLETED", references=()))])
        record_run(store, RUN2, WHEN2, "mdma-end-of-life", "pubmed", [], status="failed",
                   error=f"[pubmed] {HOSTILE}")
    return db


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to build an HTTP client fails the test."""
    from littrack import http

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a report must not touch the network")

    monkeypatch.setattr(http.HttpClient, "__init__", refuse)


def invoke(tmp_path: Path, *args: str) -> object:
    config = write_test_config(tmp_path)
    env = {"LITTRACK_DATA_DIR": str(tmp_path / "data"),
           "LITTRACK_EUTILS_URL": "http://127.0.0.1:9/entrez/eutils",
           "LITTRACK_CTGOV_URL": "http://127.0.0.1:9/api/v2"}
    return CliRunner().invoke(cli, ["--config", str(config), *args], env=env)


# ---- littrack report ----------------------------------------------------------------------
def test_report_since_covers_only_the_window(tmp_path: Path, no_network: None) -> None:
    seed(tmp_path / "data")
    result = invoke(tmp_path, "report", "--since", "2026-02-01")
    assert result.exit_code == 0, result.output
    out = tmp_path / "data" / "reports-since" / "2026-02-01"
    assert f"report: {out} (1 run(s) since 2026-02-01)" in result.output
    assert [r["pmid"] for r in read_csv(out / "new_articles.csv")] == ["1003"]
    assert read_csv(out / "new_trials.csv") == []
    assert [(r["pmid"], r["field"], r["old_value"], r["new_value"])
            for r in read_csv(out / "article_changes.csv")] == [("1002", "is_retracted", "0", "1")]
    assert [(r["nct_id"], r["field"], r["old_value"], r["new_value"])
            for r in read_csv(out / "trial_changes.csv")] == [
        ("NCT00000101", "overall_status", "RECRUITING", "COMPLETED")]
    assert [r["nct_id"] for r in read_csv(out / "unreported_trials.csv")] == ["NCT00000102"]
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert RUN2 in md and RUN1 not in md
    assert "| [mdma-ptsd](#topic-mdma-ptsd) | 1 | 1 | 0 | 1 | 1 | 1 | 1 |" in md

    everything = invoke(tmp_path, "report", "--since", "2025-12-31")
    assert everything.exit_code == 0, everything.output
    whole = tmp_path / "data" / "reports-since" / "2025-12-31"
    assert sorted(r["pmid"] for r in read_csv(whole / "new_articles.csv")) == [
        "1001", "1002", "1003"]


def test_report_shows_failed_topics_and_escapes_everything(tmp_path: Path,
                                                           no_network: None) -> None:
    seed(tmp_path / "data")
    assert invoke(tmp_path, "report", "--since", "2025-01-01").exit_code == 0
    out = tmp_path / "data" / "reports-since" / "2025-01-01"
    html = (out / "summary.html").read_text(encoding="utf-8")
    assert "<script>" not in html and 'href="http://evil.test"' not in html
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; |" in html
    assert "<td>FAILED</td>" in html
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "<script>" not in md and not re.search(r"(?<!\\)\[a", md)  # no live link
    assert '\\<script\\>alert("x")\\</script\\> \\& \\| \\[a\\](http://evil.test) \\*MDMA\\*' \
        in md
    assert "| mdma-end-of-life | pubmed | FAILED |" in md
    assert "1 topic run(s) did not finish" in md


def test_report_charts_are_pngs_referenced_by_relative_path(tmp_path: Path,
                                                            no_network: None) -> None:
    seed(tmp_path / "data")
    assert invoke(tmp_path, "report", "--since", "2025-01-01").exit_code == 0
    out = tmp_path / "data" / "reports-since" / "2025-01-01"
    md = (out / "summary.md").read_text(encoding="utf-8")
    html = (out / "summary.html").read_text(encoding="utf-8")
    for name in ("publications_per_year.png", "trials_by_phase_status.png"):
        width, height = png_size(out / "charts" / name)
        assert width > 400 and height > 200
        assert f"](charts/{name})" in md and f'<img src="charts/{name}"' in html


def test_chart_data_counts_articles_per_year_per_topic(tmp_path: Path) -> None:
    with Store(seed(tmp_path)) as store:
        per_year = store.query("publications_per_year")
        by_phase = store.query("trials_by_phase_status")
    assert list(per_year.itertuples(index=False, name=None)) == [
        (TOPIC, 2023, 1), (TOPIC, 2024, 1), (TOPIC, 2026, 1)]
    assert list(by_phase.itertuples(index=False, name=None)) == [
        (TOPIC, "PHASE2", "COMPLETED", 2)]


def test_no_trials_means_no_trials_chart(tmp_path: Path) -> None:
    with Store(seed(tmp_path, trials=False)) as store:
        out = write_report(store, tmp_path / "r", [RUN1, RUN2], "t", today=date(2026, 3, 1))
    assert (out / "charts" / "publications_per_year.png").is_file()
    assert not (out / "charts" / "trials_by_phase_status.png").exists()
    assert "trials_by_phase_status" not in (out / "summary.md").read_text(encoding="utf-8")


def test_long_tables_are_cut_and_point_to_the_csv(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(summary, "MAX_ROWS", 1)
    with Store(seed(tmp_path)) as store:
        out = write_report(store, tmp_path / "r", [RUN1], "t", today=date(2026, 3, 1))
    md = (out / "summary.md").read_text(encoding="utf-8")
    assert "… and 1 more in new\\_articles.csv." in md
    assert len(read_csv(out / "new_articles.csv")) == 2


def test_report_refuses_to_replace_a_folder_it_did_not_write(tmp_path: Path) -> None:
    seed(tmp_path / "data")
    precious = tmp_path / "documents"
    precious.mkdir()
    (precious / "thesis.docx").write_text("years of work", encoding="utf-8")
    result = invoke(tmp_path, "report", "--since", "2026-01-01", "--out", str(precious))
    assert result.exit_code == 2
    assert "refusing to replace" in result.output
    assert [p.name for p in precious.iterdir()] == ["thesis.docx"]
    # Its own earlier report is replaced without fuss.
    own = tmp_path / "mine"
    for _ in range(2):
        again = invoke(tmp_path, "report", "--since", "2026-01-01", "--out", str(own))
        assert again.exit_code == 0, again.output
    assert (own / "summary.html").is_file()


def test_report_needs_a_date_and_a_store(tmp_path: Path) -> None:
    assert invoke(tmp_path, "report", "--since", "last week").exit_code == 2
    missing = invoke(tmp_path, "report", "--since", "2026-01-01")
    assert missing.exit_code == 2 and "no littrack database" in missing.output


# ---- unreported trials ----------------------------------------------------------------------
def _trial(nct: str, **kw: object) -> Normalized:
    kw.setdefault("references", ())
    kw.setdefault("status", "COMPLETED")
    kw.setdefault("primary_completion", ("2020-01", "ACTUAL"))
    return normalize_study(study(nct, **kw))  # type: ignore[arg-type]


@pytest.mark.parametrize(("trial", "pub_types", "due"), [
    (_trial("NCT00000001"), None, "2021-01-31"),
    (_trial("NCT00000001", primary_completion=("2023", None)), None, "2024-12-31"),
    (_trial("NCT00000001", primary_completion=("2023-02-10", "ACTUAL")), None, "2024-02-10"),
    (_trial("NCT00000001", status="TERMINATED"), None, "2021-01-31"),
    (_trial("NCT00000001", has_results=True), None, None),
    (_trial("NCT00000001", status="WITHDRAWN"), None, None),
    (_trial("NCT00000001", primary_completion=None), None, None),
    (_trial("NCT00000001", references=[("2001", "RESULT", "Results.")]), None, None),
    (_trial("NCT00000001", references=[("2001", "BACKGROUND", "Earlier.")]), None,
     "2021-01-31"),
    (_trial("NCT00000001"), ("Journal Article", "Randomized Controlled Trial"), None),
    (_trial("NCT00000001"), ("Journal Article", "Clinical Trial, Phase II"), None),
    (_trial("NCT00000001"), ("Journal Article", "Clinical Trial Protocol"), "2021-01-31"),
    (_trial("NCT00000001"), ("Review",), "2021-01-31"),
], ids=["month", "year", "day", "terminated", "results", "withdrawn", "no-date",
        "result-ref", "background-ref", "rct-article", "phase-article", "protocol-article",
        "review-article"])
def test_unreported_definition(tmp_path: Path, trial: Normalized,
                               pub_types: tuple[str, ...] | None, due: str | None) -> None:
    with Store(tmp_path / "s.sqlite") as store:
        recs: list[Normalized] = [trial]
        if pub_types is not None:  # an article whose DataBankList names the trial
            recs += articles(("2002", {"nct_ids": ["NCT00000001"],
                                       "publication_types": pub_types}))
        store.save_records(recs, WHEN1, RUN1)
        got = store.query("unreported_trials", today="2026-06-01")
    assert list(got["due_date"]) == ([due] if due else [])


def test_view_is_the_query_as_of_today(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    with Store(seed(tmp_path)) as store:
        view = store.frame("trials_due_unreported")
        query = store.query("unreported_trials",
                            today=datetime.now(UTC).date().isoformat())
    assert view.to_dict("records") == query.to_dict("records")
    assert list(view["nct_id"]) == ["NCT00000102"]


# ---- escaping ---------------------------------------------------------------------------
@pytest.mark.parametrize(("text", "md"), [
    ("plain words", "plain words"),
    ("a|b", "a\\|b"),
    ("[x](y)", "\\[x\\](y)"),
    ("<img src=x>", "\\<img src=x\\>"),
    ("*bold* _it_ `code`", "\\*bold\\* \\_it\\_ \\`code\\`"),
    ("line\nbreak\ttab", "line break tab"),
    ("back\\slash & amp", "back\\\\slash \\& amp"),
])
def test_markdown_escape(text: str, md: str) -> None:
    assert summary.md_escape(text) == md
