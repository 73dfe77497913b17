"""Europe PMC as the third source, against its loopback fake: paging, completeness, errors,
preprints stored once per work, links to published versions, incremental runs."""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from littrack.config import Settings
from littrack.errors import QueryRejected
from littrack.http import HttpClient
from littrack.normalize.ctgov import normalize_study
from littrack.normalize.pubmed import normalize_raw as normalize_pubmed
from littrack.pipeline import RunResult, run
from littrack.sources.europepmc import FULLTEXT, EuropePmc
from littrack.store import Store
from littrack.vocab import TRIAL_MENTIONS_TOPIC
from tests.builders.ctgov import study
from tests.builders.europepmc import author, journal_article, other_record, preprint
from tests.builders.pubmed import article_xml
from tests.corpus import populate, settings_for
from tests.fakes import CtgovFake, EuropePmcFake, EutilsFake


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def at(day: str) -> Callable[[], datetime]:
    return lambda: datetime.fromisoformat(day).replace(hour=6, tzinfo=UTC)


def rows(settings: Settings, sql: str, *args: object) -> list[tuple[object, ...]]:
    with sqlite3.connect(settings.db_path) as db:
        return db.execute(sql, args).fetchall()


def source(fake: EuropePmcFake, page_size: int = 1000) -> EuropePmc:
    from littrack.config import EuropePmcSettings, RetrySettings

    return EuropePmc(EuropePmcSettings(base_url=fake.url + fake.prefix, page_size=page_size),
                     HttpClient("europepmc", 100.0, RetrySettings(backoff_base=0.01)))


@pytest.mark.parametrize("end", ["absent", "repeat"])
def test_a_walk_pages_by_cursor_to_either_end_and_sends_cursors_encoded(end: str) -> None:
    with EuropePmcFake(end=end) as fake:
        for i in range(2500):
            fake.add(preprint(f"PPR{100000 + i}"), queries=["q"])
        batches = list(source(fake).walk("q"))
        sent = fake.requests("/search")
    assert sum(len(b.records) for b in batches) == 2500
    assert len({r.record_id for b in batches for r in b.records}) == 2500
    assert [b.announced for b in batches][:1] == [2500]
    # absent: the last full page ends the walk; repeat: one more, empty page with the cursor
    assert len(sent) == (3 if end == "absent" else 4)
    assert [r.params["cursorMark"] for r in sent][0] == "*"
    later = [r.target for r in sent[1:]]
    assert later and all("cursorMark=%2A" not in t and "%3D" in t for t in later)
    assert all(r.params["resultType"] == "core" and r.params["pageSize"] == "1000"
               for r in sent)


def test_an_error_in_a_200_is_an_error_and_a_page_without_hitcount_is_retried(
        europepmc_fake: EuropePmcFake) -> None:
    with pytest.raises(QueryRejected, match="No search criteria"):
        list(source(europepmc_fake).walk(""))
    europepmc_fake.add(preprint("PPR1"), queries=["q"])
    europepmc_fake.faults.push("error200", "/search")  # the transient shape: no hitCount
    src = source(europepmc_fake)
    (batch,) = list(src.walk("q"))
    assert [r.record_id for r in batch.records] == ["PPR1"] and src.client.stats.retries == 1


def test_a_preprint_is_normalized_field_by_field() -> None:
    from littrack.normalize.europepmc import normalize_raw, normalize_result

    rec = preprint(
        "PPR777", title="MDMA <i>and</i> V<sub>O2</sub>max", server="Research Square",
        doi="10.21203/RS.3.RS-1/V2", abstract="<h4>Background</h4>Text &amp; more.",
        authors=[author("Doe", "Jane Q", orcid="0000-0002-0000-0001", affiliation="Uni A"),
                 author("Roe", "Rick")],
        version=2, versions=[("PPR776", 1, "2026-01-02"), ("PPR777", 2, "2026-03-04")],
        published_pmid="41000001", first_index="2026-03-05", first_publication="2026-03-04")
    n = normalize_result(rec)
    main = n.main
    assert (main["ppr_id"], main["title"], main["abstract"]) == (
        "PPR777", "MDMA and VO2max", "Background Text & more.")
    assert (main["server"], main["doi"], main["version_number"], main["pub_year"]) == (
        "Research Square", "10.21203/rs.3.rs-1/v2", 2, 2026)
    assert (main["first_index_date"], main["first_publication_date"],
            main["published_pmid"]) == ("2026-03-05", "2026-03-04", "41000001")
    assert [(a["position"], a["last_name"], a["orcid"], a["affiliation"])
            for a in n.tables["preprint_authors"]] == [
        (1, "Doe", "0000-0002-0000-0001", "Uni A"), (2, "Roe", None, None)]
    assert [(v["version_id"], v["version_number"]) for v in n.tables["preprint_versions"]] == [
        ("PPR776", 1), ("PPR777", 2)]
    (link,) = n.tables["preprint_publications"]
    assert (link["published_source"], link["published_id"], link["evidence"]) == (
        "MED", "41000001", "europepmc_preprint_of")
    assert normalize_raw(n.raw) == n  # rebuild gives the same tables


