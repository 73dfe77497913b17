"""The store on a real SQLite file: idempotent upserts, history, atomic topics, migrations."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path

import pytest

from littrack import migrations
from littrack.migrations import STEPS
from littrack.normalize import pack_raw, unpack_raw
from littrack.normalize.ctgov import normalize_study
from littrack.store import Store
from tests.builders.ctgov import study


@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "littrack.sqlite") as s:
        yield s


def rows(store: Store, sql: str, *args: object) -> list[tuple]:
    return [tuple(r) for r in store.db.execute(sql, args)]


def test_schema_is_versioned_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "x.sqlite"
    every = [s.name for s in STEPS]
    with Store(path) as s:
        assert migrations.applied(s.db) == every
        assert {"articles", "trials", "topic_matches", "runs", "raw_records",
                "trial_changes", "article_changes"} <= {r[0] for r in s.db.execute(
                    "SELECT name FROM sqlite_master")}
    with Store(path) as s:
        assert migrations.applied(s.db) == every


def test_saving_twice_never_duplicates(store: Store) -> None:
    recs = [normalize_study(study(f"NCT0000000{i}")) for i in range(1, 4)]
    first = store.save_records(recs, "2026-01-01T00:00:00Z", "r1")
    again = store.save_records(recs, "2026-01-02T00:00:00Z", "r2")
    assert sorted(first.new) == ["NCT00000001", "NCT00000002", "NCT00000003"]
    assert again.new == [] and again.updated == [] and len(again.unchanged) == 3
    counts = store.counts()
    assert counts["trials"] == 3 and counts["trial_conditions"] == 3
    assert counts["raw_records"] == 3 and counts["trial_changes"] == 0
    assert rows(store, "SELECT first_seen_at, last_seen_at, updated_at FROM trials "
                       "WHERE nct_id='NCT00000001'") == [
        ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z")]


def test_changed_record_updates_in_place_and_logs_history(store: Store) -> None:
    store.save_records([normalize_study(study("NCT00000001", status="RECRUITING",
                                              conditions=("PTSD", "Anxiety")))],
                       "2026-01-01T00:00:00Z", "r1")
    res = store.save_records([normalize_study(study("NCT00000001", status="COMPLETED",
                                                    conditions=("PTSD",),
                                                    has_results=True))],
                             "2026-02-01T00:00:00Z", "r2")
    assert res.updated == ["NCT00000001"]
    assert rows(store, "SELECT overall_status, has_results, updated_at FROM trials") == [
        ("COMPLETED", 1, "2026-02-01T00:00:00Z")]
    assert rows(store, "SELECT condition FROM trial_conditions") == [("PTSD",)]
    assert rows(store, "SELECT field, old_value, new_value, run_id FROM trial_changes "
                       "ORDER BY field") == [
        ("has_results", "0", "1", "r2"), ("overall_status", "RECRUITING", "COMPLETED", "r2")]


def test_one_batch_mixing_new_unchanged_changed_and_repeated_records(store: Store) -> None:
    """A batch is stored by one statement per table: each record still gets its own fate,
    and a record given twice is stored as if saved one copy after the other."""
    kept = normalize_study(study("NCT00000001", conditions=("PTSD", "Anxiety")))
    moved = normalize_study(study("NCT00000002", status="RECRUITING", conditions=("Pain",)))
    store.save_records([kept, moved], "2026-01-01T00:00:00Z", "r1")
    res = store.save_records(
        [kept,
         normalize_study(study("NCT00000002", status="COMPLETED", conditions=("Cancer",))),
         normalize_study(study("NCT00000003", conditions=("Autism",))),
         normalize_study(study("NCT00000003", status="COMPLETED", conditions=("Autism",)))],
        "2026-02-01T00:00:00Z", "r2")
    assert res.unchanged == ["NCT00000001"]
    assert res.new == ["NCT00000003"]
    assert res.updated == ["NCT00000002", "NCT00000003"]
    assert rows(store, "SELECT nct_id, overall_status, first_seen_at, last_seen_at, updated_at "
                       "FROM trials ORDER BY nct_id") == [
        ("NCT00000001", "RECRUITING", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z",
         "2026-01-01T00:00:00Z"),
        ("NCT00000002", "COMPLETED", "2026-01-01T00:00:00Z", "2026-02-01T00:00:00Z",
         "2026-02-01T00:00:00Z"),
        ("NCT00000003", "COMPLETED", "2026-02-01T00:00:00Z", "2026-02-01T00:00:00Z",
         "2026-02-01T00:00:00Z")]
    assert rows(store, "SELECT nct_id, condition FROM trial_conditions ORDER BY 1, 2") == [
        ("NCT00000001", "Anxiety"), ("NCT00000001", "PTSD"), ("NCT00000002", "Cancer"),
        ("NCT00000003", "Autism")]
    assert rows(store, "SELECT nct_id, field, old_value, new_value FROM trial_changes "
                       "ORDER BY 1, 2") == [
        ("NCT00000002", "overall_status", "RECRUITING", "COMPLETED"),
        ("NCT00000003", "overall_status", "RECRUITING", "COMPLETED")]
    assert rows(store, "SELECT record_id, run_id FROM raw_records ORDER BY 1") == [
        ("NCT00000001", "r1"), ("NCT00000002", "r2"), ("NCT00000003", "r2")]


def test_records_given_newest_first_go_in_in_key_order(store: Store) -> None:
    """ESearch lists newest first; rows go in in key order (B-tree pages fill instead of
    splitting half empty), and of two copies of a record the first is still stored first."""
    ids = [f"NCT{n:08d}" for n in range(250, 0, -1)]  # descending, as ESearch lists them
    batch = [normalize_study(study(i, status="RECRUITING")) for i in ids]
    batch.insert(1, normalize_study(study(ids[100], status="COMPLETED")))  # given first
    res = store.save_records(batch, "2026-01-01T00:00:00Z", "r1")
    assert rows(store, "SELECT nct_id FROM trials ORDER BY rowid") == [
        (i,) for i in sorted(ids)]
    assert rows(store, "SELECT overall_status FROM trials WHERE nct_id=?", ids[100]) == [
        ("RECRUITING",)]  # the copy given last
    assert res.new == sorted(ids) and res.updated == [ids[100]]


def test_a_new_store_has_16_kb_pages_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    with Store(tmp_path / "new.sqlite") as new:
        assert rows(new, "PRAGMA page_size") == [(16384,)]
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as db:  # a store of SQLite's default page size, then adopted
        db.execute("CREATE TABLE t (x)")
    db.close()
    for _ in range(2):
        with Store(old) as adopted:
            assert rows(adopted, "PRAGMA page_size") == [(4096,)]


def test_transaction_rolls_back_everything(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.save_records([normalize_study(study("NCT00000001"))], "t", "r1")
        store.match("topic", "ctgov", ["NCT00000001"], "r1")
        store.set_watermark("topic", "ctgov", "2026-01-01", "r1", "t")
        raise RuntimeError("killed mid-topic")
    counts = store.counts()
    assert counts["trials"] == 0 and counts["topic_matches"] == 0
    assert store.watermark("topic", "ctgov") is None


def test_matches_count_new_per_topic(store: Store) -> None:
    assert store.match("a", "ctgov", ["NCT1", "NCT2"], "r1") == 2
    assert store.match("a", "ctgov", ["NCT1", "NCT2", "NCT3"], "r2") == 1
    assert store.match("b", "ctgov", ["NCT1"], "r2") == 1
    assert rows(store, "SELECT topic, record_id, first_seen_run, last_seen_run FROM "
                       "topic_matches ORDER BY 1, 2") == [
        ("a", "NCT1", "r1", "r2"), ("a", "NCT2", "r1", "r2"), ("a", "NCT3", "r2", "r2"),
        ("b", "NCT1", "r2", "r2")]


def test_runs_left_running_by_a_killed_process_are_closed(store: Store) -> None:
    store.start_run("r1", "t", "pubmed", "2026-01-01T00:00:00Z", (None, "2026-01-01"))
    assert store.fail_interrupted_runs("2026-01-01T01:00:00Z") == 1
    (run,) = store.runs()
    assert run["status"] == "failed" and "interrupted" in run["error"]


def test_raw_records_rebuild(store: Store) -> None:
    rec = normalize_study(study("NCT00000001", title="Original"))
    store.save_records([rec], "t", "r1")
    store.db.execute("UPDATE trials SET brief_title='corrupted'")
    store.db.execute("DELETE FROM trial_conditions")
    from littrack.normalize.ctgov import normalize_raw

    n = store.rebuild((normalize_raw(raw) for _, raw in store.iter_raw("ctgov")), "t2")
    assert n == 1
    assert rows(store, "SELECT brief_title FROM trials") == [("Original",)]
    assert store.counts()["trial_conditions"] == 1


def test_raw_records_of_release_0_1_0_zlib_still_rebuild(store: Store) -> None:
    """Release 0.1.0 kept raw records as zlib, this one as Zstandard: a store holding both
    (upgraded in place, then added to) rebuilds every record from its raw bytes."""
    from littrack.normalize.ctgov import normalize_raw  # (as in the test above)

    old, new = (normalize_study(study(f"NCT0000000{i}", title=f"Title {i}")) for i in (1, 2))
    store.save_records([old, new], "t", "r1")
    store.db.execute("UPDATE raw_records SET raw=? WHERE record_id='NCT00000001'",
                     (zlib.compress(old.raw, 1),))
    blobs = dict(rows(store, "SELECT record_id, raw FROM raw_records"))
    assert blobs["NCT00000002"] == pack_raw(new.raw) != zlib.compress(new.raw, 1)
    assert [unpack_raw(b) for b in blobs.values()] == [old.raw, new.raw]
    store.db.execute("UPDATE trials SET brief_title='corrupted'")

    assert store.rebuild((normalize_raw(raw) for _, raw in store.iter_raw("ctgov")), "t2") == 2
    assert rows(store, "SELECT brief_title FROM trials ORDER BY nct_id") == [
        ("Title 1",), ("Title 2",)]


def test_links_from_trial_references(store: Store) -> None:
    s = study("NCT00000001", references=[("11111111", "RESULT", "x"), (None, "BACKGROUND", "y")])
    store.save_records([normalize_study(s)], "t", "r1")
    assert rows(store, "SELECT nct_id, pmid, evidence FROM trial_publication_links") == [
        ("NCT00000001", "11111111", "ctgov_reference")]


def test_a_big_commit_is_checkpointed_beside_the_work_not_in_it(tmp_path: Path) -> None:
    """The commit leaves the log to a background checkpoint: the database file holds the
    data while the store is still open (no close, whose own checkpoint would do it), and a
    small commit starts no checkpoint at all."""
    import os

    path = tmp_path / "littrack.sqlite"
    with Store(path) as s:
        s.save_records([normalize_study(study("NCT00000001"))], "2026-01-01T00:00:00Z", "r1")
        assert s._checkpoint is not None and s._checkpoint._thread is None  # small: none
        before = path.stat().st_size
        (page,), = rows(s, "PRAGMA page_size")
        n = 2 * s._checkpoint.LOG_PAGES * page // 4000  # twice the threshold into the log
        with s.transaction():
            s.db.executemany(
                "INSERT INTO raw_records (source, record_id, content_hash, fetched_at, run_id, "
                "raw) VALUES ('ctgov', ?, 'h', 't', 'r2', ?)",
                [(f"NCT9{i:07d}", os.urandom(4000)) for i in range(n)])
        s._checkpoint.close()  # waits for the checkpoint the commit asked for
        assert s._checkpoint.done == 1
        assert path.stat().st_size > before + n * 4000 * 0.9  # copied while still open
        assert rows(s, "SELECT COUNT(*) FROM raw_records") == [(n + 1,)]
