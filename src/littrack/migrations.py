"""The store's migration history: named steps, append-only, each recorded when applied.

Why frozen: a store on disk was built by the steps of the release that wrote it. A step is
hand-written SQL that never reads the current declaration (``tables.py``), so editing a
column there cannot rewrite history: it needs a new step at the end of ``STEPS``, and
``tests/test_migrations.py`` fails until the steps build exactly the declared schema. Released
steps are never edited, reordered or removed; a changed view is dropped and re-created by a
new step (``recreate_view``).

Each step carries its SQL for SQLite and for PostgreSQL (the steps written before PostgreSQL
support got their PostgreSQL SQL when it came; a step whose SQL runs on both gives it once),
so both databases have the same history and reach the same declared schema
(``tests/test_postgresql.py`` checks it there).

Each applied step is a row of ``schema_migrations`` (the sqlite-utils / Alembic idea). A store
written by release 0.1.0 has no such table: its ``PRAGMA user_version`` (1..3) says how many of
the first steps it already holds, and they are adopted as applied. ``user_version`` keeps
counting the applied steps, so release 0.1.0 refuses a store upgraded past it instead of
writing into a schema it does not know.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from littrack.errors import StoreError


@dataclass(frozen=True)
class Step:
    """One migration: its name (``NNNN_what``) and its statements for each database, run in
    one transaction. A step whose SQL is the same on both gives it once (``postgresql``
    empty); releases before PostgreSQL support have their own frozen PostgreSQL SQL."""

    name: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...] = ()

    def statements(self, dialect: str) -> tuple[str, ...]:
        return self.postgresql or self.sqlite if dialect == "postgresql" else self.sqlite


def recreate_view(name: str, select_sql: str) -> tuple[str, ...]:
    """The statements of a step that replaces a view's definition."""
    return (f"DROP VIEW IF EXISTS {name}", f"CREATE VIEW {name} AS {select_sql}")


# ---- frozen history: append below, never edit above ------------------------------------

# Release 0.1.0, PRAGMA user_version 1: record tables, matches, runs, watermarks, history,
# links, missing records.
_STEP_1 = (
    r"""CREATE TABLE IF NOT EXISTS articles (
  pmid TEXT NOT NULL,
  record_type TEXT,
  title TEXT,
  vernacular_title TEXT,
  abstract TEXT,
  journal TEXT,
  journal_iso TEXT,
  volume TEXT,
  issue TEXT,
  pages TEXT,
  pub_year INTEGER,
  pub_date TEXT,
  pub_date_text TEXT,
  epub_date TEXT,
  entrez_date TEXT,
  doi TEXT,
  pmcid TEXT,
  language TEXT,
  medline_status TEXT,
  is_retracted INTEGER,
  has_erratum INTEGER,
  has_concern INTEGER,
  is_retraction_notice INTEGER,
  is_deleted INTEGER,
  first_seen_at TEXT NOT NULL,
  last_seen_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (pmid)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_authors (
  pmid TEXT NOT NULL,
  position INTEGER NOT NULL,
  last_name TEXT,
  fore_name TEXT,
  initials TEXT,
  collective_name TEXT,
  orcid TEXT,
  affiliation TEXT,
  PRIMARY KEY (pmid, position)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_author_affiliations (
  pmid TEXT NOT NULL,
  position INTEGER NOT NULL,
  affiliation_position INTEGER NOT NULL,
  affiliation TEXT,
  PRIMARY KEY (pmid, position, affiliation_position)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_mesh (
  pmid TEXT NOT NULL,
  descriptor_ui TEXT NOT NULL,
  descriptor TEXT,
  qualifier_ui TEXT NOT NULL,
  qualifier TEXT,
  is_major INTEGER,
  PRIMARY KEY (pmid, descriptor_ui, qualifier_ui)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_publication_types (
  pmid TEXT NOT NULL,
  publication_type TEXT NOT NULL,
  ui TEXT,
  PRIMARY KEY (pmid, publication_type)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_keywords (
  pmid TEXT NOT NULL,
  keyword TEXT NOT NULL,
  owner TEXT,
  is_major INTEGER,
  PRIMARY KEY (pmid, keyword)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_trial_ids (
  pmid TEXT NOT NULL,
  nct_id TEXT NOT NULL,
  PRIMARY KEY (pmid, nct_id)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_ids (
  pmid TEXT NOT NULL,
  id_type TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (pmid, id_type, value)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_comments (
  pmid TEXT NOT NULL,
  ref_type TEXT NOT NULL,
  ref_pmid TEXT,
  ref_source TEXT NOT NULL,
  PRIMARY KEY (pmid, ref_type, ref_source)
)""",
    r"""CREATE TABLE IF NOT EXISTS trials (
  nct_id TEXT NOT NULL,
  acronym TEXT,
  brief_title TEXT,
  official_title TEXT,
  overall_status TEXT,
  last_known_status TEXT,
  why_stopped TEXT,
  phase TEXT,
  study_type TEXT,
  enrollment INTEGER,
  enrollment_type TEXT,
  start_date TEXT,
  start_date_type TEXT,
  primary_completion_date TEXT,
  primary_completion_date_type TEXT,
  completion_date TEXT,
  completion_date_type TEXT,
  first_posted TEXT,
  last_update_posted TEXT,
  results_first_posted TEXT,
  has_results INTEGER,
  lead_sponsor TEXT,
  lead_sponsor_class TEXT,
  first_seen_at TEXT NOT NULL,
  last_seen_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (nct_id)
)""",
    r"""CREATE TABLE IF NOT EXISTS trial_phases (
  nct_id TEXT NOT NULL,
  phase TEXT NOT NULL,
  PRIMARY KEY (nct_id, phase)
)""",
    r"""CREATE TABLE IF NOT EXISTS trial_conditions (
  nct_id TEXT NOT NULL,
  condition TEXT NOT NULL,
  PRIMARY KEY (nct_id, condition)
)""",
    r"""CREATE TABLE IF NOT EXISTS trial_interventions (
  nct_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  type TEXT,
  name TEXT,
  other_names TEXT,
  PRIMARY KEY (nct_id, position)
)""",
    r"""CREATE TABLE IF NOT EXISTS trial_locations (
  nct_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  facility TEXT,
  city TEXT,
  state TEXT,
  country TEXT,
  status TEXT,
  PRIMARY KEY (nct_id, position)
)""",
    r"""CREATE TABLE IF NOT EXISTS trial_references (
  nct_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  pmid TEXT,
  type TEXT,
  citation TEXT,
  PRIMARY KEY (nct_id, position)
)""",
    r"""CREATE TABLE IF NOT EXISTS trial_mesh (
  nct_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  mesh_id TEXT,
  term TEXT NOT NULL,
  PRIMARY KEY (nct_id, kind, term)
)""",
    r"""CREATE TABLE IF NOT EXISTS trial_secondary_ids (
  nct_id TEXT NOT NULL,
  secondary_id TEXT NOT NULL,
  type TEXT,
  domain TEXT,
  PRIMARY KEY (nct_id, secondary_id)
)""",
    r"""CREATE TABLE IF NOT EXISTS raw_records (
  source TEXT NOT NULL, record_id TEXT NOT NULL, content_hash TEXT NOT NULL,
  fetched_at TEXT NOT NULL, run_id TEXT NOT NULL, raw BLOB NOT NULL,
  PRIMARY KEY (source, record_id))""",
    r"""CREATE TABLE IF NOT EXISTS topic_matches (
  topic TEXT NOT NULL, source TEXT NOT NULL, record_id TEXT NOT NULL,
  first_seen_run TEXT NOT NULL, last_seen_run TEXT NOT NULL,
  PRIMARY KEY (topic, source, record_id))""",
    r"""CREATE INDEX IF NOT EXISTS topic_matches_first ON topic_matches (first_seen_run)""",
    r"""CREATE INDEX IF NOT EXISTS topic_matches_record ON topic_matches (source, record_id)""",
    r"""CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT NOT NULL, topic TEXT NOT NULL, source TEXT NOT NULL,
  started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL
    CHECK (status IN ('running', 'ok', 'failed')),
  window_start TEXT, window_end TEXT,
  n_found INTEGER, n_new INTEGER, n_updated INTEGER, n_requests INTEGER, n_retries INTEGER,
  error TEXT,
  PRIMARY KEY (run_id, topic, source))""",
    r"""CREATE INDEX IF NOT EXISTS runs_topic ON runs (topic, source, started_at)""",
    r"""CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at)""",
    r"""CREATE TABLE IF NOT EXISTS watermarks (
  topic TEXT NOT NULL, source TEXT NOT NULL, watermark TEXT NOT NULL,
  data_timestamp TEXT, run_id TEXT NOT NULL, updated_at TEXT NOT NULL,
  PRIMARY KEY (topic, source))""",
    r"""CREATE TABLE IF NOT EXISTS trial_changes (
  nct_id TEXT NOT NULL, run_id TEXT NOT NULL, observed_at TEXT NOT NULL,
  field TEXT NOT NULL, old_value TEXT, new_value TEXT)""",
    r"""CREATE INDEX IF NOT EXISTS trial_changes_run ON trial_changes (run_id)""",
    r"""CREATE INDEX IF NOT EXISTS trial_changes_nct ON trial_changes (nct_id)""",
    r"""CREATE TABLE IF NOT EXISTS article_changes (
  pmid TEXT NOT NULL, run_id TEXT NOT NULL, observed_at TEXT NOT NULL,
  field TEXT NOT NULL, old_value TEXT, new_value TEXT)""",
    r"""CREATE INDEX IF NOT EXISTS article_changes_run ON article_changes (run_id)""",
    r"""CREATE TABLE IF NOT EXISTS trial_publication_links (
  nct_id TEXT NOT NULL, pmid TEXT NOT NULL, evidence TEXT NOT NULL,
  first_seen_run TEXT NOT NULL,
  PRIMARY KEY (nct_id, pmid, evidence))""",
    r"""CREATE INDEX IF NOT EXISTS links_pmid ON trial_publication_links (pmid)""",
    r"""CREATE INDEX IF NOT EXISTS links_run ON trial_publication_links (first_seen_run)""",
    r"""CREATE TABLE IF NOT EXISTS missing_records (
  source TEXT NOT NULL, record_id TEXT NOT NULL, topic TEXT NOT NULL, run_id TEXT NOT NULL,
  observed_at TEXT NOT NULL,
  PRIMARY KEY (source, record_id, topic))""",
    r"""CREATE INDEX IF NOT EXISTS articles_entrez ON articles (entrez_date)""",
    r"""CREATE INDEX IF NOT EXISTS trials_completion ON trials (primary_completion_date)""",
)

