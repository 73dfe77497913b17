"""The migration history builds exactly the declared schema, and upgrades a 0.1.0 store.

``tests/data/store-v0.1.0.sqlite`` was written by the code of the tag ``v0.1.0`` (see
``tests/data/make_store_v010.py``), so the upgrade is tested against what that release really
left on disk.
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from littrack import migrations
from littrack.errors import StoreError
from littrack.pipeline import run, utcnow
from littrack.store import Store
from littrack.tables import create_all_sql
from tests.builders.ctgov import study
from tests.builders.pubmed import article_xml
from tests.corpus import populate, settings_for
from tests.data.make_store_v010 import ARTICLES, SEED, TRIALS
from tests.fakes import CtgovFake, EutilsFake

V010 = Path(__file__).resolve().parent / "data" / "store-v0.1.0.sqlite"


def _squash(sql: str) -> str:
    return re.sub(r"\s+", " ", sql).strip()


def shape(path: Path) -> dict[str, Any]:
    """Everything that makes a schema: tables with columns, types, NOT NULL, keys, CHECKs
    and foreign keys; indexes with their columns; views with their SELECT."""
    db = sqlite3.connect(path)
    out: dict[str, Any] = {}
    objects = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                         "WHERE name NOT LIKE 'sqlite_%' ORDER BY name").fetchall()
    for kind, name, table, sql in objects:
        if kind == "table":
            cols = [tuple(r[1:]) for r in db.execute(f"PRAGMA table_info({name})")]
            checks = sorted(re.findall(r"CHECK \(([^()]*\([^()]*\))\)", sql))
            keys = sorted(tuple(r[2:5]) for r in db.execute(f"PRAGMA foreign_key_list({name})"))
            out[f"table {name}"] = (cols, checks, keys)
        elif kind == "index":
            cols = [r[2] for r in db.execute(f"PRAGMA index_info({name})")]
            out[f"index {name}"] = (table, cols)
        elif kind == "view":
            select = re.sub(r"^CREATE VIEW (IF NOT EXISTS )?\w+ AS ", "", _squash(sql))
            out[f"view {name}"] = select
    db.close()
    return out


def declared(tmp_path: Path) -> dict[str, Any]:
    """The declaration of ``tables.py`` built directly, without the migration history."""
    path = tmp_path / "declared.sqlite"
    db = sqlite3.connect(path)
    for stmt in create_all_sql():
        db.execute(stmt)
    db.commit()
    db.close()
    return shape(path)


def test_every_step_from_empty_builds_exactly_the_declared_schema(tmp_path: Path) -> None:
    with Store(tmp_path / "littrack.sqlite") as store:
        assert migrations.applied(store.db) == [s.name for s in migrations.STEPS]
    want, got = declared(tmp_path), shape(tmp_path / "littrack.sqlite")
    assert set(got) == set(want), set(got) ^ set(want)
    for name in want:
        assert got[name] == want[name], name
    assert sqlite3.connect(tmp_path / "littrack.sqlite").execute(
        "PRAGMA user_version").fetchone()[0] == len(migrations.STEPS)


def test_the_comparison_sees_a_drift(tmp_path: Path) -> None:
    """A column, an index or a view edited in the declaration but not migrated fails."""
    with Store(tmp_path / "littrack.sqlite"):
        pass
    db = sqlite3.connect(tmp_path / "littrack.sqlite")
    db.execute("ALTER TABLE runs ADD COLUMN extra TEXT")
    db.execute("DROP INDEX runs_started")
    db.execute("DROP VIEW trials_due_unreported")
    db.execute("CREATE VIEW trials_due_unreported AS SELECT nct_id FROM trials")
    db.commit()
    db.close()
    got, want = shape(tmp_path / "littrack.sqlite"), declared(tmp_path)
    assert {k for k in want if got.get(k) != want[k]} == {
        "table runs", "index runs_started", "view trials_due_unreported"}


def test_the_0_1_0_file_is_what_that_release_wrote() -> None:
    db = sqlite3.connect(f"file:{V010}?mode=ro", uri=True)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    names = {r[0] for r in db.execute("SELECT name FROM sqlite_master")}
    assert "schema_migrations" not in names and "linked_fetches" in names
    assert db.execute("SELECT COUNT(*) FROM articles").fetchone()[0] >= ARTICLES


def test_a_0_1_0_store_is_adopted_and_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "littrack.sqlite"
    shutil.copy(V010, path)
    before = {t: _rows(path, t) for t in ("articles", "trials", "runs", "topic_matches",
                                         "raw_records", "watermarks")}
    with Store(path) as store:
        assert migrations.applied(store.db) == [s.name for s in migrations.STEPS]
    with sqlite3.connect(path) as db:
        adopted = db.execute("SELECT name FROM schema_migrations ORDER BY name").fetchall()
    assert [r[0] for r in adopted][:migrations.RELEASE_0_1_0_STEPS] == [
        s.name for s in migrations.STEPS[:migrations.RELEASE_0_1_0_STEPS]]
    got, want = shape(path), declared(tmp_path)
    assert got == want
    # later steps append columns (migration 0005): what was there is kept as it was
    after = {t: _rows(path, t) for t in before}
    assert {t: [r[:len(before[t][0])] for r in rows] if before[t] else rows
            for t, rows in after.items()} == before


def _rows(path: Path, table: str) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(path)
    try:
        cols = "source, record_id, content_hash" if table == "raw_records" else "*"
        return sorted(tuple(r) for r in db.execute(f"SELECT {cols} FROM {table}"))
    finally:
        db.close()


def test_an_upgraded_0_1_0_store_runs_incrementally(tmp_path: Path, eutils_fake: EutilsFake,
                                                    ctgov_fake: CtgovFake) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    corpus = populate(settings, eutils_fake, ctgov_fake, articles=ARTICLES, trials=TRIALS,
                      seed=SEED)
    settings.db_path.parent.mkdir(parents=True)
    shutil.copy(V010, settings.db_path)
    old_articles = _rows(settings.db_path, "articles")
    today = utcnow().date()
    q = settings.topic("mdma-ptsd").pubmed_query or ""
    eutils_fake.add_article("39999999", article_xml("39999999", entrez_date=today),
                            edat=today, mdat=today, queries=[q])
    ctgov_fake.update_study(study("NCT09000000", status="COMPLETED", has_results=True,
                                  last_update=today.isoformat()))
    ctgov_fake.bump()

    result = run(settings)

    assert result.exit_code == 0
    with Store(settings.db_path) as store:
        assert migrations.applied(store.db) == [s.name for s in migrations.STEPS]
        assert store.query("new_articles", run_ids=[result.run_id])["pmid"].tolist() == [
            "39999999"]
        changes = store.query("trial_changes", run_ids=[result.run_id])
        assert ("overall_status", "COMPLETED") in set(
            zip(changes["field"], changes["new_value"], strict=True))
        assert len(store.runs()) > 6 and store.counts()["articles"] == len(old_articles) + 1
        marks = {(w["topic"], w["source"]): w["watermark"] for w in store.watermarks()}
        assert set(marks.values()) == {today.isoformat()}
    kept = {r[0]: r for r in _rows(settings.db_path, "articles")}
    for old in old_articles:  # untouched by the run: same row, same first_seen_at
        if old[0] in corpus.articles:
            assert kept[old[0]][-3] == old[-3]


def test_a_child_row_needs_its_record(tmp_path: Path) -> None:
    with Store(tmp_path / "littrack.sqlite") as store:
        with pytest.raises(sqlite3.IntegrityError, match="FOREIGN KEY"):
            store.db.execute("INSERT INTO trial_conditions (nct_id, condition) "
                             "VALUES ('NCT00000001', 'PTSD')")


def test_an_orphan_child_row_is_not_carried_into_the_keyed_tables(tmp_path: Path) -> None:
    path = tmp_path / "littrack.sqlite"
    shutil.copy(V010, path)
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO article_keywords (pmid, keyword) VALUES ('1', 'orphan')")
        kept = db.execute("SELECT COUNT(*) FROM article_keywords").fetchone()[0] - 1
    with Store(path):
        pass
    assert _rows(path, "article_keywords") and len(_rows(path, "article_keywords")) == kept
    assert ("1", "orphan") not in {r[:2] for r in _rows(path, "article_keywords")}


def test_a_store_from_a_newer_littrack_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "littrack.sqlite"
    with Store(path):
        pass
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO schema_migrations VALUES ('9999_future', '2030-01-01T00:00:00Z')")
    with pytest.raises(StoreError, match="9999_future.*newer than this littrack"):
        Store(path)
    legacy = tmp_path / "legacy.sqlite"
    sqlite3.connect(legacy).execute("PRAGMA user_version = 4").connection.close()
    with pytest.raises(StoreError, match="newer than this littrack"):
        Store(legacy)


def test_notify_considered_is_seeded_from_the_old_cursor(tmp_path: Path) -> None:
    """A channel's run-id cursor becomes the units it considered: the finished ones at or
    below it that had finished when it last looked. A unit below the cursor that finished
    after that (the old cursor lost it), a running one and a later one stay new."""
    path = tmp_path / "littrack.sqlite"
    with Store(path):
        pass
    names = [s.name for s in migrations.STEPS]
    step = next(n for n in names if n.endswith("_notify_considered"))
    with sqlite3.connect(path) as db:  # the store as the step before left it
        db.execute("DROP TABLE notify_considered")
        db.execute("DELETE FROM schema_migrations WHERE name >= ?", (step,))
        db.execute(f"PRAGMA user_version = {names.index(step)}")
        runs = [("20261130T100000Z-aaaaaa", "a", "pubmed", "ok", "2026-11-30T10:10:00Z"),
                ("20261130T110000Z-bbbbbb", "a", "ctgov", "ok", "2026-11-30T11:02:00Z"),
                ("20261130T110000Z-000001", "b", "pubmed", "ok", "2026-11-30T11:20:00Z"),
                ("20261130T090000Z-cccccc", "b", "ctgov", "running", None),
                ("20261130T120000Z-dddddd", "a", "pubmed", "ok", "2026-11-30T12:10:00Z")]
        db.executemany("INSERT INTO runs (run_id, topic, source, started_at, status, "
                       "finished_at) VALUES (?, ?, ?, '2026-11-30T09:00:00Z', ?, ?)", runs)
        db.execute("INSERT INTO notify_cursors (entry, channel, through_run, checked_at) "
                   "VALUES ('team', 'atom', '20261130T110000Z-bbbbbb', '2026-11-30T11:05:00Z')")
    with Store(path) as store:
        assert migrations.applied(store.db) == names
        assert sorted(tuple(r) for r in store.db.execute(
            "SELECT entry, channel, run_id, topic, source FROM notify_considered")) == [
            ("team", "atom", "20261130T100000Z-aaaaaa", "a", "pubmed"),
            ("team", "atom", "20261130T110000Z-bbbbbb", "a", "ctgov")]
        assert [tuple(u) for u in store.unconsidered_units("team", "atom")] == [
            ("20261130T110000Z-000001", "b", "pubmed"),
            ("20261130T120000Z-dddddd", "a", "pubmed")]
