"""Europe PMC search results (``resultType=core``) in the service's shapes, with made-up data.

Shapes follow ``shared/fixtures/europepmc`` (flags as "Y"/"N", optional fields absent, never
null, lower-cased DOIs, preprints with ``bookOrReportDetails.publisher`` and no
``journalInfo``); the records themselves are invented here.
"""

from __future__ import annotations

from typing import Any


def author(last: str, first: str, *, orcid: str | None = None,
           affiliation: str | None = None) -> dict[str, Any]:
    initials = "".join(p[0] for p in first.split())
    out: dict[str, Any] = {"fullName": f"{last} {initials}", "firstName": first,
                           "lastName": last, "initials": initials}
    if orcid:
        out["authorId"] = {"type": "ORCID", "value": orcid}
    if affiliation:
        out["authorAffiliationDetailsList"] = {
            "authorAffiliation": [{"affiliation": affiliation}]}
    return out


def preprint(ppr_id: str, *, title: str = "A preprint on MDMA-assisted therapy",
             server: str = "medRxiv", doi: str | None = None,
             abstract: str | None = "<h4>Background</h4> We studied <i>things</i>.",
             authors: list[dict[str, Any]] | None = None, first_index: str = "2026-05-02",
             first_publication: str = "2026-05-01", version: int | None = None,
             versions: tuple[tuple[str, int, str], ...] | list[tuple[str, int, str]] = (),
             published_pmid: str | None = None, link_type: str = "Preprint of",
             link_note: str = "CrossRef Pre-print loader",
             nct_mentioned: bool = False) -> dict[str, Any]:
    """One ``PPR`` result: a preprint, optionally linked to its journal version by PMID."""
    rec: dict[str, Any] = {
        "id": ppr_id, "source": "PPR", "title": title,
        "authorString": ", ".join(a["fullName"] for a in authors or []) + ".",
        "pubYear": first_publication[:4],
        "pubTypeList": {"pubType": ["Preprint"]},
        "bookOrReportDetails": {"publisher": server,
                                "yearOfPublication": int(first_publication[:4])},
        "isOpenAccess": "N", "inEPMC": "N", "inPMC": "N", "hasPDF": "N", "hasBook": "N",
        "hasSuppl": "N", "citedByCount": 0, "hasData": "N", "hasReferences": "N",
        "hasTextMinedTerms": "Y" if nct_mentioned else "N", "hasDbCrossReferences": "N",
        "hasLabsLinks": "N", "license": "cc by",
        "firstIndexDate": first_index, "firstPublicationDate": first_publication,
        "dateOfCreation": first_index,
    }
    if doi:
        rec["doi"] = doi.lower()
    if abstract is not None:
        rec["abstractText"] = abstract
    if authors:
        rec["authorList"] = {"author": authors}
    if version is not None:
        rec["versionNumber"] = version
    if versions:
        rec["versionList"] = {"version": [
            {"id": vid, "source": "PPR", "firstPublishDate": day, "versionNumber": n,
             "pubTypeList": {"pubType": ["Preprint"]}, "hasEvaluations": "N"}
            for vid, n, day in versions]}
    if published_pmid:
        rec["commentCorrectionList"] = {"commentCorrection": [
            {"id": published_pmid, "source": "MED", "reference": "J Psychedelic Stud. 2026;1:1",
             "type": link_type, "note": link_note, "orderIn": 10001}]}
    if nct_mentioned:
        rec["tmAccessionTypeList"] = {"accessionType": ["nct"]}
    return rec


def journal_article(pmid: str, *, title: str = "A trial of MDMA-assisted therapy",
                    doi: str | None = None, pub_types: tuple[str, ...] = ("Journal Article",),
                    first_index: str = "2026-05-02", preprint_id: str | None = None,
                    pmcid: str | None = None) -> dict[str, Any]:
    """One ``MED`` result: the PubMed article as Europe PMC shows it."""
    rec: dict[str, Any] = {
        "id": pmid, "source": "MED", "pmid": pmid, "title": title,
        "authorString": "Doe J.", "pubYear": first_index[:4],
        "journalInfo": {"journal": {"title": "Journal of Psychedelic Studies",
                                    "isoabbreviation": "J Psychedelic Stud"},
                        "dateOfPublication": first_index[:7]},
        "pubTypeList": {"pubType": list(pub_types)},
        "isOpenAccess": "N", "inEPMC": "N", "inPMC": "N", "hasPDF": "N",
        "firstIndexDate": first_index, "firstPublicationDate": first_index,
    }
    if doi:
        rec["doi"] = doi.lower()
    if pmcid:
        rec["pmcid"] = pmcid
    if preprint_id:
        rec["commentCorrectionList"] = {"commentCorrection": [
            {"id": preprint_id, "source": "PPR", "reference": "medRxiv. 2025",
             "type": "Preprint in", "note": "CrossRef Pre-print loader", "orderIn": 10002}]}
    return rec


def other_record(ident: str, source: str = "AGR") -> dict[str, Any]:
    """A result of a collection littrack does not track (AGR, PMC-only, ...)."""
    return {"id": ident, "source": source, "title": "An agricola record", "pubYear": "2026",
            "firstIndexDate": "2026-05-02", "isOpenAccess": "N"}