# Release 0.1.0, user_version 2: linked_fetches and the trials_due_unreported view.
_STEP_2 = (
    r"""CREATE TABLE IF NOT EXISTS linked_fetches (
  source TEXT NOT NULL, record_id TEXT NOT NULL, run_id TEXT NOT NULL,
  attempted_at TEXT NOT NULL, outcome TEXT NOT NULL,
  PRIMARY KEY (source, record_id))""",
    "CREATE VIEW IF NOT EXISTS trials_due_unreported AS "
    r"""
SELECT t.nct_id, t.brief_title AS title, t.overall_status AS status, t.phase,
  t.lead_sponsor AS sponsor, t.primary_completion_date, t.primary_completion_date_type,
  t.due_date, CAST(julianday(date('now')) - julianday(t.due_date) AS INTEGER) AS days_overdue,
  (SELECT COUNT(DISTINCT l.pmid) FROM trial_publication_links l WHERE l.nct_id = t.nct_id)
    AS linked_pmids,
  (SELECT GROUP_CONCAT(topic, '; ') FROM (SELECT DISTINCT topic FROM topic_matches m
     WHERE m.source = 'ctgov' AND m.record_id = t.nct_id ORDER BY topic)) AS topics,
  'https://clinicaltrials.gov/study/' || t.nct_id AS url
FROM (SELECT trials.*, date(CASE
        WHEN length(primary_completion_date) = 4 THEN primary_completion_date || '-12-31'
        WHEN length(primary_completion_date) = 7
          THEN date(primary_completion_date || '-01', '+1 month', '-1 day')
        ELSE date(primary_completion_date) END, '+12 months') AS due_date
      FROM trials) t
WHERE t.due_date < date('now')
  AND COALESCE(t.has_results, 0) = 0 AND t.results_first_posted IS NULL
  AND COALESCE(t.overall_status, '') <> 'WITHDRAWN'
  AND NOT EXISTS (SELECT 1 FROM trial_references r WHERE r.nct_id = t.nct_id
                  AND r.type = 'RESULT' AND r.pmid IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM trial_publication_links l
                  JOIN article_publication_types pt ON pt.pmid = l.pmid
                  WHERE l.nct_id = t.nct_id AND (pt.publication_type LIKE 'Clinical Trial, Phase%'
                    OR pt.publication_type IN ('Clinical Trial', 'Controlled Clinical Trial',
                      'Randomized Controlled Trial', 'Pragmatic Clinical Trial',
                      'Equivalence Trial', 'Adaptive Clinical Trial')))
ORDER BY t.due_date, t.nct_id""",
)

# Release 0.1.0, user_version 3: the indexes the summary needs at a million articles.
_STEP_3 = (
    r"""CREATE INDEX IF NOT EXISTS raw_records_run ON raw_records (run_id)""",
    r"""CREATE INDEX IF NOT EXISTS articles_year ON articles (pmid, pub_year, is_deleted)""",
)

# Foreign keys from every child record table and the change logs to their record (articles,
# trials): SQLite cannot add a constraint to a table, so each is rebuilt (new table, copy,
# drop, rename; the view that reads them is dropped first and re-created last). A child row
# whose record is missing could not have been written by littrack and is not copied.
_STEP_4 = (
    "DROP VIEW trials_due_unreported",
    r"""CREATE TABLE article_authors_new (
  pmid TEXT NOT NULL,
  position INTEGER NOT NULL,
  last_name TEXT,
  fore_name TEXT,
  initials TEXT,
  collective_name TEXT,
  orcid TEXT,
  affiliation TEXT,
  PRIMARY KEY (pmid, position),
  FOREIGN KEY (pmid) REFERENCES articles (pmid)
)""",
    r"""INSERT INTO article_authors_new (pmid, position, last_name, fore_name, initials,
collective_name, orcid, affiliation) SELECT pmid, position, last_name, fore_name, initials,
collective_name, orcid, affiliation FROM article_authors WHERE EXISTS (SELECT 1 FROM
articles p WHERE p.pmid = article_authors.pmid)""",
    "DROP TABLE article_authors",
    "ALTER TABLE article_authors_new RENAME TO article_authors",
    r"""CREATE TABLE article_author_affiliations_new (
  pmid TEXT NOT NULL,
  position INTEGER NOT NULL,
  affiliation_position INTEGER NOT NULL,
  affiliation TEXT,
  PRIMARY KEY (pmid, position, affiliation_position),
  FOREIGN KEY (pmid) REFERENCES articles (pmid)
)""",
    r"""INSERT INTO article_author_affiliations_new (pmid, position, affiliation_position,
affiliation) SELECT pmid, position, affiliation_position, affiliation FROM
article_author_affiliations WHERE EXISTS (SELECT 1 FROM articles p WHERE p.pmid =
article_author_affiliations.pmid)""",
    "DROP TABLE article_author_affiliations",
    "ALTER TABLE article_author_affiliations_new RENAME TO article_author_affiliations",
    r"""CREATE TABLE article_mesh_new (
  pmid TEXT NOT NULL,
  descriptor_ui TEXT NOT NULL,
  descriptor TEXT,
  qualifier_ui TEXT NOT NULL,
  qualifier TEXT,
  is_major INTEGER,
  PRIMARY KEY (pmid, descriptor_ui, qualifier_ui),
  FOREIGN KEY (pmid) REFERENCES articles (pmid)
)""",
    r"""INSERT INTO article_mesh_new (pmid, descriptor_ui, descriptor, qualifier_ui, qualifier,
is_major) SELECT pmid, descriptor_ui, descriptor, qualifier_ui, qualifier, is_major FROM
article_mesh WHERE EXISTS (SELECT 1 FROM articles p WHERE p.pmid = article_mesh.pmid)""",
    "DROP TABLE article_mesh",
    "ALTER TABLE article_mesh_new RENAME TO article_mesh",
    r"""CREATE TABLE article_publication_types_new (
  pmid TEXT NOT NULL,
  publication_type TEXT NOT NULL,
  ui TEXT,
  PRIMARY KEY (pmid, publication_type),
  FOREIGN KEY (pmid) REFERENCES articles (pmid)
)""",
    r"""INSERT INTO article_publication_types_new (pmid, publication_type, ui) SELECT pmid,
publication_type, ui FROM article_publication_types WHERE EXISTS (SELECT 1 FROM articles p
WHERE p.pmid = article_publication_types.pmid)""",
    "DROP TABLE article_publication_types",
    "ALTER TABLE article_publication_types_new RENAME TO article_publication_types",
    r"""CREATE TABLE article_keywords_new (
  pmid TEXT NOT NULL,
  keyword TEXT NOT NULL,
  owner TEXT,
  is_major INTEGER,
  PRIMARY KEY (pmid, keyword),
  FOREIGN KEY (pmid) REFERENCES articles (pmid)
)""",
    r"""INSERT INTO article_keywords_new (pmid, keyword, owner, is_major) SELECT pmid, keyword,
owner, is_major FROM article_keywords WHERE EXISTS (SELECT 1 FROM articles p WHERE p.pmid =
article_keywords.pmid)""",
    "DROP TABLE article_keywords",
    "ALTER TABLE article_keywords_new RENAME TO article_keywords",
    r"""CREATE TABLE article_trial_ids_new (
  pmid TEXT NOT NULL,
  nct_id TEXT NOT NULL,
  PRIMARY KEY (pmid, nct_id),
  FOREIGN KEY (pmid) REFERENCES articles (pmid)
)""",
    r"""INSERT INTO article_trial_ids_new (pmid, nct_id) SELECT pmid, nct_id FROM article_trial_ids
WHERE EXISTS (SELECT 1 FROM articles p WHERE p.pmid = article_trial_ids.pmid)""",
    "DROP TABLE article_trial_ids",
    "ALTER TABLE article_trial_ids_new RENAME TO article_trial_ids",
    r"""CREATE TABLE article_ids_new (
  pmid TEXT NOT NULL,
  id_type TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (pmid, id_type, value),
  FOREIGN KEY (pmid) REFERENCES articles (pmid)
)""",
    r"""INSERT INTO article_ids_new (pmid, id_type, value) SELECT pmid, id_type, value FROM
article_ids WHERE EXISTS (SELECT 1 FROM articles p WHERE p.pmid = article_ids.pmid)""",
    "DROP TABLE article_ids",
    "ALTER TABLE article_ids_new RENAME TO article_ids",
    r"""CREATE TABLE article_comments_new (
  pmid TEXT NOT NULL,
  ref_type TEXT NOT NULL,
  ref_pmid TEXT,
  ref_source TEXT NOT NULL,
  PRIMARY KEY (pmid, ref_type, ref_source),
  FOREIGN KEY (pmid) REFERENCES articles (pmid)
)""",
    r"""INSERT INTO article_comments_new (pmid, ref_type, ref_pmid, ref_source) SELECT pmid,
ref_type, ref_pmid, ref_source FROM article_comments WHERE EXISTS (SELECT 1 FROM articles p
WHERE p.pmid = article_comments.pmid)""",
    "DROP TABLE article_comments",
    "ALTER TABLE article_comments_new RENAME TO article_comments",
    r"""CREATE TABLE trial_phases_new (
  nct_id TEXT NOT NULL,
  phase TEXT NOT NULL,
  PRIMARY KEY (nct_id, phase),
  FOREIGN KEY (nct_id) REFERENCES trials (nct_id)
)""",
    r"""INSERT INTO trial_phases_new (nct_id, phase) SELECT nct_id, phase FROM trial_phases WHERE
EXISTS (SELECT 1 FROM trials p WHERE p.nct_id = trial_phases.nct_id)""",
    "DROP TABLE trial_phases",
    "ALTER TABLE trial_phases_new RENAME TO trial_phases",
    r"""CREATE TABLE trial_conditions_new (
  nct_id TEXT NOT NULL,
  condition TEXT NOT NULL,
  PRIMARY KEY (nct_id, condition),
  FOREIGN KEY (nct_id) REFERENCES trials (nct_id)
)""",
    r"""INSERT INTO trial_conditions_new (nct_id, condition) SELECT nct_id, condition FROM
trial_conditions WHERE EXISTS (SELECT 1 FROM trials p WHERE p.nct_id =
trial_conditions.nct_id)""",
    "DROP TABLE trial_conditions",
    "ALTER TABLE trial_conditions_new RENAME TO trial_conditions",
    r"""CREATE TABLE trial_interventions_new (
  nct_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  type TEXT,
  name TEXT,
  other_names TEXT,
  PRIMARY KEY (nct_id, position),
  FOREIGN KEY (nct_id) REFERENCES trials (nct_id)
)""",
    r"""INSERT INTO trial_interventions_new (nct_id, position, type, name, other_names) SELECT
nct_id, position, type, name, other_names FROM trial_interventions WHERE EXISTS (SELECT 1
FROM trials p WHERE p.nct_id = trial_interventions.nct_id)""",
    "DROP TABLE trial_interventions",
    "ALTER TABLE trial_interventions_new RENAME TO trial_interventions",
    r"""CREATE TABLE trial_locations_new (
  nct_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  facility TEXT,
  city TEXT,
  state TEXT,
  country TEXT,
  status TEXT,
  PRIMARY KEY (nct_id, position),
  FOREIGN KEY (nct_id) REFERENCES trials (nct_id)
)""",
    r"""INSERT INTO trial_locations_new (nct_id, position, facility, city, state, country, status)
SELECT nct_id, position, facility, city, state, country, status FROM trial_locations WHERE
EXISTS (SELECT 1 FROM trials p WHERE p.nct_id = trial_locations.nct_id)""",
    "DROP TABLE trial_locations",
    "ALTER TABLE trial_locations_new RENAME TO trial_locations",
    r"""CREATE TABLE trial_references_new (
  nct_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  pmid TEXT,
  type TEXT,
  citation TEXT,
  PRIMARY KEY (nct_id, position),
  FOREIGN KEY (nct_id) REFERENCES trials (nct_id)
)""",
    r"""INSERT INTO trial_references_new (nct_id, position, pmid, type, citation) SELECT nct_id,
position, pmid, type, citation FROM trial_references WHERE EXISTS (SELECT 1 FROM trials p
WHERE p.nct_id = trial_references.nct_id)""",
    "DROP TABLE trial_references",
    "ALTER TABLE trial_references_new RENAME TO trial_references",
    r"""CREATE TABLE trial_mesh_new (
  nct_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  mesh_id TEXT,
  term TEXT NOT NULL,
  PRIMARY KEY (nct_id, kind, term),
  FOREIGN KEY (nct_id) REFERENCES trials (nct_id)
)""",
    r"""INSERT INTO trial_mesh_new (nct_id, kind, mesh_id, term) SELECT nct_id, kind, mesh_id, term
FROM trial_mesh WHERE EXISTS (SELECT 1 FROM trials p WHERE p.nct_id = trial_mesh.nct_id)""",
    "DROP TABLE trial_mesh",
    "ALTER TABLE trial_mesh_new RENAME TO trial_mesh",
    r"""CREATE TABLE trial_secondary_ids_new (
  nct_id TEXT NOT NULL,
  secondary_id TEXT NOT NULL,
  type TEXT,
  domain TEXT,
  PRIMARY KEY (nct_id, secondary_id),
  FOREIGN KEY (nct_id) REFERENCES trials (nct_id)
)""",
    r"""INSERT INTO trial_secondary_ids_new (nct_id, secondary_id, type, domain) SELECT nct_id,
secondary_id, type, domain FROM trial_secondary_ids WHERE EXISTS (SELECT 1 FROM trials p
WHERE p.nct_id = trial_secondary_ids.nct_id)""",
    "DROP TABLE trial_secondary_ids",
    "ALTER TABLE trial_secondary_ids_new RENAME TO trial_secondary_ids",
    r"""CREATE TABLE trial_changes_new (
  nct_id TEXT NOT NULL,
  run_id TEXT NOT NULL,
  observed_at TEXT NOT NULL,
  field TEXT NOT NULL,
  old_value TEXT,
  new_value TEXT,
  FOREIGN KEY (nct_id) REFERENCES trials (nct_id)
)""",
    r"""INSERT INTO trial_changes_new (nct_id, run_id, observed_at, field, old_value, new_value)
SELECT nct_id, run_id, observed_at, field, old_value, new_value FROM trial_changes WHERE
EXISTS (SELECT 1 FROM trials p WHERE p.nct_id = trial_changes.nct_id)""",
    "DROP TABLE trial_changes",
    "ALTER TABLE trial_changes_new RENAME TO trial_changes",
    "CREATE INDEX trial_changes_run ON trial_changes (run_id)",
    "CREATE INDEX trial_changes_nct ON trial_changes (nct_id)",
    r"""CREATE TABLE article_changes_new (
  pmid TEXT NOT NULL,
  run_id TEXT NOT NULL,
  observed_at TEXT NOT NULL,
  field TEXT NOT NULL,
  old_value TEXT,
  new_value TEXT,
  FOREIGN KEY (pmid) REFERENCES articles (pmid)
)""",
    r"""INSERT INTO article_changes_new (pmid, run_id, observed_at, field, old_value, new_value)
SELECT pmid, run_id, observed_at, field, old_value, new_value FROM article_changes WHERE
EXISTS (SELECT 1 FROM articles p WHERE p.pmid = article_changes.pmid)""",
    "DROP TABLE article_changes",
    "ALTER TABLE article_changes_new RENAME TO article_changes",
    "CREATE INDEX article_changes_run ON article_changes (run_id)",
    "CREATE VIEW trials_due_unreported AS "
    r"""
SELECT t.nct_id, t.brief_title AS title, t.overall_status AS status, t.phase,
  t.lead_sponsor AS sponsor, t.primary_completion_date, t.primary_completion_date_type,
  t.due_date, CAST(julianday(date('now')) - julianday(t.due_date) AS INTEGER) AS days_overdue,
  (SELECT COUNT(DISTINCT l.pmid) FROM trial_publication_links l WHERE l.nct_id = t.nct_id)
    AS linked_pmids,
  (SELECT GROUP_CONCAT(topic, '; ') FROM (SELECT DISTINCT topic FROM topic_matches m
     WHERE m.source = 'ctgov' AND m.record_id = t.nct_id ORDER BY topic)) AS topics,
  'https://clinicaltrials.gov/study/' || t.nct_id AS url
FROM (SELECT trials.*, date(CASE
        WHEN length(primary_completion_date) = 4 THEN primary_completion_date || '-12-31'
        WHEN length(primary_completion_date) = 7
          THEN date(primary_completion_date || '-01', '+1 month', '-1 day')
        ELSE date(primary_completion_date) END, '+12 months') AS due_date
      FROM trials) t
WHERE t.due_date < date('now')
  AND COALESCE(t.has_results, 0) = 0 AND t.results_first_posted IS NULL
  AND COALESCE(t.overall_status, '') <> 'WITHDRAWN'
  AND NOT EXISTS (SELECT 1 FROM trial_references r WHERE r.nct_id = t.nct_id
                  AND r.type = 'RESULT' AND r.pmid IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM trial_publication_links l
                  JOIN article_publication_types pt ON pt.pmid = l.pmid
                  WHERE l.nct_id = t.nct_id AND (pt.publication_type LIKE 'Clinical Trial, Phase%'
                    OR pt.publication_type IN ('Clinical Trial', 'Controlled Clinical Trial',
                      'Randomized Controlled Trial', 'Pragmatic Clinical Trial',
                      'Equivalence Trial', 'Adaptive Clinical Trial')))
ORDER BY t.due_date, t.nct_id""",
)

