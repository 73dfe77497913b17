"""The ClinicalTrials.gov normaliser against real v2 replies and against our own records.

Real replies are read from the shared fixtures folder (never copied into the project) and
the tests skip when it is absent; everything else uses ``tests.builders.ctgov``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from littrack.errors import MalformedResponse, SourceError
from littrack.normalize import Normalized
from littrack.normalize.ctgov import dig, normalize_raw, normalize_study
from littrack.tables import CTGOV_TABLES
from tests.builders.ctgov import drop, page, study

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "ctgov"

FULL_STUDIES = (
    "aact_NCT00763412.json",
    "aact_NCT02210780.json",
    "aact_NCT03630471.json",
    "aact_NCT06171568.json",
    "biomcp_get_nct06382129_20260811.json",
    "biomcp_get_nct06604689_20260811.json",
)
SEARCH_PAGES = (
    "biomcp_search_age_count_20260811.json",
    "biomcp_search_nsclc_egfr_l858r_20260811.json",
    "biomcp_search_phelan_limit5_20260811.json",
    "biomcp_search_phelan_next_20260811.json",
)


def _shared(name: str) -> bytes:
    path = SHARED / name
    if not path.is_file():
        pytest.skip(f"shared ctgov fixtures not available ({path})")
    return path.read_bytes()


def _real(name: str) -> Normalized:
    return normalize_raw(_shared(name))


def _real_in_page(name: str, nct_id: str) -> Normalized:
    body = json.loads(_shared(name))
    (record,) = [s for s in body["studies"] if dig(s, "protocolSection.identificationModule.nctId")
                 == nct_id]
    return normalize_study(record)


def _check_contract(n: Normalized) -> None:
    """Every table present, every row with exactly the contract's columns and the record key."""
    assert n.source == "ctgov"
    assert set(n.tables) == {t.name for t in CTGOV_TABLES}
    assert len(n.tables["trials"]) == 1
    for table in CTGOV_TABLES:
        keys = set()
        for row in n.tables[table.name]:
            assert tuple(row) == table.columns, table.name
            assert row["nct_id"] == n.record_id
            key = tuple(row[c] for c in table.key)
            assert key not in keys, (table.name, key)  # the store's primary key must hold
            keys.add(key)


def _child(n: Normalized, table: str, *columns: str) -> list[tuple[Any, ...]]:
    return [tuple(row[c] for c in columns) for row in n.tables[table]]


# --- (a) real replies ---------------------------------------------------------------------


@pytest.mark.parametrize("name", FULL_STUDIES)
def test_real_full_studies_meet_the_contract(name: str) -> None:
    raw = _shared(name)
    n = normalize_raw(raw)
    _check_contract(n)
    assert n.record_id == json.loads(raw)["protocolSection"]["identificationModule"]["nctId"]
    assert n.raw == raw


@pytest.mark.parametrize("name", SEARCH_PAGES)
def test_every_study_of_real_search_pages_normalizes(name: str) -> None:
    studies = json.loads(_shared(name))["studies"]
    assert studies
    for record in studies:
        n = normalize_study(record)
        _check_contract(n)
        assert n.main["brief_title"]
        assert n.main["overall_status"]
        assert n.main["has_results"] == 0  # fields-limited replies carry no hasResults
        assert normalize_raw(n.raw) == n


