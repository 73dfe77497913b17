"""ClinicalTrials.gov API v2 study JSON → tidy ``trials`` rows and their child tables.

The API leaves keys and whole modules out when they are empty (it never sends nulls), and
``fields=``-limited replies carry partial structs (a start date without its type, an
intervention without its type). So every lookup here tolerates absence and yields ``None``
or an empty list; only the NCT number is required, because without it the record cannot be
stored. Keys we do not know are ignored, since minor API versions ship in place.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from littrack.errors import MalformedResponse
from littrack.normalize import Normalized, Row
from littrack.tables import (
    CTGOV_TABLES,
    TRIAL_CONDITIONS,
    TRIAL_INTERVENTIONS,
    TRIAL_LOCATIONS,
    TRIAL_MESH,
    TRIAL_PHASES,
    TRIAL_REFERENCES,
    TRIAL_SECONDARY_IDS,
    TRIALS,
    Table,
)

SOURCE = "ctgov"

NCT_ID_PATH = "protocolSection.identificationModule.nctId"

# The API's "unknown" enrollment count; storing it would wreck every sum and average.
ENROLLMENT_UNKNOWN = 99999999

_ID = "protocolSection.identificationModule"
_STATUS = "protocolSection.statusModule"
_SPONSOR = "protocolSection.sponsorCollaboratorsModule.leadSponsor"
_DESIGN = "protocolSection.designModule"

# Columns of ``trials`` that are plain text copied from one place in the study. Kept as data
# so a field that moves between API versions is a one-line change.
TEXT_FIELDS: dict[str, str] = {
    "acronym": f"{_ID}.acronym",
    "brief_title": f"{_ID}.briefTitle",
    "official_title": f"{_ID}.officialTitle",
    "overall_status": f"{_STATUS}.overallStatus",
    "last_known_status": f"{_STATUS}.lastKnownStatus",
    "why_stopped": f"{_STATUS}.whyStopped",
    "study_type": f"{_DESIGN}.studyType",
    "enrollment_type": f"{_DESIGN}.enrollmentInfo.type",
    "start_date": f"{_STATUS}.startDateStruct.date",
    "start_date_type": f"{_STATUS}.startDateStruct.type",
    "primary_completion_date": f"{_STATUS}.primaryCompletionDateStruct.date",
    "primary_completion_date_type": f"{_STATUS}.primaryCompletionDateStruct.type",
    "completion_date": f"{_STATUS}.completionDateStruct.date",
    "completion_date_type": f"{_STATUS}.completionDateStruct.type",
    "first_posted": f"{_STATUS}.studyFirstPostDateStruct.date",
    "last_update_posted": f"{_STATUS}.lastUpdatePostDateStruct.date",
    "results_first_posted": f"{_STATUS}.resultsFirstPostDateStruct.date",
    # Results submitted count as reported while still in QC review (FDAAA TrialsTracker).
    "results_first_submitted": f"{_STATUS}.resultsFirstSubmitDate",
    # A certificate of delay moves the FDAAA due date from 1 to 3 years after completion.
    "delay_certificate_submitted": f"{_STATUS}.dispFirstSubmitDate",
    "primary_purpose": f"{_DESIGN}.designInfo.primaryPurpose",
    # leadSponsor, not identificationModule.organization: the two can differ.
    "lead_sponsor": f"{_SPONSOR}.name",
    "lead_sponsor_class": f"{_SPONSOR}.class",
}

PHASES_PATH = f"{_DESIGN}.phases"
ENROLLMENT_PATH = f"{_DESIGN}.enrollmentInfo.count"
HAS_RESULTS_PATH = "hasResults"
FDA_DRUG_PATH = "protocolSection.oversightModule.isFdaRegulatedDrug"
FDA_DEVICE_PATH = "protocolSection.oversightModule.isFdaRegulatedDevice"
CONDITIONS_PATH = "protocolSection.conditionsModule.conditions"
INTERVENTIONS_PATH = "protocolSection.armsInterventionsModule.interventions"
LOCATIONS_PATH = "protocolSection.contactsLocationsModule.locations"
REFERENCES_PATH = "protocolSection.referencesModule.references"
SECONDARY_IDS_PATH = f"{_ID}.secondaryIdInfos"
MESH_PATHS: dict[str, str] = {
    "condition": "derivedSection.conditionBrowseModule.meshes",
    "intervention": "derivedSection.interventionBrowseModule.meshes",
}


def dig(obj: Any, path: str) -> Any:
    """Follow a dotted path, answering ``None`` as soon as a step is absent or not a dict.

    Numeric steps index into lists (``"locations.0.city"``) so tests can point at items.
    """
    for step in path.split("."):
        if isinstance(obj, dict):
            obj = obj.get(step)
        elif isinstance(obj, list) and step.isdigit() and int(step) < len(obj):
            obj = obj[int(step)]
        else:
            return None
        if obj is None:
            return None
    return obj


def _text(value: Any) -> str | None:
    """Strings trimmed, blanks and non-strings dropped, so a stray type never reaches SQL."""
    if isinstance(value, str):
        value = value.strip()
        return value or None
    return None


def _items(value: Any) -> Iterator[dict[str, Any]]:
    """The dict entries of a list the API sent, skipping anything else it might hold."""
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


def _texts(value: Any) -> list[str]:
    """The non-blank strings of a list, trimmed, in order."""
    if not isinstance(value, list):
        return []
    return [t for t in (_text(v) for v in value) if t is not None]


def _unique(values: Iterable[str]) -> list[str]:
    """Drop repeats but keep the API's order, which carries meaning (e.g. phases)."""
    return list(dict.fromkeys(values))


