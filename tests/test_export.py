"""`littrack export` and `littrack.load`: every tidy table out of a real store, typed."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

import littrack
from littrack.errors import ConfigError
from littrack.lock import DataDirLock
from littrack.schema_doc import exported_tables
from littrack.store import Store
from tests.test_reports import invoke, read_csv, seed


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    seed(tmp_path / "data")
    return tmp_path / "data"


def test_csv_export_writes_every_table_and_the_dictionary(tmp_path: Path,
                                                          data_dir: Path) -> None:
    with DataDirLock(data_dir, 0):  # a run in progress does not block an export
        result = invoke(tmp_path, "export")
    assert result.exit_code == 0, result.output
    out = data_dir / "export"
    with Store(data_dir / "littrack.sqlite") as store:
        tables = exported_tables()
        counts = {t: len(store.frame(t)) for t in tables}
    assert "raw_records" not in tables and "trials_due_unreported" in tables
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{t}.csv" for t in tables] + ["schema.md"])
    for table, n in counts.items():
        assert len(read_csv(out / f"{table}.csv")) == n, table
    assert counts["articles"] == 3 and counts["trial_changes"] == 1
    trials = {r["nct_id"]: r for r in read_csv(out / "trials.csv")}
    assert trials["NCT00000101"]["overall_status"] == "COMPLETED"
    assert trials["NCT00000101"]["enrollment"] == "60"  # an integer, not 60.0
    dictionary = (out / "schema.md").read_text(encoding="utf-8")
    assert "### trial_changes" in dictionary and "### raw_records" not in dictionary


def test_parquet_export_keeps_types(tmp_path: Path, data_dir: Path) -> None:
    pytest.importorskip("pyarrow")
    out = tmp_path / "pq"
    result = invoke(tmp_path, "export", "--format", "parquet", "--out", str(out))
    assert result.exit_code == 0, result.output
    articles = pd.read_parquet(out / "articles.parquet")
    assert str(articles["pub_year"].dtype) == "Int64"
    assert str(articles["is_retracted"].dtype) == "Int64"
    assert dict(zip(articles["pmid"], articles["is_retracted"], strict=True)) == {
        "1001": 0, "1002": 1, "1003": 0}
    changes = pd.read_parquet(out / "trial_changes.parquet")
    assert changes[["nct_id", "field", "new_value"]].values.tolist() == [
        ["NCT00000101", "overall_status", "COMPLETED"]]
    # An empty table still has its typed columns.
    links = pd.read_parquet(out / "trial_publication_links.parquet")
    assert links.empty and list(links.columns) == ["nct_id", "pmid", "evidence",
                                                   "first_seen_run"]


def test_parquet_without_pyarrow_names_the_extra(tmp_path: Path, data_dir: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` now fails
    out = tmp_path / "pq"
    result = invoke(tmp_path, "export", "--format", "parquet", "--out", str(out))
    assert result.exit_code == 2
    assert "pip install 'littrack[parquet]'" in result.output
    assert not out.exists()


def test_export_refuses_a_folder_it_did_not_write(tmp_path: Path, data_dir: Path) -> None:
    target = tmp_path / "home"
    target.mkdir()
    (target / "notes.txt").write_text("mine", encoding="utf-8")
    result = invoke(tmp_path, "export", "--out", str(target))
    assert result.exit_code == 2 and "refusing to replace" in result.output
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    for _ in range(2):  # its own export is replaced
        assert invoke(tmp_path, "export", "--out", str(tmp_path / "x")).exit_code == 0
    assert not list(tmp_path.glob(".x.partial"))


def test_load_reads_any_table_as_a_dataframe(data_dir: Path) -> None:
    trials = littrack.load("trials", data_dir=str(data_dir))
    assert sorted(trials["nct_id"]) == ["NCT00000101", "NCT00000102"]
    due = littrack.load("trials_due_unreported", data_dir=str(data_dir))
    assert list(due["nct_id"]) == ["NCT00000102"]
    with pytest.raises(ConfigError, match="unknown table 'nope'"):
        littrack.load("nope", data_dir=str(data_dir))


def test_load_without_a_store_says_so(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no littrack database"):
        littrack.load("trials", data_dir=str(tmp_path))