def test_real_observational_not_yet_recruiting() -> None:
    n = _real("aact_NCT06171568.json")
    assert n.main == {
        "nct_id": "NCT06171568",
        "acronym": "ECOG",
        "brief_title": "Lariboisière Cognitive Assessment: Evaluation of the 1-year Outcomes",
        "official_title": n.main["official_title"],
        "overall_status": "NOT_YET_RECRUITING",
        "last_known_status": None,
        "why_stopped": None,
        "phase": "",
        "study_type": "OBSERVATIONAL",
        "enrollment": 400,
        "enrollment_type": "ESTIMATED",
        "start_date": "2024-02-01",
        "start_date_type": "ESTIMATED",
        "primary_completion_date": "2025-02-01",
        "primary_completion_date_type": "ESTIMATED",
        "completion_date": "2025-02-01",
        "completion_date_type": "ESTIMATED",
        "first_posted": "2023-12-14",
        "last_update_posted": "2023-12-14",
        "results_first_posted": None,
        "has_results": 0,
        "lead_sponsor": "Assistance Publique - Hôpitaux de Paris",
        "lead_sponsor_class": "OTHER",
        "results_first_submitted": None,
        "delay_certificate_submitted": None,
        "fda_regulated_drug": 0,
        "fda_regulated_device": 0,
        "primary_purpose": None,
    }
    assert n.main["official_title"].startswith("Study of the One-year Outcomes of Patients")
    assert n.tables["trial_phases"] == []
    assert _child(n, "trial_conditions", "condition") == [("Brain Injuries",)]
    assert _child(n, "trial_interventions", "position", "type", "name", "other_names") == [
        (1, "OTHER", "Tests and questionnaires", None)
    ]
    assert _child(n, "trial_locations", "position", "facility", "city", "state", "country",
                  "status") == [
        (1, "Neurosurgery - Lariboisière hospital", "Paris", "Ile-de-France", "France", None)
    ]
    refs = _child(n, "trial_references", "position", "pmid", "type")
    assert [r[1] for r in refs] == [
        "26269030", "29016402", "16983222", "27323708",
        "22460612", "30031892", "31073378", "24102622",
    ]
    assert {r[2] for r in refs} == {"BACKGROUND"}
    assert [r[0] for r in refs] == list(range(1, 9))
    assert _child(n, "trial_mesh", "kind", "mesh_id", "term") == [
        ("condition", "D000001930", "Brain Injuries")
    ]
    assert _child(n, "trial_secondary_ids", "secondary_id", "type", "domain") == [
        ("2023-A00386-39", "OTHER", "IDRCB")
    ]


def test_real_na_phase_with_references_without_pmid() -> None:
    n = _real("aact_NCT03630471.json")
    m = n.main
    assert (m["acronym"], m["overall_status"], m["phase"], m["study_type"]) == (
        "PRIDE", "COMPLETED", "NA", "INTERVENTIONAL")
    assert (m["enrollment"], m["enrollment_type"]) == (250, "ACTUAL")
    assert (m["start_date"], m["start_date_type"]) == ("2018-08-20", "ACTUAL")
    assert (m["primary_completion_date"], m["completion_date"]) == ("2019-01-20", "2019-02-28")
    assert (m["first_posted"], m["last_update_posted"]) == ("2018-08-14", "2019-05-21")
    assert (m["lead_sponsor"], m["lead_sponsor_class"], m["has_results"]) == (
        "Sangath", "OTHER", 0)
    assert _child(n, "trial_phases", "phase") == [("NA",)]
    refs = n.tables["trial_references"]
    assert len(refs) == 12
    assert [r["position"] for r in refs] == list(range(1, 13))
    assert sum(r["pmid"] is not None for r in refs) == 10
    assert [r["position"] for r in refs if r["pmid"] is None] == [7, 8]
    assert refs[6]["citation"] == (
        "Lazarus RS, Folkman S. Stress, appraisal, and coping. New York, Springer Pub. Co.; 1984."
    )
    assert refs[0]["pmid"] == "11102329"
    assert [(r["pmid"], r["type"]) for r in refs[9:]] == [
        ("34582460", "DERIVED"), ("32585185", "DERIVED"), ("31533783", "DERIVED"),
    ]
    assert {r["type"] for r in refs[:9]} == {"BACKGROUND"}
    assert _child(n, "trial_interventions", "type", "name") == [
        ("BEHAVIORAL", "PRIDE 'Step 1' problem-solving intervention"),
        ("BEHAVIORAL", "Enhanced usual care"),
    ]
    assert _child(n, "trial_locations", "facility", "city", "country") == [
        ("Sangath", "New Delhi", "India")
    ]
    assert _child(n, "trial_mesh", "kind", "mesh_id", "term") == [
        ("condition", "D000019966", "Substance-Related Disorders"),
        ("condition", "D000010554", "Personality Disorders"),
    ]
    assert n.tables["trial_secondary_ids"] == []


