"""Every table and view of the store, declared once: columns, types, keys, meanings.

Why one declaration: the normalizers emit rows in these columns, the store writes them, the
data dictionary (``docs/schema.md``) and the export's column types are derived from here, and
a test checks that the frozen migration history (``migrations.py``) builds exactly this
schema. So a column added here without a migration step, or a view edited without one, fails
a test instead of failing a deployed store with "no such column".

Types are portable names (``text``, ``integer``, ``real``, ``blob``, ``timestamp``), mapped to
each database's own types by ``sql_type``; a ``timestamp`` is stored as UTC ISO 8601 text
(``vocab.TIMESTAMP_FORMAT``) everywhere, so values compare and sort the same on every backend.
Child record tables are replaced as a whole for a record each time it changes, so their keys
only need to be unique within one record.
"""

from __future__ import annotations

from dataclasses import dataclass

from littrack import vocab

TYPES = ("text", "integer", "real", "blob", "timestamp")
# Text compares and sorts byte-wise on PostgreSQL too (COLLATE "C"), as it does in SQLite.
_SQL_TYPES = {
    "sqlite": {"text": "TEXT", "integer": "INTEGER", "real": "REAL", "blob": "BLOB",
               "timestamp": "TEXT"},
    "postgresql": {"text": 'TEXT COLLATE "C"', "integer": "INTEGER",
                   "real": "DOUBLE PRECISION", "blob": "BYTEA", "timestamp": 'TEXT COLLATE "C"'},
}
BOOKKEEPING = ("first_seen_at", "last_seen_at", "updated_at")  # the store fills these
# The one separator of several values in one cell: in the store, every CSV and the docs.
LIST_SEP = "|"


@dataclass(frozen=True)
class Column:
    """One column: portable type, meaning, NOT NULL, and the values it may hold (if closed)."""

    name: str
    type: str
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"column {self.name}: unknown type {self.type!r}")


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]


@dataclass(frozen=True)
class ForeignKey:
    """``columns`` name a row of ``table`` (by its key ``refers``)."""

    columns: tuple[str, ...]
    table: str
    refers: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A stored table. ``record_key`` names the record a row belongs to (record tables)."""

    name: str
    group: str
    description: str
    fields: tuple[Column, ...]
    key: tuple[str, ...] = ()
    record_key: str = ""
    indexes: tuple[Index, ...] = ()
    exported: bool = True
    foreign_keys: tuple[ForeignKey, ...] = ()

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns a row carries as its producer writes it (the store adds bookkeeping)."""
        return tuple(c.name for c in self.fields if c.name not in BOOKKEEPING)

    def column(self, name: str) -> Column:
        return next(c for c in self.fields if c.name == name)


@dataclass(frozen=True)
class View:
    """A view: derived from the tables, never written; its SELECT for each database."""

    name: str
    group: str
    description: str
    fields: tuple[Column, ...]
    sql: str = ""
    postgresql_sql: str = ""
    exported: bool = True

    def select(self, dialect: str = "sqlite") -> str:
        return (self.postgresql_sql or self.sql) if dialect == "postgresql" else self.sql


Relation = Table | View


def sql_type(column: Column, dialect: str = "sqlite") -> str:
    """The column's type in a database's own DDL."""
    if dialect not in _SQL_TYPES:
        raise ValueError(f"unknown SQL dialect {dialect!r}")
    return _SQL_TYPES[dialect][column.type]


def create_table_sql(table: Table, dialect: str = "sqlite") -> str:
    """``CREATE TABLE`` for ``table`` as declared (the reference the migrations must reach)."""
    lines = []
    for c in table.fields:
        line = f"{c.name} {sql_type(c, dialect)}" + (" NOT NULL" if c.required else "")
        if c.choices:
            line += f" CHECK ({c.name} IN ({', '.join(repr(v) for v in c.choices)}))"
        lines.append(line)
    if table.key:
        lines.append(f"PRIMARY KEY ({', '.join(table.key)})")
    for fk in table.foreign_keys:
        lines.append(f"FOREIGN KEY ({', '.join(fk.columns)}) REFERENCES {fk.table} "
                     f"({', '.join(fk.refers)})")
    return f"CREATE TABLE {table.name} (\n  " + ",\n  ".join(lines) + "\n)"


# What a database needs besides tables for the store's SQL to read the same on both: SQLite
# has group_concat, date() and julianday() built in; PostgreSQL gets them as functions.
SUPPORT_SQL: dict[str, tuple[str, ...]] = {
    "sqlite": (),
    "postgresql": (
        """CREATE FUNCTION littrack_concat(acc TEXT, value TEXT, sep TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN value IS NULL THEN acc WHEN acc IS NULL THEN value
              ELSE acc || sep || value END
$$""",
        "CREATE AGGREGATE group_concat(TEXT, TEXT) (SFUNC = littrack_concat, STYPE = TEXT)",
        # SQLite's date(value, modifier…) for 'now' and YYYY-MM-DD values with '±N day(s)',
        # 'month(s)', 'year(s)' (a day past the month's end rolls over, as in SQLite), and
        # julianday(), json_each() of a JSON array: the views' and reports' SQL reads the same
        # on both.
        """CREATE FUNCTION date(value TEXT, VARIADIC modifiers TEXT[] DEFAULT '{}')
RETURNS TEXT LANGUAGE plpgsql STABLE AS $$
DECLARE
  d DATE;
  m TEXT;
  parts TEXT[];
  n INTEGER;
  months INTEGER;
BEGIN
  IF value IS NULL THEN
    RETURN NULL;
  ELSIF value = 'now' THEN
    d := CAST(now() AT TIME ZONE 'UTC' AS DATE);
  ELSIF value ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}' THEN
    BEGIN
      d := make_date(CAST(substr(value, 1, 4) AS INTEGER), CAST(substr(value, 6, 2) AS INTEGER),
                     CAST(substr(value, 9, 2) AS INTEGER));
    EXCEPTION WHEN OTHERS THEN
      RETURN NULL;
    END;
  ELSE
    RETURN NULL;
  END IF;
  FOREACH m IN ARRAY modifiers LOOP
    parts := regexp_match(m, '^ *([+-]{0,1}[0-9]+) +(day|month|year)s{0,1} *$');
    IF parts IS NULL THEN
      RETURN NULL;
    END IF;
    n := CAST(parts[1] AS INTEGER);
    IF parts[2] = 'day' THEN
      d := d + n;
    ELSE
      months := EXTRACT(YEAR FROM d) * 12 + EXTRACT(MONTH FROM d) - 1
                + n * CASE WHEN parts[2] = 'year' THEN 12 ELSE 1 END;
      d := make_date(months / 12, months % 12 + 1, 1) + CAST(EXTRACT(DAY FROM d) AS INTEGER) - 1;
    END IF;
  END LOOP;
  RETURN to_char(d, 'YYYY-MM-DD');
END
$$""",
        """CREATE FUNCTION julianday(value TEXT) RETURNS DOUBLE PRECISION LANGUAGE sql STABLE AS $$
  SELECT CAST(CAST(date(value) AS DATE) - DATE '2000-01-01' + 2451544.5 AS DOUBLE PRECISION)
$$""",
        """CREATE FUNCTION json_each(list TEXT) RETURNS TABLE (value TEXT) LANGUAGE sql
IMMUTABLE AS $$
  SELECT json_array_elements_text(CAST(list AS JSON))
$$""",
    ),
}


def create_all_sql(dialect: str = "sqlite") -> list[str]:
    """The whole declared schema in one go (the reference the migration history must reach)."""
    ordered = [r for r in RELATIONS if isinstance(r, Table)] + [
        r for r in RELATIONS if isinstance(r, View)]  # a view needs its tables first
    return [*SUPPORT_SQL[dialect], *(s for r in ordered for s in create_sql(r, dialect))]


