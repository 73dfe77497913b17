"""The data dictionary: what every table and column of the store means, as data.

Why data and not prose: ``docs/schema.md`` and the ``schema.md`` beside every export are
rendered from this one mapping plus the live schema (column order, types, keys), and a test
checks that every column of a fresh store has a description here, so the documentation
cannot silently fall behind a migration. Regenerate the committed copy with::

    python -m littrack.schema_doc > docs/schema.md
"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from littrack.store import SCHEMA_VERSION, Store

_BOOKKEEPING = {
    "first_seen_at": "When littrack first stored the record (UTC, ISO 8601).",
    "last_seen_at": "When a run last received the record, changed or not (UTC).",
    "updated_at": "When the record's content last changed in the store (UTC).",
}
_RUN = "The `runs.run_id` of the run that"


@dataclass(frozen=True)
class TableDoc:
    """One table or view: what a row is, its columns' meanings, and whether export writes it."""

    group: str
    description: str
    columns: dict[str, str]
    exported: bool = True


GROUPS = ("PubMed", "ClinicalTrials.gov", "Change history and links", "Runs and bookkeeping")

TABLES: dict[str, TableDoc] = {
    # ---- PubMed ------------------------------------------------------------------------
    "articles": TableDoc("PubMed", "One row per PubMed record (journal article or book "
                         "chapter), whether a topic matched it or it was fetched because a "
                         "tracked trial links to it.", {
        "pmid": "PubMed identifier.",
        "record_type": "`article` (PubmedArticle) or `book` (PubmedBookArticle).",
        "title": "Article title as plain text (inline markup removed); for a whole-book "
                 "record, the book title.",
        "vernacular_title": "Title in the original language, when not English.",
        "abstract": "Abstract text; structured abstracts keep their labels as `LABEL: text` "
                    "paragraphs separated by a blank line.",
        "journal": "Full journal title (the book title for book records).",
        "journal_iso": "ISO abbreviation of the journal title.",
        "volume": "Journal volume.",
        "issue": "Journal issue.",
        "pages": "Pagination as printed (`MedlinePgn`, else start-end page).",
        "pub_year": "Publication year (from PubDate or the first year of a MedlineDate).",
        "pub_date": "Publication date, as precise as PubMed gives it: `YYYY`, `YYYY-MM` or "
                    "`YYYY-MM-DD`.",
        "pub_date_text": "Publication date as printed, e.g. `1998 Dec-1999 Jan`, `2000 Spring`.",
        "epub_date": "Electronic publication date (`ArticleDate`), `YYYY-MM-DD`.",
        "entrez_date": "Date the record entered PubMed (Entrez date), `YYYY-MM-DD`.",
        "doi": "DOI (ArticleIdList, else a valid ELocationID).",
        "pmcid": "PubMed Central id (`PMC…`), when the article is in PMC.",
        "language": "Language codes (ISO 639-2), joined with `|`.",
        "medline_status": "MedlineCitation Status: `MEDLINE`, `PubMed-not-MEDLINE`, "
                          "`In-Process`, `Publisher`, …",
        "is_retracted": "1 when the article is retracted: publication type `Retracted "
                        "Publication` or a `RetractionIn` / `RetractedandRepublishedIn` "
                        "correction.",
        "has_erratum": "1 when an erratum was published for it (`ErratumIn`, "
                       "`CorrectedandRepublishedIn`).",
        "has_concern": "1 when an expression of concern was published for it "
                       "(`ExpressionOfConcernIn`).",
        "is_retraction_notice": "1 when this record *is* a retraction notice (publication "
                                "type `Retraction of Publication` or a `RetractionOf` link).",
        "is_deleted": "1 when PubMed withdrew the record (EFetch `DeleteCitation`); the row "
                      "is kept, never dropped.",
        **_BOOKKEEPING,
    }),
    "article_authors": TableDoc("PubMed", "One row per author of an article, in order "
                                "(authors PubMed marks invalid are skipped).", {
        "pmid": "PubMed identifier (`articles.pmid`).",
        "position": "1-based position in the author list.",
        "last_name": "Family name (empty for a group author).",
        "fore_name": "Given names.",
        "initials": "Initials of the given names.",
        "collective_name": "Name of a group author (consortium, study group).",
        "orcid": "ORCID iD, normalized to `0000-0000-0000-000X`.",
        "affiliation": "The author's first affiliation (all of them are in "
                       "`article_author_affiliations`).",
    }),
    "article_author_affiliations": TableDoc("PubMed", "One row per affiliation of an author.", {
        "pmid": "PubMed identifier.",
        "position": "The author's position (`article_authors.position`).",
        "affiliation_position": "1-based order of this affiliation for the author.",
        "affiliation": "Affiliation text as given.",
    }),
    "article_mesh": TableDoc("PubMed", "One row per MeSH heading and qualifier of an article "
                             "(a heading without qualifiers has one row with empty qualifier "
                             "columns).", {
        "pmid": "PubMed identifier.",
        "descriptor_ui": "MeSH descriptor unique id (`D…`).",
        "descriptor": "MeSH descriptor name.",
        "qualifier_ui": "MeSH qualifier unique id (`Q…`); empty string when none.",
        "qualifier": "MeSH qualifier (subheading) name; empty string when none.",
        "is_major": "1 when the descriptor or this qualifier is a major topic of the article.",
    }),
    "article_publication_types": TableDoc("PubMed", "One row per publication type of an "
                                          "article.", {
        "pmid": "PubMed identifier.",
        "publication_type": "Publication type, e.g. `Journal Article`, `Randomized "
                            "Controlled Trial`, `Retracted Publication`.",
        "ui": "MeSH unique id of the publication type.",
    }),
    "article_keywords": TableDoc("PubMed", "One row per keyword of an article.", {
        "pmid": "PubMed identifier.",
        "keyword": "Keyword text.",
        "owner": "Who assigned it: `NOTNLM` (author keywords), `NLM`, …",
        "is_major": "1 when marked as a major topic.",
    }),
    "article_trial_ids": TableDoc("PubMed", "One row per ClinicalTrials.gov number an article "
                                  "lists in its DataBankList.", {
        "pmid": "PubMed identifier.",
        "nct_id": "NCT number (validated `NCT` + 8 digits).",
    }),
    "article_ids": TableDoc("PubMed", "One row per identifier in an article's ArticleIdList.", {
        "pmid": "PubMed identifier.",
        "id_type": "Identifier type: `pubmed`, `doi`, `pmc`, `pii`, `mid`, `bookaccession`, …",
        "value": "Identifier value.",
    }),
    "article_comments": TableDoc("PubMed", "One row per CommentsCorrections entry: comments, "
                                 "errata, retractions and other linked notices.", {
        "pmid": "PubMed identifier of the article carrying the entry.",
        "ref_type": "Relation, e.g. `CommentOn`, `ErratumIn`, `RetractionIn`, "
                    "`ExpressionOfConcernIn`.",
        "ref_pmid": "PMID of the related record, when given.",
        "ref_source": "Citation of the related record as printed.",
    }),
    # ---- ClinicalTrials.gov ------------------------------------------------------------
    "trials": TableDoc("ClinicalTrials.gov", "One row per ClinicalTrials.gov study, whether a "
                       "topic matched it or it was fetched because a tracked article links "
                       "to it. Dates are partial dates as registered (`YYYY-MM` or "
                       "`YYYY-MM-DD`).", {
        "nct_id": "NCT number.",
        "acronym": "Study acronym.",
        "brief_title": "Brief title.",
        "official_title": "Official title.",
        "overall_status": "Overall recruitment status: `RECRUITING`, `COMPLETED`, "
                          "`TERMINATED`, `WITHDRAWN`, `UNKNOWN`, …",
        "last_known_status": "Status before it became `UNKNOWN` (not verified for 2 years).",
        "why_stopped": "Reason given for stopping early (terminated, suspended, withdrawn).",
        "phase": "Phase(s) joined with `|`, e.g. `PHASE2|PHASE3`; empty when none "
                 "(observational studies).",
        "study_type": "`INTERVENTIONAL`, `OBSERVATIONAL` or `EXPANDED_ACCESS`.",
        "enrollment": "Enrollment count (empty when unknown).",
        "enrollment_type": "`ACTUAL` or `ESTIMATED`.",
        "start_date": "Study start date.",
        "start_date_type": "`ACTUAL` or `ESTIMATED`.",
        "primary_completion_date": "Primary completion date (last participant's primary "
                                   "outcome data).",
        "primary_completion_date_type": "`ACTUAL` or `ESTIMATED`.",
        "completion_date": "Study completion date.",
        "completion_date_type": "`ACTUAL` or `ESTIMATED`.",
        "first_posted": "Date the study was first posted, `YYYY-MM-DD`.",
        "last_update_posted": "Date of the last posted update, `YYYY-MM-DD`.",
        "results_first_posted": "Date results were first posted, `YYYY-MM-DD`.",
        "has_results": "1 when results are posted on ClinicalTrials.gov.",
        "lead_sponsor": "Lead sponsor name.",
        "lead_sponsor_class": "Lead sponsor class: `INDUSTRY`, `NIH`, `FED`, `OTHER`, …",
        "results_first_submitted": "Date results were first submitted (they count as "
                                   "reported while in QC review), `YYYY-MM-DD`.",
        "delay_certificate_submitted": "Date a certificate of delay was first submitted "
                                       "(`dispFirstSubmitDate`); it moves the FDAAA due date "
                                       "to 3 years after completion.",
        "fda_regulated_drug": "1 when the study is of an FDA-regulated drug, 0 when not, "
                              "empty when not stated.",
        "fda_regulated_device": "1 when the study is of an FDA-regulated device, 0 when not, "
                                "empty when not stated.",
        "primary_purpose": "Design's primary purpose: `TREATMENT`, `PREVENTION`, "
                           "`DEVICE_FEASIBILITY`, …",
        **_BOOKKEEPING,
    }),
    "trial_phases": TableDoc("ClinicalTrials.gov", "One row per phase of a study.", {
        "nct_id": "NCT number.",
        "phase": "Phase: `EARLY_PHASE1`, `PHASE1` … `PHASE4`, `NA`.",
    }),
    "trial_conditions": TableDoc("ClinicalTrials.gov", "One row per condition a study "
                                 "names.", {
        "nct_id": "NCT number.",
        "condition": "Condition as registered.",
    }),
    "trial_interventions": TableDoc("ClinicalTrials.gov", "One row per intervention of a "
                                    "study, in registry order.", {
        "nct_id": "NCT number.",
        "position": "1-based order in the record.",
        "type": "Intervention type: `DRUG`, `BEHAVIORAL`, `DEVICE`, …",
        "name": "Intervention name.",
        "other_names": "Other names of the intervention, joined with `|`.",
    }),
    "trial_locations": TableDoc("ClinicalTrials.gov", "One row per study site.", {
        "nct_id": "NCT number.",
        "position": "1-based order in the record.",
        "facility": "Facility name.",
        "city": "City.",
        "state": "State or region.",
        "country": "Country.",
        "status": "Recruitment status of this site.",
    }),
    "trial_references": TableDoc("ClinicalTrials.gov", "One row per reference in a study's "
                                 "referencesModule.", {
        "nct_id": "NCT number.",
        "position": "1-based order in the record.",
        "pmid": "PMID of the cited article, when given.",
        "type": "`BACKGROUND`, `RESULT` (a publication of this study's results) or "
                "`DERIVED` (found by ClinicalTrials.gov).",
        "citation": "Citation text.",
    }),
    "trial_mesh": TableDoc("ClinicalTrials.gov", "One row per MeSH term ClinicalTrials.gov "
                           "derived for a study's conditions and interventions.", {
        "nct_id": "NCT number.",
        "kind": "`condition` or `intervention`.",
        "mesh_id": "MeSH unique id.",
        "term": "MeSH term.",
    }),
    "trial_secondary_ids": TableDoc("ClinicalTrials.gov", "One row per secondary id of a "
                                    "study (other registries, grants, sponsor ids).", {
        "nct_id": "NCT number.",
        "secondary_id": "The identifier.",
        "type": "Kind of id, e.g. `NIH`, `FDA`, `EUDRACT_NUMBER`, `OTHER`.",
        "domain": "Issuing organization or registry.",
    }),
    # ---- history and links -------------------------------------------------------------
    "trial_changes": TableDoc("Change history and links", "One row per tracked field of a "
                              "trial that changed between two runs. The first sighting of a "
                              "trial is not a change; an unchanged re-run adds nothing.", {
        "nct_id": "NCT number.",
        "run_id": f"{_RUN} saw the change.",
        "observed_at": "When the change was observed (UTC).",
        "field": "`overall_status`, `phase`, `enrollment`, `start_date`, "
                 "`primary_completion_date`, `completion_date`, `has_results` or "
                 "`why_stopped`.",
        "old_value": "Value before, as text (empty when it was absent).",
        "new_value": "Value after, as text (empty when it is now absent).",
    }),
    "article_changes": TableDoc("Change history and links", "One row per correction flag of "
                                "an article that changed between two runs (a retraction, "
                                "erratum or expression of concern appearing; a deletion).", {
        "pmid": "PubMed identifier.",
        "run_id": f"{_RUN} saw the change.",
        "observed_at": "When the change was observed (UTC).",
        "field": "`is_retracted`, `has_erratum`, `has_concern` or `is_deleted`.",
        "old_value": "Value before (`0`/`1`).",
        "new_value": "Value after (`0`/`1`).",
    }),
    "trial_publication_links": TableDoc("Change history and links", "One row per trial, "
                                        "article and kind of evidence that links them.", {
        "nct_id": "NCT number.",
        "pmid": "PubMed identifier.",
        "evidence": "`pubmed_databank` (the article's DataBankList), `pubmed_text` (an NCT "
                    "number in its title or abstract) or `ctgov_reference` (a PMID in the "
                    "study's references).",
        "first_seen_run": f"{_RUN} first found the link (`rebuild` when found by "
                          "`littrack rebuild`).",
    }),
    "trials_due_unreported": TableDoc("Change history and links", "Trials whose results "
                                      "are due and neither posted nor submitted on "
                                      "ClinicalTrials.gov nor linked as a results "
                                      "publication (a `RESULT` reference with a PMID, or a "
                                      "linked article of type `Clinical Trial`, `Clinical "
                                      "Trial, Phase …`, `Controlled Clinical Trial`, "
                                      "`Randomized Controlled Trial`, `Pragmatic Clinical "
                                      "Trial`, `Equivalence Trial` or `Adaptive Clinical "
                                      "Trial`). The due date follows the FDAAA "
                                      "TrialsTracker for applicable and probable applicable "
                                      "clinical trials (primary completion, else completion, "
                                      "+ 1 year + 30 days; + 3 years + 30 days with a "
                                      "certificate of delay) and 12 months after primary "
                                      "completion for all others; a partial date counts as "
                                      "the end of its month or year. Withdrawn trials and "
                                      "those listed in `trials_status_not_updated` are left "
                                      "out. Evaluated against today's date (UTC) when "
                                      "read.", {
        "nct_id": "NCT number.",
        "title": "Brief title.",
        "status": "Overall status.",
        "phase": "Phase(s), joined with `|`.",
        "sponsor": "Lead sponsor.",
        "primary_completion_date": "Primary completion date as registered.",
        "primary_completion_date_type": "`ACTUAL` or `ESTIMATED`.",
        "completion_date": "Study completion date as registered.",
        "completion_date_type": "`ACTUAL` or `ESTIMATED`.",
        "rule": "Which rule set the due date: `FDAAA 801: applicable clinical trial`, "
                "`FDAAA 801: probable applicable clinical trial` (either may add "
                "`(certificate of delay)`) or `not FDAAA-covered: 12 months after primary "
                "completion`.",
        "due_date": "Day results became due, `YYYY-MM-DD`.",
        "days_overdue": "Days since `due_date`.",
        "linked_pmids": "PMIDs of every article linked to the trial, joined with `|`.",
        "verification": "`unverified` when a linked article could not be fetched (it might "
                        "be the results paper), else `checked`.",
        "topics": "Topics that track the trial, joined with `|` (empty for a trial fetched "
                  "only because an article links to it).",
        "url": "The study's page on ClinicalTrials.gov.",
    }),
    "trials_status_not_updated": TableDoc("Change history and links", "Trials whose "
                                          "completion date (and primary completion date, if "
                                          "any) is past while the overall status still says "
                                          "the study is going (`NOT_YET_RECRUITING`, "
                                          "`RECRUITING`, `ENROLLING_BY_INVITATION`, "
                                          "`ACTIVE_NOT_RECRUITING`, `SUSPENDED`, `UNKNOWN`): "
                                          "the record was not kept up to date (the FDAAA "
                                          "TrialsTracker's data discrepancy). Not counted as "
                                          "unreported results. Evaluated against today's "
                                          "date (UTC) when read.", {
        "nct_id": "NCT number.",
        "title": "Brief title.",
        "status": "Overall status as registered.",
        "primary_completion_date": "Primary completion date as registered.",
        "primary_completion_date_type": "`ACTUAL` or `ESTIMATED`.",
        "completion_date": "Study completion date as registered.",
        "completion_date_type": "`ACTUAL` or `ESTIMATED`.",
        "last_update_posted": "Date of the last posted update.",
        "sponsor": "Lead sponsor.",
        "days_past_completion": "Days since the completion date (else the primary "
                                "completion date).",
        "topics": "Topics that track the trial, joined with `|`.",
        "url": "The study's page on ClinicalTrials.gov.",
    }),
    "record_updates": TableDoc("Change history and links", "One row per record and run "
                               "whose stored content changed: which fields.", {
        "source": "`pubmed` or `ctgov`.",
        "record_id": "PMID or NCT number.",
        "run_id": f"{_RUN} saw the change.",
        "fields": "Changed columns of the main table and names of child tables whose rows "
                  "changed, joined with `|`.",
    }),
    # ---- runs and bookkeeping ----------------------------------------------------------
    "topic_matches": TableDoc("Runs and bookkeeping", "One row per topic and record it "
                              "matched: which topic tracks what.", {
        "topic": "Topic name from the config.",
        "source": "`pubmed` or `ctgov`.",
        "record_id": "PMID or NCT number.",
        "first_seen_run": f"{_RUN} first matched the record for the topic.",
        "last_seen_run": f"{_RUN} last matched it.",
    }),
    "runs": TableDoc("Runs and bookkeeping", "One row per run, topic and source: what was "
                     "asked, what came back, how it ended.", {
        "run_id": "Run id: start time (UTC, `YYYYMMDDTHHMMSSZ`) and a random suffix; sorts "
                  "by time.",
        "topic": "Topic name; `(linked)` for the fetch of records that tracked records link "
                 "to.",
        "source": "`pubmed` or `ctgov`.",
        "started_at": "When the topic started (UTC).",
        "finished_at": "When it finished (UTC); empty while running.",
        "status": "`running`, `ok`, `failed` or `stopped` (a signal stopped the run; "
                  "its uncommitted work was rolled back).",
        "window_start": "First day asked for; empty for everything (first run or --full).",
        "window_end": "Last day asked for.",
        "n_found": "Records the service listed for the window.",
        "n_new": "Records new to the topic.",
        "n_updated": "Records whose content changed.",
        "n_requests": "HTTP requests made.",
        "n_retries": "Requests retried.",
        "error": "Why the topic failed.",
    }),
    "watermarks": TableDoc("Runs and bookkeeping", "One row per topic and source: where the "
                           "next incremental run starts.", {
        "topic": "Topic name.",
        "source": "`pubmed` or `ctgov`.",
        "watermark": "Day (`YYYY-MM-DD`) the last successful run started.",
        "data_timestamp": "ClinicalTrials.gov `/version` dataTimestamp at that run.",
        "query_fingerprint": "Hash of the topic's query for this source when the watermark "
                             "was set; a changed query starts the topic over from the "
                             "beginning.",
        "run_id": "The run that set it.",
        "updated_at": "When it was set (UTC).",
    }),
    "missing_records": TableDoc("Runs and bookkeeping", "Records a search listed but the "
                                "fetch did not return; asked for again by the next run.", {
        "source": "`pubmed` or `ctgov`.",
        "record_id": "PMID or NCT number.",
        "topic": "Topic whose search listed it.",
        "run_id": f"{_RUN} missed it.",
        "observed_at": "When (UTC).",
    }),
    "linked_fetches": TableDoc("Runs and bookkeeping", "Records fetched because a tracked "
                               "record links to them, each attempted once.", {
        "source": "`pubmed` or `ctgov`.",
        "record_id": "PMID or NCT number.",
        "run_id": f"{_RUN} fetched it.",
        "attempted_at": "When (UTC).",
        "outcome": "`saved`, `not_found`, `deleted` (PubMed DeleteCitation) or `alias of "
                   "NCT…` (ClinicalTrials.gov answered with the canonical record).",
    }),
    "raw_records": TableDoc("Runs and bookkeeping", "Every record as received, so `littrack "
                            "rebuild` can re-derive the tables offline. Not exported.", {
        "source": "`pubmed` or `ctgov`.",
        "record_id": "PMID or NCT number.",
        "content_hash": "SHA-256 of the normalized rows; a new hash means the record changed.",
        "fetched_at": "When the current version was stored (UTC).",
        "run_id": f"{_RUN} stored the current version.",
        "raw": "zlib-compressed PubMed XML or ClinicalTrials.gov JSON of the record.",
    }, exported=False),
}


