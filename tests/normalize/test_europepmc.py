"""Every recorded Europe PMC search response, through the normalizer, field by field.

Real replies are read from the shared fixtures folder (never copied into the project) and
the tests skip when it is absent; everything else uses ``tests.builders.europepmc``. Each
expected value is taken from the recorded JSON by a rule written here independently of the
normalizer (lower-cased DOI, the publisher as server, ORCIDs from ``authorId``, ...).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from littrack.normalize.europepmc import (
    flatten,
    normalize_raw,
    normalize_result,
    pubmed_id,
    record_key,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "europepmc"
JSON_FILES = ["pyeuropepmc_search_cancer_core.json", "pyeuropepmc_search_cancer_lite.json",
              "pyeuropepmc_search_cancer_idlist.json",
              "pyeuropepmc_search_cancer_sorted_cited.json",
              "pyeuropepmc_searchpost_cancer.json", "pyeuropepmc_search_no_results.json",
              "wabbit_covid19_core.json"]


def _results(name: str) -> list[dict[str, Any]]:
    path = SHARED / name
    if not path.exists():
        pytest.skip(f"shared Europe PMC fixtures not available ({path})")
    body = json.loads(path.read_text(encoding="utf-8"))
    assert isinstance(body["hitCount"], int)
    return list(body["resultList"]["result"])


def _plain(text: str | None) -> str | None:
    """What a reader sees: tags gone, entities decoded, whitespace collapsed (test's own)."""
    if text is None:
        return None
    import html

    out = re.sub(r"</?(i|b|sup|sub|em|strong|span|a)\b[^>]*>", "", text)
    out = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", out)).split())
    return out or None


@pytest.mark.parametrize("name", JSON_FILES)
def test_every_recorded_result_has_an_identity_and_journal_articles_are_pubmed_records(
        name: str) -> None:
    for r in _results(name):
        assert record_key(r) == (r["source"], r["id"])
        if r["source"] == "MED":
            assert pubmed_id(r) == r.get("pmid", r["id"]) and pubmed_id(r).isdigit()
        else:
            assert pubmed_id(r) is None  # PPR, PMC-only, AGR, ...: not the PubMed record


def test_every_recorded_preprint_field_by_field() -> None:
    preprints = [r for r in _results("wabbit_covid19_core.json") if r["source"] == "PPR"]
    assert len(preprints) == 3
    for r in preprints:
        n = normalize_result(r)
        main = n.main
        assert n.source == "europepmc" and n.record_id == r["id"] == main["ppr_id"]
        assert main["title"] == _plain(r["title"])
        assert main["abstract"] == _plain(r.get("abstractText"))
        assert main["abstract"] is None or "<" not in main["abstract"]
        assert main["server"] == r["bookOrReportDetails"]["publisher"]
        assert main["doi"] == (r["doi"].lower() if "doi" in r else None)
        assert main["version_number"] == r.get("versionNumber")
        assert main["pub_year"] == int(r["pubYear"])
        assert main["first_index_date"] == r["firstIndexDate"]
        assert main["first_publication_date"] == r["firstPublicationDate"]
        assert main["license"] == r.get("license")
        authors = r.get("authorList", {}).get("author", [])
        got = n.tables["preprint_authors"]
        assert [(a["position"], a["full_name"], a["last_name"], a["first_name"],
                 a["initials"], a["orcid"]) for a in got] == [
            (i, a.get("fullName"), a.get("lastName"), a.get("firstName"), a.get("initials"),
             a["authorId"]["value"] if a.get("authorId", {}).get("type") == "ORCID" else None)
            for i, a in enumerate(authors, start=1)]
        versions = r.get("versionList", {}).get("version", [])
        assert [(v["version_id"], v["version_number"], v["first_publish_date"])
                for v in n.tables["preprint_versions"]] == [
            (v["id"], v["versionNumber"], v["firstPublishDate"]) for v in versions]
        links = [c for c in r.get("commentCorrectionList", {}).get("commentCorrection", [])
                 if c["type"] == "Preprint of"]
        assert [(p["published_source"], p["published_id"], p["note"])
                for p in n.tables["preprint_publications"]] == [
            (c["source"], c["id"], c.get("note")) for c in links]
        assert main["published_pmid"] == next(
            (c["id"] for c in links if c["source"] == "MED"), None)
        assert normalize_raw(n.raw) == n
    # the recorded set holds each case once: versions listed, a published link, neither
    assert sum(bool(normalize_result(r).tables["preprint_versions"]) for r in preprints) == 2
    assert sum(normalize_result(r).main["published_pmid"] is not None for r in preprints) == 1


def test_flatten_turns_markup_into_reading_text() -> None:
    assert flatten("<h4>Background: </h4> Text with <i>italics</i> &amp; H<sub>2</sub>O.") \
        == "Background: Text with italics & H2O."
    assert flatten("  ") is None and flatten(None) is None