PTSD = "mdma-ptsd"


def _world(tmp_path: Path, eutils: EutilsFake, ctgov: CtgovFake,
           epmc: EuropePmcFake) -> tuple[Settings, str]:
    settings = settings_for(tmp_path, eutils, ctgov, epmc)
    return settings, _world_into(settings, eutils, ctgov, epmc)


def _world_into(settings: Settings, eutils: EutilsFake, ctgov: CtgovFake,
                epmc: EuropePmcFake) -> str:
    corpus = populate(settings, eutils, ctgov, articles=9, trials=3)
    query = settings.topic(PTSD).europepmc_query
    assert query
    tracked = sorted(p for p, topics in corpus.articles.items() if PTSD in topics)[0]
    for pmid in ("40000001", "40000002", "40000003", "40000004"):  # matched by no PubMed topic
        eutils.add_article(pmid, article_xml(pmid, doi=f"10.5555/j.{pmid}"),
                           edat=date(2026, 4, 1))
    epmc.add(preprint("PPR100", doi="10.1101/2026.04.01.1", published_pmid="40000001",
                      authors=[author("Doe", "Jane")], first_index="2026-04-02"),
             queries=[query])
    epmc.add(preprint("PPR101", first_index="2026-04-03"), queries=[query])
    epmc.add(journal_article(tracked), queries=[query])  # stored by the PubMed topic
    epmc.add(journal_article("40000002"), queries=[query])  # only Europe PMC found it
    epmc.add(other_record("AGR1"), queries=[query])  # a collection littrack does not track
    # an article that names a tracked trial only in its full text, and a preprint that does
    trial = sorted(corpus.trials)[0]
    epmc.add(journal_article("40000004", pub_types=("Randomized Controlled Trial",),
                             first_index="2026-04-10"),
             mentions=[trial])
    epmc.add(preprint("PPR200", first_index="2026-04-05"), mentions=[trial])
    return tracked


def _epmc(result: RunResult) -> dict[str, object]:
    return {r.topic: r for r in result.results if r.source == "europepmc"}