def create_sql(relation: Relation, dialect: str = "sqlite") -> list[str]:
    """Every statement that creates ``relation`` with its indexes, as declared."""
    if isinstance(relation, View):
        return [f"CREATE VIEW {relation.name} AS {relation.select(dialect)}"]
    return [create_table_sql(relation, dialect)] + [
        f"CREATE INDEX {ix.name} ON {relation.name} ({', '.join(ix.columns)})"
        for ix in relation.indexes]


def _end_of(column: str) -> str:
    """A partial registry date as the last day it can mean (``2024`` → 2024-12-31,
    ``2024-05`` → 2024-05-31), so nothing is called due before it could be."""
    return (f"date(CASE WHEN length({column}) = 4 THEN {column} || '-12-31'\n"
            f"        WHEN length({column}) = 7\n"
            f"          THEN date({column} || '-01', '+1 month', '-1 day')\n"
            f"        ELSE {column} END)")


# Statuses that say a study is still going: with its completion date past, the record was
# not kept up to date (the FDAAA TrialsTracker's "data discrepancy").
_STALE_STATUSES = ("'NOT_YET_RECRUITING', 'RECRUITING', 'ENROLLING_BY_INVITATION', "
                   "'ACTIVE_NOT_RECRUITING', 'SUSPENDED', 'UNKNOWN'")

# Every trial with the facts both views need. ``fdaaa``: 'ACT' (applicable clinical trial:
# interventional, FDA-regulated drug or device, not phase 1, not device feasibility, started
# on or after 2017-01-18), 'pACT' (the same but started before, completing on or after
# 2017-01-18), else NULL. ``basis``: primary completion, else completion, as a full day.
# ``due_date``: FDAAA trials 1 year + 30 days after ``basis`` (3 years + 30 days with a
# certificate of delay), as the FDAAA TrialsTracker reads 42 CFR 11; all others 12 months.
_TRIAL_FACTS = f"""
  SELECT f.*, CASE WHEN f.fdaaa IS NULL THEN date(f.basis, '+12 months')
      WHEN f.delay_certificate_submitted IS NOT NULL THEN date(f.basis, '+3 years', '+30 days')
      ELSE date(f.basis, '+1 year', '+30 days') END AS due_date
  FROM (SELECT b.*, CASE WHEN b.study_type = 'INTERVENTIONAL'
          AND (b.fda_regulated_drug = 1 OR b.fda_regulated_device = 1)
          AND COALESCE(b.phase, '') NOT IN ('PHASE1', 'EARLY_PHASE1')
          AND COALESCE(b.primary_purpose, '') <> 'DEVICE_FEASIBILITY'
          AND COALESCE(b.overall_status, '') <> 'WITHDRAWN'
        THEN CASE WHEN b.start_date >= '2017-01-18' THEN 'ACT'
                  WHEN b.basis >= '2017-01-18' THEN 'pACT' END END AS fdaaa
      FROM (SELECT trials.*, {_end_of("primary_completion_date")} AS primary_end,
              {_end_of("completion_date")} AS completion_end,
              COALESCE({_end_of("primary_completion_date")},
                       {_end_of("completion_date")}) AS basis
            FROM trials) b) f"""

# Still "going" although every completion date it has is past: listed apart, never as
# unreported results (nobody can owe results for a study the record says is recruiting).
_STALE_WHERE = f"""t.overall_status IN ({_STALE_STATUSES})
  AND COALESCE(t.completion_end, t.primary_end) < {{today}}
  AND (t.primary_end IS NULL OR t.primary_end < {{today}})"""

_TOPICS_OF_TRIAL = """(SELECT GROUP_CONCAT(topic, '|') FROM (SELECT DISTINCT topic FROM
     topic_matches m WHERE m.source = 'ctgov' AND m.record_id = t.nct_id ORDER BY topic))"""

# Results are due (``due_date`` passed) and none are in the registry (posted, or submitted
# and in QC review) or linked: a ``RESULT`` reference with a PMID, or a linked article typed
# as a trial report (protocols do not count). Withdrawn trials enrolled nobody and owe none.
# ``verification`` is 'unverified' while a linked article could not be fetched: it might be
# the results paper. ``{today}`` is ``date('now')`` in the view, a parameter in the report.
UNREPORTED_SQL = f"""
SELECT t.nct_id, t.brief_title AS title, t.overall_status AS status, t.phase,
  t.lead_sponsor AS sponsor, t.primary_completion_date, t.primary_completion_date_type,
  t.completion_date, t.completion_date_type,
  CASE t.fdaaa WHEN 'ACT' THEN 'FDAAA 801: applicable clinical trial'
    WHEN 'pACT' THEN 'FDAAA 801: probable applicable clinical trial'
    ELSE 'not FDAAA-covered: 12 months after primary completion' END
    || CASE WHEN t.fdaaa IS NOT NULL AND t.delay_certificate_submitted IS NOT NULL
         THEN ' (certificate of delay)' ELSE '' END AS rule,
  t.due_date, CAST(julianday({{today}}) - julianday(t.due_date) AS INTEGER) AS days_overdue,
  (SELECT GROUP_CONCAT(pmid, '|') FROM (SELECT l.pmid FROM trial_publication_links l
     WHERE l.nct_id = t.nct_id GROUP BY l.pmid ORDER BY CAST(l.pmid AS INTEGER))) AS linked_pmids,
  CASE WHEN EXISTS (SELECT 1 FROM trial_publication_links l WHERE l.nct_id = t.nct_id
                    AND NOT EXISTS (SELECT 1 FROM articles a WHERE a.pmid = l.pmid))
    THEN 'unverified' ELSE 'checked' END AS verification,
  {_TOPICS_OF_TRIAL} AS topics,
  'https://clinicaltrials.gov/study/' || t.nct_id AS url
FROM ({_TRIAL_FACTS}) t
WHERE t.due_date < {{today}}
  AND NOT ({_STALE_WHERE})
  AND COALESCE(t.has_results, 0) = 0 AND t.results_first_posted IS NULL
  AND t.results_first_submitted IS NULL
  AND COALESCE(t.overall_status, '') <> 'WITHDRAWN'
  AND NOT EXISTS (SELECT 1 FROM trial_references r WHERE r.nct_id = t.nct_id
                  AND r.type = 'RESULT' AND r.pmid IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM trial_publication_links l
                  JOIN article_publication_types pt ON pt.pmid = l.pmid
                  WHERE l.nct_id = t.nct_id AND (pt.publication_type LIKE 'Clinical Trial, Phase%'
                    OR pt.publication_type IN ('Clinical Trial', 'Controlled Clinical Trial',
                      'Randomized Controlled Trial', 'Pragmatic Clinical Trial',
                      'Equivalence Trial', 'Adaptive Clinical Trial')))
ORDER BY t.due_date, t.nct_id"""

STATUS_NOT_UPDATED_SQL = f"""
SELECT t.nct_id, t.brief_title AS title, t.overall_status AS status,
  t.primary_completion_date, t.primary_completion_date_type, t.completion_date,
  t.completion_date_type, t.last_update_posted, t.lead_sponsor AS sponsor,
  CAST(julianday({{today}}) - julianday(COALESCE(t.completion_end, t.primary_end)) AS INTEGER)
    AS days_past_completion,
  {_TOPICS_OF_TRIAL} AS topics,
  'https://clinicaltrials.gov/study/' || t.nct_id AS url
FROM ({_TRIAL_FACTS}) t
WHERE {_STALE_WHERE}
ORDER BY COALESCE(t.completion_end, t.primary_end), t.nct_id"""