# The same four steps on PostgreSQL (written when PostgreSQL support came, frozen since):
# the same tables with PostgreSQL types, text in byte order (COLLATE "C", as in SQLite), a
# group_concat aggregate so the store's queries read the same on both, the view in
# PostgreSQL's date arithmetic, and foreign keys added in place.
_PG_STEP_1 = (
    r"""CREATE FUNCTION littrack_concat(acc TEXT, value TEXT, sep TEXT) RETURNS TEXT
LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN value IS NULL THEN acc WHEN acc IS NULL THEN value
              ELSE acc || sep || value END
$$""",
    'CREATE AGGREGATE group_concat(TEXT, TEXT) (SFUNC = littrack_concat, STYPE = TEXT)',
    r"""CREATE FUNCTION date(value TEXT, VARIADIC modifiers TEXT[] DEFAULT '{}')
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
    r"""CREATE FUNCTION julianday(value TEXT) RETURNS DOUBLE PRECISION LANGUAGE sql STABLE AS $$
  SELECT CAST(CAST(date(value) AS DATE) - DATE '2000-01-01' + 2451544.5 AS DOUBLE PRECISION)
$$""",
    r"""CREATE FUNCTION json_each(list TEXT) RETURNS TABLE (value TEXT) LANGUAGE sql
IMMUTABLE AS $$
  SELECT json_array_elements_text(CAST(list AS JSON))
$$""",
    r"""CREATE TABLE IF NOT EXISTS articles (
  pmid TEXT COLLATE "C" NOT NULL,
  record_type TEXT COLLATE "C",
  title TEXT COLLATE "C",
  vernacular_title TEXT COLLATE "C",
  abstract TEXT COLLATE "C",
  journal TEXT COLLATE "C",
  journal_iso TEXT COLLATE "C",
  volume TEXT COLLATE "C",
  issue TEXT COLLATE "C",
  pages TEXT COLLATE "C",
  pub_year INTEGER,
  pub_date TEXT COLLATE "C",
  pub_date_text TEXT COLLATE "C",
  epub_date TEXT COLLATE "C",
  entrez_date TEXT COLLATE "C",
  doi TEXT COLLATE "C",
  pmcid TEXT COLLATE "C",
  language TEXT COLLATE "C",
  medline_status TEXT COLLATE "C",
  is_retracted INTEGER,
  has_erratum INTEGER,
  has_concern INTEGER,
  is_retraction_notice INTEGER,
  is_deleted INTEGER,
  first_seen_at TEXT COLLATE "C" NOT NULL,
  last_seen_at TEXT COLLATE "C" NOT NULL,
  updated_at TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (pmid)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_authors (
  pmid TEXT COLLATE "C" NOT NULL,
  position INTEGER NOT NULL,
  last_name TEXT COLLATE "C",
  fore_name TEXT COLLATE "C",
  initials TEXT COLLATE "C",
  collective_name TEXT COLLATE "C",
  orcid TEXT COLLATE "C",
  affiliation TEXT COLLATE "C",
  PRIMARY KEY (pmid, position)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_author_affiliations (
  pmid TEXT COLLATE "C" NOT NULL,
  position INTEGER NOT NULL,
  affiliation_position INTEGER NOT NULL,
  affiliation TEXT COLLATE "C",
  PRIMARY KEY (pmid, position, affiliation_position)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_mesh (
  pmid TEXT COLLATE "C" NOT NULL,
  descriptor_ui TEXT COLLATE "C" NOT NULL,
  descriptor TEXT COLLATE "C",
  qualifier_ui TEXT COLLATE "C" NOT NULL,
  qualifier TEXT COLLATE "C",
  is_major INTEGER,
  PRIMARY KEY (pmid, descriptor_ui, qualifier_ui)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_publication_types (
  pmid TEXT COLLATE "C" NOT NULL,
  publication_type TEXT COLLATE "C" NOT NULL,
  ui TEXT COLLATE "C",
  PRIMARY KEY (pmid, publication_type)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_keywords (
  pmid TEXT COLLATE "C" NOT NULL,
  keyword TEXT COLLATE "C" NOT NULL,
  owner TEXT COLLATE "C",
  is_major INTEGER,
  PRIMARY KEY (pmid, keyword)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_trial_ids (
  pmid TEXT COLLATE "C" NOT NULL,
  nct_id TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (pmid, nct_id)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_ids (
  pmid TEXT COLLATE "C" NOT NULL,
  id_type TEXT COLLATE "C" NOT NULL,
  value TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (pmid, id_type, value)
)""",
    r"""CREATE TABLE IF NOT EXISTS article_comments (
  pmid TEXT COLLATE "C" NOT NULL,
  ref_type TEXT COLLATE "C" NOT NULL,
  ref_pmid TEXT COLLATE "C",
  ref_source TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (pmid, ref_type, ref_source)
)""",
    r"""CREATE TABLE IF NOT EXISTS trials (
  nct_id TEXT COLLATE "C" NOT NULL,
  acronym TEXT COLLATE "C",
  brief_title TEXT COLLATE "C",
  official_title TEXT COLLATE "C",
  overall_status TEXT COLLATE "C",
  last_known_status TEXT COLLATE "C",
  why_stopped TEXT COLLATE "C",
  phase TEXT COLLATE "C",
  study_type TEXT COLLATE "C",
  enrollment INTEGER,
  enrollment_type TEXT COLLATE "C",
  start_date TEXT COLLATE "C",
  start_date_type TEXT COLLATE "C",
  primary_completion_date TEXT COLLATE "C",
  primary_completion_date_type TEXT COLLATE "C",
  completion_date TEXT COLLATE "C",
  completion_date_type TEXT COLLATE "C",
  first_posted TEXT COLLATE "C",
  last_update_posted TEXT COLLATE "C",
  results_first_posted TEXT COLLATE "C",
  has_results INTEGER,
  lead_sponsor TEXT COLLATE "C",
  lead_sponsor_class TEXT COLLATE "C",
  first_seen_at TEXT COLLATE "C" NOT NULL,
  last_seen_at TEXT COLLATE "C" NOT NULL,
  updated_at TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (nct_id)
)""",
    r"""CREATE TABLE IF NOT EXISTS trial_phases (
  nct_id TEXT COLLATE "C" NOT NULL,
  phase TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (nct_id, phase)
)""",
    r"""CREATE TABLE IF NOT EXISTS trial_conditions (
  nct_id TEXT COLLATE "C" NOT NULL,
  condition TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (nct_id, condition)
)""",
    r"""CREATE TABLE IF NOT EXISTS trial_interventions (
  nct_id TEXT COLLATE "C" NOT NULL,
  position INTEGER NOT NULL,
  type TEXT COLLATE "C",
  name TEXT COLLATE "C",
  other_names TEXT COLLATE "C",
  PRIMARY KEY (nct_id, position)
)""",
    r"""CREATE TABLE IF NOT EXISTS trial_locations (
  nct_id TEXT COLLATE "C" NOT NULL,
  position INTEGER NOT NULL,
  facility TEXT COLLATE "C",
  city TEXT COLLATE "C",
  state TEXT COLLATE "C",
  country TEXT COLLATE "C",
  status TEXT COLLATE "C",
  PRIMARY KEY (nct_id, position)
)""",
    r"""CREATE TABLE IF NOT EXISTS trial_references (
  nct_id TEXT COLLATE "C" NOT NULL,
  position INTEGER NOT NULL,
  pmid TEXT COLLATE "C",
  type TEXT COLLATE "C",
  citation TEXT COLLATE "C",
  PRIMARY KEY (nct_id, position)
)""",
    r"""CREATE TABLE IF NOT EXISTS trial_mesh (
  nct_id TEXT COLLATE "C" NOT NULL,
  kind TEXT COLLATE "C" NOT NULL,
  mesh_id TEXT COLLATE "C",
  term TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (nct_id, kind, term)
)""",
    r"""CREATE TABLE IF NOT EXISTS trial_secondary_ids (
  nct_id TEXT COLLATE "C" NOT NULL,
  secondary_id TEXT COLLATE "C" NOT NULL,
  type TEXT COLLATE "C",
  domain TEXT COLLATE "C",
  PRIMARY KEY (nct_id, secondary_id)
)""",
    r"""CREATE TABLE IF NOT EXISTS raw_records (
  source TEXT COLLATE "C" NOT NULL,
  record_id TEXT COLLATE "C" NOT NULL,
  content_hash TEXT COLLATE "C" NOT NULL,
  fetched_at TEXT COLLATE "C" NOT NULL, run_id TEXT COLLATE "C" NOT NULL, raw BYTEA NOT NULL,
  PRIMARY KEY (source, record_id))""",
    r"""CREATE TABLE IF NOT EXISTS topic_matches (
  topic TEXT COLLATE "C" NOT NULL,
  source TEXT COLLATE "C" NOT NULL,
  record_id TEXT COLLATE "C" NOT NULL,
  first_seen_run TEXT COLLATE "C" NOT NULL, last_seen_run TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (topic, source, record_id))""",
    'CREATE INDEX IF NOT EXISTS topic_matches_first ON topic_matches (first_seen_run)',
    'CREATE INDEX IF NOT EXISTS topic_matches_record ON topic_matches (source, record_id)',
    r"""CREATE TABLE IF NOT EXISTS runs (
  run_id TEXT COLLATE "C" NOT NULL,
  topic TEXT COLLATE "C" NOT NULL,
  source TEXT COLLATE "C" NOT NULL,
  started_at TEXT COLLATE "C" NOT NULL,
  finished_at TEXT COLLATE "C",
  status TEXT COLLATE "C" NOT NULL
    CHECK (status IN ('running', 'ok', 'failed')),
  window_start TEXT COLLATE "C", window_end TEXT COLLATE "C",
  n_found INTEGER, n_new INTEGER, n_updated INTEGER, n_requests INTEGER, n_retries INTEGER,
  error TEXT COLLATE "C",
  PRIMARY KEY (run_id, topic, source))""",
    'CREATE INDEX IF NOT EXISTS runs_topic ON runs (topic, source, started_at)',
    'CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at)',
    r"""CREATE TABLE IF NOT EXISTS watermarks (
  topic TEXT COLLATE "C" NOT NULL,
  source TEXT COLLATE "C" NOT NULL,
  watermark TEXT COLLATE "C" NOT NULL,
  data_timestamp TEXT COLLATE "C",
  run_id TEXT COLLATE "C" NOT NULL,
  updated_at TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (topic, source))""",
    r"""CREATE TABLE IF NOT EXISTS trial_changes (
  nct_id TEXT COLLATE "C" NOT NULL,
  run_id TEXT COLLATE "C" NOT NULL,
  observed_at TEXT COLLATE "C" NOT NULL,
  field TEXT COLLATE "C" NOT NULL, old_value TEXT COLLATE "C", new_value TEXT COLLATE "C")""",
    'CREATE INDEX IF NOT EXISTS trial_changes_run ON trial_changes (run_id)',
    'CREATE INDEX IF NOT EXISTS trial_changes_nct ON trial_changes (nct_id)',
    r"""CREATE TABLE IF NOT EXISTS article_changes (
  pmid TEXT COLLATE "C" NOT NULL,
  run_id TEXT COLLATE "C" NOT NULL,
  observed_at TEXT COLLATE "C" NOT NULL,
  field TEXT COLLATE "C" NOT NULL, old_value TEXT COLLATE "C", new_value TEXT COLLATE "C")""",
    'CREATE INDEX IF NOT EXISTS article_changes_run ON article_changes (run_id)',
    r"""CREATE TABLE IF NOT EXISTS trial_publication_links (
  nct_id TEXT COLLATE "C" NOT NULL,
  pmid TEXT COLLATE "C" NOT NULL,
  evidence TEXT COLLATE "C" NOT NULL,
  first_seen_run TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (nct_id, pmid, evidence))""",
    'CREATE INDEX IF NOT EXISTS links_pmid ON trial_publication_links (pmid)',
    'CREATE INDEX IF NOT EXISTS links_run ON trial_publication_links (first_seen_run)',
    r"""CREATE TABLE IF NOT EXISTS missing_records (
  source TEXT COLLATE "C" NOT NULL,
  record_id TEXT COLLATE "C" NOT NULL,
  topic TEXT COLLATE "C" NOT NULL,
  run_id TEXT COLLATE "C" NOT NULL,
  observed_at TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (source, record_id, topic))""",
    'CREATE INDEX IF NOT EXISTS articles_entrez ON articles (entrez_date)',
    'CREATE INDEX IF NOT EXISTS trials_completion ON trials (primary_completion_date)',
)
_PG_STEP_2 = (
    r"""CREATE TABLE IF NOT EXISTS linked_fetches (
  source TEXT COLLATE "C" NOT NULL,
  record_id TEXT COLLATE "C" NOT NULL,
  run_id TEXT COLLATE "C" NOT NULL,
  attempted_at TEXT COLLATE "C" NOT NULL, outcome TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (source, record_id))""",
    "CREATE VIEW trials_due_unreported AS "
    r"""
SELECT t.nct_id, t.brief_title AS title, t.overall_status AS status, t.phase,
  t.lead_sponsor AS sponsor, t.primary_completion_date, t.primary_completion_date_type,
  t.due_date,
  CAST(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS date) - CAST(t.due_date AS date)
    AS days_overdue,
  (SELECT COUNT(DISTINCT l.pmid) FROM trial_publication_links l WHERE l.nct_id = t.nct_id)
    AS linked_pmids,
  (SELECT GROUP_CONCAT(topic, '; ') FROM (SELECT DISTINCT topic FROM topic_matches m
     WHERE m.source = 'ctgov' AND m.record_id = t.nct_id ORDER BY topic) d) AS topics,
  'https://clinicaltrials.gov/study/' || t.nct_id AS url
FROM (SELECT trials.*, to_char(CASE
        WHEN primary_completion_date ~ '^[0-9]{4}$'
          THEN CAST(primary_completion_date || '-12-31' AS date)
        WHEN primary_completion_date ~ '^[0-9]{4}-[0-9]{2}$'
          THEN CAST(CAST(primary_completion_date || '-01' AS date) + interval '1 month'
                    AS date) - 1
        WHEN primary_completion_date ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
          THEN CAST(primary_completion_date AS date) END + interval '12 months',
        'YYYY-MM-DD') AS due_date
      FROM trials) t
WHERE CAST(t.due_date AS date) < CAST(to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS date)
  AND COALESCE(t.has_results, 0) = 0 AND t.results_first_posted IS NULL
  AND COALESCE(t.overall_status, '') <> 'WITHDRAWN'
  AND NOT EXISTS (SELECT 1 FROM trial_references r WHERE r.nct_id = t.nct_id
                  AND r.type = 'RESULT' AND r.pmid IS NOT NULL)
  AND NOT EXISTS (SELECT 1 FROM trial_publication_links l
                  JOIN article_publication_types pt ON pt.pmid = l.pmid
                  WHERE l.nct_id = t.nct_id AND (pt.publication_type LIKE 'Clinical Trial, Phase%'
                    OR pt.publication_type IN ('Clinical Trial', 'Controlled Clinical Trial',
                      'Randomized Controlled Trial', 'Pragmatic Clinical Trial',
                      'Equivalence Trial', 'Adaptive Clinical Trial')))
ORDER BY t.due_date, t.nct_id""",
)
_PG_STEP_3 = (
    'CREATE INDEX IF NOT EXISTS raw_records_run ON raw_records (run_id)',
    'CREATE INDEX IF NOT EXISTS articles_year ON articles (pmid, pub_year, is_deleted)',
)
_PG_STEP_4 = (
    'ALTER TABLE article_authors ADD FOREIGN KEY (pmid) REFERENCES articles (pmid)',
    'ALTER TABLE article_author_affiliations ADD FOREIGN KEY (pmid) REFERENCES articles (pmid)',
    'ALTER TABLE article_mesh ADD FOREIGN KEY (pmid) REFERENCES articles (pmid)',
    'ALTER TABLE article_publication_types ADD FOREIGN KEY (pmid) REFERENCES articles (pmid)',
    'ALTER TABLE article_keywords ADD FOREIGN KEY (pmid) REFERENCES articles (pmid)',
    'ALTER TABLE article_trial_ids ADD FOREIGN KEY (pmid) REFERENCES articles (pmid)',
    'ALTER TABLE article_ids ADD FOREIGN KEY (pmid) REFERENCES articles (pmid)',
    'ALTER TABLE article_comments ADD FOREIGN KEY (pmid) REFERENCES articles (pmid)',
    'ALTER TABLE trial_phases ADD FOREIGN KEY (nct_id) REFERENCES trials (nct_id)',
    'ALTER TABLE trial_conditions ADD FOREIGN KEY (nct_id) REFERENCES trials (nct_id)',
    'ALTER TABLE trial_interventions ADD FOREIGN KEY (nct_id) REFERENCES trials (nct_id)',
    'ALTER TABLE trial_locations ADD FOREIGN KEY (nct_id) REFERENCES trials (nct_id)',
    'ALTER TABLE trial_references ADD FOREIGN KEY (nct_id) REFERENCES trials (nct_id)',
    'ALTER TABLE trial_mesh ADD FOREIGN KEY (nct_id) REFERENCES trials (nct_id)',
    'ALTER TABLE trial_secondary_ids ADD FOREIGN KEY (nct_id) REFERENCES trials (nct_id)',
    'ALTER TABLE trial_changes ADD FOREIGN KEY (nct_id) REFERENCES trials (nct_id)',
    'ALTER TABLE article_changes ADD FOREIGN KEY (pmid) REFERENCES articles (pmid)',
)
# Notifications (littrack.notify): each delivery recorded, with its stable key and payload,
# before it is sent; the items it carries; how far each channel has looked.
_STEP_5 = (
    r"""CREATE TABLE deliveries (
  delivery_id TEXT NOT NULL,
  entry TEXT NOT NULL,
  channel TEXT NOT NULL,
  created_at TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('pending', 'sent')),
  attempts INTEGER NOT NULL,
  last_attempt_at TEXT,
  sent_at TEXT,
  error TEXT,
  n_items INTEGER NOT NULL,
  summary TEXT NOT NULL,
  payload BLOB NOT NULL,
  PRIMARY KEY (delivery_id)
)""",
    "CREATE INDEX deliveries_channel ON deliveries (entry, channel, created_at)",
    r"""CREATE TABLE delivery_items (
  entry TEXT NOT NULL,
  channel TEXT NOT NULL,
  item_key TEXT NOT NULL,
  delivery_id TEXT NOT NULL,
  PRIMARY KEY (entry, channel, item_key),
  FOREIGN KEY (delivery_id) REFERENCES deliveries (delivery_id)
)""",
    r"""CREATE TABLE notify_cursors (
  entry TEXT NOT NULL,
  channel TEXT NOT NULL,
  through_run TEXT,
  checked_at TEXT NOT NULL,
  PRIMARY KEY (entry, channel)
)""",
)
# The same on PostgreSQL.
_PG_STEP_5 = (
    r"""CREATE TABLE deliveries (
  delivery_id TEXT COLLATE "C" NOT NULL,
  entry TEXT COLLATE "C" NOT NULL,
  channel TEXT COLLATE "C" NOT NULL,
  created_at TEXT COLLATE "C" NOT NULL,
  status TEXT COLLATE "C" NOT NULL CHECK (status IN ('pending', 'sent')),
  attempts INTEGER NOT NULL,
  last_attempt_at TEXT COLLATE "C",
  sent_at TEXT COLLATE "C",
  error TEXT COLLATE "C",
  n_items INTEGER NOT NULL,
  summary TEXT COLLATE "C" NOT NULL,
  payload BYTEA NOT NULL,
  PRIMARY KEY (delivery_id)
)""",
    "CREATE INDEX deliveries_channel ON deliveries (entry, channel, created_at)",
    r"""CREATE TABLE delivery_items (
  entry TEXT COLLATE "C" NOT NULL,
  channel TEXT COLLATE "C" NOT NULL,
  item_key TEXT COLLATE "C" NOT NULL,
  delivery_id TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (entry, channel, item_key),
  FOREIGN KEY (delivery_id) REFERENCES deliveries (delivery_id)
)""",
    r"""CREATE TABLE notify_cursors (
  entry TEXT COLLATE "C" NOT NULL,
  channel TEXT COLLATE "C" NOT NULL,
  through_run TEXT COLLATE "C",
  checked_at TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (entry, channel)
)""",
)

# Everyday use (issue 11): FDAAA facts on trials (appended columns) and the two trial views
# built on them (unreported results apart from records whose status was never updated), a
# log of which fields an update changed, a query fingerprint beside each watermark (a changed
# query starts over), and ``stopped`` as a run status (runs rebuilt: a CHECK cannot change).
_STEP_6 = (
    "DROP VIEW trials_due_unreported",
    "ALTER TABLE trials ADD COLUMN results_first_submitted TEXT",
    "ALTER TABLE trials ADD COLUMN delay_certificate_submitted TEXT",
    "ALTER TABLE trials ADD COLUMN fda_regulated_drug INTEGER",
    "ALTER TABLE trials ADD COLUMN fda_regulated_device INTEGER",
    "ALTER TABLE trials ADD COLUMN primary_purpose TEXT",
    "ALTER TABLE watermarks ADD COLUMN query_fingerprint TEXT",
    r"""CREATE TABLE runs_new (
  run_id TEXT NOT NULL,
  topic TEXT NOT NULL,
  source TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  status TEXT NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'stopped')),
  window_start TEXT,
  window_end TEXT,
  n_found INTEGER,
  n_new INTEGER,
  n_updated INTEGER,
  n_requests INTEGER,
  n_retries INTEGER,
  error TEXT,
  PRIMARY KEY (run_id, topic, source)
)""",
    r"""INSERT INTO runs_new (run_id, topic, source, started_at, finished_at, status,
window_start, window_end, n_found, n_new, n_updated, n_requests, n_retries, error) SELECT
run_id, topic, source, started_at, finished_at, status, window_start, window_end, n_found,
n_new, n_updated, n_requests, n_retries, error FROM runs""",
    "DROP TABLE runs",
    "ALTER TABLE runs_new RENAME TO runs",
    "CREATE INDEX runs_topic ON runs (topic, source, started_at)",
    "CREATE INDEX runs_started ON runs (started_at)",
    r"""CREATE TABLE record_updates (
  source TEXT NOT NULL,
  record_id TEXT NOT NULL,
  run_id TEXT NOT NULL,
  fields TEXT NOT NULL,
  PRIMARY KEY (source, record_id, run_id)
)""",
    "CREATE INDEX record_updates_run ON record_updates (run_id)",
    "CREATE VIEW trials_due_unreported AS "
    r"""
SELECT t.nct_id, t.brief_title AS title, t.overall_status AS status, t.phase,
  t.lead_sponsor AS sponsor, t.primary_completion_date, t.primary_completion_date_type,
  t.completion_date, t.completion_date_type,
  CASE t.fdaaa WHEN 'ACT' THEN 'FDAAA 801: applicable clinical trial'
    WHEN 'pACT' THEN 'FDAAA 801: probable applicable clinical trial'
    ELSE 'not FDAAA-covered: 12 months after primary completion' END
    || CASE WHEN t.fdaaa IS NOT NULL AND t.delay_certificate_submitted IS NOT NULL
         THEN ' (certificate of delay)' ELSE '' END AS rule,
  t.due_date, CAST(julianday(date('now')) - julianday(t.due_date) AS INTEGER) AS days_overdue,
  (SELECT GROUP_CONCAT(pmid, '|') FROM (SELECT DISTINCT l.pmid FROM trial_publication_links l
     WHERE l.nct_id = t.nct_id ORDER BY CAST(l.pmid AS INTEGER))) AS linked_pmids,
  CASE WHEN EXISTS (SELECT 1 FROM trial_publication_links l WHERE l.nct_id = t.nct_id
                    AND NOT EXISTS (SELECT 1 FROM articles a WHERE a.pmid = l.pmid))
    THEN 'unverified' ELSE 'checked' END AS verification,
  (SELECT GROUP_CONCAT(topic, '|') FROM (SELECT DISTINCT topic FROM
     topic_matches m WHERE m.source = 'ctgov' AND m.record_id = t.nct_id ORDER BY topic)) AS topics,
  'https://clinicaltrials.gov/study/' || t.nct_id AS url
FROM (
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
      FROM (SELECT trials.*, date(CASE WHEN length(primary_completion_date) = 4 THEN
    primary_completion_date || '-12-31'
        WHEN length(primary_completion_date) = 7
          THEN date(primary_completion_date || '-01', '+1 month', '-1 day')
        ELSE primary_completion_date END) AS primary_end,
              date(CASE WHEN length(completion_date) = 4 THEN completion_date || '-12-31'
        WHEN length(completion_date) = 7
          THEN date(completion_date || '-01', '+1 month', '-1 day')
        ELSE completion_date END) AS completion_end,
              COALESCE(date(CASE WHEN length(primary_completion_date) = 4 THEN
    primary_completion_date || '-12-31'
        WHEN length(primary_completion_date) = 7
          THEN date(primary_completion_date || '-01', '+1 month', '-1 day')
        ELSE primary_completion_date END),
                       date(CASE WHEN length(completion_date) = 4 THEN completion_date || '-12-31'
        WHEN length(completion_date) = 7
          THEN date(completion_date || '-01', '+1 month', '-1 day')
        ELSE completion_date END)) AS basis
            FROM trials) b) f) t
WHERE t.due_date < date('now')
  AND NOT (t.overall_status IN ('NOT_YET_RECRUITING', 'RECRUITING', 'ENROLLING_BY_INVITATION',
    'ACTIVE_NOT_RECRUITING', 'SUSPENDED', 'UNKNOWN')
  AND COALESCE(t.completion_end, t.primary_end) < date('now')
  AND (t.primary_end IS NULL OR t.primary_end < date('now')))
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
ORDER BY t.due_date, t.nct_id""",
    "CREATE VIEW trials_status_not_updated AS "
    r"""
SELECT t.nct_id, t.brief_title AS title, t.overall_status AS status,
  t.primary_completion_date, t.primary_completion_date_type, t.completion_date,
  t.completion_date_type, t.last_update_posted, t.lead_sponsor AS sponsor,
  CAST(julianday(date('now')) - julianday(COALESCE(t.completion_end, t.primary_end)) AS INTEGER)
    AS days_past_completion,
  (SELECT GROUP_CONCAT(topic, '|') FROM (SELECT DISTINCT topic FROM
     topic_matches m WHERE m.source = 'ctgov' AND m.record_id = t.nct_id ORDER BY topic)) AS topics,
  'https://clinicaltrials.gov/study/' || t.nct_id AS url
FROM (
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
      FROM (SELECT trials.*, date(CASE WHEN length(primary_completion_date) = 4 THEN
    primary_completion_date || '-12-31'
        WHEN length(primary_completion_date) = 7
          THEN date(primary_completion_date || '-01', '+1 month', '-1 day')
        ELSE primary_completion_date END) AS primary_end,
              date(CASE WHEN length(completion_date) = 4 THEN completion_date || '-12-31'
        WHEN length(completion_date) = 7
          THEN date(completion_date || '-01', '+1 month', '-1 day')
        ELSE completion_date END) AS completion_end,
              COALESCE(date(CASE WHEN length(primary_completion_date) = 4 THEN
    primary_completion_date || '-12-31'
        WHEN length(primary_completion_date) = 7
          THEN date(primary_completion_date || '-01', '+1 month', '-1 day')
        ELSE primary_completion_date END),
                       date(CASE WHEN length(completion_date) = 4 THEN completion_date || '-12-31'
        WHEN length(completion_date) = 7
          THEN date(completion_date || '-01', '+1 month', '-1 day')
        ELSE completion_date END)) AS basis
            FROM trials) b) f) t
WHERE t.overall_status IN ('NOT_YET_RECRUITING', 'RECRUITING', 'ENROLLING_BY_INVITATION',
    'ACTIVE_NOT_RECRUITING', 'SUSPENDED', 'UNKNOWN')
  AND COALESCE(t.completion_end, t.primary_end) < date('now')
  AND (t.primary_end IS NULL OR t.primary_end < date('now'))
ORDER BY COALESCE(t.completion_end, t.primary_end), t.nct_id""",
)

# The same on PostgreSQL (the views through littrack's date() and julianday()).
_PG_STEP_6 = (
    "DROP VIEW trials_due_unreported",
    'ALTER TABLE trials ADD COLUMN results_first_submitted TEXT COLLATE "C"',
    'ALTER TABLE trials ADD COLUMN delay_certificate_submitted TEXT COLLATE "C"',
    "ALTER TABLE trials ADD COLUMN fda_regulated_drug INTEGER",
    "ALTER TABLE trials ADD COLUMN fda_regulated_device INTEGER",
    'ALTER TABLE trials ADD COLUMN primary_purpose TEXT COLLATE "C"',
    'ALTER TABLE watermarks ADD COLUMN query_fingerprint TEXT COLLATE "C"',
    r"""CREATE TABLE runs_new (
  run_id TEXT COLLATE "C" NOT NULL,
  topic TEXT COLLATE "C" NOT NULL,
  source TEXT COLLATE "C" NOT NULL,
  started_at TEXT COLLATE "C" NOT NULL,
  finished_at TEXT COLLATE "C",
  status TEXT COLLATE "C" NOT NULL CHECK (status IN ('running', 'ok', 'failed', 'stopped')),
  window_start TEXT COLLATE "C",
  window_end TEXT COLLATE "C",
  n_found INTEGER,
  n_new INTEGER,
  n_updated INTEGER,
  n_requests INTEGER,
  n_retries INTEGER,
  error TEXT COLLATE "C",
  PRIMARY KEY (run_id, topic, source)
)""",
    r"""INSERT INTO runs_new (run_id, topic, source, started_at, finished_at, status,
window_start, window_end, n_found, n_new, n_updated, n_requests, n_retries, error) SELECT
run_id, topic, source, started_at, finished_at, status, window_start, window_end, n_found,
n_new, n_updated, n_requests, n_retries, error FROM runs""",
    "DROP TABLE runs",
    "ALTER TABLE runs_new RENAME TO runs",
    "ALTER TABLE runs RENAME CONSTRAINT runs_new_pkey TO runs_pkey",
    "ALTER TABLE runs RENAME CONSTRAINT runs_new_status_check TO runs_status_check",
    "CREATE INDEX runs_topic ON runs (topic, source, started_at)",
    "CREATE INDEX runs_started ON runs (started_at)",
    r"""CREATE TABLE record_updates (
  source TEXT COLLATE "C" NOT NULL,
  record_id TEXT COLLATE "C" NOT NULL,
  run_id TEXT COLLATE "C" NOT NULL,
  fields TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (source, record_id, run_id)
)""",
    "CREATE INDEX record_updates_run ON record_updates (run_id)",
    "CREATE VIEW trials_due_unreported AS "
    r"""
SELECT t.nct_id, t.brief_title AS title, t.overall_status AS status, t.phase,
  t.lead_sponsor AS sponsor, t.primary_completion_date, t.primary_completion_date_type,
  t.completion_date, t.completion_date_type,
  CASE t.fdaaa WHEN 'ACT' THEN 'FDAAA 801: applicable clinical trial'
    WHEN 'pACT' THEN 'FDAAA 801: probable applicable clinical trial'
    ELSE 'not FDAAA-covered: 12 months after primary completion' END
    || CASE WHEN t.fdaaa IS NOT NULL AND t.delay_certificate_submitted IS NOT NULL
         THEN ' (certificate of delay)' ELSE '' END AS rule,
  t.due_date, CAST(julianday(date('now')) - julianday(t.due_date) AS INTEGER) AS days_overdue,
  (SELECT GROUP_CONCAT(pmid, '|') FROM (SELECT l.pmid FROM trial_publication_links l
     WHERE l.nct_id = t.nct_id GROUP BY l.pmid ORDER BY CAST(l.pmid AS INTEGER))) AS linked_pmids,
  CASE WHEN EXISTS (SELECT 1 FROM trial_publication_links l WHERE l.nct_id = t.nct_id
                    AND NOT EXISTS (SELECT 1 FROM articles a WHERE a.pmid = l.pmid))
    THEN 'unverified' ELSE 'checked' END AS verification,
  (SELECT GROUP_CONCAT(topic, '|') FROM (SELECT DISTINCT topic FROM
     topic_matches m WHERE m.source = 'ctgov' AND m.record_id = t.nct_id ORDER BY topic)) AS topics,
  'https://clinicaltrials.gov/study/' || t.nct_id AS url
FROM (
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
      FROM (SELECT trials.*, date(CASE WHEN length(primary_completion_date) = 4 THEN
    primary_completion_date || '-12-31'
        WHEN length(primary_completion_date) = 7
          THEN date(primary_completion_date || '-01', '+1 month', '-1 day')
        ELSE primary_completion_date END) AS primary_end,
              date(CASE WHEN length(completion_date) = 4 THEN completion_date || '-12-31'
        WHEN length(completion_date) = 7
          THEN date(completion_date || '-01', '+1 month', '-1 day')
        ELSE completion_date END) AS completion_end,
              COALESCE(date(CASE WHEN length(primary_completion_date) = 4 THEN
    primary_completion_date || '-12-31'
        WHEN length(primary_completion_date) = 7
          THEN date(primary_completion_date || '-01', '+1 month', '-1 day')
        ELSE primary_completion_date END),
                       date(CASE WHEN length(completion_date) = 4 THEN completion_date || '-12-31'
        WHEN length(completion_date) = 7
          THEN date(completion_date || '-01', '+1 month', '-1 day')
        ELSE completion_date END)) AS basis
            FROM trials) b) f) t
WHERE t.due_date < date('now')
  AND NOT (t.overall_status IN ('NOT_YET_RECRUITING', 'RECRUITING', 'ENROLLING_BY_INVITATION',
    'ACTIVE_NOT_RECRUITING', 'SUSPENDED', 'UNKNOWN')
  AND COALESCE(t.completion_end, t.primary_end) < date('now')
  AND (t.primary_end IS NULL OR t.primary_end < date('now')))
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
ORDER BY t.due_date, t.nct_id""",
    "CREATE VIEW trials_status_not_updated AS "
    r"""
SELECT t.nct_id, t.brief_title AS title, t.overall_status AS status,
  t.primary_completion_date, t.primary_completion_date_type, t.completion_date,
  t.completion_date_type, t.last_update_posted, t.lead_sponsor AS sponsor,
  CAST(julianday(date('now')) - julianday(COALESCE(t.completion_end, t.primary_end)) AS INTEGER)
    AS days_past_completion,
  (SELECT GROUP_CONCAT(topic, '|') FROM (SELECT DISTINCT topic FROM
     topic_matches m WHERE m.source = 'ctgov' AND m.record_id = t.nct_id ORDER BY topic)) AS topics,
  'https://clinicaltrials.gov/study/' || t.nct_id AS url
FROM (
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
      FROM (SELECT trials.*, date(CASE WHEN length(primary_completion_date) = 4 THEN
    primary_completion_date || '-12-31'
        WHEN length(primary_completion_date) = 7
          THEN date(primary_completion_date || '-01', '+1 month', '-1 day')
        ELSE primary_completion_date END) AS primary_end,
              date(CASE WHEN length(completion_date) = 4 THEN completion_date || '-12-31'
        WHEN length(completion_date) = 7
          THEN date(completion_date || '-01', '+1 month', '-1 day')
        ELSE completion_date END) AS completion_end,
              COALESCE(date(CASE WHEN length(primary_completion_date) = 4 THEN
    primary_completion_date || '-12-31'
        WHEN length(primary_completion_date) = 7
          THEN date(primary_completion_date || '-01', '+1 month', '-1 day')
        ELSE primary_completion_date END),
                       date(CASE WHEN length(completion_date) = 4 THEN completion_date || '-12-31'
        WHEN length(completion_date) = 7
          THEN date(completion_date || '-01', '+1 month', '-1 day')
        ELSE completion_date END)) AS basis
            FROM trials) b) f) t
WHERE t.overall_status IN ('NOT_YET_RECRUITING', 'RECRUITING', 'ENROLLING_BY_INVITATION',
    'ACTIVE_NOT_RECRUITING', 'SUSPENDED', 'UNKNOWN')
  AND COALESCE(t.completion_end, t.primary_end) < date('now')
  AND (t.primary_end IS NULL OR t.primary_end < date('now'))
ORDER BY COALESCE(t.completion_end, t.primary_end), t.nct_id""",
)

# Workers sharing a store ask a source's data version once per round (issue 14).
_STEP_7 = (
    # trials_due_unreported's linked PMIDs: GROUP BY instead of DISTINCT, so the same SQL
    # runs on PostgreSQL (which orders a DISTINCT only by selected columns); same rows.
    "DROP VIEW trials_due_unreported",
    "CREATE VIEW trials_due_unreported AS "
    r"""
SELECT t.nct_id, t.brief_title AS title, t.overall_status AS status, t.phase,
  t.lead_sponsor AS sponsor, t.primary_completion_date, t.primary_completion_date_type,
  t.completion_date, t.completion_date_type,
  CASE t.fdaaa WHEN 'ACT' THEN 'FDAAA 801: applicable clinical trial'
    WHEN 'pACT' THEN 'FDAAA 801: probable applicable clinical trial'
    ELSE 'not FDAAA-covered: 12 months after primary completion' END
    || CASE WHEN t.fdaaa IS NOT NULL AND t.delay_certificate_submitted IS NOT NULL
         THEN ' (certificate of delay)' ELSE '' END AS rule,
  t.due_date, CAST(julianday(date('now')) - julianday(t.due_date) AS INTEGER) AS days_overdue,
  (SELECT GROUP_CONCAT(pmid, '|') FROM (SELECT l.pmid FROM trial_publication_links l
     WHERE l.nct_id = t.nct_id GROUP BY l.pmid ORDER BY CAST(l.pmid AS INTEGER))) AS linked_pmids,
  CASE WHEN EXISTS (SELECT 1 FROM trial_publication_links l WHERE l.nct_id = t.nct_id
                    AND NOT EXISTS (SELECT 1 FROM articles a WHERE a.pmid = l.pmid))
    THEN 'unverified' ELSE 'checked' END AS verification,
  (SELECT GROUP_CONCAT(topic, '|') FROM (SELECT DISTINCT topic FROM
     topic_matches m WHERE m.source = 'ctgov' AND m.record_id = t.nct_id ORDER BY topic)) AS topics,
  'https://clinicaltrials.gov/study/' || t.nct_id AS url
FROM (
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
      FROM (SELECT trials.*, date(CASE WHEN length(primary_completion_date) = 4
    THEN primary_completion_date || '-12-31'
        WHEN length(primary_completion_date) = 7
          THEN date(primary_completion_date || '-01', '+1 month', '-1 day')
        ELSE primary_completion_date END) AS primary_end,
              date(CASE WHEN length(completion_date) = 4 THEN completion_date || '-12-31'
        WHEN length(completion_date) = 7
          THEN date(completion_date || '-01', '+1 month', '-1 day')
        ELSE completion_date END) AS completion_end,
              COALESCE(date(CASE WHEN length(primary_completion_date) = 4
    THEN primary_completion_date || '-12-31'
        WHEN length(primary_completion_date) = 7
          THEN date(primary_completion_date || '-01', '+1 month', '-1 day')
        ELSE primary_completion_date END),
                       date(CASE WHEN length(completion_date) = 4 THEN completion_date || '-12-31'
        WHEN length(completion_date) = 7
          THEN date(completion_date || '-01', '+1 month', '-1 day')
        ELSE completion_date END)) AS basis
            FROM trials) b) f) t