def test_real_results_posted_partial_date_individual_sponsor() -> None:
    n = _real("aact_NCT00763412.json")
    m = n.main
    assert (m["start_date"], m["start_date_type"]) == ("2006-11", None)
    assert (m["primary_completion_date"], m["primary_completion_date_type"]) == (
        "2013-01", "ACTUAL")
    assert (m["completion_date"], m["completion_date_type"]) == ("2013-01", "ACTUAL")
    assert (m["lead_sponsor"], m["lead_sponsor_class"]) == ("Arbelaez, Ana Maria", "INDIV")
    assert m["has_results"] == 1
    assert (m["first_posted"], m["results_first_posted"], m["last_update_posted"]) == (
        "2008-10-01", "2017-06-05", "2017-06-05")
    assert (m["overall_status"], m["phase"], m["enrollment"], m["enrollment_type"]) == (
        "COMPLETED", "NA", 31, "ACTUAL")
    assert m["acronym"] is None
    assert _child(n, "trial_conditions", "condition") == [
        ("Cystic Fibrosis Related Diabetes",), ("Pancreatic Insufficiency",),
    ]
    assert _child(n, "trial_interventions", "position", "type", "name", "other_names") == [
        (1, "DRUG", "placebo", None), (2, "DRUG", "repaglinide", "Prandin"),
    ]
    assert _child(n, "trial_secondary_ids", "secondary_id", "type", "domain") == [
        ("P60DK020579", "NIH", None)
    ]
    assert n.tables["trial_references"] == []
    mesh = _child(n, "trial_mesh", "kind", "mesh_id", "term")
    assert [t for t in mesh if t[0] == "intervention"] == [
        ("intervention", "C000072379", "Repaglinide")
    ]
    assert [t[2] for t in mesh if t[0] == "condition"] == [
        "Cystic Fibrosis", "Exocrine Pancreatic Insufficiency", "Diabetes Mellitus",
        "Prediabetic State", "Glucose Intolerance", "Fibrosis",
    ]


def test_real_42_us_sites_without_facility_and_other_names() -> None:
    n = _real("aact_NCT02210780.json")
    m = n.main
    assert (m["lead_sponsor"], m["lead_sponsor_class"]) == (
        "Regeneron Pharmaceuticals", "INDUSTRY")
    assert (m["phase"], m["has_results"], m["results_first_posted"]) == ("PHASE2", 1,
                                                                        "2020-05-07")
    assert (m["start_date"], m["start_date_type"]) == ("2014-08-05", "ACTUAL")
    assert (m["enrollment"], m["enrollment_type"]) == (194, "ACTUAL")
    assert m["official_title"].startswith("A Randomized, Double-Blind, Placebo-Controlled")
    locs = n.tables["trial_locations"]
    assert len(locs) == 42
    assert [r["position"] for r in locs] == list(range(1, 43))
    assert {r["country"] for r in locs} == {"United States"}
    assert {r["facility"] for r in locs} == {None}  # this record names no facilities
    assert {r["status"] for r in locs} == {None}
    assert (locs[0]["city"], locs[0]["state"]) == ("Birmingham", "Alabama")
    assert (locs[-1]["city"], locs[-1]["state"]) == ("Seattle", "Washington")
    assert _child(n, "trial_interventions", "name", "other_names") == [
        ("Dupilumab", "REGN668|SAR231893|Dupixent"), ("Placebo", None),
    ]
    assert _child(n, "trial_mesh", "kind", "mesh_id", "term") == [
        ("condition", "D000003876", "Dermatitis, Atopic"),
        ("condition", "D000003872", "Dermatitis"),
        ("condition", "D000004485", "Eczema"),
    ]  # interventionBrowseModule is present but has no meshes


