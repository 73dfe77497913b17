"""Reports people open in Excel, pandas or R: one folder per run, built whole.

A report folder holds one CSV per table (``littrack.reports.csv``), the at-a-glance
summary in Markdown and HTML (``summary``) and its charts (``charts``); the folder is built
under a temporary name and renamed into place (``littrack.folders``), so a reader (or a
killed run) never sees half a report.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from littrack.config import Settings
from littrack.folders import building, remove_stale_partials
from littrack.reports.csv import safe_name, write_csv
from littrack.reports.summary import write_summary
from littrack.store import Store

__all__ = ["pending_run_ids", "report_frames", "write_report", "write_run_report"]

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

NEW_ARTICLES_COLUMNS = ["topic", "pmid", "title", "journal", "year", "doi", "first_author",
                        "publication_types", "entrez_date", "is_retracted", "url"]
NEW_TRIALS_COLUMNS = ["topic", "nct_id", "title", "status", "phase", "enrollment", "sponsor",
                      "start_date", "countries", "last_update_posted", "url"]


def report_frames(store: Store, run_ids: Sequence[str],
                  today: date | None = None) -> dict[str, pd.DataFrame]:
    """The tables of a report over the given runs, in file order.

    ``unreported_trials`` is a state, not an event: every trial overdue as of ``today``.
    """
    today = today or datetime.now(UTC).date()
    return {
        "new_articles": store.query("new_articles", run_ids=list(run_ids))[NEW_ARTICLES_COLUMNS],
        "new_trials": store.query("new_trials", run_ids=list(run_ids))[NEW_TRIALS_COLUMNS],
        "trial_changes": store.query("trial_changes", run_ids=list(run_ids)),
        "article_changes": store.query("article_changes", run_ids=list(run_ids)),
        "links": store.query("links", run_ids=list(run_ids)),
        "unreported_trials": store.query("unreported_trials", today=today.isoformat()),
    }


def write_report(store: Store, out_dir: Path, run_ids: Sequence[str], title: str,
                 today: date | None = None) -> Path:
    """Build a complete report folder under a temporary name, then rename it into place."""
    today = today or datetime.now(UTC).date()
    with building(out_dir) as tmp:
        frames = report_frames(store, run_ids, today)
        for name, frame in frames.items():
            write_csv(frame, tmp / f"{name}.csv")
        write_summary(store, tmp, run_ids, title, frames, today)
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
                     run_id: str) -> Path:
    """The report of one run, in ``<data_dir>/reports/<run_id>/``."""
    remove_stale_partials(settings.reports_dir)
    out = settings.reports_dir / safe_name(run_id)
    path = write_report(store, out, run_ids, f"littrack run {run_id}")
    log.info("report written to %s", path)
    return path
