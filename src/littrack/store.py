"""The SQLite store: the only module that writes SQL.

Why it is shaped this way:

* A topic's records, its matches, its run row and its watermark are written in *one*
  transaction (``Store.transaction``), so a crash at any moment leaves either the old state
  or the new one, and the next run resumes from the last committed watermark.
* Upserts are keyed and idempotent: a record seen again with the same content only moves
  ``last_seen_at``; a changed record replaces its rows in place (children are replaced as a
  whole) and appends its tracked field changes to ``trial_changes`` / ``article_changes``.
* The raw record is kept, compressed (``normalize.pack_raw``), so ``rebuild`` can re-run a
  fixed normalizer without asking the services again.
* The schema is declared in ``tables.py``; the frozen steps of ``migrations.py`` bring any
  store, new or written by an older release, up to it when the store is opened.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import urllib.parse
import zlib
from collections.abc import Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from itertools import chain
from operator import attrgetter, itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from littrack import changes, database, migrations
from littrack.database import POSTGRESQL, SQLITE, BackgroundCheckpoint, PgConnection, Target
from littrack.errors import ConfigError, StopRequested, StoreError
from littrack.lock import require_folder
from littrack.normalize import Normalized, unpack_raw
from littrack.tables import (
    BOOKKEEPING,
    BY_NAME,
    MAIN_TABLE,
    RECORD_TABLES,
    RELATIONS,
    STATUS_NOT_UPDATED_SQL,
    UNREPORTED_SQL,
    Table,
)
from littrack.vocab import DATABASE_FILE, EUROPEPMC, PUBMED, utc_now

if TYPE_CHECKING:
    import pandas as pd

# Evidence of a preprint's journal version found by identifier, where Europe PMC gave none.
PREPRINT_DOI_MATCH = "pubmed_doi_match"  # a PubMed article has the preprint's DOI
PREPRINT_CITED_BY_DOI = "pubmed_cites_preprint_doi"  # its CommentsCorrections name that DOI
SAVE_CHUNK = 100  # records stored by one statement per table (a stop waits at most one)
# Page size of a new SQLite store (SQLite's default is 4 KB; an existing store keeps its own).
# A first run writes some 45 rows a record into two B-trees each: with 16 KB pages, storing
# 10,000 PubMed records took 1.57 s instead of 1.75 (medians of 8 interleaved runs), into a
# file 10% smaller.
NEW_STORE_PAGE_SIZE = 16384
IN_LIST = 500  # ids in one IN (…) list


@dataclass
class SaveResult:
    """What ``save_records`` did, by record id."""

    new: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


class Unit(NamedTuple):
    """One unit of work: a run of one topic on one source (a ``runs`` row)."""

    run_id: str
    topic: str
    source: str


@dataclass(frozen=True)
class Watermark:
    watermark: str  # ISO day the last successful run started
    data_timestamp: str | None  # ClinicalTrials.gov /version dataTimestamp at that run
    run_id: str
    query_fingerprint: str | None = None  # of the query that set it (None: set before 0005)


class Store:
    """All reads and writes of the littrack database."""

    def __init__(self, where: str | Path | Target, *, readonly: bool = False) -> None:
        """Open (and migrate) the store at a SQLite path, a database URL, or a ``Target``;
        ``readonly``: a SQLite file opened read-only (PostgreSQL: a user's grants decide)."""
        target = where if isinstance(where, Target) else database.parse(str(where)) \
            if isinstance(where, str) else Target(SQLITE, path=Path(where))
        self.target, self.dialect = target, target.dialect
        self.readonly = readonly
        self.db: Any
        self._checkpoint: BackgroundCheckpoint | None = None
        if target.dialect == POSTGRESQL:
            self.db = PgConnection(target)
            try:
                migrations.migrate(self.db, str(target), utc_now(), POSTGRESQL)
            except BaseException:
                self.db.close()
                raise
            return
        assert target.path is not None
        self.path = target.path
        if readonly:
            self.db = self._connect_readonly()
            return
        require_folder(self.path.parent)  # sqlite:///… may name a folder the lock never saw
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so nothing commits
            # behind our back halfway through a topic.
            self.db = sqlite3.connect(self.path, isolation_level=None, timeout=60,
                                      check_same_thread=False)
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: cannot open database: {exc}") from None
        try:
            self.db.row_factory = sqlite3.Row
            if self.db.execute("PRAGMA page_count").fetchone()[0] == 0:  # (before WAL)
                self.db.execute(f"PRAGMA page_size={NEW_STORE_PAGE_SIZE}")
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints run beside the work, not at the end of each topic's commit.
            self.db.execute("PRAGMA wal_autocheckpoint=0")
            self._page_size = int(self.db.execute("PRAGMA page_size").fetchone()[0])
            self._checkpoint = BackgroundCheckpoint(self.path)
            migrations.migrate(self.db, str(self.path), utc_now())
            # After migrating (a step that rebuilds tables needs them off): child rows must
            # belong to a stored record (tables.py declares which).
            self.db.execute("PRAGMA foreign_keys=ON")
        except BaseException as exc:
            self.db.close()
            if isinstance(exc, sqlite3.DatabaseError):
                raise StoreError(f"{self.path}: cannot open database: {exc}") from None
            raise

    @classmethod
    def for_reading(cls, path: str | Path) -> Store:
        """The store for commands that only read (status, report, export, ``load``).

        Opened read-only, so a user who may only read the data directory can use them; a
        store older than this littrack is migrated first when the user may write it.
        """
        if database.parse(str(path)).dialect == POSTGRESQL:
            return cls(path)  # read access is the database user's grants
        store = cls(path, readonly=True)
        if not migrations.pending(store.db, str(path)):
            return store
        store.close()
        if os.access(path, os.W_OK) and os.access(Path(path).parent, os.W_OK):
            return cls(path)
        raise StoreError(f"{path}: the store was written by an older littrack and must be "
                         "upgraded by a user who may write it (run `littrack run` once)")

    def _connect_readonly(self) -> sqlite3.Connection:
        """``mode=ro``; where SQLite cannot create the WAL index beside a read-only file,
        ``immutable=1`` (nobody can be writing a store in a folder nobody may write)."""
        if not self.path.is_file():
            raise StoreError(f"{self.path}: no littrack database here (run `littrack run` "
                             "first)")
        uri = "file:" + urllib.parse.quote(str(self.path.resolve()))
        last: sqlite3.Error | None = None
        for mode in ("?mode=ro", "?mode=ro&immutable=1"):
            try:
                db = sqlite3.connect(uri + mode, uri=True, isolation_level=None, timeout=60,
                                     check_same_thread=False)
                db.row_factory = sqlite3.Row
                db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
                return db
            except sqlite3.Error as exc:
                last = exc
        raise StoreError(f"{self.path}: cannot open database for reading: {last}")

    def close(self) -> None:
        if self._checkpoint is not None:
            self._checkpoint.close()
        self.db.close()  # the last connection: SQLite checkpoints what is left

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- schema ----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any exception (incl. KeyboardInterrupt)."""
        if self.db.in_transaction:
            yield  # nested: the outer transaction decides
            return
        self.db.execute("BEGIN IMMEDIATE" if self.dialect == SQLITE else "BEGIN")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")
        if self._checkpoint is not None:
            self._checkpoint.after_commit(self._page_size)

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """A read transaction: every read inside sees one committed state, even while a
        run writes (WAL), so a report or export never mixes two states of the store."""
        if self.db.in_transaction:
            yield
            return
        self.db.execute("BEGIN DEFERRED" if self.dialect == SQLITE else
                        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        try:
            yield
        finally:
            self.db.execute("COMMIT")

    # ---- runs ------------------------------------------------------------------------
    def start_run(self, run_id: str, topic: str, source: str, now: str,
                  window: tuple[str | None, str]) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO runs (run_id, topic, source, started_at, status, window_start, "
                "window_end) VALUES (?, ?, ?, ?, 'running', ?, ?) "
                "ON CONFLICT (run_id, topic, source) DO UPDATE SET "
                "started_at=excluded.started_at, status='running', "
                "window_start=excluded.window_start, window_end=excluded.window_end, "
                "finished_at=NULL, n_found=NULL, n_new=NULL, n_updated=NULL, n_requests=NULL, "
                "n_retries=NULL, error=NULL",
                (run_id, topic, source, now, window[0], window[1]))

    def finish_run(self, run_id: str, topic: str, source: str, now: str, status: str, *,
                   n_found: int = 0, n_new: int = 0, n_updated: int = 0,
                   n_requests: int = 0, n_retries: int = 0, error: str | None = None) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE runs SET finished_at=?, status=?, n_found=?, n_new=?, n_updated=?, "
                "n_requests=?, n_retries=?, error=? WHERE run_id=? AND topic=? AND source=?",
                (now, status, n_found, n_new, n_updated, n_requests, n_retries, error,
                 run_id, topic, source))

    def fail_interrupted_runs(self, now: str, topic: str | None = None,
                              source: str | None = None) -> int:
        """Close runs a killed process left 'running': all of them (SQLite, while holding the
        data-directory lock), or one topic and source's (while holding its claim)."""
        sql = ("UPDATE runs SET status='failed', finished_at=?, "
               "error='interrupted: the process ended before the topic finished' "
               "WHERE status='running'")
        args: list[str] = [now]
        if topic is not None and source is not None:
            sql += " AND topic=? AND source=?"
            args += [topic, source]
        with self.transaction():
            cur = self.db.execute(sql, args)
        return int(cur.rowcount)

    def last_runs(self) -> list[dict[str, Any]]:
        """The latest run row and the latest successful one of every topic and source."""
        rows = self.db.execute(
            """SELECT r.*, (SELECT MAX(finished_at) FROM runs o WHERE o.topic=r.topic
                 AND o.source=r.source AND o.status='ok') AS last_ok_at
               FROM runs r WHERE r.started_at = (SELECT MAX(started_at) FROM runs x
                 WHERE x.topic=r.topic AND x.source=r.source)
               ORDER BY r.topic, r.source""").fetchall()
        return [dict(r) for r in rows]

    def last_success_at(self, source: str, topic: str | None = None) -> str | None:
        """When the last successful run of a source (optionally one topic) finished."""
        sql = "SELECT MAX(finished_at) FROM runs WHERE status='ok' AND source=?"
        args: list[str] = [source]
        if topic:
            sql += " AND topic=?"
            args.append(topic)
        value = self.db.execute(sql, args).fetchone()[0]
        return str(value) if value else None

    def finished_ok_since(self, topic: str, source: str, since: str, other_than: str) -> bool:
        """Whether a run other than ``other_than`` completed this topic×source at or after
        ``since`` (another worker sharing the store got to it first)."""
        row = self.db.execute(
            "SELECT 1 FROM runs WHERE topic=? AND source=? AND status='ok' AND run_id<>? "
            "AND finished_at>=? LIMIT 1", (topic, source, other_than, since)).fetchone()
        return row is not None

    def round_version(self, source: str, since: str) -> str | None:
        """The data version a worker asked ``source`` for at or after ``since``."""
        row = self.db.execute("SELECT data_timestamp FROM source_versions WHERE source=? AND "
                              "fetched_at>=?", (source, since)).fetchone()
        return str(row[0]) if row else None

    def record_version(self, source: str, version: str, run_id: str, now: str) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO source_versions (source, data_timestamp, run_id, fetched_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
                "data_timestamp=excluded.data_timestamp, run_id=excluded.run_id, "
                "fetched_at=excluded.fetched_at", (source, version, run_id, now))

    def runs(self, run_id: str | None = None) -> list[dict[str, Any]]:
        sql = "SELECT * FROM runs" + (" WHERE run_id=?" if run_id else "")
        sql += " ORDER BY started_at, topic, source"
        return [dict(r) for r in self.db.execute(sql, (run_id,) if run_id else ())]

    def run_ids_since(self, since: str) -> list[str]:
        rows = self.db.execute("SELECT DISTINCT run_id FROM runs WHERE started_at >= ? "
                               "ORDER BY run_id", (since,))
        return [r[0] for r in rows]

    # ---- watermarks ------------------------------------------------------------------
    def watermark(self, topic: str, source: str) -> Watermark | None:
        row = self.db.execute("SELECT watermark, data_timestamp, run_id, query_fingerprint "
                              "FROM watermarks WHERE topic=? AND source=?",
                              (topic, source)).fetchone()
        return Watermark(*row) if row else None

    def set_watermark(self, topic: str, source: str, watermark: str, run_id: str, now: str,
                      data_timestamp: str | None = None,
                      query_fingerprint: str | None = None) -> None:
        self.db.execute(
            "INSERT INTO watermarks (topic, source, watermark, data_timestamp, run_id, "
            "updated_at, query_fingerprint) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (topic, "
            "source) DO UPDATE SET watermark=excluded.watermark, "
            "data_timestamp=excluded.data_timestamp, run_id=excluded.run_id, "
            "updated_at=excluded.updated_at, query_fingerprint=excluded.query_fingerprint",
            (topic, source, watermark, data_timestamp, run_id, now, query_fingerprint))

    def watermarks(self) -> list[dict[str, Any]]:
        return [dict(r) for r in self.db.execute("SELECT * FROM watermarks ORDER BY 1, 2")]

    # ---- records ---------------------------------------------------------------------
    def tracked_ids(self, source: str) -> list[str]:
        """Ids of ``source`` that some topic matched, in order."""
        return [r[0] for r in self.db.execute(
            "SELECT DISTINCT record_id FROM topic_matches WHERE source=? ORDER BY record_id",
            (source,))]

    def add_links(self, links: Iterable[tuple[str, str, str]], run_id: str) -> int:
        """Store (nct_id, pmid, evidence) links a source found; return how many are new."""
        return self._add_new_links("trial_publication_links", "pmid", links, run_id)

    def add_preprint_links(self, links: Iterable[tuple[str, str, str]], run_id: str) -> int:
        """Store (nct_id, ppr_id, evidence) links a source found; return how many are new.

        The preprints must be stored already (the table's foreign key)."""
        return self._add_new_links("trial_preprint_links", "ppr_id", links, run_id)

    def _add_new_links(self, table: str, other: str, links: Iterable[tuple[str, str, str]],
                       run_id: str) -> int:
        new = [link for link in dict.fromkeys(links) if self.db.execute(
            f"SELECT 1 FROM {table} WHERE nct_id=? AND {other}=? AND evidence=?",
            link).fetchone() is None]
        self.db.executemany(
            f"INSERT INTO {table} (nct_id, {other}, evidence, first_seen_run) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING", [(*link, run_id) for link in new])
        return len(new)

    def known_ids(self, source: str, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` the store already holds (raw record present)."""
        return {r[0] for r in self._rows_for(
            "SELECT record_id FROM raw_records WHERE source=? AND record_id IN ({ids})",
            (source,), ids)}

    def _rows_for(self, sql: str, params: Sequence[Any], ids: Iterable[str]
                  ) -> Iterator[Any]:
        """The rows of ``sql`` for ``ids``, its ``{ids}`` filled with a list of markers, 500
        ids a query (old SQLite builds take 999 parameters at most); ``params`` go first."""
        todo = list(ids)
        for i in range(0, len(todo), IN_LIST):
            batch = todo[i:i + IN_LIST]
            yield from self.db.execute(sql.format(ids=",".join("?" * len(batch))),
                                       (*params, *batch))

    def save_records(self, records: Iterable[Normalized], now: str, run_id: str,
                     stop: threading.Event | None = None) -> SaveResult:
        """Upsert normalized records (inside the caller's transaction), a chunk at a time.

        A first run stores thousands of records a second: one statement per table for a
        chunk of records (their stored hashes read in one query, every table's rows
        inserted by one ``executemany``) instead of some twenty round trips per record.
        Only records whose digest changed are compared and updated one by one, to log their
        changes; one whose rows all compare equal (a digest made another way, by an earlier
        release) only gets the new digest and raw record, and counts as unchanged. ``stop``
        set (a signal) raises ``StopRequested`` between chunks, so a large batch does not
        hold a stop back; the caller's transaction rolls back.
        """
        result = SaveResult()
        # In key order (a stable sort: of two copies of a record, the first is still stored
        # first): ESearch lists newest first, and keys inserted in descending order split
        # B-tree pages half empty (10,000 PubMed records: a file 7% larger).
        ordered = sorted(records, key=attrgetter("source", "record_id"))
        with self.transaction():
            chunk: dict[tuple[str, str], Normalized] = {}
            for rec in ordered:
                if (rec.source, rec.record_id) in chunk or len(chunk) >= SAVE_CHUNK:
                    # (The same record twice: the first copy is stored before the second
                    # is compared with it, as if saved one after the other.)
                    self._save_chunk(list(chunk.values()), now, run_id, result, stop)
                    chunk = {}
                chunk[(rec.source, rec.record_id)] = rec
            if chunk:
                self._save_chunk(list(chunk.values()), now, run_id, result, stop)
        return result

    def _stored_hashes(self, source: str, ids: Sequence[str]) -> dict[str, str]:
        return {r[0]: r[1] for r in self._rows_for(
            "SELECT record_id, content_hash FROM raw_records WHERE source=? AND record_id IN "
            "({ids})", (source,), ids)}

    def _existing(self, main_t: Table, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` have a row in ``main_t`` already."""
        key = main_t.record_key
        return {r[0] for r in self._rows_for(
            f"SELECT {key} FROM {main_t.name} WHERE {key} IN ({{ids}})", (), ids)}

    def _save_chunk(self, records: list[Normalized], now: str, run_id: str,
                    result: SaveResult, stop: threading.Event | None) -> None:
        if stop is not None and stop.is_set():
            raise StopRequested("stopped by signal while storing a batch; rolled back")
        for source in dict.fromkeys(r.source for r in records):
            group = [r for r in records if r.source == source]
            main_t = MAIN_TABLE[source]
            key = main_t.record_key
            stored = self._stored_hashes(source, [r.record_id for r in group])
            new: list[tuple[Normalized, str]] = []
            changed: list[tuple[Normalized, str]] = []
            same: list[str] = []
            for rec in group:
                digest = rec.content_hash()
                old = stored.get(rec.record_id)
                if old == digest:
                    same.append(rec.record_id)
                else:
                    (new if old is None else changed).append((rec, digest))
            rehashed: list[tuple[Normalized, str]] = []  # equal rows under another digest
            for rec, digest in changed:
                new_main = rec.tables[main_t.name][0]
                if source == EUROPEPMC:
                    self._keep_derived_publication(rec)
                old_row = self.db.execute(f"SELECT * FROM {main_t.name} WHERE {key}=?",
                                          (rec.record_id,)).fetchone()
                if old_row is not None:
                    fields = self._changed_fields(rec, dict(old_row), new_main)
                    if not fields:
                        rehashed.append((rec, digest))
                        continue
                    self._log_changes(rec, dict(old_row), new_main, now, run_id)
                    self.db.execute(
                        "INSERT INTO record_updates (source, record_id, run_id, fields) VALUES "
                        "(?, ?, ?, ?) ON CONFLICT (source, record_id, run_id) DO UPDATE SET "
                        "fields=excluded.fields",
                        (rec.source, rec.record_id, run_id, "|".join(fields)))
                sets = ", ".join(f"{c}=?" for c in main_t.columns)
                self.db.execute(
                    f"UPDATE {main_t.name} SET {sets}, last_seen_at=?, updated_at=? "
                    f"WHERE {key}=?",
                    [new_main.get(c) for c in main_t.columns] + [now, now, rec.record_id])
            if rehashed:
                equal = {rec.record_id for rec, _ in rehashed}
                changed = [c for c in changed if c[0].record_id not in equal]
                same += [rec.record_id for rec, _ in rehashed]
            if same:
                self.db.executemany(f"UPDATE {main_t.name} SET last_seen_at=? WHERE {key}=?",
                                    [(now, rid) for rid in same])
            fresh: set[str] = set()  # main rows this chunk creates: no child rows yet
            if new:
                fresh = {rec.record_id for rec, _ in new}
                fresh -= self._existing(main_t, list(fresh))
                self._insert_mains(main_t, [rec.tables[main_t.name][0] for rec, _ in new], now)
            written = new + changed
            if written:
                self._replace_children_of([rec for rec, _ in written], fresh)
            if written or rehashed:
                self.db.executemany(
                    "INSERT INTO raw_records (source, record_id, content_hash, fetched_at, "
                    "run_id, raw) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (source, record_id) "
                    "DO UPDATE SET content_hash=excluded.content_hash, "
                    "fetched_at=excluded.fetched_at, run_id=excluded.run_id, raw=excluded.raw",
                    [(source, rec.record_id, digest, now, run_id, rec.packed_raw())
                     for rec, digest in written + rehashed])
            if written:
                self.db.executemany(
                    "INSERT INTO trial_publication_links (nct_id, pmid, evidence, "
                    "first_seen_run) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                    [(*link, run_id) for rec, _ in written for link in changes.links(rec)])
                self._link_preprints_by_id(source, [rec.record_id for rec, _ in written],
                                           now, run_id, [rec.record_id for rec, _ in new])
            result.new += [rec.record_id for rec, _ in new]
            result.updated += [rec.record_id for rec, _ in changed]
            result.unchanged += same

    def _link_preprints_by_id(self, source: str, ids: list[str], now: str,
                              run_id: str | None, first_seen: Sequence[str] = ()) -> None:
        """Link preprints that Europe PMC gave no ``Preprint of`` for, by identifier.

        Europe PMC's ``commentCorrectionList`` is often late or absent, while PubMed already
        holds the journal version: an article sharing the preprint's DOI (compared lower-cased),
        or one whose CommentsCorrections name the preprint's DOI. Either side may arrive
        first, so this runs after preprints *and* after articles are written; a found link is
        a ``published_pmid`` change like the ``Preprint of`` one, except on a preprint's
        ``first_seen`` sighting (no change either way) or in a rebuild (``run_id`` None).
        """
        if source not in (EUROPEPMC, PUBMED) or not ids:
            return
        col = "p.ppr_id" if source == EUROPEPMC else "a.pmid"
        unlinked = ("p.doi IS NOT NULL AND p.published_pmid IS NULL AND NOT EXISTS (SELECT 1 "
                    "FROM preprint_publications l WHERE l.ppr_id = p.ppr_id)")
        found: dict[str, tuple[str, str]] = {}  # the DOI match first, when both find one
        for evidence, sql in (
                (PREPRINT_DOI_MATCH,
                 f"SELECT p.ppr_id, MIN(a.pmid) FROM preprints p JOIN articles a "
                 f"ON LOWER(a.doi) = p.doi WHERE {unlinked} AND {col} IN ({{ids}}) "
                 f"GROUP BY p.ppr_id"),
                # PubMed says ``UpdateOf`` for "this article updates that preprint".
                (PREPRINT_CITED_BY_DOI,
                 f"SELECT p.ppr_id, MIN(a.pmid) FROM preprints p JOIN article_comments a "
                 f"ON a.ref_type = 'UpdateOf' AND LOWER(a.ref_source) LIKE "
                 f"'%' || p.doi || '%' WHERE {unlinked} AND {col} IN ({{ids}}) "
                 f"GROUP BY p.ppr_id")):
            for ppr, pmid in self._rows_for(sql, (), ids):
                found.setdefault(ppr, (pmid, evidence))
        for ppr, (pmid, evidence) in sorted(found.items()):
            self.db.execute(
                "INSERT INTO preprint_publications (ppr_id, published_source, published_id, "
                "evidence, note) VALUES (?, 'MED', ?, ?, NULL) ON CONFLICT DO NOTHING",
                (ppr, pmid, evidence))
            self.db.execute("UPDATE preprints SET published_pmid=?, updated_at=? "
                            "WHERE ppr_id=?", (pmid, now, ppr))
            if run_id is not None and ppr not in first_seen:
                self.db.execute(
                    "INSERT INTO preprint_changes (ppr_id, run_id, observed_at, field, "
                    "old_value, new_value) VALUES (?, ?, ?, 'published_pmid', NULL, ?)",
                    (ppr, run_id, now, pmid))

    def _keep_derived_publication(self, rec: Normalized) -> None:
        """A new version of a preprint that still names no journal version keeps the one
        found by identifier (else it would be unlinked, then linked again: two changes)."""
        pubs = rec.tables.setdefault("preprint_publications", [])
        if pubs:
            return
        row = self.db.execute(
            "SELECT published_source, published_id, evidence, note FROM preprint_publications "
            "WHERE ppr_id=? AND evidence IN (?, ?)",
            (rec.record_id, PREPRINT_DOI_MATCH, PREPRINT_CITED_BY_DOI)).fetchone()
        if row is not None:
            pubs.append({"ppr_id": rec.record_id, "published_source": row[0],
                         "published_id": row[1], "evidence": row[2], "note": row[3]})
            rec.tables["preprints"][0]["published_pmid"] = row[1]

    def _insert_mains(self, main_t: Table, rows: list[dict[str, Any]], now: str) -> None:
        cols = (*main_t.columns, *BOOKKEEPING)
        self.db.executemany(
            f"INSERT INTO {main_t.name} ({', '.join(cols)}) VALUES "
            f"({', '.join('?' * len(cols))}) ON CONFLICT DO NOTHING",
            [(*values, now, now, now) for values in _values(main_t.columns, rows)])

    def _replace_children_of(self, records: list[Normalized],
                             fresh: Collection[str] = ()) -> None:
        """Child rows are replaced as a whole: a removed author or condition must go too.

        ``fresh``: records whose main row was just created, so (foreign keys) they have no
        child rows to remove: a first run skips eight deletes a record.
        """
        source = records[0].source
        main_t = MAIN_TABLE[source]
        ids = [(rec.record_id,) for rec in records if rec.record_id not in fresh]
        for t in RECORD_TABLES[source]:
            if t is main_t:
                continue
            if ids:
                self.db.executemany(f"DELETE FROM {t.name} WHERE {t.record_key}=?", ids)
            rows = list(chain.from_iterable(rec.tables.get(t.name, ()) for rec in records))
            if rows:
                self.db.executemany(
                    f"INSERT INTO {t.name} ({', '.join(t.columns)}) VALUES "
                    f"({', '.join('?' * len(t.columns))}) {_replacing(t)}",
                    _values(t.columns, rows))

    def _add_links(self, rec: Normalized, run_id: str) -> None:
        self.db.executemany(
            "INSERT INTO trial_publication_links (nct_id, pmid, evidence, first_seen_run) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            [(*link, run_id) for link in changes.links(rec)])

    def _changed_fields(self, rec: Normalized, old: dict[str, Any],
                        new: dict[str, Any]) -> list[str]:
        """Every field that changed: main-table columns, and child tables whose rows differ
        (read before ``_replace_children_of`` swaps them). None at all: the same record under
        another digest (a digest made another way)."""
        main_t = MAIN_TABLE[rec.source]
        fields = [c for c, _, _ in changes.diff(old, new, main_t.columns)]
        for t in RECORD_TABLES[rec.source]:
            if t is main_t:
                continue
            rows = self.db.execute(f"SELECT {', '.join(t.columns)} FROM {t.name} WHERE "
                                   f"{t.record_key}=?", (rec.record_id,)).fetchall()
            before = sorted(tuple(changes.text(v) for v in r) for r in rows)
            after = sorted(tuple(changes.text(r.get(c)) for c in t.columns)
                           for r in rec.tables.get(t.name, []))
            if before != after:
                fields.append(t.name)
        return fields

    def _log_changes(self, rec: Normalized, old: dict[str, Any], new: dict[str, Any],
                     now: str, run_id: str) -> None:
        table, key, fields = changes.TRACKED[rec.source]
        self.db.executemany(
            f"INSERT INTO {table} ({key}, run_id, observed_at, field, old_value, new_value) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(rec.record_id, run_id, now, *d) for d in changes.diff(old, new, fields)])

    def match(self, topic: str, source: str, ids: Iterable[str], run_id: str) -> int:
        """Record that ``topic`` found ``ids`` in this run; return how many are new to it."""
        self.db.executemany(
            "INSERT INTO topic_matches (topic, source, record_id, first_seen_run, "
            "last_seen_run) VALUES (?, ?, ?, ?, ?) ON CONFLICT (topic, source, record_id) "
            "DO UPDATE SET last_seen_run=excluded.last_seen_run",
            [(topic, source, rid, run_id, run_id) for rid in ids])
        # Unary + keeps the planner off the primary key (topic, source, …), which would walk
        # every match the topic ever had; the run's own rows come from topic_matches_first.
        return int(self.db.execute(
            "SELECT COUNT(*) FROM topic_matches WHERE topic || ''=? AND source || ''=? AND "
            "first_seen_run=?", (topic, source, run_id)).fetchone()[0])

    def new_matches(self, run_id: str) -> int:
        """Records a run matched to some topic for the first time, each counted once."""
        return int(self.db.execute(
            "SELECT COUNT(*) FROM (SELECT DISTINCT source, record_id FROM topic_matches "
            "WHERE first_seen_run=?)", (run_id,)).fetchone()[0])

    def mark_deleted(self, pmids: Iterable[str], now: str, run_id: str) -> int:
        """PubMed withdrew these: flag them (never drop), and log the change once."""
        n = 0
        for pmid in pmids:
            cur = self.db.execute("UPDATE articles SET is_deleted=1, updated_at=? WHERE pmid=? "
                                  "AND is_deleted=0", (now, pmid))
            if cur.rowcount:
                n += 1
                self.db.execute(
                    "INSERT INTO article_changes (pmid, run_id, observed_at, field, old_value, "
                    "new_value) VALUES (?, ?, ?, 'is_deleted', '0', '1')", (pmid, run_id, now))
        return n

    def record_missing(self, source: str, ids: Iterable[str], topic: str, run_id: str,
                       now: str) -> None:
        self.db.executemany(
            "INSERT INTO missing_records (source, record_id, topic, run_id, observed_at) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, record_id, topic) DO UPDATE SET "
            "run_id=excluded.run_id, observed_at=excluded.observed_at",
            [(source, rid, topic, run_id, now) for rid in ids])

    def missing_ids(self, source: str, topic: str) -> list[str]:
        """Records a topic's earlier runs were promised but never received."""
        rows = self.db.execute("SELECT record_id FROM missing_records WHERE source=? AND "
                               "topic=? ORDER BY record_id", (source, topic))
        return [r[0] for r in rows]

    def clear_missing(self, source: str, ids: Iterable[str], topic: str) -> None:
        """Forget the missing records of ``topic`` that ``ids`` names (they arrived).

        Only the topic's missing records are looked for among ``ids`` (every id a topic
        asked for, 10,000 in a first run, and almost never one of them missing)."""
        missing = set(self.missing_ids(source, topic))
        self.db.executemany("DELETE FROM missing_records WHERE source=? AND record_id=? AND "
                            "topic=?", [(source, rid, topic) for rid in ids if rid in missing])

    def unresolved_links(self, source: str) -> list[str]:
        """Ids of ``source`` that a link names but the store lacks and never tried to fetch.

        Only links whose other end a topic matched: resolving links of linked-only records
        too would crawl the citation graph one hop further every run.
        """
        # Each distinct id once, in index order (so the lookups in articles / trials walk
        # their index in order too), and the topic check only for the few ids missing: this
        # runs every run, over every link in the store (bench/store_scale.py).
        if source == "pubmed":
            # The articles tracked trials cite, and the journal versions of tracked preprints.
            sql = """SELECT l.pmid FROM (SELECT DISTINCT pmid FROM trial_publication_links
                                        UNION SELECT published_id FROM preprint_publications
                                        WHERE published_source = 'MED') l
                WHERE NOT EXISTS (SELECT 1 FROM articles a WHERE a.pmid = l.pmid)
                  AND NOT EXISTS (SELECT 1 FROM linked_fetches f WHERE f.source = 'pubmed'
                                  AND f.record_id = l.pmid)
                  AND (EXISTS (SELECT 1 FROM trial_publication_links o WHERE o.pmid = l.pmid
                              AND EXISTS (SELECT 1 FROM topic_matches m
                                          WHERE m.source = 'ctgov' AND m.record_id = o.nct_id))
                       OR EXISTS (SELECT 1 FROM preprint_publications p
                                  JOIN topic_matches m ON m.source = 'europepmc'
                                    AND m.record_id = p.ppr_id
                                  WHERE p.published_source = 'MED' AND p.published_id = l.pmid))
                ORDER BY CAST(l.pmid AS INTEGER)"""
        elif source != "ctgov":
            return []  # nothing links to preprints by id yet
        else:
            sql = """SELECT l.nct_id FROM (SELECT DISTINCT nct_id FROM trial_publication_links) l
                WHERE NOT EXISTS (SELECT 1 FROM trials t WHERE t.nct_id = l.nct_id)
                  AND NOT EXISTS (SELECT 1 FROM linked_fetches f WHERE f.source = 'ctgov'
                                  AND f.record_id = l.nct_id)
                  AND EXISTS (SELECT 1 FROM trial_publication_links o WHERE o.nct_id = l.nct_id
                              AND EXISTS (SELECT 1 FROM topic_matches m
                                          WHERE m.source = 'pubmed' AND m.record_id = o.pmid))
                ORDER BY l.nct_id"""
        return [r[0] for r in self.db.execute(sql)]

    def record_linked_fetch(self, source: str, outcomes: Iterable[tuple[str, str]],
                            run_id: str, now: str) -> None:
        """Remember (record id, outcome) of linked fetches, so each is attempted once."""
        self.db.executemany(
            "INSERT INTO linked_fetches (source, record_id, run_id, attempted_at, outcome) "
            "VALUES (?, ?, ?, ?, ?) ON CONFLICT (source, record_id) DO UPDATE SET "
            "run_id=excluded.run_id, attempted_at=excluded.attempted_at, "
            "outcome=excluded.outcome",
            [(source, rid, run_id, now, outcome) for rid, outcome in outcomes])

    def iter_raw(self, source: str) -> Iterator[tuple[str, bytes]]:
        """Every stored raw record of a source (for rebuild), decompressed."""
        cur = self.db.execute("SELECT record_id, raw FROM raw_records WHERE source=? "
                              "ORDER BY record_id", (source,))
        for rid, blob in cur:
            yield rid, unpack_raw(blob)

    def rebuild(self, records: Iterable[Normalized], now: str) -> int:
        """Rewrite the tidy rows of re-normalized records without touching history."""
        n = 0
        with self.transaction():
            for rec in records:
                self._save_one_rebuild(rec, now)
                n += 1
        return n

    def _save_one_rebuild(self, rec: Normalized, now: str) -> None:
        main_t = MAIN_TABLE[rec.source]
        new_main = rec.tables[main_t.name][0]
        sets = ", ".join(f"{c}=?" for c in main_t.columns if c != "is_deleted")
        values = [new_main.get(c) for c in main_t.columns if c != "is_deleted"]
        cur = self.db.execute(f"UPDATE {main_t.name} SET {sets} WHERE {main_t.record_key}=?",
                              [*values, rec.record_id])
        if not cur.rowcount:
            self._insert_mains(main_t, [new_main], now)
        self._replace_children_of([rec])
        self.db.execute("UPDATE raw_records SET content_hash=? WHERE source=? AND record_id=?",
                        (_content_hash(rec), rec.source, rec.record_id))
        self._add_links(rec, "rebuild")
        self._link_preprints_by_id(rec.source, [rec.record_id], now, None)

    # ---- notifications ---------------------------------------------------------------
    def unconsidered_units(self, entry: str, channel: str) -> list[Unit]:
        """The finished units of work (run, topic, source) this channel has not considered.

        A unit's rows commit in one transaction with its run row's final status, so a
        finished unit's rows are all visible and a running one's are none; whatever order
        runs start or commit in, each finished unit is new to a channel exactly once."""
        rows = self.db.execute(
            f"SELECT r.run_id, r.topic, r.source FROM runs r WHERE {_NEW_UNIT} "
            "ORDER BY r.run_id, r.topic, r.source", {"entry": entry, "channel": channel})
        return [Unit(str(r[0]), str(r[1]), str(r[2])) for r in rows]

    def notify_rows(self, kind: str, entry: str, channel: str,
                    today: str | None = None) -> list[dict[str, Any]]:
        """The rows of one kind of notification item (``NOTIFY_QUERIES``) that finished units
        the channel has not considered produced (unreported trials: as of ``today``).

        Read after ``unconsidered_units``: the rows cover at least those units' (a unit
        finishing in between adds its rows now, and is deduplicated by key when it is
        considered later)."""
        params: dict[str, Any] = {"entry": entry, "channel": channel, "today": today}
        return [dict(r) for r in self.db.execute(NOTIFY_QUERIES[kind], params)]

    def delivered_keys(self, entry: str, channel: str, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` a delivery on this channel already carries (sent or pending)."""
        return {r[0] for r in self._rows_for(
            "SELECT item_key FROM delivery_items WHERE entry=? AND channel=? AND item_key IN "
            "({ids})", (entry, channel), keys)}

    def notify_cursor(self, entry: str, channel: str) -> tuple[str | None, str | None]:
        """(latest run the channel considered, when it last looked), or (None, None)."""
        row = self.db.execute("SELECT through_run, checked_at FROM notify_cursors WHERE "
                              "entry=? AND channel=?", (entry, channel)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def record_delivery(self, delivery_id: str, entry: str, channel: str, now: str,
                        item_keys: Sequence[str], summary: str, payload: bytes,
                        units: Sequence[Unit]) -> None:
        """Record a delivery as pending with its items, before anything is sent.

        One transaction with the units it considered: either the channel has this delivery
        to send (and resends it until confirmed), or it never planned it."""
        with self.transaction():
            if item_keys:
                self.db.execute(
                    "INSERT INTO deliveries (delivery_id, entry, channel, created_at, status, "
                    "attempts, n_items, summary, payload) VALUES (?, ?, ?, ?, 'pending', 0, ?, "
                    "?, ?)",
                    (delivery_id, entry, channel, now, len(item_keys), summary,
                     zlib.compress(payload, 6)))
                self.db.executemany(
                    "INSERT INTO delivery_items (entry, channel, item_key, delivery_id) "
                    "VALUES (?, ?, ?, ?)", [(entry, channel, k, delivery_id) for k in item_keys])
            self.db.executemany(
                "INSERT INTO notify_considered (entry, channel, run_id, topic, source) VALUES "
                "(?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                [(entry, channel, *u) for u in units])
            through_run = max((u.run_id for u in units), default=None)
            self.db.execute(
                "INSERT INTO notify_cursors (entry, channel, through_run, checked_at) VALUES "
                "(?, ?, ?, ?) ON CONFLICT (entry, channel) DO UPDATE SET "
                "through_run=CASE WHEN notify_cursors.through_run IS NULL OR "
                "excluded.through_run > notify_cursors.through_run THEN excluded.through_run "
                "ELSE notify_cursors.through_run END, "
                "checked_at=excluded.checked_at", (entry, channel, through_run, now))

    def pending_deliveries(self, entry: str, channel: str) -> list[dict[str, Any]]:
        """Unconfirmed deliveries of a channel, oldest first, payload decompressed."""
        rows = self.db.execute(
            "SELECT * FROM deliveries WHERE entry=? AND channel=? AND status='pending' "
            "ORDER BY created_at, delivery_id", (entry, channel))
        return [dict(r) | {"payload": zlib.decompress(r["payload"])} for r in rows]

    def delivery_payloads(self, entry: str, channel: str, limit: int) -> list[bytes]:
        """Payloads of a channel's latest deliveries (sent or pending), newest first."""
        rows = self.db.execute(
            "SELECT payload FROM deliveries WHERE entry=? AND channel=? "
            "ORDER BY created_at DESC, delivery_id DESC LIMIT ?", (entry, channel, limit))
        return [zlib.decompress(r[0]) for r in rows]

    def delivery_attempted(self, delivery_id: str, now: str, error: str | None) -> None:
        with self.transaction():
            self.db.execute("UPDATE deliveries SET attempts=attempts+1, last_attempt_at=?, "
                            "error=? WHERE delivery_id=?", (now, error, delivery_id))

    def confirm_delivery(self, delivery_id: str, now: str) -> None:
        with self.transaction():
            self.db.execute("UPDATE deliveries SET status='sent', sent_at=?, error=NULL "
                            "WHERE delivery_id=?", (now, delivery_id))

    def delivery_status(self) -> list[dict[str, Any]]:
        """Per entry and channel: deliveries sent, pending, the last success and error."""
        rows = self.db.execute(
            """SELECT c.entry, c.channel, c.checked_at,
                 (SELECT COUNT(*) FROM deliveries d WHERE d.entry=c.entry
                    AND d.channel=c.channel AND d.status='sent') AS sent,
                 (SELECT COUNT(*) FROM deliveries d WHERE d.entry=c.entry
                    AND d.channel=c.channel AND d.status='pending') AS pending,
                 (SELECT MAX(sent_at) FROM deliveries d WHERE d.entry=c.entry
                    AND d.channel=c.channel) AS last_sent_at,
                 (SELECT d.error FROM deliveries d WHERE d.entry=c.entry
                    AND d.channel=c.channel AND d.status='pending' AND d.error IS NOT NULL
                    ORDER BY d.last_attempt_at DESC LIMIT 1) AS error,
                 (SELECT MAX(d.last_attempt_at) FROM deliveries d WHERE d.entry=c.entry
                    AND d.channel=c.channel AND d.status='pending') AS failed_at
               FROM notify_cursors c ORDER BY c.entry, c.channel""")
        return [dict(r) for r in rows]

    # ---- reads -----------------------------------------------------------------------
    def counts(self) -> dict[str, int]:
        names = [t.name for ts in RECORD_TABLES.values() for t in ts] + [
            "topic_matches", "runs", "trial_changes", "article_changes", "preprint_changes",
            "trial_publication_links", "trial_preprint_links", "raw_records",
            "missing_records"]
        return {n: int(self.db.execute(f"SELECT COUNT(*) FROM {n}").fetchone()[0])
                for n in names}

    def _check_table(self, table: str) -> None:
        if table not in BY_NAME:
            raise ConfigError(f"unknown table {table!r} (known: {', '.join(sorted(BY_NAME))})")

    def frame(self, table: str) -> pd.DataFrame:
        """A whole table (raw blobs excluded) as a DataFrame."""

        self._check_table(table)
        cols = "source, record_id, content_hash, fetched_at, run_id" \
            if table == "raw_records" else "*"
        return self._frame(f"SELECT {cols} FROM {table}", ())

    def query(self, name: str, **params: Any) -> pd.DataFrame:
        """One of the named report queries in ``QUERIES`` as a DataFrame."""

        sql, args = _expand(QUERIES[name], params)
        return self._frame(sql, args)

    def _frame(self, sql: str, params: Any) -> pd.DataFrame:
        import pandas as pd

        if self.dialect == SQLITE:
            return pd.read_sql_query(sql, self.db, params=params)
        # What read_sql_query does with a DBAPI cursor, without its warning about psycopg.
        cur = self.db.execute(sql, params)
        names = [d.name for d in cur.description or ()]
        return pd.DataFrame.from_records(cur.fetchall(), columns=names, coerce_float=True)

    def rows(self, name: str, **params: Any) -> tuple[list[str], Iterator[Sequence[Any]]]:
        """One of the named report queries as its column names and a cursor over its rows.

        For reports written row by row: a whole run's new articles, abstracts and all,
        never sit in memory at once, however large the run.
        """
        sql, args = _expand(QUERIES[name], params)
        if self.dialect != SQLITE:  # (psycopg's execute would read the whole result first)
            columns, rows = self.db.stream(sql, args)
            return columns, rows
        cur = self.db.execute(sql, args)  # sqlite3 steps through a result as it is read
        return [d[0] for d in cur.description or ()], iter(cur)

    def has_rows(self, name: str, **params: Any) -> bool:
        """Whether one of the named report queries returns anything (without reading it)."""
        sql, args = _expand(QUERIES[name], params)
        return bool(self.db.execute(f"SELECT EXISTS (SELECT 1 FROM ({sql}) AS q)",
                                    args).fetchone()[0])


def _expand(sql: str, params: dict[str, Any]) -> tuple[str, Any]:
    """A report query's SQL and arguments; ``:run_ids`` becomes one marker per run id."""
    params = dict(params)
    run_ids = params.pop("run_ids", None)
    if run_ids is None:
        return sql, params
    marks = ",".join("?" * len(run_ids)) or "NULL"
    uses = sql.count(":run_ids")
    return sql.replace(":run_ids", marks), [*run_ids] * uses


def _values(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> list[Sequence[Any]]:
    """Rows as value tuples in ``columns`` order; a column a row lacks is NULL."""
    rows = list(rows)
    if len(columns) > 1:
        get = itemgetter(*columns)
        try:
            return list(map(get, rows))
        except KeyError:  # a normalizer may leave a column out
            pass
    return [[row.get(c) for c in columns] for row in rows]


def _replacing(table: Table) -> str:
    """The ON CONFLICT clause that makes an INSERT replace the row with the same key."""
    rest = [c for c in table.columns if c not in table.key]
    if not rest:
        return "ON CONFLICT DO NOTHING"
    return (f"ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET "
            + ", ".join(f"{c}=excluded.{c}" for c in rest))


def _content_hash(rec: Normalized) -> str:
    return rec.content_hash()


# Report queries: the store owns these too. ``:run_ids`` expands to the runs of the window.
QUERIES: dict[str, str] = {
    # One row per record, with every topic that found it new in the window ("|"-joined).
    "new_articles": """
        SELECT (SELECT GROUP_CONCAT(topic, '|') FROM (SELECT DISTINCT n.topic
                  FROM topic_matches n WHERE n.source = 'pubmed' AND n.record_id = a.pmid
                  AND n.first_seen_run IN (:run_ids) ORDER BY n.topic)) AS topics,
          a.pmid, a.title, a.journal, a.pub_year AS year, a.doi, a.pmcid,
          (SELECT COALESCE(au.collective_name,
                  TRIM(COALESCE(au.last_name, '') || ' ' || COALESCE(au.initials, '')))
             FROM article_authors au WHERE au.pmid = a.pmid ORDER BY au.position LIMIT 1)
             AS first_author,
          (SELECT GROUP_CONCAT(name, '|') FROM (SELECT COALESCE(au.collective_name,
                  TRIM(COALESCE(au.last_name, '') || ' ' || COALESCE(au.initials, '')))
                  AS name FROM article_authors au WHERE au.pmid = a.pmid
                  ORDER BY au.position)) AS authors,
          (SELECT GROUP_CONCAT(publication_type, '|') FROM
             (SELECT publication_type FROM article_publication_types pt
              WHERE pt.pmid = a.pmid ORDER BY publication_type)) AS publication_types,
          (SELECT GROUP_CONCAT(descriptor, '|') FROM (SELECT DISTINCT descriptor
             FROM article_mesh me WHERE me.pmid = a.pmid ORDER BY descriptor)) AS mesh_terms,
          (SELECT GROUP_CONCAT(nct_id, '|') FROM (SELECT DISTINCT nct_id
             FROM trial_publication_links l WHERE l.pmid = a.pmid ORDER BY nct_id))
             AS nct_ids,
          a.entrez_date, a.is_retracted, a.abstract,
          'https://pubmed.ncbi.nlm.nih.gov/' || a.pmid || '/' AS url
        FROM articles a
        WHERE a.pmid IN (SELECT record_id FROM topic_matches WHERE source = 'pubmed'
                         AND first_seen_run IN (:run_ids))
        ORDER BY a.entrez_date DESC, CAST(a.pmid AS INTEGER) DESC""",
    "new_trials": """
        SELECT (SELECT GROUP_CONCAT(topic, '|') FROM (SELECT DISTINCT n.topic
                  FROM topic_matches n WHERE n.source = 'ctgov' AND n.record_id = t.nct_id
                  AND n.first_seen_run IN (:run_ids) ORDER BY n.topic)) AS topics,
          t.nct_id, t.brief_title AS title, t.overall_status AS status,
          t.phase, t.enrollment, t.lead_sponsor AS sponsor, t.start_date,
          t.primary_completion_date, t.primary_completion_date_type,
          (SELECT GROUP_CONCAT(condition, '|') FROM (SELECT condition FROM trial_conditions c
             WHERE c.nct_id = t.nct_id ORDER BY condition)) AS conditions,
          (SELECT GROUP_CONCAT(name, '|') FROM (SELECT name FROM trial_interventions i
             WHERE i.nct_id = t.nct_id AND name IS NOT NULL ORDER BY position))
             AS interventions,
          (SELECT GROUP_CONCAT(country, '|') FROM (SELECT DISTINCT country FROM
             trial_locations l WHERE l.nct_id = t.nct_id AND country IS NOT NULL
             ORDER BY country)) AS countries,
          t.has_results, t.last_update_posted,
          'https://clinicaltrials.gov/study/' || t.nct_id AS url
        FROM trials t
        WHERE t.nct_id IN (SELECT record_id FROM topic_matches WHERE source = 'ctgov'
                           AND first_seen_run IN (:run_ids))
        ORDER BY t.nct_id""",
    # Articles a topic already tracked whose content changed in the window, with the fields
    # that changed (``record_updates``).
    "updated_articles": """
        SELECT (SELECT GROUP_CONCAT(topic, '|') FROM (SELECT DISTINCT m.topic
                  FROM topic_matches m WHERE m.source = 'pubmed' AND m.record_id = a.pmid
                  ORDER BY m.topic)) AS topics,
          a.pmid, a.title, a.journal, a.pub_year AS year,
          (SELECT GROUP_CONCAT(f, '|') FROM (SELECT DISTINCT value AS f
             FROM record_updates u, json_each('["' || REPLACE(u.fields, '|', '","') || '"]')
             WHERE u.source = 'pubmed' AND u.record_id = a.pmid AND u.run_id IN (:run_ids)
             ORDER BY f)) AS changed_fields,
          a.is_retracted,
          'https://pubmed.ncbi.nlm.nih.gov/' || a.pmid || '/' AS url
        FROM articles a
        WHERE a.pmid IN (SELECT record_id FROM record_updates WHERE source = 'pubmed'
                         AND run_id IN (:run_ids))
          AND EXISTS (SELECT 1 FROM topic_matches m WHERE m.source = 'pubmed'
                      AND m.record_id = a.pmid AND m.first_seen_run NOT IN (:run_ids))
        ORDER BY CAST(a.pmid AS INTEGER)""",
    "trial_changes": """
        SELECT c.nct_id, t.brief_title AS title, c.field, c.old_value, c.new_value,
          c.observed_at, c.run_id,
          (SELECT GROUP_CONCAT(topic, '|') FROM topic_matches m WHERE m.source = 'ctgov'
             AND m.record_id = c.nct_id) AS topics
        FROM trial_changes c LEFT JOIN trials t ON t.nct_id = c.nct_id
        WHERE c.run_id IN (:run_ids) ORDER BY c.nct_id, c.observed_at, c.field""",
    "article_changes": """
        SELECT c.pmid, a.title, c.field, c.old_value, c.new_value, c.observed_at, c.run_id,
          (SELECT GROUP_CONCAT(topic, '|') FROM topic_matches m WHERE m.source = 'pubmed'
             AND m.record_id = c.pmid) AS topics
        FROM article_changes c LEFT JOIN articles a ON a.pmid = c.pmid
        WHERE c.run_id IN (:run_ids) ORDER BY c.pmid, c.observed_at, c.field""",
    "links": """
        SELECT l.nct_id, l.pmid, l.evidence, t.brief_title AS trial_title,
          a.title AS article_title, l.first_seen_run
        FROM trial_publication_links l LEFT JOIN trials t ON t.nct_id = l.nct_id
          LEFT JOIN articles a ON a.pmid = l.pmid
        WHERE l.first_seen_run IN (:run_ids)
          -- links between two linked-only records are never resolved (see unresolved_links)
          AND EXISTS (SELECT 1 FROM topic_matches m WHERE (m.source = 'ctgov'
                AND m.record_id = l.nct_id) OR (m.source = 'pubmed' AND m.record_id = l.pmid))
        ORDER BY l.nct_id, l.pmid, l.evidence""",
    # Links to preprints: the trial is tracked (a preprint is linked only to tracked trials).
    "preprint_links": """
        SELECT l.nct_id, l.ppr_id, l.evidence, t.brief_title AS trial_title,
          p.title AS preprint_title, p.server, p.doi, l.first_seen_run,
          'https://europepmc.org/article/PPR/' || l.ppr_id AS url
        FROM trial_preprint_links l LEFT JOIN trials t ON t.nct_id = l.nct_id
          LEFT JOIN preprints p ON p.ppr_id = l.ppr_id
        WHERE l.first_seen_run IN (:run_ids)
        ORDER BY l.nct_id, l.ppr_id, l.evidence""",
    "new_preprints": """
        SELECT m.topic, p.ppr_id, p.title, p.server, p.doi,
          (SELECT COALESCE(au.full_name, au.last_name) FROM preprint_authors au
             WHERE au.ppr_id = p.ppr_id ORDER BY au.position LIMIT 1) AS first_author,
          p.first_publication_date, p.first_index_date, p.version_number, p.published_pmid,
          'https://europepmc.org/article/PPR/' || p.ppr_id AS url
        FROM topic_matches m JOIN preprints p ON p.ppr_id = m.record_id
        WHERE m.source = 'europepmc' AND m.first_seen_run IN (:run_ids)
        ORDER BY m.topic, p.first_index_date DESC, p.ppr_id DESC""",
    # A tracked preprint whose journal version Europe PMC linked in the window.
    "preprints_published": """
        SELECT c.ppr_id, p.title, p.server, c.new_value AS pmid, a.title AS article_title,
          a.journal, (SELECT l.note FROM preprint_publications l WHERE l.ppr_id = c.ppr_id
             AND l.published_source = 'MED' AND l.published_id = c.new_value) AS evidence_note,
          c.observed_at, c.run_id,
          (SELECT GROUP_CONCAT(topic, '|') FROM topic_matches m WHERE m.source = 'europepmc'
             AND m.record_id = c.ppr_id) AS topics,
          'https://pubmed.ncbi.nlm.nih.gov/' || c.new_value || '/' AS url
        FROM preprint_changes c JOIN preprints p ON p.ppr_id = c.ppr_id
          LEFT JOIN articles a ON a.pmid = c.new_value
        WHERE c.field = 'published_pmid' AND c.new_value IS NOT NULL
          AND c.run_id IN (:run_ids)
        ORDER BY c.ppr_id, c.observed_at""",
    "unreported_trials": UNREPORTED_SQL.format(today=":today"),
    "status_not_updated": STATUS_NOT_UPDATED_SQL.format(today=":today"),
    "report_runs": """
        SELECT run_id, topic, source, status, started_at, finished_at, window_start,
          window_end, n_found, n_new, n_updated, n_requests, n_retries, error
        FROM runs WHERE run_id IN (:run_ids) ORDER BY run_id, source, started_at, topic""",
    # Per topic and source: records tracked, new to the topic in the window, and updated in
    # it (already matched before; content changed by one of the window's runs, or withdrawn
    # by PubMed, which changes no content).
    # Only ``tracked`` reads every match (from the primary key's index alone); ``new`` and
    # ``updated`` start from the window's runs (indexes on first_seen_run, raw_records.run_id
    # and article_changes.run_id; the unary + keeps the planner on those), so the query stays
    # fast at a million records.
    "topic_counts": """
        SELECT m.topic, m.source, COUNT(*) AS tracked,
          (SELECT COUNT(*) FROM topic_matches n WHERE n.topic || '' = m.topic
             AND n.source || '' = m.source AND n.first_seen_run IN (:run_ids)) AS new,
          (SELECT COUNT(*) FROM (SELECT r.record_id FROM raw_records r
               WHERE r.source || '' = m.source AND r.run_id IN (:run_ids)
             UNION SELECT c.pmid FROM article_changes c
               WHERE m.source = 'pubmed' AND c.run_id IN (:run_ids)) x
             JOIN topic_matches u ON u.topic = m.topic AND u.source = m.source
               AND u.record_id = x.record_id
             WHERE u.first_seen_run NOT IN (:run_ids)) AS updated
        FROM topic_matches m GROUP BY m.topic, m.source ORDER BY m.topic, m.source""",
    "publications_per_year": """
        SELECT m.topic, a.pub_year AS year, COUNT(*) AS n
        FROM topic_matches m JOIN articles a ON a.pmid = m.record_id
        WHERE m.source = 'pubmed' AND a.pub_year IS NOT NULL AND COALESCE(a.is_deleted, 0) = 0
        GROUP BY m.topic, a.pub_year ORDER BY m.topic, a.pub_year""",
    "preprints_per_year": """
        SELECT m.topic, p.pub_year AS year, COUNT(*) AS n
        FROM topic_matches m JOIN preprints p ON p.ppr_id = m.record_id
        WHERE m.source = 'europepmc' AND p.pub_year IS NOT NULL
        GROUP BY m.topic, p.pub_year ORDER BY m.topic, p.pub_year""",
    "trials_by_phase_status": """
        SELECT m.topic, COALESCE(NULLIF(t.phase, ''), 'NA') AS phase,
          COALESCE(t.overall_status, 'UNKNOWN') AS status, COUNT(*) AS n
        FROM topic_matches m JOIN trials t ON t.nct_id = m.record_id
        WHERE m.source = 'ctgov' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
}


def copy_store(source: Store, target: Store, batch: int = 2000) -> dict[str, int]:
    """Copy every table (raw records included) of ``source`` into the empty ``target``, in
    one transaction; return the rows per table, checked equal on both sides.

    Tables are copied in declaration order, so a record's row is there before its child rows
    (foreign keys). A target holding any row is refused: merging two stores is not a copy.
    """
    tables = [r for r in RELATIONS if isinstance(r, Table) and r.name != "schema_migrations"]
    filled = [t.name for t in tables
              if target.db.execute(f"SELECT 1 FROM {t.name} LIMIT 1").fetchone()]
    if filled:
        raise ConfigError(f"{target.target}: refusing to copy into a store that is not empty "
                          f"({', '.join(filled[:5])} hold rows); use an empty database")
    counts: dict[str, int] = {}
    with source.snapshot(), target.transaction():
        for t in tables:
            names = [c.name for c in t.fields]
            insert = (f"INSERT INTO {t.name} ({', '.join(names)}) VALUES "
                      f"({', '.join('?' * len(names))})")
            cur = source.db.execute(f"SELECT {', '.join(names)} FROM {t.name}")
            while rows := cur.fetchmany(batch):
                target.db.executemany(insert, [tuple(r) for r in rows])
            counts[t.name] = _count(source, t.name)
            copied = _count(target, t.name)
            if copied != counts[t.name]:
                raise StoreError(f"{target.target}: {t.name} has {copied} rows after the copy, "
                                 f"the source {counts[t.name]}; nothing was committed")
    return counts


def _count(store: Store, table: str) -> int:
    return int(store.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


# What notifications are made of, per kind of item. ``:lo`` (exclusive) and ``:hi``
# (inclusive) bound the run ids a channel has not looked at yet; run ids sort by time.
_TOPICS_OF = """(SELECT GROUP_CONCAT(topic, '; ') FROM (SELECT DISTINCT topic FROM topic_matches m
     WHERE m.source = '{source}' AND m.record_id = {record} ORDER BY topic) d)"""
# A finished unit of work (``runs`` row ``r``) the channel (:entry, :channel) has not
# considered; a new match is one such unit made, a change row one such unit's run made (the
# change tables name no topic: other units of the run may have made it too, and a key
# delivered already is dropped).
_NEW_UNIT = """r.status <> 'running' AND NOT EXISTS (SELECT 1 FROM notify_considered n
          WHERE n.entry = :entry AND n.channel = :channel AND n.run_id = r.run_id
          AND n.topic = r.topic AND n.source = r.source)"""
_NEW_RUNS = f"SELECT r.run_id FROM runs r WHERE {_NEW_UNIT}"  # driven by the run_id indexes
_NEW_MATCH = """m.first_seen_run IN ({runs}) AND EXISTS (SELECT 1 FROM runs r
          WHERE r.run_id = m.first_seen_run AND r.topic = m.topic AND r.source = m.source
          AND r.source = '{source}' AND {unit})"""
_NEW_CHANGE = f"c.run_id IN ({_NEW_RUNS})"

NOTIFY_QUERIES: dict[str, str] = {
    "new_articles": f"""
        SELECT m.topic, m.first_seen_run AS run_id, a.pmid, a.title, a.journal,
          a.pub_year AS year, a.doi, a.pmcid, a.abstract, a.entrez_date, a.is_retracted,
          (SELECT GROUP_CONCAT(name, '; ') FROM (SELECT COALESCE(au.collective_name,
             TRIM(COALESCE(au.last_name, '') || ' ' || COALESCE(au.initials, ''))) AS name
             FROM article_authors au WHERE au.pmid = a.pmid ORDER BY au.position) o)
             AS authors
        FROM topic_matches m JOIN articles a ON a.pmid = m.record_id
        WHERE {_NEW_MATCH.format(runs=_NEW_RUNS, source='pubmed', unit=_NEW_UNIT)}
        ORDER BY m.topic, a.entrez_date DESC, CAST(a.pmid AS INTEGER) DESC""",
    "new_trials": f"""
        SELECT m.topic, m.first_seen_run AS run_id, t.nct_id, t.brief_title AS title,
          t.overall_status AS status, t.phase, t.enrollment, t.lead_sponsor AS sponsor,
          t.primary_completion_date, t.last_update_posted
        FROM topic_matches m JOIN trials t ON t.nct_id = m.record_id
        WHERE {_NEW_MATCH.format(runs=_NEW_RUNS, source='ctgov', unit=_NEW_UNIT)}
        ORDER BY m.topic, t.nct_id""",
    "trial_changes": f"""
        SELECT c.nct_id, c.run_id, c.observed_at, c.field, c.old_value, c.new_value,
          t.brief_title AS title, t.overall_status AS status, t.phase,
          {_TOPICS_OF.format(source="ctgov", record="c.nct_id")} AS topics
        FROM trial_changes c LEFT JOIN trials t ON t.nct_id = c.nct_id
        WHERE {_NEW_CHANGE}
        ORDER BY c.nct_id, c.run_id, c.field""",
    "corrections": f"""
        SELECT c.pmid, c.run_id, c.observed_at, c.field, c.old_value, c.new_value,
          a.title, a.journal, a.pub_year AS year, a.doi,
          {_TOPICS_OF.format(source="pubmed", record="c.pmid")} AS topics
        FROM article_changes c LEFT JOIN articles a ON a.pmid = c.pmid
        WHERE {_NEW_CHANGE}
        ORDER BY c.pmid, c.run_id, c.field""",
    "unreported": UNREPORTED_SQL.format(today=":today"),
    "new_preprints": f"""
        SELECT m.topic, m.first_seen_run AS run_id, p.ppr_id, p.title, p.server, p.doi,
          p.first_publication_date, p.abstract, p.published_pmid,
          (SELECT GROUP_CONCAT(full_name, '; ') FROM (SELECT au.full_name FROM
             preprint_authors au WHERE au.ppr_id = p.ppr_id ORDER BY au.position) o)
             AS authors
        FROM topic_matches m JOIN preprints p ON p.ppr_id = m.record_id
        WHERE {_NEW_MATCH.format(runs=_NEW_RUNS, source='europepmc', unit=_NEW_UNIT)}
        ORDER BY m.topic, p.first_index_date DESC, p.ppr_id DESC""",
    "preprints_published": f"""
        SELECT c.ppr_id, c.run_id, c.observed_at, c.new_value AS pmid, p.title, p.server,
          p.doi, a.title AS article_title, a.journal, a.pub_year AS year,
          {_TOPICS_OF.format(source="europepmc", record="c.ppr_id")} AS topics
        FROM preprint_changes c JOIN preprints p ON p.ppr_id = c.ppr_id
          LEFT JOIN articles a ON a.pmid = c.new_value
        WHERE c.field = 'published_pmid' AND c.new_value IS NOT NULL AND {_NEW_CHANGE}
        ORDER BY c.ppr_id, c.run_id""",
}


def load_table(table: str, data_dir: str | Path | None = None, config: str | None = None,
               database_url: str | None = None) -> pd.DataFrame:
    """``littrack.load``: one table as a DataFrame, from a database URL, a data directory's
    SQLite file, or the store the config (and ``LITTRACK_DATABASE_URL``) names."""
    if database_url is not None:
        location = database_url
    elif data_dir is not None:
        location = str(Path(data_dir) / DATABASE_FILE)
    else:
        from littrack.config import load_settings

        location = load_settings(config).store_location
    path = database.parse(location).path
    if path is not None:
        require_folder(path.parent)
        if not path.exists():
            raise ConfigError(f"{path}: no littrack database here (run `littrack run` first)")
    with Store.for_reading(location) as store:
        return store.frame(table)
