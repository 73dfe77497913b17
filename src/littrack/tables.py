"""The tidy tables: one truth shared by the normalizers (which emit rows) and the store.

Each record table lists the columns a normalizer fills; the store adds the bookkeeping
columns (``first_seen_at``, ``last_seen_at``, ``updated_at`` on the main tables). Child
tables are replaced as a whole for a record each time the record changes, so their keys
only need to be unique within one record.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Table:
    """A record table: its name, the columns a normalizer fills, its key and its parent key."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    record_key: str  # the column naming the record (pmid / nct_id)


def _t(name: str, record_key: str, key: tuple[str, ...], columns: str) -> Table:
    return Table(name, tuple(columns.split()), key, record_key)


# --- PubMed -------------------------------------------------------------------------------
ARTICLES = _t(
    "articles", "pmid", ("pmid",),
    "pmid record_type title vernacular_title abstract journal journal_iso volume issue pages "
    "pub_year pub_date pub_date_text epub_date entrez_date doi pmcid language medline_status "
    "is_retracted has_erratum has_concern is_retraction_notice is_deleted",
)
ARTICLE_AUTHORS = _t(
    "article_authors", "pmid", ("pmid", "position"),
    "pmid position last_name fore_name initials collective_name orcid affiliation",
)
ARTICLE_AFFILIATIONS = _t(
    "article_author_affiliations", "pmid", ("pmid", "position", "affiliation_position"),
    "pmid position affiliation_position affiliation",
)
ARTICLE_MESH = _t(
    "article_mesh", "pmid", ("pmid", "descriptor_ui", "qualifier_ui"),
    "pmid descriptor_ui descriptor qualifier_ui qualifier is_major",
)
ARTICLE_PUBLICATION_TYPES = _t(
    "article_publication_types", "pmid", ("pmid", "publication_type"),
    "pmid publication_type ui",
)
ARTICLE_KEYWORDS = _t(
    "article_keywords", "pmid", ("pmid", "keyword"), "pmid keyword owner is_major",
)
ARTICLE_TRIAL_IDS = _t(
    "article_trial_ids", "pmid", ("pmid", "nct_id"), "pmid nct_id",
)
ARTICLE_IDS = _t(
    "article_ids", "pmid", ("pmid", "id_type", "value"), "pmid id_type value",
)
ARTICLE_COMMENTS = _t(
    "article_comments", "pmid", ("pmid", "ref_type", "ref_source"),
    "pmid ref_type ref_pmid ref_source",
)

# --- ClinicalTrials.gov -------------------------------------------------------------------
TRIALS = _t(
    "trials", "nct_id", ("nct_id",),
    "nct_id acronym brief_title official_title overall_status last_known_status why_stopped "
    "phase study_type enrollment enrollment_type start_date start_date_type "
    "primary_completion_date primary_completion_date_type completion_date completion_date_type "
    "first_posted last_update_posted results_first_posted has_results lead_sponsor "
    "lead_sponsor_class results_first_submitted delay_certificate_submitted "
    "fda_regulated_drug fda_regulated_device primary_purpose",
)
TRIAL_PHASES = _t("trial_phases", "nct_id", ("nct_id", "phase"), "nct_id phase")
TRIAL_CONDITIONS = _t(
    "trial_conditions", "nct_id", ("nct_id", "condition"), "nct_id condition",
)
TRIAL_INTERVENTIONS = _t(
    "trial_interventions", "nct_id", ("nct_id", "position"),
    "nct_id position type name other_names",
)
TRIAL_LOCATIONS = _t(
    "trial_locations", "nct_id", ("nct_id", "position"),
    "nct_id position facility city state country status",
)
TRIAL_REFERENCES = _t(
    "trial_references", "nct_id", ("nct_id", "position"),
    "nct_id position pmid type citation",
)
TRIAL_MESH = _t(
    "trial_mesh", "nct_id", ("nct_id", "kind", "term"), "nct_id kind mesh_id term",
)
TRIAL_SECONDARY_IDS = _t(
    "trial_secondary_ids", "nct_id", ("nct_id", "secondary_id"),
    "nct_id secondary_id type domain",
)

PUBMED_TABLES: tuple[Table, ...] = (
    ARTICLES, ARTICLE_AUTHORS, ARTICLE_AFFILIATIONS, ARTICLE_MESH, ARTICLE_PUBLICATION_TYPES,
    ARTICLE_KEYWORDS, ARTICLE_TRIAL_IDS, ARTICLE_IDS, ARTICLE_COMMENTS,
)
CTGOV_TABLES: tuple[Table, ...] = (
    TRIALS, TRIAL_PHASES, TRIAL_CONDITIONS, TRIAL_INTERVENTIONS, TRIAL_LOCATIONS,
    TRIAL_REFERENCES, TRIAL_MESH, TRIAL_SECONDARY_IDS,
)
RECORD_TABLES: dict[str, tuple[Table, ...]] = {"pubmed": PUBMED_TABLES, "ctgov": CTGOV_TABLES}
MAIN_TABLE: dict[str, Table] = {"pubmed": ARTICLES, "ctgov": TRIALS}
SOURCES: tuple[str, ...] = ("pubmed", "ctgov")
# The one separator of several values in one cell, in the store, every CSV and the docs.
LIST_SEP = "|"
