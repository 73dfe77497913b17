"""The store on the real PostgreSQL server: the same declared schema and migration history,
the same tables from the same runs, and the commands that read it.

Needs the server of tests/pg.py; every test starts from an empty database.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from littrack import migrations
from littrack.config import load_settings
from littrack.database import STREAM_ROWS, to_pyformat
from littrack.errors import DatabaseUnreachable, StoreError
from littrack.normalize.ctgov import normalize_study
from littrack.store import Store
from littrack.tables import RELATIONS, Table, create_all_sql
from littrack.vocab import LINKED_TOPIC, SOURCES
from tests.builders.ctgov import study
from tests.corpus import populate
from tests.fakes import CtgovFake, EutilsFake, Reply, RequestRecord
from tests.test_faults import VOLATILE, env_for, tuned_config


def pg_shape(conn: psycopg.Connection[Any], schema: str) -> dict[str, Any]:
    """Tables (columns, types, NOT NULL, collation), constraints (keys, foreign keys,
    CHECKs), indexes and views of one schema, with the schema's name taken out."""
    conn.execute(f"SET search_path TO {schema}")
    out: dict[str, Any] = {}
    for table, col, typ, nullable, coll in conn.execute(
            "SELECT c.table_name, column_name, data_type, is_nullable, collation_name "
            "FROM information_schema.columns c JOIN information_schema.tables t USING "
            "(table_schema, table_name) WHERE table_schema = %s AND table_type = 'BASE TABLE' "
            "ORDER BY c.table_name, ordinal_position", (schema,)):
        out.setdefault(f"table {table}", []).append((col, typ, nullable, coll))
    for table, name, definition in conn.execute(
            "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) "
            "FROM pg_constraint WHERE connamespace = %s::regnamespace", (schema,)):
        out[f"constraint {table}.{name}"] = definition
    for name, definition in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s", (schema,)):
        out[f"index {name}"] = definition.replace(f" {schema}.", " ")
    for name, definition in conn.execute(
            "SELECT viewname, pg_get_viewdef(viewname::regclass) FROM pg_views "
            "WHERE schemaname = %s", (schema,)):
        out[f"view {name}"] = definition
    for name, args in conn.execute(
            "SELECT proname, pg_get_function_identity_arguments(oid) FROM pg_proc "
            "WHERE pronamespace = %s::regnamespace", (schema,)):
        out[f"function {name}"] = args
    return out


def test_every_step_builds_exactly_the_declared_schema(pg_url: str) -> None:
    with Store(pg_url) as store:
        assert migrations.applied(store.db, "postgresql") == [s.name for s in migrations.STEPS]
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA declared")
        conn.execute("SET search_path TO declared")
        for stmt in create_all_sql("postgresql"):  # as the store sends SQL (database.py)
            conn.execute(to_pyformat(stmt), ())
        got, want = pg_shape(conn, "public"), pg_shape(conn, "declared")
    assert set(got) == set(want), set(got) ^ set(want)
    for key in want:
        assert got[key] == want[key], key
    assert "constraint article_authors.article_authors_pmid_fkey" in got
    assert "'Clinical Trial, Phase%'" in got["view trials_due_unreported"]


def test_reopening_applies_nothing_and_a_newer_store_is_refused(pg_url: str) -> None:
    with Store(pg_url):
        pass
    with Store(pg_url) as store:
        assert migrations.migrate(store.db, "x", "2030-01-01T00:00:00Z", "postgresql") == []
        store.db.execute("INSERT INTO schema_migrations VALUES ('9999_future', 'x')")
    with pytest.raises(StoreError, match="9999_future.*newer than this littrack"):
        Store(pg_url)


def test_upserts_history_and_keys_behave_as_on_sqlite(pg_url: str) -> None:
    with Store(pg_url) as store:
        recs = [normalize_study(study(f"NCT0000000{i}", status="RECRUITING"))
                for i in range(1, 4)]
        assert sorted(store.save_records(recs, "2026-01-01T00:00:00Z", "r1").new) == [
            "NCT00000001", "NCT00000002", "NCT00000003"]
        assert len(store.save_records(recs, "2026-01-02T00:00:00Z", "r2").unchanged) == 3
        changed = normalize_study(study("NCT00000001", status="COMPLETED"))
        assert store.save_records([changed], "2026-01-03T00:00:00Z", "r3").updated == [
            "NCT00000001"]
        changes = store.query("trial_changes", run_ids=["r3"])
        assert ("overall_status", "RECRUITING", "COMPLETED") in set(zip(
            changes["field"], changes["old_value"], changes["new_value"], strict=True))
        assert store.counts()["trials"] == 3
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            store.db.execute("INSERT INTO trial_conditions (nct_id, condition) "
                             "VALUES ('NCT09999999', 'PTSD')")