WHERE t.due_date < date('now')
  AND NOT (t.overall_status IN ('NOT_YET_RECRUITING', 'RECRUITING', 'ENROLLING_BY_INVITATION',
    'ACTIVE_NOT_RECRUITING', 'SUSPENDED', 'UNKNOWN')
  AND COALESCE(t.completion_end, t.primary_end) < date('now')
  AND (t.primary_end IS NULL OR t.primary_end < date('now')))
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
ORDER BY t.due_date, t.nct_id""",
    """CREATE TABLE source_versions (
  source TEXT NOT NULL,
  data_timestamp TEXT NOT NULL,
  run_id TEXT NOT NULL,
  fetched_at TEXT NOT NULL,
  PRIMARY KEY (source)
)""",
)
_PG_STEP_7 = (
    # trials_due_unreported's linked PMIDs: GROUP BY instead of DISTINCT, so the same SQL
    # runs on PostgreSQL (which orders a DISTINCT only by selected columns); same rows.
    "DROP VIEW trials_due_unreported",
    "CREATE VIEW trials_due_unreported AS "
    r"""
SELECT t.nct_id, t.brief_title AS title, t.overall_status AS status, t.phase,
  t.lead_sponsor AS sponsor, t.primary_completion_date, t.primary_completion_date_type,
  t.completion_date, t.completion_date_type,
  CASE t.fdaaa WHEN 'ACT' THEN 'FDAAA 801: applicable clinical trial'
    WHEN 'pACT' THEN 'FDAAA 801: probable applicable clinical trial'
    ELSE 'not FDAAA-covered: 12 months after primary completion' END
    || CASE WHEN t.fdaaa IS NOT NULL AND t.delay_certificate_submitted IS NOT NULL
         THEN ' (certificate of delay)' ELSE '' END AS rule,
  t.due_date, CAST(julianday(date('now')) - julianday(t.due_date) AS INTEGER) AS days_overdue,
  (SELECT GROUP_CONCAT(pmid, '|') FROM (SELECT l.pmid FROM trial_publication_links l
     WHERE l.nct_id = t.nct_id GROUP BY l.pmid ORDER BY CAST(l.pmid AS INTEGER))) AS linked_pmids,
  CASE WHEN EXISTS (SELECT 1 FROM trial_publication_links l WHERE l.nct_id = t.nct_id
                    AND NOT EXISTS (SELECT 1 FROM articles a WHERE a.pmid = l.pmid))
    THEN 'unverified' ELSE 'checked' END AS verification,
  (SELECT GROUP_CONCAT(topic, '|') FROM (SELECT DISTINCT topic FROM
     topic_matches m WHERE m.source = 'ctgov' AND m.record_id = t.nct_id ORDER BY topic)) AS topics,
  'https://clinicaltrials.gov/study/' || t.nct_id AS url