def test_real_fields_limited_single_study() -> None:
    n = _real("biomcp_get_nct06382129_20260811.json")
    m = n.main
    assert (m["overall_status"], m["phase"], m["study_type"]) == (
        "ACTIVE_NOT_RECRUITING", "PHASE3", "INTERVENTIONAL")
    assert (m["start_date"], m["start_date_type"]) == ("2024-05-17", None)
    assert (m["completion_date"], m["completion_date_type"]) == ("2026-12", None)
    assert (m["primary_completion_date"], m["first_posted"], m["last_update_posted"]) == (
        None, None, None)
    assert (m["enrollment"], m["enrollment_type"]) == (698, None)
    assert (m["lead_sponsor"], m["lead_sponsor_class"]) == (
        "Sichuan Baili Pharmaceutical Co., Ltd.", None)
    assert m["has_results"] == 0
    assert _child(n, "trial_interventions", "position", "type", "name", "other_names") == [
        (1, None, "BL-B01D1", "iza-bren|izalontamab brengitecan|BMS-986507"),
        (2, None, "Docetaxel", None),
    ]
    for table in ("trial_locations", "trial_references", "trial_mesh", "trial_secondary_ids"):
        assert n.tables[table] == []


def test_real_fields_limited_observational_has_no_phase() -> None:
    n = _real("biomcp_get_nct06604689_20260811.json")
    assert (n.main["study_type"], n.main["phase"], n.main["enrollment"]) == (
        "OBSERVATIONAL", "", 800)
    assert n.tables["trial_phases"] == []
    assert _child(n, "trial_conditions", "condition") == [
        ("NSCLC (Advanced Non-small Cell Lung Cancer)",), ("Brain Metastasases",),
    ]


def test_real_search_pages_phases() -> None:
    multi = _real_in_page("biomcp_search_phelan_limit5_20260811.json", "NCT05105685")
    assert multi.main["phase"] == "PHASE1|PHASE2"
    assert _child(multi, "trial_phases", "phase") == [("PHASE1",), ("PHASE2",)]
    assert (multi.main["enrollment"], multi.main["start_date"]) == (6, "2020-06-14")
    na = _real_in_page("biomcp_search_age_count_20260811.json", "NCT01595035")
    assert (na.main["phase"], na.main["start_date"], na.main["completion_date"]) == (
        "NA", "2012-05", "2021-02")
    pixi = _real_in_page("biomcp_search_phelan_next_20260811.json", "NCT03836300")
    assert pixi.main["overall_status"] == "ENROLLING_BY_INVITATION"
    assert len(pixi.tables["trial_conditions"]) == 14


# --- (b) builder records ------------------------------------------------------------------


def test_default_builder_study_fills_every_table() -> None:
    n = normalize_study(study("NCT01234567"))
    _check_contract(n)
    assert n.record_id == "NCT01234567"
    for table in CTGOV_TABLES:
        assert n.tables[table.name], table.name
    m = n.main
    assert (m["overall_status"], m["phase"], m["study_type"]) == (
        "RECRUITING", "PHASE2", "INTERVENTIONAL")
    assert (m["enrollment"], m["enrollment_type"]) == (60, "ESTIMATED")
    assert (m["start_date"], m["start_date_type"]) == ("2024-05", "ACTUAL")
    assert (m["first_posted"], m["last_update_posted"]) == ("2024-04-02", "2025-01-10")
    assert (m["lead_sponsor"], m["lead_sponsor_class"], m["has_results"]) == (
        "Example University", "OTHER", 0)
    assert _child(n, "trial_interventions", "type", "name", "other_names") == [
        ("DRUG", "MDMA", "midomafetamine")
    ]


def test_builder_omits_empty_keys_like_the_api() -> None:
    s = study("NCT07654321", study_type="OBSERVATIONAL", enrollment=None, locations=(),
              references=(), secondary_ids=(), condition_mesh=(), intervention_mesh=(),
              start=("2023", None))
    text = json.dumps(s)
    assert "null" not in text and "[]" not in text and "{}" not in text
    assert "phases" not in s["protocolSection"]["designModule"]
    assert "referencesModule" not in s["protocolSection"]
    assert "conditionBrowseModule" not in s["derivedSection"]
    assert s["protocolSection"]["statusModule"]["startDateStruct"] == {"date": "2023"}
    assert page([s], total_count=1) == {"studies": [s], "totalCount": 1}


