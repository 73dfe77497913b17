"""What changed between two sightings of a record, and which trials and articles cite each other.

Pure functions over normalized rows, called by the store while it saves, so the history is
written in the same transaction as the new state.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from littrack.normalize import Normalized
from littrack.vocab import CTGOV, EUROPEPMC, PUBMED

# Fields whose change a trial's followers care about (the FDAAA-style "what moved").
TRIAL_TRACKED = (
    "overall_status", "phase", "enrollment", "start_date", "primary_completion_date",
    "completion_date", "has_results", "why_stopped",
)
# Article flags that only ever matter when they appear (or disappear, e.g. a bad merge).
ARTICLE_TRACKED = ("is_retracted", "has_erratum", "has_concern", "is_deleted")
# A preprint being published (its journal version linked), or a new version of it.
PREPRINT_TRACKED = ("published_pmid", "version_number")
# Per source: the change log table, its record column, the fields it follows.
TRACKED: dict[str, tuple[str, str, tuple[str, ...]]] = {
    PUBMED: ("article_changes", "pmid", ARTICLE_TRACKED),
    CTGOV: ("trial_changes", "nct_id", TRIAL_TRACKED),
    EUROPEPMC: ("preprint_changes", "ppr_id", PREPRINT_TRACKED),
}

NCT_IN_TEXT = re.compile(r"\bNCT\s?(\d{8})\b", re.IGNORECASE)


def may_name_a_trial(text: str) -> bool:
    """Whether ``NCT_IN_TEXT`` could match ``text``: an "nct" in any case followed by a
    digit, or by one space and a digit.

    The case-blind regex scans a 1.5 KB abstract six times slower than this, and a first
    run checks every article it stores; "nct" alone is no filter ("function", "distinct").
    Only the ASCII letters case-fold to n, c and t, so lower-casing loses no match.
    """
    low = text.lower()
    i = low.find("nct")
    while i >= 0:
        after = low[i + 3:i + 5]
        if after[:1].isdigit() or (after[:1].isspace() and after[1:2].isdigit()):
            return True
        i = low.find("nct", i + 3)
    return False


def diff(old: dict[str, Any], new: dict[str, Any], fields: tuple[str, ...]
         ) -> list[tuple[str, str | None, str | None]]:
    """(field, old, new) for every tracked field whose value differs, as text."""
    out = []
    for f in fields:
        a, b = old.get(f), new.get(f)
        if _text(a) != _text(b):
            out.append((f, _text(a), _text(b)))
    return out


def text(value: Any) -> str | None:
    """A stored value as comparable text (None and "" alike)."""
    return _text(value)


def _text(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def links(record: Normalized) -> Iterator[tuple[str, str, str]]:
    """(nct_id, pmid, evidence) pairs a record states.

    Evidence kinds: ``pubmed_databank`` (the article's DataBankList), ``pubmed_text`` (an
    NCT number written in its title or abstract) and ``ctgov_reference`` (a PMID in the
    study's referencesModule).
    """
    if record.source == PUBMED:
        pmid = record.record_id
        for row in record.tables.get("article_trial_ids", []):
            yield row["nct_id"], pmid, "pubmed_databank"
        seen: set[str] = set()
        main = record.main
        text = " ".join(t for t in (main.get("title"), main.get("abstract")) if t)
        if not may_name_a_trial(text):
            return
        for m in NCT_IN_TEXT.finditer(text):
            nct = f"NCT{m.group(1)}"
            if nct not in seen:
                seen.add(nct)
                yield nct, pmid, "pubmed_text"
    elif record.source == CTGOV:
        nct = record.record_id
        pmids = {row["pmid"] for row in record.tables.get("trial_references", [])
                 if row.get("pmid") and str(row["pmid"]).isdigit()}
        for pmid in sorted(pmids):
            yield nct, pmid, "ctgov_reference"