def test_report_rows_come_from_a_server_side_cursor_a_slice_at_a_time(pg_url: str) -> None:
    """A report reads a big run's rows slice by slice (plain ``execute`` reads a whole
    result into memory first): inside the report's snapshot a cursor is open on the
    server while they are read, and the connection still answers other statements."""
    n = 2 * STREAM_ROWS + 7
    ids = [f"NCT{i:08d}" for i in range(1, n + 1)]
    with Store(pg_url) as store:
        store.save_records([normalize_study(study(i)) for i in ids], "2026-01-01T00:00:00Z",
                           "r1")
        store.match("ptsd", "ctgov", ids, "r1")
        with store.snapshot():
            columns, rows = store.rows("new_trials", run_ids=["r1"])
            first = next(rows)
            cursors = store.db.execute("SELECT name FROM pg_cursors").fetchall()
            read = [first, *rows]
        assert [c[0] for c in cursors] == ["littrack_rows_1"]
        assert store.db.execute("SELECT COUNT(*) FROM pg_cursors").fetchone()[0] == 0
        assert sorted(r[columns.index("nct_id")] for r in read) == ids
        # outside a transaction (no cursor can live there): the same rows, read at once
        again_columns, again = store.rows("new_trials", run_ids=["r1"])
        assert again_columns == columns and list(map(tuple, again)) == list(map(tuple, read))
        # a reader that stops early (a report that failed halfway) leaves nothing open
        with store.snapshot():
            _, rows = store.rows("new_trials", run_ids=["r1"])
            next(rows)
            rows.close()  # (what dropping it does)
            assert store.db.execute("SELECT COUNT(*) FROM pg_cursors").fetchone()[0] == 0
        with store.snapshot():
            _, rows = store.rows("new_trials", run_ids=["r1"])
            next(rows)
        rows.close()  # after the snapshot ended, with the cursor gone with it
        assert store.db.execute("SELECT COUNT(*) FROM pg_cursors").fetchone()[0] == 0


def test_an_unreachable_server_is_one_line_naming_host_and_database() -> None:
    with pytest.raises(DatabaseUnreachable) as info:
        Store("postgresql://someone:hunter2@127.0.0.1:1/tracker")
    text = str(info.value)
    assert "127.0.0.1:1" in text and "'tracker'" in text and "\n" not in text
    assert "hunter2" not in text


def test_a_claim_is_held_by_one_worker_and_dies_with_its_connection(pg_url: str) -> None:
    from littrack.claims import AdvisoryClaims
    from littrack.database import parse

    first = AdvisoryClaims(parse(pg_url), "20261130T060000Z-aaaaaa")
    second = AdvisoryClaims(parse(pg_url), "20261130T060005Z-bbbbbb")
    try:
        assert first.claim("mdma-ptsd", "pubmed")
        assert not second.claim("mdma-ptsd", "pubmed")
        assert not second.claim("mdma-ptsd", "pubmed", wait=0.05)  # waits, then gives up
        assert second.claim("mdma-ptsd", "ctgov")  # another topic×source is free
        # the round began when its first worker did
        assert second.round_start("2026-11-30T06:00:05Z") == "2026-11-30T06:00:00Z"
        assert not second.last_worker()  # the first is still running
        first.close()  # a killed worker's connection ends: its claims go with it (as soon
        assert second.claim("mdma-ptsd", "pubmed", wait=10)  # as the server notices)
    finally:
        first.close()
        second.close()


def test_the_last_worker_of_a_round_is_exactly_one(pg_url: str) -> None:
    from littrack.claims import AdvisoryClaims
    from littrack.database import parse

    workers = [AdvisoryClaims(parse(pg_url), f"20261130T06000{i}Z-w{i}") for i in range(3)]
    try:
        assert [w.last_worker() for w in workers] == [False, False, True]
    finally:
        for w in workers:
            w.close()