def test_missing_modules_are_tolerated() -> None:
    bare = {"protocolSection": {"identificationModule": {"nctId": "NCT00000001"}}}
    n = normalize_study(bare)
    _check_contract(n)
    m = n.main
    assert m["nct_id"] == "NCT00000001"
    assert m["phase"] == "" and m["has_results"] == 0
    assert all(v is None for k, v in m.items() if k not in {"nct_id", "phase", "has_results"})
    assert all(n.tables[t.name] == [] for t in CTGOV_TABLES if t.name != "trials")


def test_date_without_type_and_year_only_date() -> None:
    n = normalize_study(study("NCT00000002", start=("2010-05", None),
                              completion=("2023", "ACTUAL"), primary_completion=None))
    m = n.main
    assert (m["start_date"], m["start_date_type"]) == ("2010-05", None)
    assert (m["completion_date"], m["completion_date_type"]) == ("2023", "ACTUAL")
    assert (m["primary_completion_date"], m["primary_completion_date_type"]) == (None, None)


@pytest.mark.parametrize(
    ("enrollment", "expected"),
    [((99999999, "ESTIMATED"), (None, "ESTIMATED")), ((0, "ACTUAL"), (0, "ACTUAL")),
     (None, (None, None))],
)
def test_enrollment_sentinel_and_zero(
    enrollment: tuple[int, str] | None, expected: tuple[int | None, str | None]
) -> None:
    m = normalize_study(study("NCT00000003", enrollment=enrollment)).main
    assert (m["enrollment"], m["enrollment_type"]) == expected


def test_multi_phase_and_status_fields() -> None:
    n = normalize_study(study("NCT00000004", phases=("PHASE1", "PHASE2"), status="UNKNOWN",
                              last_known_status="RECRUITING"))
    assert n.main["phase"] == "PHASE1|PHASE2"
    assert _child(n, "trial_phases", "phase") == [("PHASE1",), ("PHASE2",)]
    assert (n.main["overall_status"], n.main["last_known_status"]) == ("UNKNOWN", "RECRUITING")
    stopped = normalize_study(study("NCT00000005", status="TERMINATED",
                                    why_stopped="Sponsor decision")).main
    assert (stopped["overall_status"], stopped["why_stopped"]) == ("TERMINATED",
                                                                   "Sponsor decision")
    obs = normalize_study(study("NCT00000006", study_type="OBSERVATIONAL"))
    assert (obs.main["phase"], obs.tables["trial_phases"]) == ("", [])


def test_lead_sponsor_not_organization() -> None:
    m = normalize_study(study("NCT00000007", sponsor=("UCB BIOSCIENCES GmbH", "INDUSTRY"),
                              organization="UCB Pharma")).main
    assert (m["lead_sponsor"], m["lead_sponsor_class"]) == ("UCB BIOSCIENCES GmbH", "INDUSTRY")


def test_results_flag_and_date() -> None:
    m = normalize_study(study("NCT00000008", has_results=True,
                              results_first_posted="2025-03-03")).main
    assert (m["has_results"], m["results_first_posted"]) == (1, "2025-03-03")


def test_dedupe_conditions_mesh_secondary_ids() -> None:
    n = normalize_study(study(
        "NCT00000009",
        conditions=(" PTSD ", "PTSD", "Depression", "", "  "),
        condition_mesh=(("D013313", "Stress Disorders, Post-Traumatic"),
                        ("D013313", "Stress Disorders, Post-Traumatic"),
                        ("D003863", "Depression")),
        intervention_mesh=(("D003863", "Depression"),),  # same term, other kind: kept
        secondary_ids=(("R01MH000001", "NIH", None), ("R01MH000001", "OTHER", "dup"),
                       ("2024-000001-01", "EUDRACT_NUMBER", None)),
        phases=("PHASE2", "PHASE2"),
    ))
    _check_contract(n)
    assert _child(n, "trial_conditions", "condition") == [("PTSD",), ("Depression",)]
    assert _child(n, "trial_mesh", "kind", "term") == [
        ("condition", "Stress Disorders, Post-Traumatic"), ("condition", "Depression"),
        ("intervention", "Depression"),
    ]
    assert _child(n, "trial_secondary_ids", "secondary_id", "type") == [
        ("R01MH000001", "NIH"), ("2024-000001-01", "EUDRACT_NUMBER"),
    ]
    assert n.main["phase"] == "PHASE2"