# A child row belongs to a stored record: the record's row is written first and never deleted.
_OF_ARTICLE = (ForeignKey(("pmid",), "articles", ("pmid",)),)
_OF_TRIAL = (ForeignKey(("nct_id",), "trials", ("nct_id",)),)


PUBMED = "PubMed"
CTGOV = "ClinicalTrials.gov"
EUROPE_PMC = "Europe PMC preprints"
HISTORY = "Change history and links"
BOOKKEEPING_GROUP = "Runs and bookkeeping"
GROUPS = (PUBMED, CTGOV, EUROPE_PMC, HISTORY, BOOKKEEPING_GROUP)

ARTICLES = Table(
    'articles', PUBMED,
    'One row per PubMed record (journal article or book chapter), whether a topic matched it or it'
    ' was fetched because a tracked trial links to it.',
    key=('pmid',),
    record_key='pmid',
    fields=(
        Column('pmid', 'text', 'PubMed identifier.', required=True),
        Column('record_type', 'text', '`article` (PubmedArticle) or `book` (PubmedBookArticle).'),
        Column('title', 'text',
               'Article title as plain text (inline markup removed, MathML as it reads: '
               '`VO2max`); when PubMed has no English title, the original-language one '
               '(`vernacular_title`); for a whole-book record, the book title.'),
        Column('vernacular_title', 'text', 'Title in the original language, when not English.'),
        Column('abstract', 'text',
               'Abstract text; structured abstracts keep their labels as `LABEL: text` paragraphs '
               'separated by a blank line.'),
        Column('journal', 'text', 'Full journal title (the book title for book records).'),
        Column('journal_iso', 'text', 'ISO abbreviation of the journal title.'),
        Column('volume', 'text', 'Journal volume.'),
        Column('issue', 'text', 'Journal issue.'),
        Column('pages', 'text', 'Pagination as printed (`MedlinePgn`, else start-end page).'),
        Column('pub_year', 'integer',
               'Publication year (from PubDate or the first year of a MedlineDate).'),
        Column('pub_date', 'text',
               'Publication date, as precise as PubMed gives it: `YYYY`, `YYYY-MM` or `YYYY-MM-'
               'DD`.'),
        Column('pub_date_text', 'text',
               'Publication date as printed, e.g. `1998 Dec-1999 Jan`, `2000 Spring`.'),
        Column('epub_date', 'text', 'Electronic publication date (`ArticleDate`), `YYYY-MM-DD`.'),
        Column('entrez_date', 'text',
               'Date the record entered PubMed (Entrez date), `YYYY-MM-DD`.'),
        Column('doi', 'text', 'DOI (ArticleIdList, else a valid ELocationID).'),
        Column('pmcid', 'text', 'PubMed Central id (`PMC…`), when the article is in PMC.'),
        Column('language', 'text', 'Language codes (ISO 639-2), joined with `|`.'),
        Column('medline_status', 'text',
               'MedlineCitation Status: `MEDLINE`, `PubMed-not-MEDLINE`, `In-Process`, '
               '`Publisher`, …'),
        Column('is_retracted', 'integer',
               '1 when the article is retracted: publication type `Retracted Publication` or a '
               '`RetractionIn` / `RetractedandRepublishedIn` correction.'),
        Column('has_erratum', 'integer',
               '1 when an erratum was published for it (`ErratumIn`, '
               '`CorrectedandRepublishedIn`).'),
        Column('has_concern', 'integer',
               '1 when an expression of concern was published for it (`ExpressionOfConcernIn`).'),
        Column('is_retraction_notice', 'integer',
               '1 when this record *is* a retraction notice (publication type `Retraction of '
               'Publication` or a `RetractionOf` link).'),
        Column('is_deleted', 'integer',
               '1 when PubMed withdrew the record (EFetch `DeleteCitation`); the row is kept, '
               'never dropped.'),
        Column('first_seen_at', 'timestamp',
               'When littrack first stored the record (UTC, ISO 8601).', required=True),
        Column('last_seen_at', 'timestamp',
               'When a run last received the record, changed or not (UTC).', required=True),
        Column('updated_at', 'timestamp',
               "When the record's content last changed in the store (UTC).", required=True),
    ),
    indexes=(
        Index('articles_entrez', ('entrez_date',)),
        Index('articles_year', ('pmid', 'pub_year', 'is_deleted')),
    ),
)
ARTICLE_AUTHORS = Table(
    'article_authors', PUBMED,
    'One row per author of an article, in order (authors PubMed marks invalid are skipped).',
    key=('pmid', 'position'),
    record_key='pmid',
    fields=(
        Column('pmid', 'text', 'PubMed identifier (`articles.pmid`).', required=True),
        Column('position', 'integer', '1-based position in the author list.', required=True),
        Column('last_name', 'text', 'Family name (empty for a group author).'),
        Column('fore_name', 'text', 'Given names.'),
        Column('initials', 'text', 'Initials of the given names.'),
        Column('collective_name', 'text', 'Name of a group author (consortium, study group).'),
        Column('orcid', 'text', 'ORCID iD, normalized to `0000-0000-0000-000X`.'),
        Column('affiliation', 'text',
               "The author's first affiliation (all of them are in "
               "`article_author_affiliations`)."),
    ),
    foreign_keys=_OF_ARTICLE,
)
ARTICLE_AFFILIATIONS = Table(
    'article_author_affiliations', PUBMED,
    'One row per affiliation of an author.',
    key=('pmid', 'position', 'affiliation_position'),
    record_key='pmid',
    fields=(
        Column('pmid', 'text', 'PubMed identifier.', required=True),
        Column('position', 'integer',
               "The author's position (`article_authors.position`).", required=True),
        Column('affiliation_position', 'integer',
               '1-based order of this affiliation for the author.', required=True),
        Column('affiliation', 'text', 'Affiliation text as given.'),
    ),
    foreign_keys=_OF_ARTICLE,
)
ARTICLE_MESH = Table(
    'article_mesh', PUBMED,
    'One row per MeSH heading and qualifier of an article (a heading without qualifiers has one '
    'row with empty qualifier columns).',
    key=('pmid', 'descriptor_ui', 'qualifier_ui'),
    record_key='pmid',
    fields=(
        Column('pmid', 'text', 'PubMed identifier.', required=True),
        Column('descriptor_ui', 'text', 'MeSH descriptor unique id (`D…`).', required=True),
        Column('descriptor', 'text', 'MeSH descriptor name.'),
        Column('qualifier_ui', 'text',
               'MeSH qualifier unique id (`Q…`); empty string when none.', required=True),
        Column('qualifier', 'text', 'MeSH qualifier (subheading) name; empty string when none.'),
        Column('is_major', 'integer',
               '1 when the descriptor or this qualifier is a major topic of the article.'),
    ),
    foreign_keys=_OF_ARTICLE,
)
ARTICLE_PUBLICATION_TYPES = Table(
    'article_publication_types', PUBMED,
    'One row per publication type of an article.',
    key=('pmid', 'publication_type'),
    record_key='pmid',
    fields=(
        Column('pmid', 'text', 'PubMed identifier.', required=True),
        Column('publication_type', 'text',
               'Publication type, e.g. `Journal Article`, `Randomized Controlled Trial`, '
               '`Retracted Publication`.', required=True),
        Column('ui', 'text', 'MeSH unique id of the publication type.'),
    ),
    foreign_keys=_OF_ARTICLE,
)
ARTICLE_KEYWORDS = Table(
    'article_keywords', PUBMED,
    'One row per keyword of an article.',
    key=('pmid', 'keyword'),
    record_key='pmid',
    fields=(
        Column('pmid', 'text', 'PubMed identifier.', required=True),
        Column('keyword', 'text', 'Keyword text.', required=True),
        Column('owner', 'text', 'Who assigned it: `NOTNLM` (author keywords), `NLM`, …'),
        Column('is_major', 'integer', '1 when marked as a major topic.'),
    ),
    foreign_keys=_OF_ARTICLE,
)
ARTICLE_TRIAL_IDS = Table(
    'article_trial_ids', PUBMED,
    'One row per ClinicalTrials.gov number an article lists in its DataBankList.',
    key=('pmid', 'nct_id'),
    record_key='pmid',
    fields=(
        Column('pmid', 'text', 'PubMed identifier.', required=True),
        Column('nct_id', 'text', 'NCT number (validated `NCT` + 8 digits).', required=True),
    ),
    foreign_keys=_OF_ARTICLE,
)
ARTICLE_IDS = Table(
    'article_ids', PUBMED,
    "One row per identifier in an article's ArticleIdList.",
    key=('pmid', 'id_type', 'value'),
    record_key='pmid',
    fields=(
        Column('pmid', 'text', 'PubMed identifier.', required=True),
        Column('id_type', 'text',
               'Identifier type: `pubmed`, `doi`, `pmc`, `pii`, `mid`, `bookaccession`, …',
               required=True),
        Column('value', 'text', 'Identifier value.', required=True),
    ),
    foreign_keys=_OF_ARTICLE,
)
ARTICLE_COMMENTS = Table(
    'article_comments', PUBMED,
    'One row per CommentsCorrections entry: comments, errata, retractions and other linked '
    'notices.',
    key=('pmid', 'ref_type', 'ref_source'),
    record_key='pmid',
    fields=(
        Column('pmid', 'text',
               'PubMed identifier of the article carrying the entry.', required=True),
        Column('ref_type', 'text',
               'Relation, e.g. `CommentOn`, `ErratumIn`, `RetractionIn`, `ExpressionOfConcernIn`.',
               required=True),
        Column('ref_pmid', 'text', 'PMID of the related record, when given.'),
        Column('ref_source', 'text', 'Citation of the related record as printed.', required=True),
    ),
    foreign_keys=_OF_ARTICLE,
)
TRIALS = Table(
    'trials', CTGOV,
    'One row per ClinicalTrials.gov study, whether a topic matched it or it was fetched because a '
    'tracked article links to it. Dates are partial dates as registered (`YYYY-MM` or `YYYY-MM-'
    'DD`).',
    key=('nct_id',),
    record_key='nct_id',
    fields=(
        Column('nct_id', 'text', 'NCT number.', required=True),
        Column('acronym', 'text', 'Study acronym.'),
        Column('brief_title', 'text', 'Brief title.'),
        Column('official_title', 'text', 'Official title.'),
        Column('overall_status', 'text',
               'Overall recruitment status: `RECRUITING`, `COMPLETED`, `TERMINATED`, `WITHDRAWN`, '
               '`UNKNOWN`, …'),
        Column('last_known_status', 'text',
               'Status before it became `UNKNOWN` (not verified for 2 years).'),
        Column('why_stopped', 'text',
               'Reason given for stopping early (terminated, suspended, withdrawn).'),
        Column('phase', 'text',
               'Phase(s) joined with `|`, e.g. `PHASE2|PHASE3`; empty when none (observational '
               'studies).'),
        Column('study_type', 'text', '`INTERVENTIONAL`, `OBSERVATIONAL` or `EXPANDED_ACCESS`.'),
        Column('enrollment', 'integer', 'Enrollment count (empty when unknown).'),
        Column('enrollment_type', 'text', '`ACTUAL` or `ESTIMATED`.'),
        Column('start_date', 'text', 'Study start date.'),
        Column('start_date_type', 'text', '`ACTUAL` or `ESTIMATED`.'),
        Column('primary_completion_date', 'text',
               "Primary completion date (last participant's primary outcome data)."),
        Column('primary_completion_date_type', 'text', '`ACTUAL` or `ESTIMATED`.'),
        Column('completion_date', 'text', 'Study completion date.'),
        Column('completion_date_type', 'text', '`ACTUAL` or `ESTIMATED`.'),
        Column('first_posted', 'text', 'Date the study was first posted, `YYYY-MM-DD`.'),
        Column('last_update_posted', 'text', 'Date of the last posted update, `YYYY-MM-DD`.'),
        Column('results_first_posted', 'text', 'Date results were first posted, `YYYY-MM-DD`.'),
        Column('has_results', 'integer', '1 when results are posted on ClinicalTrials.gov.'),
        Column('lead_sponsor', 'text', 'Lead sponsor name.'),
        Column('lead_sponsor_class', 'text',
               'Lead sponsor class: `INDUSTRY`, `NIH`, `FED`, `OTHER`, …'),
        Column('first_seen_at', 'timestamp',
               'When littrack first stored the record (UTC, ISO 8601).', required=True),
        Column('last_seen_at', 'timestamp',
               'When a run last received the record, changed or not (UTC).', required=True),
        Column('updated_at', 'timestamp',
               "When the record's content last changed in the store (UTC).", required=True),
        # added by migration 0005 (ALTER TABLE appends them, so they come last)
        Column('results_first_submitted', 'text',
               'Date results were first submitted (they count as reported while in QC '
               'review), `YYYY-MM-DD`.'),
        Column('delay_certificate_submitted', 'text',
               'Date a certificate of delay was first submitted (`dispFirstSubmitDate`); it '
               'moves the FDAAA due date to 3 years after completion.'),
        Column('fda_regulated_drug', 'integer',
               '1 when the study is of an FDA-regulated drug, 0 when not, empty when not '
               'stated.'),
        Column('fda_regulated_device', 'integer',
               '1 when the study is of an FDA-regulated device, 0 when not, empty when not '
               'stated.'),
        Column('primary_purpose', 'text',
               "Design's primary purpose: `TREATMENT`, `PREVENTION`, `DEVICE_FEASIBILITY`, …"),
    ),
    indexes=(Index('trials_completion', ('primary_completion_date',)),),
)
TRIAL_PHASES = Table(
    'trial_phases', CTGOV,
    'One row per phase of a study.',
    key=('nct_id', 'phase'),
    record_key='nct_id',
    fields=(
        Column('nct_id', 'text', 'NCT number.', required=True),
        Column('phase', 'text', 'Phase: `EARLY_PHASE1`, `PHASE1` … `PHASE4`, `NA`.', required=True),
    ),
    foreign_keys=_OF_TRIAL,
)
TRIAL_CONDITIONS = Table(
    'trial_conditions', CTGOV,
    'One row per condition a study names.',
    key=('nct_id', 'condition'),
    record_key='nct_id',
    fields=(
        Column('nct_id', 'text', 'NCT number.', required=True),
        Column('condition', 'text', 'Condition as registered.', required=True),
    ),
    foreign_keys=_OF_TRIAL,
)
TRIAL_INTERVENTIONS = Table(
    'trial_interventions', CTGOV,
    'One row per intervention of a study, in registry order.',
    key=('nct_id', 'position'),
    record_key='nct_id',
    fields=(
        Column('nct_id', 'text', 'NCT number.', required=True),
        Column('position', 'integer', '1-based order in the record.', required=True),
        Column('type', 'text', 'Intervention type: `DRUG`, `BEHAVIORAL`, `DEVICE`, …'),
        Column('name', 'text', 'Intervention name.'),
        Column('other_names', 'text', 'Other names of the intervention, joined with `|`.'),
    ),
    foreign_keys=_OF_TRIAL,
)
TRIAL_LOCATIONS = Table(
    'trial_locations', CTGOV,
    'One row per study site.',
    key=('nct_id', 'position'),
    record_key='nct_id',
    fields=(
        Column('nct_id', 'text', 'NCT number.', required=True),
        Column('position', 'integer', '1-based order in the record.', required=True),
        Column('facility', 'text', 'Facility name.'),
        Column('city', 'text', 'City.'),
        Column('state', 'text', 'State or region.'),
        Column('country', 'text', 'Country.'),
        Column('status', 'text', 'Recruitment status of this site.'),
    ),
    foreign_keys=_OF_TRIAL,
)
TRIAL_REFERENCES = Table(
    'trial_references', CTGOV,
    "One row per reference in a study's referencesModule.",
    key=('nct_id', 'position'),
    record_key='nct_id',
    fields=(
        Column('nct_id', 'text', 'NCT number.', required=True),
        Column('position', 'integer', '1-based order in the record.', required=True),
        Column('pmid', 'text', 'PMID of the cited article, when given.'),
        Column('type', 'text',
               "`BACKGROUND`, `RESULT` (a publication of this study's results) or `DERIVED` (found"
               ' by ClinicalTrials.gov).'),
        Column('citation', 'text', 'Citation text.'),
    ),
    foreign_keys=_OF_TRIAL,
)
TRIAL_MESH = Table(
    'trial_mesh', CTGOV,
    "One row per MeSH term ClinicalTrials.gov derived for a study's conditions and interventions.",
    key=('nct_id', 'kind', 'term'),
    record_key='nct_id',
    fields=(
        Column('nct_id', 'text', 'NCT number.', required=True),
        Column('kind', 'text', '`condition` or `intervention`.', required=True),
        Column('mesh_id', 'text', 'MeSH unique id.'),
        Column('term', 'text', 'MeSH term.', required=True),
    ),
    foreign_keys=_OF_TRIAL,
)
TRIAL_SECONDARY_IDS = Table(
    'trial_secondary_ids', CTGOV,
    'One row per secondary id of a study (other registries, grants, sponsor ids).',
    key=('nct_id', 'secondary_id'),
    record_key='nct_id',
    fields=(
        Column('nct_id', 'text', 'NCT number.', required=True),
        Column('secondary_id', 'text', 'The identifier.', required=True),
        Column('type', 'text', 'Kind of id, e.g. `NIH`, `FDA`, `EUDRACT_NUMBER`, `OTHER`.'),
        Column('domain', 'text', 'Issuing organization or registry.'),
    ),
    foreign_keys=_OF_TRIAL,
)
# --- Europe PMC: preprints (its journal articles are the PubMed records, stored once) ---
_OF_PREPRINT = (ForeignKey(("ppr_id",), "preprints", ("ppr_id",)),)
PREPRINTS = Table(
    'preprints', EUROPE_PMC,
    'One row per preprint (Europe PMC `PPR` record; each version of a preprint is its own '
    'record), whether a topic matched it or it was fetched because a tracked trial is named in '
    'it. Journal articles Europe PMC finds are stored once, as PubMed records in `articles`.',
    key=('ppr_id',),
    record_key='ppr_id',
    fields=(
        Column('ppr_id', 'text', 'Europe PMC preprint id (`PPR…`).', required=True),
        Column('title', 'text', 'Title as plain text (inline markup removed).'),
        Column('abstract', 'text', 'Abstract as plain text (inline markup and headings '
               'flattened).'),
        Column('server', 'text', 'Preprint server (`bookOrReportDetails.publisher`), e.g. '
               '`medRxiv`, `bioRxiv`, `Research Square`.'),
        Column('doi', 'text', 'DOI, lower-cased (DOIs compare case-insensitively).'),
        Column('version_number', 'integer', "This record's version, when the server reports "
               'versions.'),
        Column('pub_year', 'integer', 'Year of first publication.'),
        Column('first_publication_date', 'text', 'First publication date, `YYYY-MM-DD`.'),
        Column('first_index_date', 'text', 'When Europe PMC first indexed it, `YYYY-MM-DD` '
               '(what incremental runs window on).'),
        Column('license', 'text', 'Licence, e.g. `cc by`.'),
        Column('published_pmid', 'text', 'PMID of the journal article this preprint became '
               '(Europe PMC `Preprint of` link, else a PubMed article matched by DOI); empty '
               'while unpublished.'),
        Column('first_seen_at', 'timestamp',
               'When littrack first stored the record (UTC, ISO 8601).', required=True),
        Column('last_seen_at', 'timestamp',
               'When a run last received the record, changed or not (UTC).', required=True),
        Column('updated_at', 'timestamp',
               "When the record's content last changed in the store (UTC).", required=True),
    ),
    indexes=(Index('preprints_doi', ('doi',)), Index('preprints_published', ('published_pmid',))),
)
PREPRINT_AUTHORS = Table(
    'preprint_authors', EUROPE_PMC,
    'One row per author of a preprint, in order.',
    key=('ppr_id', 'position'),
    record_key='ppr_id',
    fields=(
        Column('ppr_id', 'text', 'Europe PMC preprint id.', required=True),
        Column('position', 'integer', '1-based author position.', required=True),
        Column('full_name', 'text', 'Name as Europe PMC prints it (`Doe J`).'),
        Column('last_name', 'text', 'Family name.'),
        Column('first_name', 'text', 'Given names.'),
        Column('initials', 'text', 'Initials.'),
        Column('orcid', 'text', 'ORCID iD (`0000-0002-…`), when given.'),
        Column('affiliation', 'text', 'Affiliations, joined with ` | `.'),
    ),
    foreign_keys=_OF_PREPRINT,
)
PREPRINT_VERSIONS = Table(
    'preprint_versions', EUROPE_PMC,
    "One row per version of the preprint that Europe PMC lists (`versionList`); servers that "
    "report no versions have none.",
    key=('ppr_id', 'version_id'),
    record_key='ppr_id',
    fields=(
        Column('ppr_id', 'text', 'Europe PMC preprint id of the record listing the version.',
               required=True),
        Column('version_id', 'text', 'Europe PMC id of that version (`PPR…`).', required=True),
        Column('version_number', 'integer', 'Version number.'),
        Column('first_publish_date', 'text', 'When that version appeared, `YYYY-MM-DD`.'),
    ),
    foreign_keys=_OF_PREPRINT,
)
PREPRINT_PUBLICATIONS = Table(
    'preprint_publications', EUROPE_PMC,
    'One row per published version a preprint is linked to, with the evidence.',
    key=('ppr_id', 'published_source', 'published_id'),
    record_key='ppr_id',
    fields=(
        Column('ppr_id', 'text', 'Europe PMC preprint id.', required=True),
        Column('published_source', 'text', 'Collection of the published version (`MED`: '
               'PubMed, `published_id` is its PMID).', required=True),
        Column('published_id', 'text', 'Id of the published version.', required=True),
        Column('evidence', 'text', '`europepmc_preprint_of` (the preprint\'s '
               '`commentCorrectionList` says `Preprint of`); where Europe PMC gives none, '
               '`pubmed_doi_match` (a stored PubMed article has the preprint\'s DOI, '
               'compared case-insensitively) or `pubmed_cites_preprint_doi` (its '
               'CommentsCorrections `UpdateOf` names that DOI).', required=True),
        Column('note', 'text', "Europe PMC's note on how the link was made, e.g. `CrossRef "
               "Pre-print loader` or `Link created based on a title-first author match` (a "
               "heuristic)."),
    ),
    foreign_keys=_OF_PREPRINT,
)
TRIAL_CHANGES = Table(
    'trial_changes', HISTORY,
    'One row per tracked field of a trial that changed between two runs. The first sighting of a '
    'trial is not a change; an unchanged re-run adds nothing.',
    key=(),
    fields=(
        Column('nct_id', 'text', 'NCT number.', required=True),
        Column('run_id', 'text',
               'The `runs.run_id` of the run that saw the change.', required=True),
        Column('observed_at', 'timestamp', 'When the change was observed (UTC).', required=True),
        Column('field', 'text',
               '`overall_status`, `phase`, `enrollment`, `start_date`, `primary_completion_date`, '
               '`completion_date`, `has_results` or `why_stopped`.', required=True),
        Column('old_value', 'text', 'Value before, as text (empty when it was absent).'),
        Column('new_value', 'text', 'Value after, as text (empty when it is now absent).'),
    ),
    indexes=(
        Index('trial_changes_run', ('run_id',)),
        Index('trial_changes_nct', ('nct_id',)),
    ),
    foreign_keys=_OF_TRIAL,
)
PREPRINT_CHANGES = Table(
    'preprint_changes', HISTORY,
    'One row per tracked field of a preprint that changed between two runs; `published_pmid` '
    'going from empty to a PMID is the preprint being published.',
    key=(),
    fields=(
        Column('ppr_id', 'text', 'Europe PMC preprint id.', required=True),
        Column('run_id', 'text',
               'The `runs.run_id` of the run that saw the change.', required=True),
        Column('observed_at', 'timestamp', 'When the change was observed (UTC).', required=True),
        Column('field', 'text', '`published_pmid` or `version_number`.', required=True),
        Column('old_value', 'text', 'Value before, as text (empty when it was absent).'),
        Column('new_value', 'text', 'Value after, as text (empty when it is now absent).'),
    ),
    indexes=(Index('preprint_changes_run', ('run_id',)),),
    foreign_keys=_OF_PREPRINT,
)
ARTICLE_CHANGES = Table(
    'article_changes', HISTORY,
    'One row per correction flag of an article that changed between two runs (a retraction, '
    'erratum or expression of concern appearing; a deletion).',
    key=(),
    fields=(
        Column('pmid', 'text', 'PubMed identifier.', required=True),
        Column('run_id', 'text',
               'The `runs.run_id` of the run that saw the change.', required=True),
        Column('observed_at', 'timestamp', 'When the change was observed (UTC).', required=True),
        Column('field', 'text',
               '`is_retracted`, `has_erratum`, `has_concern` or `is_deleted`.', required=True),
        Column('old_value', 'text', 'Value before (`0`/`1`).'),
        Column('new_value', 'text', 'Value after (`0`/`1`).'),
    ),
    indexes=(Index('article_changes_run', ('run_id',)),),
    foreign_keys=_OF_ARTICLE,
)
TRIAL_PUBLICATION_LINKS = Table(
    'trial_publication_links', HISTORY,
    'One row per trial, article and kind of evidence that links them.',
    key=('nct_id', 'pmid', 'evidence'),
    fields=(
        Column('nct_id', 'text', 'NCT number.', required=True),
        Column('pmid', 'text', 'PubMed identifier.', required=True),
        Column('evidence', 'text',
               "`pubmed_databank` (the article's DataBankList), `pubmed_text` (an NCT number in "
               "its title or abstract), `ctgov_reference` (a PMID in the study's references) or "
               "`europepmc_fulltext` (Europe PMC finds the NCT number in the article, mostly in "
               "its full text).",
               required=True),
        Column('first_seen_run', 'text',
               'The `runs.run_id` of the run that first found the link (`rebuild` when found by '
               '`littrack rebuild`).', required=True),
    ),
    indexes=(Index('links_pmid', ('pmid',)), Index('links_run', ('first_seen_run',)),),
)
TRIAL_PREPRINT_LINKS = Table(
    'trial_preprint_links', HISTORY,
    'One row per trial, preprint and kind of evidence that links them (a preprint has no '
    'PMID, so `trial_publication_links` cannot hold it).',
    key=('nct_id', 'ppr_id', 'evidence'),
    fields=(
        Column('nct_id', 'text', 'NCT number.', required=True),
        Column('ppr_id', 'text', 'Europe PMC preprint identifier (`PPR…`).', required=True),
        Column('evidence', 'text',
               '`europepmc_fulltext` (Europe PMC finds the NCT number in the preprint, mostly '
               'in its full text).', required=True),
        Column('first_seen_run', 'text',
               'The `runs.run_id` of the run that first found the link.', required=True),
    ),
    indexes=(Index('preprint_links_ppr', ('ppr_id',)),
             Index('preprint_links_run', ('first_seen_run',)),),
    foreign_keys=_OF_PREPRINT,
)
TRIALS_DUE_UNREPORTED = View(
    'trials_due_unreported', HISTORY,
    'Trials whose results are due and neither posted nor submitted on ClinicalTrials.gov nor '
    'linked as a results publication (a `RESULT` reference with a PMID, or a linked article of '
    'type `Clinical Trial`, `Clinical Trial, Phase …`, `Controlled Clinical Trial`, `Randomized '
    'Controlled Trial`, `Pragmatic Clinical Trial`, `Equivalence Trial` or `Adaptive Clinical '
    'Trial`). The due date follows the FDAAA TrialsTracker for applicable and probable '
    'applicable clinical trials (primary completion, else completion, + 1 year + 30 days; + 3 '
    'years + 30 days with a certificate of delay) and is 12 months after primary completion '
    'for all others; a partial date counts as the end of its month or year. Withdrawn trials '
    'and those in `trials_status_not_updated` are left out. Evaluated against today\'s date '
    '(UTC) when read.',
    fields=(
        Column('nct_id', 'text', 'NCT number.'),
        Column('title', 'text', 'Brief title.'),
        Column('status', 'text', 'Overall status.'),
        Column('phase', 'text', 'Phase(s), joined with `|`.'),
        Column('sponsor', 'text', 'Lead sponsor.'),
        Column('primary_completion_date', 'text', 'Primary completion date as registered.'),
        Column('primary_completion_date_type', 'text', '`ACTUAL` or `ESTIMATED`.'),
        Column('completion_date', 'text', 'Study completion date as registered.'),
        Column('completion_date_type', 'text', '`ACTUAL` or `ESTIMATED`.'),
        Column('rule', 'text',
               'Which rule set the due date: `FDAAA 801: applicable clinical trial`, `FDAAA '
               '801: probable applicable clinical trial` (either may add `(certificate of '
               'delay)`) or `not FDAAA-covered: 12 months after primary completion`.'),
        Column('due_date', 'text', 'Day results became due, `YYYY-MM-DD`.'),
        Column('days_overdue', 'integer', 'Days since `due_date`.'),
        Column('linked_pmids', 'text', 'PMIDs of every article linked to the trial, joined '
               'with `|`.'),
        Column('verification', 'text',
               '`unverified` when a linked article could not be fetched (it might be the '
               'results paper), else `checked`.'),
        Column('topics', 'text',
               'Topics that track the trial, joined with `|` (empty for a trial fetched only '
               'because an article links to it).'),
        Column('url', 'text', "The study's page on ClinicalTrials.gov."),
    ),
    sql=UNREPORTED_SQL.format(today="date('now')"),
)
TRIALS_STATUS_NOT_UPDATED = View(
    'trials_status_not_updated', HISTORY,
    'Trials whose completion date (and primary completion date, if any) is past while the '
    'overall status still says the study is going (`NOT_YET_RECRUITING`, `RECRUITING`, '
    '`ENROLLING_BY_INVITATION`, `ACTIVE_NOT_RECRUITING`, `SUSPENDED`, `UNKNOWN`): the record was '
    "not kept up to date (the FDAAA TrialsTracker's data discrepancy). Not counted as "
    "unreported results. Evaluated against today's date (UTC) when read.",
    fields=(
        Column('nct_id', 'text', 'NCT number.'),
        Column('title', 'text', 'Brief title.'),
        Column('status', 'text', 'Overall status as registered.'),
        Column('primary_completion_date', 'text', 'Primary completion date as registered.'),
        Column('primary_completion_date_type', 'text', '`ACTUAL` or `ESTIMATED`.'),
        Column('completion_date', 'text', 'Study completion date as registered.'),
        Column('completion_date_type', 'text', '`ACTUAL` or `ESTIMATED`.'),
        Column('last_update_posted', 'text', 'Date of the last posted update.'),
        Column('sponsor', 'text', 'Lead sponsor.'),
        Column('days_past_completion', 'integer',
               'Days since the completion date (else the primary completion date).'),
        Column('topics', 'text', 'Topics that track the trial, joined with `|`.'),
        Column('url', 'text', "The study's page on ClinicalTrials.gov."),
    ),
    sql=STATUS_NOT_UPDATED_SQL.format(today="date('now')"),
)
RECORD_UPDATES = Table(
    'record_updates', HISTORY,
    'One row per record and run whose stored content changed: which fields.',
    key=('source', 'record_id', 'run_id'),
    fields=(
        Column('source', 'text', '`pubmed` or `ctgov`.', required=True),
        Column('record_id', 'text', 'PMID or NCT number.', required=True),
        Column('run_id', 'text', 'The `runs.run_id` of the run that saw the change.',
               required=True),
        Column('fields', 'text',
               'Changed columns of the main table and names of child tables whose rows '
               'changed, joined with `|`.', required=True),
    ),
    indexes=(Index('record_updates_run', ('run_id',)),),
)
TOPIC_MATCHES = Table(
    'topic_matches', BOOKKEEPING_GROUP,
    'One row per topic and record it matched: which topic tracks what.',
    key=('topic', 'source', 'record_id'),
    fields=(
        Column('topic', 'text', 'Topic name from the config.', required=True),
        Column('source', 'text', '`pubmed` or `ctgov`.', required=True),
        Column('record_id', 'text', 'PMID or NCT number.', required=True),
        Column('first_seen_run', 'text',
               'The `runs.run_id` of the run that first matched the record for the topic.',
               required=True),
        Column('last_seen_run', 'text',
               'The `runs.run_id` of the run that last matched it.', required=True),
    ),
    indexes=(
        Index('topic_matches_first', ('first_seen_run',)),
        Index('topic_matches_record', ('source', 'record_id')),
    ),
)
RUNS = Table(
    'runs', BOOKKEEPING_GROUP,
    'One row per run, topic and source: what was asked, what came back, how it ended.',
    key=('run_id', 'topic', 'source'),
    fields=(
        Column('run_id', 'text',
               'Run id: start time (UTC, `YYYYMMDDTHHMMSSZ`) and a random suffix; sorts by time.',
               required=True),
        Column('topic', 'text',
               'Topic name; `(linked)` for the fetch of records that tracked records link to.',
               required=True),
        Column('source', 'text', '`pubmed` or `ctgov`.', required=True),
        Column('started_at', 'timestamp', 'When the topic started (UTC).', required=True),
        Column('finished_at', 'timestamp', 'When it finished (UTC); empty while running.'),
        Column('status', 'text',
               '`running`, `ok`, `failed` or `stopped` (a signal stopped the run; its '
               'uncommitted work was rolled back).',
               choices=('running', 'ok', 'failed', 'stopped'), required=True),
        Column('window_start', 'text',
               'First day asked for; empty for everything (first run or --full).'),
        Column('window_end', 'text', 'Last day asked for.'),
        Column('n_found', 'integer', 'Records the service listed for the window.'),
        Column('n_new', 'integer', 'Records new to the topic.'),
        Column('n_updated', 'integer', 'Records whose content changed.'),
        Column('n_requests', 'integer', 'HTTP requests made.'),
        Column('n_retries', 'integer', 'Requests retried.'),
        Column('error', 'text', 'Why the topic failed.'),
    ),
    indexes=(
        Index('runs_topic', ('topic', 'source', 'started_at')),
        Index('runs_started', ('started_at',)),
    ),
)
WATERMARKS = Table(
    'watermarks', BOOKKEEPING_GROUP,
    'One row per topic and source: where the next incremental run starts.',
    key=('topic', 'source'),
    fields=(
        Column('topic', 'text', 'Topic name.', required=True),
        Column('source', 'text', '`pubmed` or `ctgov`.', required=True),
        Column('watermark', 'text',
               'Day (`YYYY-MM-DD`) the last successful run started.', required=True),
        Column('data_timestamp', 'text',
               'ClinicalTrials.gov `/version` dataTimestamp at that run.'),
        Column('run_id', 'text', 'The run that set it.', required=True),
        Column('updated_at', 'timestamp', 'When it was set (UTC).', required=True),
        Column('query_fingerprint', 'text',
               "Hash of the topic's query for this source when the watermark was set; a "
               'changed query starts the topic over from the beginning.'),
    ),
)
MISSING_RECORDS = Table(
    'missing_records', BOOKKEEPING_GROUP,
    'Records a search listed but the fetch did not return; asked for again by the next run.',
    key=('source', 'record_id', 'topic'),
    fields=(
        Column('source', 'text', '`pubmed` or `ctgov`.', required=True),
        Column('record_id', 'text', 'PMID or NCT number.', required=True),
        Column('topic', 'text', 'Topic whose search listed it.', required=True),
        Column('run_id', 'text', 'The `runs.run_id` of the run that missed it.', required=True),
        Column('observed_at', 'timestamp', 'When (UTC).', required=True),
    ),
)
LINKED_FETCHES = Table(
    'linked_fetches', BOOKKEEPING_GROUP,
    'Records fetched because a tracked record links to them, each attempted once.',
    key=('source', 'record_id'),
    fields=(
        Column('source', 'text', '`pubmed` or `ctgov`.', required=True),
        Column('record_id', 'text', 'PMID or NCT number.', required=True),
        Column('run_id', 'text', 'The `runs.run_id` of the run that fetched it.', required=True),
        Column('attempted_at', 'timestamp', 'When (UTC).', required=True),
        Column('outcome', 'text',
               '`saved`, `not_found`, `deleted` (PubMed DeleteCitation) or `alias of NCT…` '
               '(ClinicalTrials.gov answered with the canonical record).', required=True),
    ),
)
RAW_RECORDS = Table(
    'raw_records', BOOKKEEPING_GROUP,
    'Every record as received, so `littrack rebuild` can re-derive the tables offline. Not '
    'exported.',
    key=('source', 'record_id'),
    fields=(
        Column('source', 'text', '`pubmed` or `ctgov`.', required=True),
        Column('record_id', 'text', 'PMID or NCT number.', required=True),
        Column('content_hash', 'text',
               'SHA-256 of the normalized rows (as Python\'s marshal format 2 writes them; '
               'sorted JSON in release 0.1.0): a new hash means the record may have '
               'changed, and its rows are compared.',
               required=True),
        Column('fetched_at', 'timestamp',
               'When the current version was stored (UTC).', required=True),
        Column('run_id', 'text',
               'The `runs.run_id` of the run that stored the current version.', required=True),
        Column('raw', 'blob',
               'Compressed PubMed XML, ClinicalTrials.gov JSON or Europe PMC JSON of the '
               'record: a Zstandard frame, or zlib in stores written by release 0.1.0 '
               '(`littrack.normalize.unpack_raw` reads both).',
               required=True),
    ),
    indexes=(Index('raw_records_run', ('run_id',)),),
    exported=False,
)
SOURCE_VERSIONS = Table(
    'source_versions', BOOKKEEPING_GROUP,
    "The data version a source last reported (ClinicalTrials.gov's `/version` "
    'dataTimestamp), so workers sharing a store ask for it once per round.',
    key=('source',),
    fields=(
        Column('source', 'text', '`ctgov`.', required=True),
        Column('data_timestamp', 'text', 'The version the service reported.', required=True),
        Column('run_id', 'text', 'The `runs.run_id` of the run that asked.', required=True),
        Column('fetched_at', 'timestamp', 'When it was asked (UTC).', required=True),
    ),
)
SCHEMA_MIGRATIONS = Table(
    'schema_migrations', BOOKKEEPING_GROUP,
    'One row per migration step applied to this store (`littrack/migrations.py`), in order. '
    'Not exported.',
    key=('name',),
    fields=(
        Column('name', 'text', 'Name of the step, e.g. `0002_linked_fetches`.', required=True),
        Column('applied_at', 'timestamp',
               'When the step ran (UTC); for the steps of release 0.1.0 found already in place '
               '(its `PRAGMA user_version`), when littrack adopted the store.', required=True),
    ),
    exported=False,
)

