"""The store on the real PostgreSQL server: the same declared schema and migration history,
the same tables from the same runs, and the commands that read it.

Needs the server of tests/pg.py; every test starts from an empty database.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from littrack import migrations
from littrack.errors import DatabaseUnreachable, StoreError
from littrack.normalize.ctgov import normalize_study
from littrack.store import Store
from littrack.tables import create_all_sql
from tests.builders.ctgov import study


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
        for stmt in create_all_sql("postgresql"):
            conn.execute(stmt)
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


def test_an_unreachable_server_is_one_line_naming_host_and_database() -> None:
    with pytest.raises(DatabaseUnreachable) as info:
        Store("postgresql://someone:hunter2@127.0.0.1:1/tracker")
    text = str(info.value)
    assert "127.0.0.1:1" in text and "'tracker'" in text and "\n" not in text
    assert "hunter2" not in text


def test_a_claim_is_held_by_one_worker_and_dies_with_its_connection(pg_url: str) -> None:
    from littrack.claims import AdvisoryClaims
    from littrack.database import parse

    first, second = AdvisoryClaims(parse(pg_url)), AdvisoryClaims(parse(pg_url))
    try:
        assert first.claim("mdma-ptsd", "pubmed")
        assert not second.claim("mdma-ptsd", "pubmed")
        assert not second.claim("mdma-ptsd", "pubmed", wait=0.05)  # waits, then gives up
        assert second.claim("mdma-ptsd", "ctgov")  # another topic×source is free
        assert second.held_elsewhere("mdma-ptsd", "pubmed")
        first.close()  # a killed worker's connection ends: its claims go with it (as soon
        assert second.claim("mdma-ptsd", "pubmed", wait=10)  # as the server notices)
        assert not second.held_elsewhere("mdma-ptsd", "pubmed")
    finally:
        first.close()
        second.close()
