"""Reports people open in Excel, pandas or R: one folder per run, built whole.

A report folder holds one CSV per table (``littrack.reports.csv``), the at-a-glance
summary in Markdown and HTML (``summary``) and its charts (``charts``); the folder is built
under a temporary name and renamed into place (``littrack.folders``), so a reader (or a
killed run) never sees half a report.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from littrack.config import Settings
from littrack.folders import building, remove_stale_partials
from littrack.reports.csv import safe_name, write_rows
from littrack.reports.summary import Excerpt, write_summary
from littrack.store import Store

__all__ = ["has_news", "pending_run_ids", "previous_report", "prune_reports", "report_frames",
           "write_report", "write_run_report"]

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

NEW_ARTICLES_COLUMNS = ["topics", "pmid", "title", "journal", "year", "doi", "pmcid",
                        "first_author", "authors", "publication_types", "mesh_terms", "nct_ids",
                        "entrez_date", "is_retracted", "abstract", "url"]
NEW_TRIALS_COLUMNS = ["topics", "nct_id", "title", "status", "phase", "enrollment", "sponsor",
                      "start_date", "primary_completion_date", "primary_completion_date_type",
                      "conditions", "interventions", "countries", "has_results",
                      "last_update_posted", "url"]
# Report tables that are events of the window; an empty set of them is a run with nothing
# to tell (``unreported_trials`` and ``status_not_updated`` are states, always true).
EVENT_TABLES = ("new_articles", "new_trials", "updated_articles", "trial_changes",
                "article_changes", "links", "preprint_links", "new_preprints",
                "preprints_published")


def report_frames(store: Store, run_ids: Sequence[str],
                  today: date | None = None) -> dict[str, pd.DataFrame]:
    """The tables of a report over the given runs, in file order, as DataFrames (for
    reading them in Python; report folders are written row by row, ``write_tables``).

    ``unreported_trials`` is a state, not an event: every trial overdue as of ``today``.
    """
    today = today or datetime.now(UTC).date()
    frames = {}
    for name, (params, keep) in _queries(run_ids, today).items():
        frame = store.query(name, **params)
        frames[name] = frame[keep] if keep is not None else frame
    return frames


def _queries(run_ids: Sequence[str], today: date) -> dict[str, tuple[dict[str, Any],
                                                                     list[str] | None]]:
    """Each report table's query parameters and, where the file keeps fewer, its columns."""
    window: dict[str, Any] = {"run_ids": list(run_ids)}
    state: dict[str, Any] = {"today": today.isoformat()}
    return {
        "new_articles": (window, NEW_ARTICLES_COLUMNS),
        "new_trials": (window, NEW_TRIALS_COLUMNS),
        "updated_articles": (window, None),
        "trial_changes": (window, None),
        "article_changes": (window, None),
        "links": (window, None),
        "preprint_links": (window, None),
        "new_preprints": (window, None),
        "preprints_published": (window, None),
        "unreported_trials": (state, None),
        "status_not_updated": (state, None),
    }


def has_news(store: Store, run_ids: Sequence[str]) -> bool:
    """Whether a report over these runs tells anything that happened in its window."""
    return any(store.has_rows(name, run_ids=list(run_ids)) for name in EVENT_TABLES)


def write_tables(store: Store, folder: Path, run_ids: Sequence[str],
                 today: date) -> dict[str, Excerpt]:
    """Write each report table's CSV into ``folder`` straight from the store, row by row;
    return what the summary needs of each (counts and first rows, per topic)."""
    excerpts: dict[str, Excerpt] = {}
    for name, (params, keep) in _queries(run_ids, today).items():
        columns, rows = store.rows(name, **params)
        if keep is not None:
            index = [columns.index(c) for c in keep]
            rows = (tuple(r[i] for i in index) for r in rows)
            columns = list(keep)
        excerpt = excerpts[name] = Excerpt(columns)
        write_rows(columns, rows, folder / f"{name}.csv", excerpt.add)
    return excerpts


REPORT_META = "report.json"


def previous_report(parent: Path) -> dict[str, Any] | None:
    """The newest report under ``parent`` that says what it covered (``report.json``)."""
    found: list[dict[str, Any]] = []
    if parent.is_dir():
        for meta in parent.glob(f"*/{REPORT_META}"):
            try:
                data = json.loads(meta.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            if isinstance(data, dict) and {"since", "until", "run_ids"} <= set(data):
                found.append(data)
    return max(found, key=lambda d: str(d["until"])) if found else None


def write_report(store: Store, out_dir: Path, run_ids: Sequence[str], title: str,
                 today: date | None = None, meta: dict[str, Any] | None = None) -> Path:
    """Build a complete report folder under a temporary name, then rename it into place.

    Its CSVs are written from the store row by row and the summary from excerpts of them,
    so the report of a first run of 100,000 records takes no more memory than a day's.
    """
    today = today or datetime.now(UTC).date()
    with building(out_dir) as tmp, store.snapshot():
        excerpts = write_tables(store, tmp, run_ids, today)
        write_summary(store, tmp, run_ids, title, excerpts, today)
        if meta is not None:  # what the window was, so the next `littrack report` follows on
            (tmp / REPORT_META).write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return Path(out_dir)


def pending_run_ids(store: Store, settings: Settings, run_id: str) -> list[str]:
    """``run_id`` plus earlier runs that never got a report folder (killed, say mid-report).

    A run killed after some topics committed has rows nobody was told about; the next run's
    report takes them in. Only runs newer than the newest report folder on disk count, so
    each is reported once, and deleting old reports does not bring their runs back.
    """
    folder = settings.reports_dir
    done = sorted(p.name for p in folder.iterdir()
                  if p.is_dir() and not p.name.startswith(".")) if folder.is_dir() else []
    newest = done[-1] if done else ""
    earlier = {r["run_id"] for r in store.runs() if r["run_id"] != run_id}
    return sorted(r for r in earlier if r > newest and not (folder / safe_name(r)).exists()
                  ) + [run_id]


def write_run_report(store: Store, settings: Settings, run_ids: Sequence[str],
                     run_id: str) -> Path | None:
    """The report of one run, in ``<data_dir>/reports/<run_id>/``; by default only when the
    runs found something new or changed, or a topic failed (``[reports] write_empty``).
    Then the oldest run reports beyond ``[reports] keep`` are removed."""
    remove_stale_partials(settings.reports_dir)
    today = datetime.now(UTC).date()
    failed = any(r["status"] != "ok" for rid in run_ids for r in store.runs(rid))
    if not (settings.reports.write_empty or failed or has_news(store, run_ids)):
        log.info("nothing new and nothing failed: no report folder for run %s", run_id)
        return None
    out = settings.reports_dir / safe_name(run_id)
    path = write_report(store, out, run_ids, f"littrack run {run_id}", today)
    log.info("report written to %s", path)
    prune_reports(settings.reports_dir, settings.reports.keep)
    return path


def prune_reports(folder: Path, keep: int) -> list[Path]:
    """Remove all but the newest ``keep`` run report folders (0: keep all); return them.

    Run ids sort by time, so the newest are the last names. Only folders named like a run
    id are touched: anything a user put beside them stays.
    """
    if keep <= 0 or not folder.is_dir():
        return []
    runs = sorted(p for p in folder.iterdir()
                  if p.is_dir() and _RUN_FOLDER.fullmatch(p.name))
    gone = runs[:-keep]
    for path in gone:
        shutil.rmtree(path, ignore_errors=True)
    if gone:
        log.info("removed %d old report folder(s) (reports.keep = %d)", len(gone), keep)
    return gone


_RUN_FOLDER = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