DELIVERIES = Table(
    'deliveries', BOOKKEEPING_GROUP,
    'Every notification littrack planned on a `[[notify]]` channel, recorded before it was '
    'sent and confirmed after; a `pending` one is resent with the same key. Not exported '
    '(holds whole messages).',
    key=('delivery_id',),
    fields=(
        Column('delivery_id', 'text',
               "Stable key of the delivery: the e-mail's Message-ID (before the `@`) and the "
               "webhook's `Idempotency-Key`; the same on every resend.", required=True),
        Column('entry', 'text', 'Name of the `[[notify]]` entry.', required=True),
        Column('channel', 'text', '`email`, `webhook` or `atom`.', required=True),
        Column('created_at', 'timestamp', 'When it was planned (UTC).', required=True),
        Column('status', 'text',
               '`pending` (not confirmed yet: it failed, or the process ended between sending '
               'and recording) or `sent`.', choices=('pending', 'sent'), required=True),
        Column('attempts', 'integer', 'How many times it was sent or tried.', required=True),
        Column('last_attempt_at', 'timestamp', 'When it was last sent or tried (UTC).'),
        Column('sent_at', 'timestamp', 'When its delivery was confirmed (UTC).'),
        Column('error', 'text', 'Why the last attempt failed (no secrets), if it did.'),
        Column('n_items', 'integer', 'How many items it carries.', required=True),
        Column('summary', 'text',
               "Its counts, as in the e-mail subject ('2 new articles, 1 trial change').",
               required=True),
        Column('payload', 'blob',
               "What is sent, zlib-compressed: the whole e-mail, the webhook's JSON body, or "
               "the feed entries.", required=True),
    ),
    indexes=(Index('deliveries_channel', ('entry', 'channel', 'created_at')),),
    exported=False,
)
DELIVERY_ITEMS = Table(
    'delivery_items', BOOKKEEPING_GROUP,
    'Which item went out in which delivery: no item is planned twice on a channel.',
    key=('entry', 'channel', 'item_key'),
    fields=(
        Column('entry', 'text', 'Name of the `[[notify]]` entry.', required=True),
        Column('channel', 'text', '`email`, `webhook` or `atom`.', required=True),
        Column('item_key', 'text',
               'The item: `new:<topic>:<source>:<id>`, `trial_change:<nct>:<run>`, '
               '`correction:<pmid>:<run>` or `unreported:<nct>`.', required=True),
        Column('delivery_id', 'text', 'The `deliveries.delivery_id` that carries it.',
               required=True),
    ),
    foreign_keys=(ForeignKey(('delivery_id',), 'deliveries', ('delivery_id',)),),
)
NOTIFY_CURSORS = Table(
    'notify_cursors', BOOKKEEPING_GROUP,
    'How far each notify channel has looked.',
    key=('entry', 'channel'),
    fields=(
        Column('entry', 'text', 'Name of the `[[notify]]` entry.', required=True),
        Column('channel', 'text', '`email`, `webhook` or `atom`.', required=True),
        Column('through_run', 'text',
               'The latest `runs.run_id` its deliveries considered (for reading; which runs '
               'it considered is `notify_considered`).'),
        Column('checked_at', 'timestamp',
               'When it last looked for something to deliver (UTC): the catch-up test of daily '
               'and weekly digests.', required=True),
    ),
)