def test_interventions_locations_references_positions() -> None:
    n = normalize_study(study(
        "NCT00000010",
        interventions=(("DRUG", "MDMA", ("midomafetamine", "3,4-methylenedioxymethamphetamine")),
                       ("BEHAVIORAL", "Psychotherapy", ()), (None, "Placebo", ())),
        locations=(("Clinic A", "Boston", "Massachusetts", "United States", "RECRUITING"),
                   (None, "Paris", None, "France", None)),
        references=(("11111111", "RESULT", "Result paper."), (None, "BACKGROUND", "A book.")),
    ))
    assert _child(n, "trial_interventions", "position", "type", "name", "other_names") == [
        (1, "DRUG", "MDMA", "midomafetamine|3,4-methylenedioxymethamphetamine"),
        (2, "BEHAVIORAL", "Psychotherapy", None),
        (3, None, "Placebo", None),
    ]
    assert _child(n, "trial_locations", "position", "facility", "city", "state", "country",
                  "status") == [
        (1, "Clinic A", "Boston", "Massachusetts", "United States", "RECRUITING"),
        (2, None, "Paris", None, "France", None),
    ]
    assert _child(n, "trial_references", "position", "pmid", "type", "citation") == [
        (1, "11111111", "RESULT", "Result paper."), (2, None, "BACKGROUND", "A book."),
    ]


def test_unknown_keys_and_odd_values_are_ignored() -> None:
    s = study("NCT00000011")
    s["futureSection"] = {"x": 1}
    s["protocolSection"]["designModule"]["enrollmentInfo"]["count"] = "60"
    s["protocolSection"]["designModule"]["phases"] = ["PHASE2", None, 3]
    s["protocolSection"]["armsInterventionsModule"]["interventions"].append("not a dict")
    s["protocolSection"]["referencesModule"]["references"][0]["pmid"] = 12345678
    n = normalize_study(s)
    _check_contract(n)
    assert n.main["enrollment"] is None
    assert n.main["phase"] == "PHASE2"
    assert len(n.tables["trial_interventions"]) == 1
    assert n.tables["trial_references"][0]["pmid"] == "12345678"


@pytest.mark.parametrize(
    ("record", "fragment"),
    [
        ([], "list"),
        ("NCT00000001", "str"),
        (None, "NoneType"),
        ({}, "protocolSection.identificationModule.nctId"),
        ({"protocolSection": {}}, "nctId"),
        ({"protocolSection": {"identificationModule": {"nctId": ""}}}, "nctId"),
        ({"protocolSection": {"identificationModule": {"nctId": 1234}}}, "nctId"),
        ({"protocolSection": "x"}, "nctId"),
    ],
)
def test_malformed_study_raises(record: Any, fragment: str) -> None:
    with pytest.raises(MalformedResponse) as info:
        normalize_study(record)
    assert isinstance(info.value, SourceError) and info.value.source == "ctgov"
    assert fragment in str(info.value)


@pytest.mark.parametrize("raw", [b"", b"{not json", b"\xff\xfe\x00", b"[1, 2]", b"null"])
def test_malformed_raw_raises(raw: bytes) -> None:
    with pytest.raises(MalformedResponse):
        normalize_raw(raw)


def test_dig() -> None:
    s = study("NCT00000012")
    assert dig(s, "protocolSection.identificationModule.nctId") == "NCT00000012"
    assert dig(s, "protocolSection.contactsLocationsModule.locations.0.city") == "Springfield"
    assert dig(s, "protocolSection.contactsLocationsModule.locations.9.city") is None
    assert dig(s, "protocolSection.nope.deeper") is None
    assert dig(s, "hasResults.deeper") is None