def test_three_sources_store_each_work_once_and_link_preprints_to_published_versions(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake,
        europepmc_fake: EuropePmcFake) -> None:
    settings, tracked = _world(tmp_path, eutils_fake, ctgov_fake, europepmc_fake)
    first = run(settings, clock=at("2026-05-01"))
    assert first.exit_code == 0, [(r.source, r.topic, r.error) for r in first.results]
    assert first.report_dir is not None
    assert [(r["topic"], r["ppr_id"], r["published_pmid"])
            for r in read_csv(first.report_dir / "new_preprints.csv")] == [
        (PTSD, "PPR101", ""), (PTSD, "PPR100", "40000001")]
    ptsd = _epmc(first)[PTSD]
    assert (ptsd.n_found, ptsd.n_new) == (5, 2)  # 2 preprints, 2 articles, 1 untracked
    assert rows(settings, "SELECT ppr_id, doi, published_pmid FROM preprints WHERE ppr_id < "
                          "'PPR2' ORDER BY 1") == [
        ("PPR100", "10.1101/2026.04.01.1", "40000001"), ("PPR101", None, None)]
    # the journal articles are the PubMed records, once each: the published version and the
    # article only Europe PMC found were fetched from PubMed one step out
    stored = {r[0] for r in rows(settings, "SELECT pmid FROM articles")}
    assert {"40000001", "40000002", tracked} <= stored and "40000003" not in stored
    assert rows(settings, "SELECT COUNT(*) FROM raw_records WHERE record_id IN "
                          "('40000001', '40000002', ?)", tracked) == [(3,)]
    assert rows(settings, "SELECT COUNT(*) FROM raw_records WHERE source='europepmc'") == [(3,)]
    assert ("40000002",) in rows(settings, "SELECT record_id FROM topic_matches WHERE "
                                           "topic=? AND source='pubmed'", PTSD)
    # one per topic; trial mentions: all tracked trials at once, then the one with hits
    assert len(europepmc_fake.requests("/search")) == 3 + 1 + 3
    trial = sorted(t for (t,) in rows(settings, "SELECT nct_id FROM trials"))[0]
    assert rows(settings, "SELECT nct_id, pmid FROM trial_publication_links WHERE "
                          "evidence='europepmc_fulltext'") == [(trial, "40000004")]
    assert ("40000004",) in rows(settings, "SELECT pmid FROM articles")  # one step out
    assert rows(settings, "SELECT COUNT(*) FROM preprints WHERE ppr_id='PPR200'") == [(1,)]
    assert rows(settings, "SELECT COUNT(*) FROM topic_matches WHERE record_id IN "
                          "('PPR200', '40000004')") == [(0,)]  # found by no topic
    assert [(r["nct_id"], r["pmid"], r["evidence"])
            for r in read_csv(first.report_dir / "links.csv")
            if r["evidence"] == "europepmc_fulltext"] == [(trial, "40000004", "europepmc_fulltext")]

    # nothing new: one request per topic, for what was indexed or updated since
    europepmc_fake.log.clear()
    second = run(settings, clock=at("2026-05-04"), write_report=False)
    assert second.exit_code == 0
    sent = europepmc_fake.requests("/search")
    assert len(sent) == 3 + 1  # one per topic, one for all tracked trials' mentions
    assert all(r.params["query"].endswith("AND (FIRST_IDATE:[2026-04-28 TO 2026-05-04] OR "
                                          "UPDATE_DATE:[2026-04-28 TO 2026-05-04])")
               for r in sent)

    # a tracked preprint gains its published version: a change, and the article is fetched
    query = settings.topic(PTSD).europepmc_query or ""
    europepmc_fake.add(preprint("PPR101", first_index="2026-04-03",
                                published_pmid="40000003"),
                       queries=[query], updated="2026-05-06")
    third = run(settings, clock=at("2026-05-07"))
    assert third.exit_code == 0 and third.report_dir is not None
    assert rows(settings, "SELECT ppr_id, field, old_value, new_value FROM preprint_changes") \
        == [("PPR101", "published_pmid", None, "40000003")]
    assert ("40000003",) in rows(settings, "SELECT pmid FROM articles")
    assert [(r["ppr_id"], r["pmid"], r["topics"])
            for r in read_csv(third.report_dir / "preprints_published.csv")] == [
        ("PPR101", "40000003", PTSD)]
    md = (third.report_dir / "summary.md").read_text(encoding="utf-8")
    assert "### Preprints newly published: 1" in md


