"""The data dictionary cannot fall behind the schema: docs/schema.md is its rendering."""

from __future__ import annotations

from pathlib import Path

from littrack import schema_doc
from littrack.store import Store
from littrack.tables import RELATIONS, Table

DOC = Path(__file__).resolve().parents[1] / "docs" / "schema.md"


def test_every_declared_column_is_described() -> None:
    missing = [f"{r.name}.{c.name}" for r in RELATIONS for c in r.fields
               if not c.description.strip()]
    assert missing == []
    assert all(r.description.strip() for r in RELATIONS)


def test_the_declaration_names_every_relation_of_a_fresh_store(tmp_path: Path) -> None:
    with Store(tmp_path / "fresh.sqlite") as store:
        names = {r[0] for r in store.db.execute("SELECT name FROM sqlite_master WHERE type "
                                                "IN ('table', 'view')")}
        assert names == {r.name for r in RELATIONS}
        for relation in RELATIONS:
            assert [c[1] for c in store.db.execute(f"PRAGMA table_info({relation.name})")] == [
                c.name for c in relation.fields], relation.name


def test_committed_docs_equal_the_rendering() -> None:
    assert DOC.read_text(encoding="utf-8") == schema_doc.render_markdown(), (
        "docs/schema.md is stale: run `python -m littrack.schema_doc docs/schema.md`")


def test_rendering_lists_keys_types_and_views() -> None:
    text = schema_doc.render_markdown()
    assert "| **nct_id** | text | NCT number. |" in text
    assert "| enrollment | integer | Enrollment count (empty when unknown). |" in text
    assert "| started_at | timestamp | When the topic started (UTC). |" in text
    assert "### trials_due_unreported\n\n*view*." in text
    assert "### trials\n\n*table*." in text
    only = schema_doc.render_markdown(["runs"])
    assert "### runs" in only and "### trials" not in only


def test_bookkeeping_blobs_are_not_exported() -> None:
    tables = schema_doc.exported_tables()
    assert "raw_records" not in tables and "schema_migrations" not in tables
    # deliveries holds whole sent messages (addresses included), not research data
    assert set(tables) == {r.name for r in RELATIONS if isinstance(r, Table)
                           or r.name in ("trials_due_unreported",
                                         "trials_status_not_updated")} - {
        "raw_records", "schema_migrations", "deliveries"}