# --- (c) round trip -----------------------------------------------------------------------


def test_raw_defaults_to_compact_json_and_round_trips() -> None:
    s = study("NCT00000013", title="Études in ümlauts")
    n = normalize_study(s)
    assert n.raw == json.dumps(s, ensure_ascii=False, separators=(",", ":")).encode()
    assert "ü".encode() in n.raw  # not \\u-escaped
    again = normalize_raw(n.raw)
    assert again == n
    assert again.tables == n.tables


def test_given_raw_is_kept_verbatim() -> None:
    s = study("NCT00000014")
    raw = json.dumps(s, indent=2).encode()
    n = normalize_study(s, raw=raw)
    assert n.raw == raw
    assert normalize_raw(raw) == n


# --- (d) property -------------------------------------------------------------------------

REMOVABLE = (
    "hasResults",
    "derivedSection",
    "derivedSection.conditionBrowseModule",
    "derivedSection.interventionBrowseModule",
    "protocolSection.identificationModule.secondaryIdInfos",
    "protocolSection.identificationModule.briefTitle",
    "protocolSection.statusModule",
    "protocolSection.statusModule.startDateStruct",
    "protocolSection.statusModule.startDateStruct.type",
    "protocolSection.statusModule.lastUpdatePostDateStruct",
    "protocolSection.sponsorCollaboratorsModule",
    "protocolSection.sponsorCollaboratorsModule.leadSponsor.class",
    "protocolSection.descriptionModule",
    "protocolSection.conditionsModule",
    "protocolSection.designModule",
    "protocolSection.designModule.phases",
    "protocolSection.designModule.enrollmentInfo",
    "protocolSection.designModule.enrollmentInfo.type",
    "protocolSection.armsInterventionsModule",
    "protocolSection.contactsLocationsModule",
    "protocolSection.referencesModule",
)

_words = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_studies = st.builds(
    study,
    st.from_regex(r"NCT[0-9]{8}", fullmatch=True),
    status=st.sampled_from(["RECRUITING", "COMPLETED", "WITHDRAWN", "UNKNOWN"]),
    phases=st.lists(st.sampled_from(["NA", "EARLY_PHASE1", "PHASE1", "PHASE2", "PHASE3"]),
                    max_size=3),
    conditions=st.lists(_words, max_size=4),
    enrollment=st.one_of(st.none(), st.tuples(st.integers(0, 10**8),
                                               st.sampled_from(["ACTUAL", "ESTIMATED"]))),
    start=st.one_of(st.none(), st.tuples(st.sampled_from(["2020", "2021-03", "2022-04-05"]),
                                         st.sampled_from([None, "ACTUAL", "ESTIMATED"]))),
    has_results=st.booleans(),
    condition_mesh=st.lists(st.tuples(st.sampled_from(["D1", "D2"]), _words), max_size=4),
    secondary_ids=st.lists(st.tuples(_words, st.none(), st.none()), max_size=3),
)


@settings(max_examples=150, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=_studies, removed=st.sets(st.sampled_from(REMOVABLE)))
def test_property_never_raises_and_keeps_contract(record: dict[str, Any],
                                                  removed: set[str]) -> None:
    record = drop(record, *sorted(removed))
    n = normalize_study(record)
    _check_contract(n)
    assert n.record_id == record["protocolSection"]["identificationModule"]["nctId"]
    assert normalize_raw(n.raw) == n


def test_fdaaa_facts_of_a_real_record() -> None:
    """What the unreported-trials rules read: FDA regulation, results submitted, a
    certificate of delay, the design's primary purpose."""
    m = _real("aact_NCT02210780.json").main
    assert m["results_first_submitted"] == "2020-03-20"
    assert m["delay_certificate_submitted"] == "2017-02-07"
    m = _real("aact_NCT00763412.json").main
    assert (m["fda_regulated_drug"], m["fda_regulated_device"], m["primary_purpose"]) == (
        1, 0, "OTHER")