def test_a_preprint_without_preprint_of_is_linked_by_doi_to_a_pubmed_article_and_logged(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake,
        europepmc_fake: EuropePmcFake) -> None:
    settings, _ = _world(tmp_path, eutils_fake, ctgov_fake, europepmc_fake)
    query = settings.topic(PTSD).europepmc_query or ""
    # no commentCorrectionList on either: Europe PMC has not linked them yet
    europepmc_fake.add(preprint("PPR300", doi="10.1101/2026.04.09.3"), queries=[query])
    europepmc_fake.add(preprint("PPR301", doi="10.1101/2026.04.09.4"), queries=[query])
    first = run(settings, clock=at("2026-05-04"), write_report=False)
    assert first.exit_code == 0, [(r.source, r.topic, r.error) for r in first.results]
    assert rows(settings, "SELECT ppr_id, published_pmid FROM preprints WHERE ppr_id IN "
                          "('PPR300', 'PPR301') ORDER BY 1") == [
        ("PPR300", None), ("PPR301", None)]

    # the journal versions reach PubMed: one with the preprint's DOI (in capitals), one whose
    # CommentsCorrections say it updates the preprint; Europe PMC finds both (MED records)
    eutils_fake.add_article("40000005", article_xml("40000005", doi="10.1101/2026.04.09.3".upper()),
                            edat=date(2026, 5, 5))
    eutils_fake.add_article("40000006", article_xml(
        "40000006", comments=[("UpdateOf", None, "medRxiv. 2026 Apr 9:2026.04.09.4. doi: "
                               "10.1101/2026.04.09.4. Preprint.")]), edat=date(2026, 5, 5))
    eutils_fake.add_article("40000007", article_xml("40000007", doi="10.5555/unrelated.7"),
                            edat=date(2026, 5, 5))
    for pmid in ("40000005", "40000006", "40000007"):
        europepmc_fake.add(journal_article(pmid, first_index="2026-05-05"), queries=[query])
    # a preprint first seen when its journal version is already stored: linked, no change
    europepmc_fake.add(preprint("PPR302", doi="10.5555/j.40000002", first_index="2026-05-06"),
                       queries=[query])
    second = run(settings, clock=at("2026-05-07"))
    assert second.exit_code == 0, [(r.source, r.topic, r.error) for r in second.results]
    assert second.report_dir is not None
    assert {"40000005", "40000006"} <= {p for (p,) in rows(settings, "SELECT pmid FROM articles")}
    assert rows(settings, "SELECT ppr_id, published_source, published_id, evidence "
                          "FROM preprint_publications WHERE ppr_id >= 'PPR3' ORDER BY 1") == [
        ("PPR300", "MED", "40000005", "pubmed_doi_match"),
        ("PPR301", "MED", "40000006", "pubmed_cites_preprint_doi"),
        ("PPR302", "MED", "40000002", "pubmed_doi_match")]
    assert rows(settings, "SELECT ppr_id, published_pmid FROM preprints WHERE ppr_id >= 'PPR3' "
                          "ORDER BY 1") == [
        ("PPR300", "40000005"), ("PPR301", "40000006"), ("PPR302", "40000002")]
    assert rows(settings, "SELECT ppr_id, field, old_value, new_value FROM preprint_changes "
                          "ORDER BY 1") == [
        ("PPR300", "published_pmid", None, "40000005"),
        ("PPR301", "published_pmid", None, "40000006")]
    assert [(r["ppr_id"], r["pmid"]) for r in
            read_csv(second.report_dir / "preprints_published.csv")] == [
        ("PPR300", "40000005"), ("PPR301", "40000006")]

    # a new version that still names no journal version keeps the link, and is no change
    europepmc_fake.add(preprint("PPR300", doi="10.1101/2026.04.09.3", version=2),
                       queries=[query], updated="2026-05-09")
    third = run(settings, clock=at("2026-05-10"), write_report=False)
    assert third.exit_code == 0
    assert rows(settings, "SELECT published_pmid FROM preprints WHERE ppr_id='PPR300'") == [
        ("40000005",)]
    assert rows(settings, "SELECT field, new_value FROM preprint_changes WHERE ppr_id='PPR300' "
                          "ORDER BY field") == [
        ("published_pmid", "40000005"), ("version_number", "2")]


@pytest.mark.parametrize(("pub_type", "still_due"), [
    ("Randomized Controlled Trial", False), ("Clinical Trial, Phase III", False),
    ("Review", True), ("Journal Article", True), ("Preprint", True)])
def test_a_fulltext_link_clears_an_overdue_trial_only_to_a_results_article(
        tmp_path: Path, pub_type: str, still_due: bool) -> None:
    nct = "NCT00000001"
    with Store(tmp_path / "s.sqlite") as store:
        store.save_records([normalize_study(study(
            nct, references=(), primary_completion=("2024-05", "ACTUAL")))],
            "2026-01-01T00:00:00Z", "r1")

        def due() -> list[str]:
            return list(store.query("unreported_trials", today="2026-01-01")["nct_id"])

        assert due() == [nct]  # overdue, nothing links to it yet
        store.save_records([normalize_pubmed(article_xml(
            "41000009", publication_types=(pub_type,)).encode("utf-8"))],
            "2026-01-02T00:00:00Z", "r2")
        assert due() == [nct]  # stored, but no link names the trial
        assert store.add_links([(nct, "41000009", FULLTEXT)], "r2") == 1
        assert due() == ([nct] if still_due else [])
        assert [tuple(r) for r in store.db.execute(
            "SELECT nct_id FROM trials_due_unreported")] == ([(nct,)] if still_due else [])


