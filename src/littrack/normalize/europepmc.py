"""Europe PMC search results (``resultType=core`` JSON) -> tidy rows of preprints.

Identity is the pair (``source``, ``id``): only ``PPR`` results (preprints) become records
of this source. A ``MED`` result *is* the PubMed article with that PMID, stored once in
``articles`` by the PubMed source (``pubmed_id`` says which); other collections (PMC-only,
Agricola, ...) are not tracked. Optional fields are absent rather than null, flags are
"Y"/"N", DOIs are lower-cased here (they compare case-insensitively), and text fields carry
inline HTML (``<h4>Background</h4>``, ``<i>``) or MathML, flattened to plain text as the
PubMed normalizer does.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any

from littrack.errors import MalformedResponse
from littrack.normalize import Normalized, Row
from littrack.tables import (
    PREPRINT_AUTHORS,
    PREPRINT_PUBLICATIONS,
    PREPRINT_VERSIONS,
    PREPRINTS,
)
from littrack.vocab import EUROPEPMC

__all__ = ["flatten", "normalize_raw", "normalize_result", "pubmed_id", "record_key"]

PREPRINT = "PPR"
JOURNAL = "MED"
PUBLISHED_RELATIONS = frozenset({"Preprint of"})  # on a preprint: its journal version
_TAG = re.compile(r"<(/?)([A-Za-z][\w:.-]*)[^>]*>")
# Tags inside a word or formula (<i>, <sup>, MathML's <mml:mi>): removed without a space.
# Any other tag (<h4>, <p>, <br>) separates words.
_INLINE = frozenset({"i", "b", "em", "strong", "sup", "sub", "u", "span", "a", "sc", "tt",
                     "small", "font", "inline-formula"})


def record_key(result: dict[str, Any]) -> tuple[str, str]:
    """(collection, id) of a result; a result without them is MalformedResponse."""
    source, ident = result.get("source"), result.get("id")
    if not isinstance(source, str) or not isinstance(ident, str) or not ident:
        raise MalformedResponse(f"search result without source/id: {str(result)[:120]}",
                                source=EUROPEPMC)
    return source, ident


def pubmed_id(result: dict[str, Any]) -> str | None:
    """The PMID when the result is a PubMed article (a ``MED`` record), else None."""
    source, ident = record_key(result)
    if source != JOURNAL:
        return None
    pmid = str(result.get("pmid") or ident)
    return pmid if pmid.isdigit() else None


def flatten(text: Any) -> str | None:
    """Inline markup and entities out, whitespace collapsed; empty -> None."""
    if not isinstance(text, str):
        return None

    def tag(m: re.Match[str]) -> str:
        name = m.group(2).lower()
        return "" if name in _INLINE or name.startswith(("mml:", "m:")) else " "

    out = " ".join(html.unescape(_TAG.sub(tag, text)).split())
    return out or None


def _date(value: Any) -> str | None:
    return value[:10] if isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}", value) \
        else None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _list(node: Any, *path: str) -> list[Any]:
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, list) else []


def normalize_result(result: dict[str, Any]) -> Normalized:
    """One ``PPR`` result as a preprint record (raise ValueError for other collections)."""
    source, ppr = record_key(result)
    if source != PREPRINT:
        raise ValueError(f"{source}:{ppr} is not a preprint")
    authors: list[Row] = []
    for i, a in enumerate(_list(result, "authorList", "author"), start=1):
        ident = a.get("authorId") if isinstance(a.get("authorId"), dict) else {}
        affs = [flatten(x.get("affiliation")) for x in
                _list(a, "authorAffiliationDetailsList", "authorAffiliation")]
        authors.append({
            "ppr_id": ppr, "position": i, "full_name": a.get("fullName"),
            "last_name": a.get("lastName"), "first_name": a.get("firstName"),
            "initials": a.get("initials"),
            "orcid": ident.get("value") if ident.get("type") == "ORCID" else None,
            "affiliation": " | ".join(x for x in affs if x) or None,
        })
    versions = {v["id"]: {"ppr_id": ppr, "version_id": v["id"],
                          "version_number": _int(v.get("versionNumber")),
                          "first_publish_date": _date(v.get("firstPublishDate"))}
                for v in _list(result, "versionList", "version")
                if isinstance(v, dict) and isinstance(v.get("id"), str)}
    published: dict[tuple[str, str], Row] = {}
    for c in _list(result, "commentCorrectionList", "commentCorrection"):
        if isinstance(c, dict) and c.get("type") in PUBLISHED_RELATIONS and c.get("id") \
                and isinstance(c.get("source"), str):
            key = (c["source"], str(c["id"]))
            published.setdefault(key, {
                "ppr_id": ppr, "published_source": key[0], "published_id": key[1],
                "evidence": "europepmc_preprint_of", "note": c.get("note")})
    pmids = sorted((k[1] for k in published if k[0] == JOURNAL and k[1].isdigit()), key=int)
    book = result.get("bookOrReportDetails")
    doi = result.get("doi")
    main: Row = {
        "ppr_id": ppr,
        "title": flatten(result.get("title")),
        "abstract": flatten(result.get("abstractText")),
        "server": book.get("publisher") if isinstance(book, dict) else None,
        "doi": doi.strip().lower() if isinstance(doi, str) and doi.strip() else None,
        "version_number": _int(result.get("versionNumber")),
        "pub_year": _int(result.get("pubYear")),
        "first_publication_date": _date(result.get("firstPublicationDate")),
        "first_index_date": _date(result.get("firstIndexDate")),
        "license": result.get("license"),
        "published_pmid": pmids[0] if pmids else None,
    }
    raw = json.dumps(result, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return Normalized(EUROPEPMC, ppr, {
        PREPRINTS.name: [main],
        PREPRINT_AUTHORS.name: authors,
        PREPRINT_VERSIONS.name: list(versions.values()),
        PREPRINT_PUBLICATIONS.name: list(published.values()),
    }, raw)


def normalize_raw(raw: bytes) -> Normalized:
    """Re-normalize a stored ``Normalized.raw`` (``littrack rebuild``), offline."""
    try:
        result = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"stored Europe PMC record is not JSON: {exc}",
                                source=EUROPEPMC) from None
    if not isinstance(result, dict):
        raise MalformedResponse("stored Europe PMC record is not an object", source=EUROPEPMC)
    return normalize_result(result)
