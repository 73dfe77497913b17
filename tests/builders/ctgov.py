"""Our own ClinicalTrials.gov v2 study records, in the exact shape the API sends.

Tests must not ship real registry records, so they build them here. The shape follows the
real API (see ``shared/research/ctgov_api_v2.md`` §5): keys and whole modules are left out
when empty, never sent as ``null``; observational studies carry no ``phases`` key; date
structs may lack their ``type`` (pass ``(date, None)``).

    study("NCT01234567")                              # a full interventional PTSD/MDMA trial
    study("NCT01234567", status="COMPLETED", phases=("PHASE1", "PHASE2"))
    study("NCT07654321", study_type="OBSERVATIONAL")  # no phases key
    page([study("NCT01234567"), ...], next_page_token="tok", total_count=12)
    drop(study("NCT01234567"), "protocolSection.designModule", "hasResults")
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

Study = dict[str, Any]
DateSpec = tuple[str, str | None] | None  # (PartialDate text, "ACTUAL"/"ESTIMATED"/None)
Intervention = tuple[str | None, str, Sequence[str]]  # (type, name, other names)
Location = tuple[str | None, str | None, str | None, str | None, str | None]
# (facility, city, state, country, status)
Reference = tuple[str | None, str | None, str | None]  # (pmid, type, citation)
SecondaryId = tuple[str, str | None, str | None]  # (id, type, domain)
Mesh = tuple[str | None, str]  # (MeSH id, term)

DEFAULT_LOCATIONS: tuple[Location, ...] = (
    ("Example Psychiatric Research Center", "Springfield", "Illinois", "United States",
     "RECRUITING"),
)
DEFAULT_REFERENCES: tuple[Reference, ...] = (
    ("12345678", "BACKGROUND", "Doe J, Roe R. An invented background paper. J Invented Med. "
     "2020;1(1):1-10."),
)
DEFAULT_SECONDARY_IDS: tuple[SecondaryId, ...] = (("EX-2024-001", "OTHER", "Example Registry"),)
DEFAULT_CONDITION_MESH: tuple[Mesh, ...] = (("D013313", "Stress Disorders, Post-Traumatic"),)
DEFAULT_INTERVENTION_MESH: tuple[Mesh, ...] = (
    ("D018817", "N-Methyl-3,4-methylenedioxyamphetamine"),
)


def _compact(value: Any) -> Any:
    """Remove None values and empty containers recursively, as the API never sends them."""
    if isinstance(value, dict):
        out = {k: _compact(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != {} and v != []}
    if isinstance(value, list):
        out_list = [_compact(v) for v in value]
        return [v for v in out_list if v is not None and v != {} and v != []]
    return value


def _date(spec: DateSpec) -> dict[str, Any] | None:
    if spec is None:
        return None
    date, kind = spec
    return {"date": date, "type": kind}


def study(
    nct_id: str,
    *,
    title: str = "MDMA-Assisted Therapy for Post-Traumatic Stress Disorder",
    official_title: str | None = None,
    acronym: str | None = None,
    aliases: Sequence[str] = (),
    status: str = "RECRUITING",
    last_known_status: str | None = None,
    why_stopped: str | None = None,
    phases: Sequence[str] | None = None,
    study_type: str = "INTERVENTIONAL",
    conditions: Sequence[str] = ("Post-Traumatic Stress Disorder",),
    keywords: Sequence[str] = (),
    interventions: Sequence[Intervention] = (("DRUG", "MDMA", ("midomafetamine",)),),
    enrollment: tuple[int, str | None] | None = (60, "ESTIMATED"),
    start: DateSpec = ("2024-05", "ACTUAL"),
    primary_completion: DateSpec = ("2026-06", "ESTIMATED"),
    completion: DateSpec = ("2026-12", "ESTIMATED"),
    first_posted: str | None = "2024-04-02",
    last_update: str | None = "2025-01-10",
    results_first_posted: str | None = None,
    results_first_submitted: str | None = None,
    delay_certificate: str | None = None,
    fda_drug: bool | None = None,
    fda_device: bool | None = None,
    primary_purpose: str | None = "TREATMENT",
    has_results: bool = False,
    sponsor: tuple[str, str | None] | None = ("Example University", "OTHER"),
    organization: str | None = None,
    summary: str | None = "An invented study record for littrack's tests.",
    locations: Sequence[Location] = DEFAULT_LOCATIONS,
    references: Sequence[Reference] = DEFAULT_REFERENCES,
    secondary_ids: Sequence[SecondaryId] = DEFAULT_SECONDARY_IDS,
    condition_mesh: Sequence[Mesh] = DEFAULT_CONDITION_MESH,
    intervention_mesh: Sequence[Mesh] = DEFAULT_INTERVENTION_MESH,
) -> Study:
    """Build one v2 ``Study`` object; every argument maps to one place in the JSON.

    ``phases=None`` means ``("PHASE2",)`` for interventional studies and no ``phases`` key
    otherwise (as the API does for observational studies); pass ``()`` to omit it anyway.
    Any value may be ``None`` (or empty) to leave its key out; a module with nothing left in
    it disappears. ``organization`` defaults to the sponsor name, which is how most real
    records look (the normaliser must still read the lead sponsor, not the organization).
    """
    if phases is None:
        phases = ("PHASE2",) if study_type == "INTERVENTIONAL" else ()
    sponsor_name, sponsor_class = sponsor if sponsor is not None else (None, None)
    return _compact({
        "protocolSection": {
            "identificationModule": {
                "nctId": nct_id,
                "nctIdAliases": list(aliases),
                "orgStudyIdInfo": {"id": f"ORG-{nct_id[-4:]}"},
                "secondaryIdInfos": [
                    {"id": sid, "type": kind, "domain": domain}
                    for sid, kind, domain in secondary_ids
                ],
                "organization": {
                    "fullName": organization or sponsor_name,
                    "class": sponsor_class,
                },
                "briefTitle": title,
                "officialTitle": official_title,
                "acronym": acronym,
            },
            "statusModule": {
                "statusVerifiedDate": (last_update or "")[:7] or None,
                "overallStatus": status,
                "lastKnownStatus": last_known_status,
                "whyStopped": why_stopped,
                "startDateStruct": _date(start),
                "primaryCompletionDateStruct": _date(primary_completion),
                "completionDateStruct": _date(completion),
                "studyFirstSubmitDate": first_posted,
                "studyFirstPostDateStruct": _date((first_posted, "ACTUAL"))
                if first_posted else None,
                "resultsFirstSubmitDate": results_first_submitted,
                "resultsFirstPostDateStruct": _date((results_first_posted, "ACTUAL"))
                if results_first_posted else None,
                "dispFirstSubmitDate": delay_certificate,
                "lastUpdateSubmitDate": last_update,
                "lastUpdatePostDateStruct": _date((last_update, "ACTUAL"))
                if last_update else None,
            },
            "sponsorCollaboratorsModule": {
                "responsibleParty": {"type": "SPONSOR"} if sponsor_name else None,
                "leadSponsor": {"name": sponsor_name, "class": sponsor_class},
            },
            "oversightModule": {"isFdaRegulatedDrug": fda_drug,
                                "isFdaRegulatedDevice": fda_device},
            "descriptionModule": {"briefSummary": summary},
            "conditionsModule": {"conditions": list(conditions), "keywords": list(keywords)},
            "designModule": {
                "studyType": study_type,
                "phases": list(phases),
                "designInfo": {"primaryPurpose": primary_purpose}
                if study_type == "INTERVENTIONAL" else None,
                "enrollmentInfo": (
                    {"count": enrollment[0], "type": enrollment[1]} if enrollment else None
                ),
            },
            "armsInterventionsModule": {
                "interventions": [
                    {"type": kind, "name": name, "otherNames": list(other_names)}
                    for kind, name, other_names in interventions
                ],
            },
            "contactsLocationsModule": {
                "locations": [
                    {"facility": facility, "status": loc_status, "city": city,
                     "state": state, "country": country}
                    for facility, city, state, country, loc_status in locations
                ],
            },
            "referencesModule": {
                "references": [
                    {"pmid": pmid, "type": kind, "citation": citation}
                    for pmid, kind, citation in references
                ],
            },
        },
        "derivedSection": {
            "miscInfoModule": {"versionHolder": last_update},
            "conditionBrowseModule": {
                "meshes": [{"id": mid, "term": term} for mid, term in condition_mesh],
            },
            "interventionBrowseModule": {
                "meshes": [{"id": mid, "term": term} for mid, term in intervention_mesh],
            },
        },
        "hasResults": has_results,
    })


def page(
    studies: Sequence[Study],
    *,
    next_page_token: str | None = None,
    total_count: int | None = None,
) -> dict[str, Any]:
    """A ``GET /studies`` reply: ``totalCount`` only on page 1, no token on the last page."""
    body: dict[str, Any] = {"studies": list(studies)}
    if total_count is not None:
        body["totalCount"] = total_count
    if next_page_token is not None:
        body["nextPageToken"] = next_page_token
    return body


def drop(record: Study, *paths: str) -> Study:
    """A deep copy of ``record`` without the keys at the given dotted paths (absent ones ok)."""
    out = copy.deepcopy(record)
    for path in paths:
        *parents, last = path.split(".")
        node: Any = out
        for step in parents:
            node = node.get(step) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return out