def _row(table: Table, values: Row) -> Row:
    """Check a row against the column contract so a typo fails here, not in the store."""
    if set(values) != set(table.columns):
        raise AssertionError(
            f"{table.name}: row columns {sorted(values)} != contract {sorted(table.columns)}"
        )
    return {column: values[column] for column in table.columns}


def _enrollment(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or value == ENROLLMENT_UNKNOWN:
        return None
    return value


def _flag(value: Any) -> int | None:
    """A JSON boolean as 1/0; absent (not answered by the sponsor) stays unknown."""
    return int(value) if isinstance(value, bool) else None


def _nct_id(study: Any) -> str:
    if not isinstance(study, dict):
        raise MalformedResponse(
            f"study record is a JSON {type(study).__name__}, not an object", source=SOURCE
        )
    nct_id = _text(dig(study, NCT_ID_PATH))
    if nct_id is None:
        raise MalformedResponse(f"study record has no {NCT_ID_PATH}", source=SOURCE)
    return nct_id


def _trial(study: dict[str, Any], nct_id: str, phases: list[str]) -> Row:
    values: Row = {column: _text(dig(study, path)) for column, path in TEXT_FIELDS.items()}
    values.update(
        nct_id=nct_id,
        phase="|".join(phases),
        enrollment=_enrollment(dig(study, ENROLLMENT_PATH)),
        has_results=1 if dig(study, HAS_RESULTS_PATH) is True else 0,
        fda_regulated_drug=_flag(dig(study, FDA_DRUG_PATH)),
        fda_regulated_device=_flag(dig(study, FDA_DEVICE_PATH)),
    )
    return _row(TRIALS, values)


def _interventions(study: dict[str, Any], nct_id: str) -> list[Row]:
    rows = []
    for position, item in enumerate(_items(dig(study, INTERVENTIONS_PATH)), start=1):
        other_names = _texts(item.get("otherNames"))
        rows.append(_row(TRIAL_INTERVENTIONS, {
            "nct_id": nct_id,
            "position": position,
            "type": _text(item.get("type")),
            "name": _text(item.get("name")),
            "other_names": "|".join(other_names) or None,
        }))
    return rows


def _locations(study: dict[str, Any], nct_id: str) -> list[Row]:
    return [
        _row(TRIAL_LOCATIONS, {
            "nct_id": nct_id,
            "position": position,
            **{key: _text(item.get(key)) for key in ("facility", "city", "state", "country")},
            "status": _text(item.get("status")),
        })
        for position, item in enumerate(_items(dig(study, LOCATIONS_PATH)), start=1)
    ]


def _pmid(value: Any) -> str | None:
    """PMIDs are strings in v2, but an int would be the same article; keep it as text."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _text(value)


def _references(study: dict[str, Any], nct_id: str) -> list[Row]:
    return [
        _row(TRIAL_REFERENCES, {
            "nct_id": nct_id,
            "position": position,
            "pmid": _pmid(item.get("pmid")),
            "type": _text(item.get("type")),
            "citation": _text(item.get("citation")),
        })
        for position, item in enumerate(_items(dig(study, REFERENCES_PATH)), start=1)
    ]


def _mesh(study: dict[str, Any], nct_id: str) -> list[Row]:
    rows: list[Row] = []
    seen: set[tuple[str, str]] = set()
    for kind, path in MESH_PATHS.items():
        for item in _items(dig(study, path)):
            term = _text(item.get("term"))
            if term is None or (kind, term) in seen:  # (kind, term) is the table key
                continue
            seen.add((kind, term))
            rows.append(_row(TRIAL_MESH, {
                "nct_id": nct_id, "kind": kind, "mesh_id": _text(item.get("id")), "term": term,
            }))
    return rows


def _secondary_ids(study: dict[str, Any], nct_id: str) -> list[Row]:
    rows: list[Row] = []
    seen: set[str] = set()
    for item in _items(dig(study, SECONDARY_IDS_PATH)):
        secondary_id = _text(item.get("id"))
        if secondary_id is None or secondary_id in seen:
            continue
        seen.add(secondary_id)
        rows.append(_row(TRIAL_SECONDARY_IDS, {
            "nct_id": nct_id,
            "secondary_id": secondary_id,
            "type": _text(item.get("type")),
            "domain": _text(item.get("domain")),
        }))
    return rows


def normalize_study(study: dict[str, Any], raw: bytes | None = None) -> Normalized:
    """Reshape one v2 study; ``raw`` is what the store keeps so ``rebuild`` can redo this.

    Callers that hold the bytes the API sent for this study should pass them; otherwise the
    study is re-serialised compactly.
    """
    nct_id = _nct_id(study)
    if raw is None:
        raw = json.dumps(study, ensure_ascii=False, separators=(",", ":")).encode()
    phases = _unique(_texts(dig(study, PHASES_PATH)))
    conditions = _unique(_texts(dig(study, CONDITIONS_PATH)))
    tables: dict[str, list[Row]] = {table.name: [] for table in CTGOV_TABLES}
    tables.update({
        TRIALS.name: [_trial(study, nct_id, phases)],
        TRIAL_PHASES.name: [_row(TRIAL_PHASES, {"nct_id": nct_id, "phase": p}) for p in phases],
        TRIAL_CONDITIONS.name: [
            _row(TRIAL_CONDITIONS, {"nct_id": nct_id, "condition": c}) for c in conditions
        ],
        TRIAL_INTERVENTIONS.name: _interventions(study, nct_id),
        TRIAL_LOCATIONS.name: _locations(study, nct_id),
        TRIAL_REFERENCES.name: _references(study, nct_id),
        TRIAL_MESH.name: _mesh(study, nct_id),
        TRIAL_SECONDARY_IDS.name: _secondary_ids(study, nct_id),
    })
    return Normalized(source=SOURCE, record_id=nct_id, tables=tables, raw=raw)


def normalize_raw(raw: bytes) -> Normalized:
    """Re-run the normaliser on a stored record, keeping its bytes as they were stored."""
    try:
        study = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MalformedResponse(f"stored study is not valid JSON: {exc}", source=SOURCE) from exc
    return normalize_study(study, raw=raw)
