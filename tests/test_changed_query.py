"""A changed query backfills (issue 11, point 1): the watermark keeps a fingerprint of the
query that set it, and a topic whose PubMed query or ClinicalTrials.gov parameters changed
is searched from the beginning on its next run, saying so, instead of only the last days."""

from __future__ import annotations

import dataclasses
import logging
from datetime import date
from pathlib import Path

import pytest

from littrack.config import Settings
from littrack.pipeline import run
from littrack.store import Store
from tests.builders.ctgov import study
from tests.builders.pubmed import article_xml
from tests.corpus import populate, settings_for
from tests.fakes import CtgovFake, EutilsFake

OLD = date(2019, 5, 1)


def with_topic(settings: Settings, name: str, **changes: object) -> Settings:
    topics = tuple(dataclasses.replace(t, **changes) if t.name == name else t
                   for t in settings.topics)
    return dataclasses.replace(settings, topics=topics)


def test_a_changed_pubmed_query_searches_from_the_beginning(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake,
        caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    populate(settings, eutils_fake, ctgov_fake, articles=6, trials=3)
    assert run(settings, sources=["pubmed"], write_report=False).exit_code == 0

    query = (settings.topic("mdma-ptsd").pubmed_query or "") + " OR cannabis[tiab]"
    eutils_fake.register_query(query)
    eutils_fake.add_article("38000001", article_xml("38000001", entrez_date=OLD), edat=OLD,
                            queries=[query])
    changed = with_topic(settings, "mdma-ptsd", pubmed_query=query)
    with caplog.at_level(logging.INFO, logger="littrack"):
        second = run(changed, sources=["pubmed"], write_report=False)
    assert second.exit_code == 0
    (ptsd,) = [r for r in second.results if r.topic == "mdma-ptsd"]
    assert ptsd.note and "query changed" in ptsd.note
    assert sum("the query changed since the last run" in r.getMessage()
               for r in caplog.records) == 1
    others = [r for r in second.results if r.topic != "mdma-ptsd" and r.source == "pubmed"]
    assert all(not (r.note or "").startswith("query changed") for r in others)
    with Store(settings.db_path) as store:
        assert "38000001" in store.query("new_articles", run_ids=[second.run_id])[
            "pmid"].tolist()
        mark = store.watermark("mdma-ptsd", "pubmed")
    assert mark is not None and mark.query_fingerprint == changed.topic(
        "mdma-ptsd").fingerprint("pubmed")


def test_changed_ctgov_parameters_search_from_the_beginning(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    populate(settings, eutils_fake, ctgov_fake, articles=3, trials=4)
    assert run(settings, sources=["ctgov"], write_report=False).exit_code == 0

    old = settings.topic("mdma-ptsd").ctgov
    assert old is not None
    new = dataclasses.replace(old, cond="PTSD OR Trauma")
    ctgov_fake.add_study(study("NCT08000001", last_update=OLD.isoformat()),
                         matches=[{k: v for k, v in new.params().items()
                                   if k.startswith("query.")}])
    before = ctgov_fake.count("/studies")
    second = run(with_topic(settings, "mdma-ptsd", ctgov=new), sources=["ctgov"],
                 write_report=False)
    assert second.exit_code == 0
    # the data timestamp did not move: only the changed topic asks, and for everything
    asked = ctgov_fake.requests("/studies")[before:]
    assert len(asked) == 1 and "filter.advanced" not in asked[0].params
    with Store(settings.db_path) as store:
        assert "NCT08000001" in store.query("new_trials", run_ids=[second.run_id])[
            "nct_id"].tolist()


def test_an_unchanged_query_stays_incremental(tmp_path: Path, eutils_fake: EutilsFake,
                                              ctgov_fake: CtgovFake) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    populate(settings, eutils_fake, ctgov_fake, articles=3, trials=2)
    assert run(settings, write_report=False).exit_code == 0
    second = run(settings, write_report=False)
    assert not [r for r in second.results if "query changed" in (r.note or "")]
