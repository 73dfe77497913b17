"""End to end against the loopback fakes: first run, quiet second run, changes, failures."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from littrack.pipeline import run, utcnow
from littrack.store import Store
from tests.builders.ctgov import study
from tests.builders.pubmed import article_xml
from tests.corpus import fake_env, populate, settings_for, write_test_config
from tests.dbutil import db_rows
from tests.fakes import CtgovFake, EutilsFake
from tests.fakes.eutils import _efetch_error
from tests.fakes.server import Reply, RequestRecord

TOPICS = ["mdma-ptsd", "mdma-end-of-life", "mdma-autism-social-anxiety"]


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))



def test_cli_first_and_second_run(tmp_path: Path, eutils_fake: EutilsFake,
                                  ctgov_fake: CtgovFake) -> None:
    """`littrack run` as a user runs it: fills tables and reports, then asks almost nothing."""
    config = write_test_config(tmp_path)
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    corpus = populate(settings, eutils_fake, ctgov_fake, articles=40, trials=12)
    env = {**os.environ, **fake_env(tmp_path, eutils_fake, ctgov_fake)}
    cmd = [sys.executable, "-m", "littrack", "--config", str(config), "run"]

    first = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    db = tmp_path / "data" / "littrack.sqlite"
    assert set(db_rows(db, "SELECT topic, record_id FROM topic_matches WHERE source='pubmed'")
               ) == corpus.matches("pubmed")
    assert set(db_rows(db, "SELECT topic, record_id FROM topic_matches WHERE source='ctgov'")
               ) == corpus.matches("ctgov")
    assert db_rows(db, "SELECT COUNT(*) FROM articles") == [(40,)]
    assert db_rows(db, "SELECT COUNT(*) FROM trials") == [(12,)]
    assert db_rows(db, "SELECT DISTINCT status FROM runs") == [("ok",)]
    # every article is fetched once, even when two topics found it
    efetched = [p for r in eutils_fake.requests("efetch.fcgi") for p in
                r.params.get("id", "").split(",") if p]
    assert len(efetched) == len(set(efetched))
    for r in eutils_fake.requests():
        assert r.params["tool"] == "littrack" and r.params["email"] == "tests@example.org"

    (report,) = (tmp_path / "data" / "reports").iterdir()
    arts = read_csv(report / "new_articles.csv")
    assert {(t, a["pmid"]) for a in arts for t in a["topics"].split("|")
            } == corpus.matches("pubmed")
    assert len(arts) == len({a["pmid"] for a in arts})  # once each, with all its topics
    assert all(a["url"] == f"https://pubmed.ncbi.nlm.nih.gov/{a['pmid']}/" for a in arts)
    assert all(a["first_author"] == "Doe J" for a in arts)
    trials = read_csv(report / "new_trials.csv")
    assert {(topic, t["nct_id"]) for t in trials for topic in t["topics"].split("|")
            } == corpus.matches("ctgov")
    assert all(t["countries"] == "United States" for t in trials)

    n_esearch, n_efetch = eutils_fake.count("esearch.fcgi"), eutils_fake.count("efetch.fcgi")
    n_studies = ctgov_fake.count("/studies")
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    assert eutils_fake.count("esearch.fcgi") - n_esearch == 3  # one ESearch per topic
    assert eutils_fake.count("efetch.fcgi") - n_efetch == 0
    assert ctgov_fake.count("/studies") - n_studies == 0  # dataTimestamp unchanged
    assert db_rows(db, "SELECT COUNT(*) FROM articles") == [(40,)]
    assert db_rows(db, "SELECT COUNT(*) FROM topic_matches") == [
        (len(corpus.matches("pubmed")) + len(corpus.matches("ctgov")),)]
    # nothing new, nothing failed: no second report folder (issue 11, point 14)
    assert list((tmp_path / "data" / "reports").iterdir()) == [report]
    assert "report:" not in second.stdout


def test_incremental_run_picks_up_new_and_changed(tmp_path: Path, eutils_fake: EutilsFake,
                                                  ctgov_fake: CtgovFake) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    populate(settings, eutils_fake, ctgov_fake, articles=9, trials=6)
    assert run(settings).exit_code == 0

    today = utcnow().date()  # the pipeline's clock: watermarks are UTC days
    q = settings.topic("mdma-ptsd").pubmed_query or ""
    eutils_fake.add_article("39999999", article_xml("39999999", entrez_date=today),
                            edat=today, mdat=today, queries=[q])
    changed = study("NCT09000000", status="COMPLETED", has_results=True,
                    last_update=today.isoformat())
    ctgov_fake.update_study(changed)
    ctgov_fake.bump()
    before = ctgov_fake.count("/studies")
    second = run(settings)
    assert second.exit_code == 0
    with Store(settings.db_path) as store:
        assert store.query("new_articles", run_ids=[second.run_id])["pmid"].tolist() == [
            "39999999"]
        changes = store.query("trial_changes", run_ids=[second.run_id])
        assert ("overall_status", "COMPLETED") in set(zip(changes["field"],
                                                          changes["new_value"], strict=True))
    # one page per topic that has studies updated in the window
    assert ctgov_fake.count("/studies") - before == 3
    filters = [r.params.get("filter.advanced") for r in ctgov_fake.requests("/studies")][-3:]
    assert all(f and f.startswith("AREA[LastUpdatePostDate]RANGE[") for f in filters)


def test_a_rejected_pubmed_query_fails_only_its_topic(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    populate(settings, eutils_fake, None, articles=6)
    bad = settings.topic("mdma-end-of-life").pubmed_query or ""
    eutils_fake.register_query(bad, field_not_found="MDMA[NoSuchField]")
    result = run(settings, sources=["pubmed"])
    by_topic = {r.topic: r for r in result.results}
    assert result.exit_code == 1
    assert by_topic["mdma-end-of-life"].status == "failed"
    assert "mdma-end-of-life" in (by_topic["mdma-end-of-life"].error or "")
    assert "MDMA[NoSuchField]" in (by_topic["mdma-end-of-life"].error or "")
    assert by_topic["mdma-ptsd"].status == "ok"
    assert by_topic["mdma-autism-social-anxiety"].status == "ok"
    with Store(settings.db_path) as store:
        runs = {(r["topic"], r["status"]) for r in store.runs(result.run_id)}
    assert ("mdma-end-of-life", "failed") in runs and ("mdma-ptsd", "ok") in runs


def test_ctgov_topic_with_unknown_parameter_names_topic_and_service_words(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake,
        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    populate(settings, None, ctgov_fake, trials=3)
    from littrack.sources.ctgov import ClinicalTrials

    original = ClinicalTrials.params

    def with_bad_param(self, topic, window):  # an invented parameter, as users write them
        params = original(self, topic, window)
        if topic.name == "mdma-end-of-life":
            params["filter.phase"] = "PHASE2"
        return params

    monkeypatch.setattr(ClinicalTrials, "params", with_bad_param)
    result = run(settings, sources=["ctgov"])
    by_topic = {r.topic: r for r in result.results}
    assert result.exit_code == 1
    bad = by_topic["mdma-end-of-life"]
    assert bad.status == "failed"
    assert "mdma-end-of-life" in (bad.error or "")
    assert "`filter.phase` is unknown parameter" in (bad.error or "")
    assert by_topic["mdma-ptsd"].status == "ok"
    with Store(settings.db_path) as store:
        assert store.watermark("mdma-end-of-life", "ctgov") is None
        assert store.watermark("mdma-ptsd", "ctgov") is not None


def test_rebuild_restores_the_tables_offline(tmp_path: Path, eutils_fake: EutilsFake,
                                             ctgov_fake: CtgovFake) -> None:
    """After a parser fix, `littrack rebuild` re-derives every row from the raw records."""
    config = write_test_config(tmp_path)
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    populate(settings, eutils_fake, ctgov_fake, articles=12, trials=6)
    assert run(settings).exit_code == 0
    db = settings.db_path
    tables = ["articles", "article_authors", "article_mesh", "trials", "trial_conditions"]
    snapshot = {t: sorted(db_rows(db, f"SELECT * FROM {t}")) for t in tables}
    con = sqlite3.connect(db)
    con.execute("UPDATE articles SET title = 'broken by an old parser'")
    con.execute("DELETE FROM article_mesh")
    con.execute("DELETE FROM trial_conditions")
    con.commit()
    con.close()
    n_requests = eutils_fake.count() + ctgov_fake.count()
    env = {**os.environ, **fake_env(tmp_path, eutils_fake, ctgov_fake)}
    proc = subprocess.run([sys.executable, "-m", "littrack", "--config", str(config),
                           "rebuild"], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "pubmed: rebuilt 12 records" in proc.stdout
    assert eutils_fake.count() + ctgov_fake.count() == n_requests  # offline
    assert {t: sorted(db_rows(db, f"SELECT * FROM {t}")) for t in tables} == snapshot


def test_records_a_failed_topic_rolled_back_are_still_fetched_by_the_topics_after_it(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    """A topic that fails after storing a batch rolls it back: the run must not count those
    records as fetched, or a later topic that also finds them skips them and matches ids
    whose articles were never stored."""
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    first, second = settings.topics[0], settings.topics[1]
    a = [str(4000000 + i) for i in range(1200)]  # listed newest first: batches of 500
    b = [str(5000000 + i) for i in range(200)] + a[-300:]  # shares A's newest 300
    for q in (first.pubmed_query, second.pubmed_query):
        eutils_fake.register_query(q or "")
    for pmid in dict.fromkeys(a + b):
        eutils_fake.add_article(pmid, article_xml(pmid), edat=date(2024, 5, 1), queries=[
            q or "" for q, ids in ((first.pubmed_query, a), (second.pubmed_query, b))
            if pmid in ids])

    def fail_a_last_batch(rec: RequestRecord) -> Reply | None:
        if rec.path.endswith("efetch.fcgi") and rec.params.get("retstart") == "1000":
            return _efetch_error("Search Backend failed")
        return None

    eutils_fake.before_reply = fail_a_last_batch  # A's third page, every time it is asked
    result = run(settings, sources=["pubmed"], write_report=False)

    assert [r.status for r in result.results][:2] == ["failed", "ok"]
    stored = {row[0] for row in db_rows(settings.db_path, "SELECT pmid FROM articles")}
    assert stored == set(b)
    matched = db_rows(settings.db_path, "SELECT record_id FROM topic_matches WHERE topic=?",
                      (second.name,))
    assert {row[0] for row in matched} == set(b)
