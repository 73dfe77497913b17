"""Reports people open in Excel, pandas or R: one folder of CSVs per run.

Rules every file keeps: UTF-8 (with a BOM, so Excel detects the encoding), RFC 4180 quoting
with CRLF line ends, cells a spreadsheet would execute (starting with ``= + - @``, tab or
CR) prefixed with an apostrophe, and atomic writes: a folder is built under a temporary name
and renamed into place, so a reader (or a killed run) never sees half a report.
"""

from __future__ import annotations

import csv
import logging
import os
import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from littrack.config import Settings
from littrack.store import Store

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

_DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")

NEW_ARTICLES_COLUMNS = ["topic", "pmid", "title", "journal", "year", "doi", "first_author",
                        "publication_types", "entrez_date", "is_retracted", "url"]
NEW_TRIALS_COLUMNS = ["topic", "nct_id", "title", "status", "phase", "enrollment", "sponsor",
                      "start_date", "countries", "last_update_posted", "url"]


def safe_cell(value: Any) -> Any:
    """Neutralise a cell that a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(_DANGEROUS_START):
        return "'" + value
    return value


def safe_name(name: str) -> str:
    """A file-name component that cannot leave its folder (no '/', '..', NUL)."""
    cleaned = _SAFE_NAME.sub("_", name).strip(".") or "_"
    return cleaned[:100]


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as a safe CSV; atomic when ``path``'s folder is already final."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        writer.writerow([safe_cell(str(c)) for c in frame.columns])
        for row in frame.itertuples(index=False, name=None):
            writer.writerow(["" if _isna(v) else safe_cell(_plain(v)) for v in row])
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _isna(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _plain(value: Any) -> Any:
    # pandas gives floats for nullable integer columns; print 2024, not 2024.0
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def report_frames(store: Store, run_ids: Sequence[str]) -> dict[str, pd.DataFrame]:
    """The tables of a report over the given runs, in file order."""
    return {
        "new_articles": store.query("new_articles", run_ids=list(run_ids))[NEW_ARTICLES_COLUMNS],
        "new_trials": store.query("new_trials", run_ids=list(run_ids))[NEW_TRIALS_COLUMNS],
        "trial_changes": store.query("trial_changes", run_ids=list(run_ids)),
        "article_changes": store.query("article_changes", run_ids=list(run_ids)),
        "links": store.query("links", run_ids=list(run_ids)),
    }


def write_report(store: Store, out_dir: Path, run_ids: Sequence[str], title: str) -> Path:
    """Build a complete report folder under a temporary name, then rename it into place."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    frames = report_frames(store, run_ids)
    for name, frame in frames.items():
        write_csv(frame, tmp / f"{name}.csv")
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return out_dir


def write_run_report(store: Store, settings: Settings, run_ids: Sequence[str],
                     run_id: str) -> Path:
    """The report of one run, in ``<data_dir>/reports/<run_id>/``."""
    out = settings.reports_dir / safe_name(run_id)
    path = write_report(store, out, run_ids, f"littrack run {run_id}")
    log.info("report written to %s", path)
    return path