FROM (
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
      FROM (SELECT trials.*, date(CASE WHEN length(primary_completion_date) = 4
    THEN primary_completion_date || '-12-31'
        WHEN length(primary_completion_date) = 7
          THEN date(primary_completion_date || '-01', '+1 month', '-1 day')
        ELSE primary_completion_date END) AS primary_end,
              date(CASE WHEN length(completion_date) = 4 THEN completion_date || '-12-31'
        WHEN length(completion_date) = 7
          THEN date(completion_date || '-01', '+1 month', '-1 day')
        ELSE completion_date END) AS completion_end,
              COALESCE(date(CASE WHEN length(primary_completion_date) = 4
    THEN primary_completion_date || '-12-31'
        WHEN length(primary_completion_date) = 7
          THEN date(primary_completion_date || '-01', '+1 month', '-1 day')
        ELSE primary_completion_date END),
                       date(CASE WHEN length(completion_date) = 4 THEN completion_date || '-12-31'
        WHEN length(completion_date) = 7
          THEN date(completion_date || '-01', '+1 month', '-1 day')
        ELSE completion_date END)) AS basis
            FROM trials) b) f) t
WHERE t.due_date < date('now')
  AND NOT (t.overall_status IN ('NOT_YET_RECRUITING', 'RECRUITING', 'ENROLLING_BY_INVITATION',
    'ACTIVE_NOT_RECRUITING', 'SUSPENDED', 'UNKNOWN')
  AND COALESCE(t.completion_end, t.primary_end) < date('now')
  AND (t.primary_end IS NULL OR t.primary_end < date('now')))
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
ORDER BY t.due_date, t.nct_id""",
    """CREATE TABLE source_versions (
  source TEXT COLLATE "C" NOT NULL,
  data_timestamp TEXT COLLATE "C" NOT NULL,
  run_id TEXT COLLATE "C" NOT NULL,
  fetched_at TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (source)
)""",
)

# Notifications remember which units of work (run × topic × source) each channel considered,
# instead of a run-id cursor that skipped runs committing after a later-sorting run was
# delivered. A channel's units are seeded from its old cursor: every finished unit at or below
# it that had finished when the channel last looked (later ones were never seen: delivered now).
_NOTIFY_CONSIDERED_SEED = r"""INSERT INTO notify_considered (entry, channel, run_id, topic, source)
SELECT c.entry, c.channel, r.run_id, r.topic, r.source
FROM notify_cursors c JOIN runs r ON r.run_id <= c.through_run
WHERE r.status <> 'running' AND (r.finished_at IS NULL OR r.finished_at <= c.checked_at)"""
_STEP_8 = (
    r"""CREATE TABLE notify_considered (
  entry TEXT NOT NULL,
  channel TEXT NOT NULL,
  run_id TEXT NOT NULL,
  topic TEXT NOT NULL,
  source TEXT NOT NULL,
  PRIMARY KEY (entry, channel, run_id, topic, source)
)""",
    _NOTIFY_CONSIDERED_SEED,
)
_PG_STEP_8 = (
    r"""CREATE TABLE notify_considered (
  entry TEXT COLLATE "C" NOT NULL,
  channel TEXT COLLATE "C" NOT NULL,
  run_id TEXT COLLATE "C" NOT NULL,
  topic TEXT COLLATE "C" NOT NULL,
  source TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (entry, channel, run_id, topic, source)
)""",
    _NOTIFY_CONSIDERED_SEED,
)

# Europe PMC preprints (issue 13): the preprint record tables and their change log.
_STEP_9 = (
    r"""CREATE TABLE preprints (
  ppr_id TEXT NOT NULL,
  title TEXT,
  abstract TEXT,
  server TEXT,
  doi TEXT,
  version_number INTEGER,
  pub_year INTEGER,
  first_publication_date TEXT,
  first_index_date TEXT,
  license TEXT,
  published_pmid TEXT,
  first_seen_at TEXT NOT NULL,
  last_seen_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (ppr_id)
)""",
    "CREATE INDEX preprints_doi ON preprints (doi)",
    "CREATE INDEX preprints_published ON preprints (published_pmid)",
    r"""CREATE TABLE preprint_authors (
  ppr_id TEXT NOT NULL,
  position INTEGER NOT NULL,
  full_name TEXT,
  last_name TEXT,
  first_name TEXT,
  initials TEXT,
  orcid TEXT,
  affiliation TEXT,
  PRIMARY KEY (ppr_id, position),
  FOREIGN KEY (ppr_id) REFERENCES preprints (ppr_id)
)""",
    r"""CREATE TABLE preprint_versions (
  ppr_id TEXT NOT NULL,
  version_id TEXT NOT NULL,
  version_number INTEGER,
  first_publish_date TEXT,
  PRIMARY KEY (ppr_id, version_id),
  FOREIGN KEY (ppr_id) REFERENCES preprints (ppr_id)
)""",
    r"""CREATE TABLE preprint_publications (
  ppr_id TEXT NOT NULL,
  published_source TEXT NOT NULL,
  published_id TEXT NOT NULL,
  evidence TEXT NOT NULL,
  note TEXT,
  PRIMARY KEY (ppr_id, published_source, published_id),
  FOREIGN KEY (ppr_id) REFERENCES preprints (ppr_id)
)""",
    r"""CREATE TABLE preprint_changes (
  ppr_id TEXT NOT NULL,
  run_id TEXT NOT NULL,
  observed_at TEXT NOT NULL,
  field TEXT NOT NULL,
  old_value TEXT,
  new_value TEXT,
  FOREIGN KEY (ppr_id) REFERENCES preprints (ppr_id)
)""",
    "CREATE INDEX preprint_changes_run ON preprint_changes (run_id)",
)

# The same on PostgreSQL.
_PG_STEP_9 = (
    r"""CREATE TABLE preprints (
  ppr_id TEXT COLLATE "C" NOT NULL,
  title TEXT COLLATE "C",
  abstract TEXT COLLATE "C",
  server TEXT COLLATE "C",
  doi TEXT COLLATE "C",
  version_number INTEGER,
  pub_year INTEGER,
  first_publication_date TEXT COLLATE "C",
  first_index_date TEXT COLLATE "C",
  license TEXT COLLATE "C",
  published_pmid TEXT COLLATE "C",
  first_seen_at TEXT COLLATE "C" NOT NULL,
  last_seen_at TEXT COLLATE "C" NOT NULL,
  updated_at TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (ppr_id)
)""",
    "CREATE INDEX preprints_doi ON preprints (doi)",
    "CREATE INDEX preprints_published ON preprints (published_pmid)",
    r"""CREATE TABLE preprint_authors (
  ppr_id TEXT COLLATE "C" NOT NULL,
  position INTEGER NOT NULL,
  full_name TEXT COLLATE "C",
  last_name TEXT COLLATE "C",
  first_name TEXT COLLATE "C",
  initials TEXT COLLATE "C",
  orcid TEXT COLLATE "C",
  affiliation TEXT COLLATE "C",
  PRIMARY KEY (ppr_id, position),
  FOREIGN KEY (ppr_id) REFERENCES preprints (ppr_id)
)""",
    r"""CREATE TABLE preprint_versions (
  ppr_id TEXT COLLATE "C" NOT NULL,
  version_id TEXT COLLATE "C" NOT NULL,
  version_number INTEGER,
  first_publish_date TEXT COLLATE "C",
  PRIMARY KEY (ppr_id, version_id),
  FOREIGN KEY (ppr_id) REFERENCES preprints (ppr_id)
)""",
    r"""CREATE TABLE preprint_publications (
  ppr_id TEXT COLLATE "C" NOT NULL,
  published_source TEXT COLLATE "C" NOT NULL,
  published_id TEXT COLLATE "C" NOT NULL,
  evidence TEXT COLLATE "C" NOT NULL,
  note TEXT COLLATE "C",
  PRIMARY KEY (ppr_id, published_source, published_id),
  FOREIGN KEY (ppr_id) REFERENCES preprints (ppr_id)
)""",
    r"""CREATE TABLE preprint_changes (
  ppr_id TEXT COLLATE "C" NOT NULL,
  run_id TEXT COLLATE "C" NOT NULL,
  observed_at TEXT COLLATE "C" NOT NULL,
  field TEXT COLLATE "C" NOT NULL,
  old_value TEXT COLLATE "C",
  new_value TEXT COLLATE "C",
  FOREIGN KEY (ppr_id) REFERENCES preprints (ppr_id)
)""",
    "CREATE INDEX preprint_changes_run ON preprint_changes (run_id)",
)

# Trial-preprint links (issue 13): a preprint found naming a tracked trial has no PMID, so
# it gets its own link table beside trial_publication_links.
_STEP_10 = (
    r"""CREATE TABLE trial_preprint_links (
  nct_id TEXT NOT NULL,
  ppr_id TEXT NOT NULL,
  evidence TEXT NOT NULL,
  first_seen_run TEXT NOT NULL,
  PRIMARY KEY (nct_id, ppr_id, evidence),
  FOREIGN KEY (ppr_id) REFERENCES preprints (ppr_id)
)""",
    "CREATE INDEX preprint_links_ppr ON trial_preprint_links (ppr_id)",
    "CREATE INDEX preprint_links_run ON trial_preprint_links (first_seen_run)",
)

# The same on PostgreSQL.
_PG_STEP_10 = (
    r"""CREATE TABLE trial_preprint_links (
  nct_id TEXT COLLATE "C" NOT NULL,
  ppr_id TEXT COLLATE "C" NOT NULL,
  evidence TEXT COLLATE "C" NOT NULL,
  first_seen_run TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (nct_id, ppr_id, evidence),
  FOREIGN KEY (ppr_id) REFERENCES preprints (ppr_id)
)""",
    "CREATE INDEX preprint_links_ppr ON trial_preprint_links (ppr_id)",
    "CREATE INDEX preprint_links_run ON trial_preprint_links (first_seen_run)",
)

STEPS: tuple[Step, ...] = (
    Step("0001_initial", _STEP_1, _PG_STEP_1),
    Step("0002_linked_fetches_unreported_view", _STEP_2, _PG_STEP_2),
    Step("0003_summary_indexes", _STEP_3, _PG_STEP_3),
    Step("0004_record_foreign_keys", _STEP_4, _PG_STEP_4),
    Step("0005_notify_deliveries", _STEP_5, _PG_STEP_5),
    Step("0006_everyday_fdaaa_fingerprint_stopped", _STEP_6, _PG_STEP_6),
    Step("0007_source_versions", _STEP_7, _PG_STEP_7),
    Step("0008_notify_considered", _STEP_8, _PG_STEP_8),
    Step("0009_europepmc_preprints", _STEP_9, _PG_STEP_9),
    Step("0010_trial_preprint_links", _STEP_10, _PG_STEP_10),
)
RELEASE_0_1_0_STEPS = 3  # a 0.1.0 store's user_version counts these

# ---- the runner -------------------------------------------------------------------------

_LEDGER = {
    "sqlite": """CREATE TABLE IF NOT EXISTS schema_migrations (
  name TEXT NOT NULL,
  applied_at TEXT NOT NULL,
  PRIMARY KEY (name)
)""",
    "postgresql": """CREATE TABLE IF NOT EXISTS schema_migrations (
  name TEXT COLLATE "C" NOT NULL,
  applied_at TEXT COLLATE "C" NOT NULL,
  PRIMARY KEY (name)
)""",
}
_PG_MIGRATION_LOCK = 7461636  # any constant: the advisory lock key of migrations


def applied(db: Any, dialect: str = "sqlite") -> list[str] | None:
    """Names of the applied steps in order; None when the store has no ledger yet."""
    if dialect == "postgresql":
        has = db.execute("SELECT to_regclass('schema_migrations')").fetchone()[0]
    else:
        has = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                         "AND name = 'schema_migrations'").fetchone()
    if not has:
        return None
    return [r[0] for r in db.execute("SELECT name FROM schema_migrations ORDER BY name")]


def _check(done: Sequence[str], where: str) -> None:
    known = [s.name for s in STEPS]
    unknown = [n for n in done if n not in known]
    if unknown:
        raise StoreError(f"{where}: the store has migration {unknown[0]!r}, which is newer "
                         f"than this littrack understands; upgrade littrack")
    if list(done) != known[:len(done)]:
        raise StoreError(f"{where}: applied migrations {list(done)} are not a prefix of "
                         f"this littrack's history; the store was changed by hand")


def _user_version(db: Any, dialect: str) -> int:
    if dialect != "sqlite":
        return 0  # PostgreSQL stores began with the ledger
    return int(db.execute("PRAGMA user_version").fetchone()[0])


def pending(db: Any, where: str, dialect: str = "sqlite") -> list[Step]:
    """The steps this store still lacks (read only; raises when the store is newer)."""
    done = applied(db, dialect)
    if done is None:
        version = _user_version(db, dialect)
        if version > RELEASE_0_1_0_STEPS:
            raise StoreError(f"{where}: schema version {version} is newer than this "
                             f"littrack understands; upgrade littrack")
        done = [s.name for s in STEPS[:version]]
    _check(done, where)
    return list(STEPS[len(done):])


def migrate(db: Any, where: str, now: str, dialect: str = "sqlite") -> list[str]:
    """Bring the store up to the last step; return the names applied now.

    ``db`` is in autocommit mode (the store issues BEGIN/COMMIT). Each step runs in its own
    transaction holding the database's write lock (SQLite ``BEGIN IMMEDIATE``; PostgreSQL a
    transaction advisory lock), and the ledger is read again inside it, so processes opening
    one new store at once apply every step exactly once.
    """
    if not pending(db, where, dialect) and applied(db, dialect) is not None:
        return []
    done: list[str] = []
    while True:
        if dialect == "postgresql":
            db.execute("BEGIN")
            db.execute("SELECT pg_advisory_xact_lock(?)", (_PG_MIGRATION_LOCK,))
        else:
            db.execute("BEGIN IMMEDIATE")
        try:
            if applied(db, dialect) is None:
                version = _user_version(db, dialect)
                db.execute(_LEDGER[dialect])
                db.executemany("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                               [(s.name, now) for s in STEPS[:version]])
            todo = pending(db, where, dialect)
            if not todo:
                db.execute("COMMIT")
                return done
            for stmt in todo[0].statements(dialect):
                db.execute(stmt)
            db.execute("INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                       (todo[0].name, now))
            if dialect == "sqlite":
                db.execute(f"PRAGMA user_version = {len(STEPS) - len(todo) + 1}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        done.append(todo[0].name)
