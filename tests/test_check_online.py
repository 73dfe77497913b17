"""``littrack check --online`` (issue 11, point 11): hit counts per topic and source from
count-only requests to the loopback fakes; a query a service rejects is exit 2 naming it."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from littrack.cli import cli
from tests.corpus import fake_env, populate, settings_for, write_test_config
from tests.fakes import CtgovFake, EutilsFake


def check(tmp_path: Path, eutils: EutilsFake, ctgov: CtgovFake) -> object:
    config = write_test_config(tmp_path)
    return CliRunner().invoke(cli, ["--config", str(config), "check", "--online"],
                              env=fake_env(tmp_path, eutils, ctgov))


def test_counts_per_topic_and_source_without_records(tmp_path: Path, eutils_fake: EutilsFake,
                                                      ctgov_fake: CtgovFake) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    corpus = populate(settings, eutils_fake, ctgov_fake, articles=25, trials=8)
    result = check(tmp_path, eutils_fake, ctgov_fake)
    assert result.exit_code == 0, result.output
    for t in settings.topics:
        n_pubmed = sum(t.name in topics for topics in corpus.articles.values())
        n_ctgov = sum(t.name in topics for topics in corpus.trials.values())
        line = next(x for x in result.output.splitlines() if x.strip().startswith(t.name))
        assert f"pubmed {n_pubmed:>7,} hits" in line and f"ctgov {n_ctgov:>7,} hits" in line
    assert eutils_fake.count("efetch.fcgi") == 0  # counts only: no record fetched
    assert all(r.params.get("retmax") == "0" for r in eutils_fake.requests("esearch.fcgi"))
    assert all(r.params.get("pageSize") == "1" for r in ctgov_fake.requests("/studies"))
    assert len(ctgov_fake.requests("/studies")) == len(settings.topics)


def test_a_pubmed_field_the_service_does_not_know_is_a_config_error(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    populate(settings, eutils_fake, ctgov_fake, articles=5, trials=2)
    query = settings.topic("mdma-end-of-life").pubmed_query or ""
    eutils_fake.register_query(query, field_not_found="tiabx")
    result = check(tmp_path, eutils_fake, ctgov_fake)
    assert result.exit_code == 2, result.output
    assert "topic 'mdma-end-of-life'" in result.output and "tiabx" in result.output
    assert "Traceback" not in result.output


def test_a_ctgov_query_the_service_refuses_is_a_config_error(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    populate(settings, eutils_fake, ctgov_fake, articles=5, trials=2)
    ctgov = settings.topic("mdma-autism-social-anxiety").ctgov
    assert ctgov is not None and ctgov.term
    ctgov_fake.rejected_queries[ctgov.term] = "Invalid value in parameter `query.term`"
    result = check(tmp_path, eutils_fake, ctgov_fake)
    assert result.exit_code == 2, result.output
    assert "topic 'mdma-autism-social-anxiety'" in result.output
    assert "ClinicalTrials.gov rejects the query" in result.output
