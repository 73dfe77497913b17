"""The data dictionary cannot fall behind the schema: docs/schema.md is its rendering."""

from __future__ import annotations

from pathlib import Path

import pytest

from littrack import schema_doc
from littrack.store import Store

DOC = Path(__file__).resolve().parents[1] / "docs" / "schema.md"


@pytest.fixture
def fresh(tmp_path: Path):
    with Store(tmp_path / "fresh.sqlite") as store:
        yield store


def test_every_column_of_a_fresh_store_is_described(fresh: Store) -> None:
    assert schema_doc.undocumented(fresh) == []


def test_no_description_outlives_its_column(fresh: Store) -> None:
    actual = {t: {c["name"] for c in fresh.columns(t)} for t in fresh.table_names()}
    for table, doc in schema_doc.TABLES.items():
        assert table in actual, f"schema_doc describes {table}, which the store lacks"
        assert set(doc.columns) <= actual[table], (table, set(doc.columns) - actual[table])
        assert doc.group in schema_doc.GROUPS and doc.description.strip()


def test_committed_docs_equal_the_rendering() -> None:
    assert DOC.read_text(encoding="utf-8") == schema_doc.render_fresh(), (
        "docs/schema.md is stale: run `python -m littrack.schema_doc docs/schema.md`")


def test_rendering_lists_keys_types_and_views(fresh: Store) -> None:
    text = schema_doc.render_markdown(fresh)
    assert "| **nct_id** | text | NCT number. |" in text
    assert "| enrollment | integer | Enrollment count (empty when unknown). |" in text
    assert "### trials_due_unreported\n\n*view*." in text
    assert "### trials\n\n*table*." in text
    only = schema_doc.render_markdown(fresh, tables=["runs"])
    assert "### runs" in only and "### trials" not in only


def test_raw_blobs_are_not_exported(fresh: Store) -> None:
    tables = schema_doc.exported_tables(fresh)
    assert "raw_records" not in tables
    # deliveries holds whole sent messages (addresses included), not research data
    assert set(tables) == set(fresh.table_names()) - {"raw_records", "deliveries"}