NOTIFY_CONSIDERED = Table(
    'notify_considered', BOOKKEEPING_GROUP,
    'Which finished units of work (run × topic × source) each notify channel has considered: '
    'a unit committing after a later one was delivered is still new to it.',
    key=('entry', 'channel', 'run_id', 'topic', 'source'),
    fields=(
        Column('entry', 'text', 'Name of the `[[notify]]` entry.', required=True),
        Column('channel', 'text', '`email`, `webhook` or `atom`.', required=True),
        Column('run_id', 'text', 'The `runs.run_id` of the unit.', required=True),
        Column('topic', 'text', 'The `runs.topic` of the unit.', required=True),
        Column('source', 'text', 'The `runs.source` of the unit.', required=True),
    ),
)

PUBMED_TABLES: tuple[Table, ...] = (
    ARTICLES, ARTICLE_AUTHORS, ARTICLE_AFFILIATIONS, ARTICLE_MESH, ARTICLE_PUBLICATION_TYPES,
    ARTICLE_KEYWORDS, ARTICLE_TRIAL_IDS, ARTICLE_IDS, ARTICLE_COMMENTS,
)
CTGOV_TABLES: tuple[Table, ...] = (
    TRIALS, TRIAL_PHASES, TRIAL_CONDITIONS, TRIAL_INTERVENTIONS, TRIAL_LOCATIONS,
    TRIAL_REFERENCES, TRIAL_MESH, TRIAL_SECONDARY_IDS,
)
EUROPEPMC_TABLES: tuple[Table, ...] = (
    PREPRINTS, PREPRINT_AUTHORS, PREPRINT_VERSIONS, PREPRINT_PUBLICATIONS,
)
RECORD_TABLES: dict[str, tuple[Table, ...]] = {vocab.PUBMED: PUBMED_TABLES,
                                                vocab.CTGOV: CTGOV_TABLES,
                                                vocab.EUROPEPMC: EUROPEPMC_TABLES}
MAIN_TABLE: dict[str, Table] = {vocab.PUBMED: ARTICLES, vocab.CTGOV: TRIALS,
                                vocab.EUROPEPMC: PREPRINTS}

# Everything the store holds, in the order the data dictionary lists it.
RELATIONS: tuple[Relation, ...] = (
    *PUBMED_TABLES, *CTGOV_TABLES, *EUROPEPMC_TABLES, TRIAL_CHANGES, ARTICLE_CHANGES,
    PREPRINT_CHANGES, TRIAL_PUBLICATION_LINKS, TRIAL_PREPRINT_LINKS, TRIALS_DUE_UNREPORTED,
    TRIALS_STATUS_NOT_UPDATED,
    RECORD_UPDATES, TOPIC_MATCHES, RUNS, WATERMARKS, MISSING_RECORDS, LINKED_FETCHES,
    DELIVERIES, DELIVERY_ITEMS, NOTIFY_CURSORS, NOTIFY_CONSIDERED, RAW_RECORDS, SOURCE_VERSIONS,
    SCHEMA_MIGRATIONS,
)
BY_NAME: dict[str, Relation] = {r.name: r for r in RELATIONS}