# ---- whole runs: one worker, two workers, a killed worker, the commands that read ------------
class CountingEutils(EutilsFake):
    """No rate limit (two workers each pace themselves at NCBI's rate); can kill a process
    when it receives its ``kill_at``-th request."""

    def __init__(self) -> None:
        super().__init__(rate_limit=None)
        self.seen = 0
        self.kill_at: int | None = None
        self.kill_pid: int | None = None

    def rate_check(self, rec: RequestRecord) -> Reply | dict[str, str]:
        self.seen += 1  # under the fake's lock
        if self.seen == self.kill_at and self.kill_pid:
            os.kill(self.kill_pid, signal.SIGKILL)
        return super().rate_check(rec)


def snapshot_of(location: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table but runs and the migration ledger, without run ids and timestamps."""
    out = {}
    with Store(location) as store:
        for t in RELATIONS:
            if not isinstance(t, Table) or t.name in ("runs", "schema_migrations"):
                continue
            cols = [c.name for c in t.fields if c.name not in VOLATILE]
            rows = store.db.execute(f"SELECT {', '.join(cols)} FROM {t.name}").fetchall()
            out[t.name] = sorted((tuple(bytes(v) if isinstance(v, memoryview) else v
                                        for v in r) for r in rows), key=repr)
    return out


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[CountingEutils, CtgovFake, Path]]:
    with CountingEutils() as eutils, CtgovFake(rate_limit_per_minute=None) as ctgov:
        config = tuned_config(tmp_path / "config")
        populate(load_settings(config, env=env_for(tmp_path / "x", eutils, ctgov)), eutils,
                 ctgov, articles=24, trials=8)
        yield eutils, ctgov, config
    assert not eutils.errors and not ctgov.errors


def worker(config: Path, data: Path, eutils: EutilsFake, ctgov: CtgovFake,
           url: str | None, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, **env_for(data, eutils, ctgov)}
    env.pop("LITTRACK_DATABASE_URL", None)
    if url:
        env["LITTRACK_DATABASE_URL"] = url
    return subprocess.Popen([sys.executable, "-m", "littrack", "--config", str(config),
                             "-q", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=180)
    return proc.returncode, out, err


def single_sqlite_run(tmp_path: Path, world: tuple[CountingEutils, CtgovFake, Path]
                      ) -> tuple[str, int]:
    """The reference: one run into SQLite; its store and the requests it took."""
    eutils, ctgov, config = world
    before = eutils.count() + ctgov.count()
    code, _, err = finished(worker(config, tmp_path / "solo", eutils, ctgov, None, "run"))
    assert code == 0, err
    return str(tmp_path / "solo" / "littrack.sqlite"), eutils.count() + ctgov.count() - before


def ok_runs(url: str) -> list[tuple[str, str]]:
    with Store(url) as store:
        return sorted((r["topic"], r["source"]) for r in store.runs() if r["status"] == "ok")


def test_the_same_run_gives_the_same_tables_on_both(tmp_path: Path, pg_url: str,
                                                     world: tuple[CountingEutils, CtgovFake,
                                                                  Path]) -> None:
    solo, requests = single_sqlite_run(tmp_path, world)
    eutils, ctgov, config = world
    before = eutils.count() + ctgov.count()
    code, out, err = finished(worker(config, tmp_path / "pg", eutils, ctgov, pg_url, "run"))
    assert code == 0, err
    assert eutils.count() + ctgov.count() - before == requests
    assert snapshot_of(pg_url) == snapshot_of(solo)
    # the commands that read: status, export, report, load
    for args in (["status", "--json"], ["export", "--out", str(tmp_path / "exp")],
                 ["report", "--since", "2000-01-01", "--out", str(tmp_path / "rep")]):
        code, out, err = finished(worker(config, tmp_path / "pg", eutils, ctgov, pg_url,
                                         *args))
        assert code == 0, (args, err)
    status = json.loads(finished(worker(config, tmp_path / "pg", eutils, ctgov, pg_url,
                                        "status", "--json"))[1])
    assert status["counts"]["articles"] == len(snapshot_of(solo)["articles"])
    assert "PostgreSQL" in status["database"] and "@" not in status["database"]
    assert (tmp_path / "exp" / "articles.csv").is_file()
    assert (tmp_path / "rep" / "new_articles.csv").is_file()
    import littrack

    assert len(littrack.load("trials", database_url=pg_url)) == len(snapshot_of(solo)["trials"])


def test_two_workers_share_the_work_and_end_with_the_tables_of_one(
        tmp_path: Path, pg_url: str, world: tuple[CountingEutils, CtgovFake, Path]) -> None:
    solo, requests = single_sqlite_run(tmp_path, world)
    eutils, ctgov, config = world
    before = eutils.count() + ctgov.count()
    workers = [worker(config, tmp_path / f"w{i}", eutils, ctgov, pg_url, "run")
               for i in (1, 2)]
    results = [finished(w) for w in workers]
    assert [code for code, _, _ in results] == [0, 0], [err for _, _, err in results]
    assert snapshot_of(pg_url) == snapshot_of(solo)
    # every topic×source fetched by exactly one of them, and no more requests than one run
    done = ok_runs(pg_url)
    assert len(done) == len(set(done))
    assert {d for d in done if d[0] != LINKED_TOPIC} == {
        (t.name, s) for t in load_settings(config).topics for s in SOURCES if t.has(s)}
    assert eutils.count() + ctgov.count() - before == requests


def test_a_killed_worker_loses_nothing(tmp_path: Path, pg_url: str,
                                       world: tuple[CountingEutils, CtgovFake, Path]) -> None:
    solo, _ = single_sqlite_run(tmp_path, world)
    eutils, ctgov, config = world
    first = worker(config, tmp_path / "w1", eutils, ctgov, pg_url, "run")
    eutils.kill_pid, eutils.kill_at = first.pid, eutils.seen + 8  # mid-run, between topics
    second = worker(config, tmp_path / "w2", eutils, ctgov, pg_url, "run")
    code, _, _ = finished(first)
    assert code == -signal.SIGKILL
    code, _, err = finished(second)
    assert code == 0, err
    # the next worker resumes what the killed one left, from the committed watermarks
    code, _, err = finished(worker(config, tmp_path / "w3", eutils, ctgov, pg_url, "run"))
    assert code == 0, err
    assert snapshot_of(pg_url) == snapshot_of(solo)
    with Store(pg_url) as store:
        assert not [r for r in store.runs() if r["status"] == "running"]


def test_copy_store_moves_every_table_and_refuses_a_filled_target(
        tmp_path: Path, pg_url: str, world: tuple[CountingEutils, CtgovFake, Path]) -> None:
    solo, _ = single_sqlite_run(tmp_path, world)
    eutils, ctgov, config = world
    code, out, err = finished(worker(config, tmp_path / "solo", eutils, ctgov, None,
                                     "copy-store", "--to", pg_url))
    assert code == 0, err
    assert "row counts match" in out and "raw_records" in out
    assert snapshot_of(pg_url) == snapshot_of(solo)
    with Store(solo) as a, Store(pg_url) as b:
        assert a.counts() == b.counts()
        assert a.runs() == b.runs()
    code, out, err = finished(worker(config, tmp_path / "solo", eutils, ctgov, None,
                                     "copy-store", "--to", pg_url))
    assert code == 2 and "not empty" in err and len(err.strip().splitlines()) == 1


def test_a_refused_connection_is_exit_2_naming_host_and_database(
        tmp_path: Path, world: tuple[CountingEutils, CtgovFake, Path]) -> None:
    eutils, ctgov, config = world
    code, _, err = finished(worker(config, tmp_path / "d", eutils, ctgov,
                                   "postgresql://ann:hunter2@127.0.0.1:1/tracker", "status"))
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "127.0.0.1:1" in err and "'tracker'" in err and "hunter2" not in err
    code, _, err = finished(worker(config, tmp_path / "d", eutils, ctgov,
                                   "mysql://ann@127.0.0.1/tracker", "run"))
    assert code == 2 and "LITTRACK_DATABASE_URL" in err and len(err.strip().splitlines()) == 1


def test_alerts_are_planned_and_recorded_in_the_postgresql_store(
        tmp_path: Path, pg_url: str, world: tuple[CountingEutils, CtgovFake, Path]) -> None:
    eutils, ctgov, _ = world
    config = tuned_config(tmp_path / "notifying", extra=(
        '\n[[notify]]\nname = "team"\nwhen = "after-run"\n'
        '[notify.atom]\npath = "feeds/team.xml"\n'))
    code, _, err = finished(worker(config, tmp_path / "n", eutils, ctgov, pg_url, "run"))
    assert code == 0, err
    assert (tmp_path / "n" / "feeds" / "team.xml").is_file(), err
    feed = (tmp_path / "n" / "feeds" / "team.xml").read_text(encoding="utf-8")
    with Store(pg_url) as store:
        items = store.db.execute("SELECT COUNT(*) FROM delivery_items").fetchone()[0]
        sent = store.db.execute("SELECT COUNT(*) FROM deliveries WHERE status = 'sent'"
                                ).fetchone()[0]
    assert items > 0 and sent == 1 and "<entry" in feed
    code, out, err = finished(worker(config, tmp_path / "n", eutils, ctgov, pg_url, "notify"))
    assert code == 0, err  # nothing new: exactly once per channel
    with Store(pg_url) as store:
        assert store.db.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 1


@pytest.mark.parametrize("args", [
    ("2024-01-31", "+1 month"), ("2024-02-29", "+12 months"), ("2024-05", ), ("2024-05-17",),
    ("2023-12-01", "+1 month", "-1 day"), ("2024-02-29", "+1 year", "+30 days"),
    ("2020-06-30", "+3 years", "+30 days"), ("2024-13-45",), ("", ), ("2024-03-31", "-1 month"),
])
def test_date_arithmetic_reads_the_same_on_both(pg_url: str, args: tuple[str, ...]) -> None:
    """The views' due dates come from SQLite's date(); PostgreSQL gets littrack's copy."""
    import sqlite3

    marks = ", ".join(["CAST(? AS TEXT)"] * len(args))
    lite = sqlite3.connect(":memory:").execute(
        f"SELECT date({marks}), julianday({marks.split(', ')[0]})", (*args, args[0])).fetchone()
    with Store(pg_url) as store:
        pg = store.db.execute(f"SELECT date({marks}), julianday({marks.split(', ')[0]})",
                              (*args, args[0])).fetchone()
    assert tuple(pg) == lite


def test_the_database_password_is_never_printed_logged_or_stored(
        tmp_path: Path, pg_url: str, world: tuple[CountingEutils, CtgovFake, Path]) -> None:
    eutils, ctgov, config = world
    secret = "pw-5f3a9c"  # trust auth ignores it; littrack must still never show it
    url = pg_url.replace("postgres@", f"postgres:{secret}@")
    seen = []
    for args in (["-v", "run"], ["status", "--json"], ["check"]):
        code, out, err = finished(worker(config, tmp_path / "d", eutils, ctgov, url, *args))
        assert code == 0, err
        seen.append(out + err)
    assert all(secret not in text for text in seen)
    files = [p for p in (tmp_path / "d").rglob("*") if p.is_file()]
    assert files and all(secret.encode() not in p.read_bytes() for p in files)
    with Store(pg_url) as store:
        for t in RELATIONS:
            if isinstance(t, Table) and t.name != "raw_records":
                rows = store.db.execute(f"SELECT * FROM {t.name}").fetchall()
                assert secret not in repr(rows), t.name


def test_two_serve_workers_share_one_schedule(
        tmp_path: Path, pg_url: str, world: tuple[CountingEutils, CtgovFake, Path]) -> None:
    """`littrack serve` on two hosts: each schedule's catch-up run starts in both; every
    topic×source is fetched once, and SIGTERM stops both cleanly."""
    from tests.test_service import wait_until

    solo, requests = single_sqlite_run(tmp_path, world)
    eutils, ctgov, config = world
    before = eutils.count() + ctgov.count()
    expected = {(t.name, s) for t in load_settings(config).topics for s in SOURCES if t.has(s)}

    def done() -> bool:
        return {d for d in ok_runs(pg_url) if d[0] != LINKED_TOPIC} == expected

    servers = [worker(config, tmp_path / f"s{i}", eutils, ctgov, pg_url, "serve",
                      "--once-now") for i in (1, 2)]
    try:
        wait_until(done, 120, "every topic×source committed", servers[0])
        assert servers[1].poll() is None
    finally:
        for proc in servers:
            proc.send_signal(signal.SIGTERM)
    assert [finished(p)[0] for p in servers] == [0, 0]
    runs = ok_runs(pg_url)
    assert len(runs) == len(set(runs))
    assert snapshot_of(pg_url) == snapshot_of(solo)
    made = eutils.requests() + ctgov.requests()
    assert len(made) - before == requests, (  # which ones, should it ever fail
        [f"{r.method} {r.target[:120]}" for r in
         sorted(made, key=lambda r: r.time)[-(len(made) - before):]])