def test_a_preprint_naming_a_tracked_trial_is_linked_once_and_reported(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake,
        europepmc_fake: EuropePmcFake) -> None:
    settings, _ = _world(tmp_path, eutils_fake, ctgov_fake, europepmc_fake)
    first = run(settings, clock=at("2026-05-01"))
    assert first.exit_code == 0 and first.report_dir is not None
    trial = sorted(t for (t,) in rows(settings, "SELECT nct_id FROM trials"))[0]
    run_id = rows(settings, "SELECT run_id FROM runs WHERE topic=? AND source='europepmc'",
                  TRIAL_MENTIONS_TOPIC)[0][0]
    assert rows(settings, "SELECT nct_id, ppr_id, evidence, first_seen_run FROM "
                          "trial_preprint_links") == [
        (trial, "PPR200", "europepmc_fulltext", run_id)]
    mentions = _epmc(first)[TRIAL_MENTIONS_TOPIC]
    assert (mentions.n_found, mentions.n_new) == (2, 2)  # the article's link and the preprint's
    assert [(r["nct_id"], r["ppr_id"], r["evidence"], r["url"])
            for r in read_csv(first.report_dir / "preprint_links.csv")] == [
        (trial, "PPR200", "europepmc_fulltext", "https://europepmc.org/article/PPR/PPR200")]
    md = (first.report_dir / "summary.md").read_text(encoding="utf-8")
    assert "## Trial–preprint links found in this window: 1" in md
    assert "PPR200" in md.split("## Trial–preprint links")[1]

    # the preprint is updated and found again: the link is not added twice
    europepmc_fake.add(preprint("PPR200", first_index="2026-04-05"), mentions=[trial],
                       updated="2026-05-03")
    second = run(settings, clock=at("2026-05-04"))
    assert second.exit_code == 0
    again = _epmc(second)[TRIAL_MENTIONS_TOPIC]
    assert (again.n_found, again.n_new) == (1, 0)
    assert rows(settings, "SELECT COUNT(*) FROM trial_preprint_links") == [(1,)]
    assert second.report_dir is None  # nothing new to tell: the link is not news again


def test_fewer_records_than_hitcount_fail_the_topic_and_keep_the_watermark(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake,
        europepmc_fake: EuropePmcFake) -> None:
    settings, _ = _world(tmp_path, eutils_fake, ctgov_fake, europepmc_fake)
    europepmc_fake.hit_count_drift = 2
    result = run(settings, sources=["europepmc"], clock=at("2026-05-01"), write_report=False)
    ptsd = _epmc(result)[PTSD]
    assert ptsd.status == "failed" and "received 5 of the 7" in (ptsd.error or "")
    assert rows(settings, "SELECT COUNT(*) FROM watermarks WHERE topic=? AND "
                          "source='europepmc'", PTSD) == [(0,)]
    assert rows(settings, "SELECT COUNT(*) FROM preprints") == [(0,)]  # rolled back


NOTIFY = """
[[notify]]
name = "preprints"
topics = ["mdma-ptsd"]
include = ["new_preprints", "preprints_published"]
[notify.atom]
path = "feeds/preprints.xml"
"""


def test_preprint_events_reach_notify_channels(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake,
        europepmc_fake: EuropePmcFake) -> None:
    import feedparser

    from littrack.notify import deliver

    settings = settings_for(tmp_path, eutils_fake, ctgov_fake, europepmc_fake, extra=NOTIFY)
    _world_into(settings, eutils_fake, ctgov_fake, europepmc_fake)
    assert run(settings, clock=at("2026-05-01"), write_report=False).exit_code == 0
    query = settings.topic(PTSD).europepmc_query or ""
    europepmc_fake.add(preprint("PPR101", first_index="2026-04-03",
                                published_pmid="40000003"),
                       queries=[query], updated="2026-05-06")
    assert run(settings, clock=at("2026-05-07"), write_report=False).exit_code == 0
    (delivered,) = deliver(settings)
    assert delivered.error is None
    feed = feedparser.parse(str(settings.data_dir / "feeds" / "preprints.xml"))
    titles = sorted(e.title for e in feed.entries)
    assert titles == ["New preprint: A preprint on MDMA-assisted therapy"] * 2 + [
        "Preprint published: A preprint on MDMA-assisted therapy"]
    published = next(e for e in feed.entries if e.title.startswith("Preprint published"))
    assert "PMID 40000003" in published.summary
    assert "https://pubmed.ncbi.nlm.nih.gov/40000003/" in published.summary