def exported_tables(store: Store) -> list[str]:
    """Tables and views ``littrack export`` writes: all of the store's but the raw blobs."""
    return [t for t in store.table_names() if TABLES.get(t, _UNKNOWN).exported]


_UNKNOWN = TableDoc("Other", "(not documented)", {})


def undocumented(store: Store) -> list[str]:
    """``table.column`` of every column of ``store`` that has no description here."""
    missing = []
    for table in store.table_names():
        doc = TABLES.get(table)
        for col in store.columns(table):
            if doc is None or not doc.columns.get(col["name"], "").strip():
                missing.append(f"{table}.{col['name']}")
    return missing


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(store: Store, *, tables: list[str] | None = None) -> str:
    """The data dictionary of ``store`` (or of ``tables`` in it) as Markdown."""
    order = {name: i for i, name in enumerate(TABLES)}
    names = sorted(tables if tables is not None else store.table_names(),
                   key=lambda n: (order.get(n, len(order)), n))
    views = set(store.view_names())
    by_group: dict[str, list[str]] = {}
    for name in names:
        by_group.setdefault(TABLES.get(name, _UNKNOWN).group, []).append(name)
    groups = [g for g in (*GROUPS, "Other") if g in by_group]
    out = [
        "# littrack data dictionary",
        "",
        f"Schema version {store.schema_version}. Generated from `littrack/schema_doc.py` and "
        "the store's own schema by `python -m littrack.schema_doc`; do not edit by hand.",
        "",
        "The store is the SQLite file `<data_dir>/littrack.sqlite`; read any table with "
        "`littrack.load(\"articles\", data_dir=\"data\")` or write them all with "
        "`littrack export`. Conventions: times are UTC ISO 8601 (`2026-05-01T06:00:00Z`); "
        "dates are as precise as the source gives them (`2024`, `2024-05`, `2024-05-17`); "
        "flags are integers 0/1; a cell holding several values joins them with `|`; "
        "ClinicalTrials.gov enumerations keep the API's spelling (`RECRUITING`, `PHASE2`). "
        "Key columns are marked **bold**.",
        "",
        "## Contents",
        "",
    ]
    for group in groups:
        links = ", ".join(f"[`{n}`](#{n})" for n in by_group[group])
        out.append(f"* {group}: {links}")
    for group in groups:
        out += ["", f"## {group}"]
        for name in by_group[group]:
            doc = TABLES.get(name, _UNKNOWN)
            cols = store.columns(name)
            kind = "view" if name in views else "table"
            out += ["", f"### {name}", "", f"*{kind}*. {doc.description}", "",
                    "| column | type | description |", "|---|---|---|"]
            for col in cols:
                label = f"**{col['name']}**" if col["pk"] else col["name"]
                ctype = (col["type"] or "").lower() or "any"
                desc = doc.columns.get(col["name"], "(not documented)")
                out.append(f"| {label} | {ctype} | {_cell(desc)} |")
    return "\n".join(out) + "\n"


def render_fresh() -> str:
    """The data dictionary of a brand-new store at this version (what docs/schema.md holds)."""
    with tempfile.TemporaryDirectory(prefix="littrack-schema-") as tmp:
        with Store(Path(tmp) / "schema.sqlite") as store:
            assert store.schema_version == SCHEMA_VERSION
            return render_markdown(store)


def main() -> None:
    """``python -m littrack.schema_doc [PATH]``: print (or write) the data dictionary."""
    text = render_fresh()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
