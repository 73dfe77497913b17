"""Since when to ask: the incremental window of a topic and source, as pure functions.

A window is whole days, inclusive at both ends, because every service filters by day:
PubMed's Entrez and modification dates, ClinicalTrials.gov's LastUpdatePostDate, Europe
PMC's first index date. The watermark is the day a run *started* (not the newest record
seen), and the next window opens ``overlap_days`` before it, so records dated at the
boundary, or indexed late in another time zone, are asked for twice rather than never. The
overlap is absorbed by upserts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta


@dataclass(frozen=True)
class Window:
    """Days [start, end]; ``start=None`` means "everything" (a first run or --full)."""

    start: date | None
    end: date

    @property
    def is_full(self) -> bool:
        return self.start is None

    def __str__(self) -> str:
        """``2026-11-27 … 2026-11-30``, or ``everything … 2026-11-30`` (for messages)."""
        return f"{self.start.isoformat() if self.start else 'everything'} … {self.end}"


def next_window(watermark: date | None, today: date, overlap_days: int,
                full: bool = False) -> Window:
    """The window a run starting ``today`` should ask for."""
    if full or watermark is None:
        return Window(None, today)
    start = min(watermark, today) - timedelta(days=overlap_days)
    return Window(start, today)


def _pubmed_day(d: date) -> str:
    return d.strftime("%Y/%m/%d")


def pubmed_term(query: str, window: Window, *, modified: bool) -> str:
    """The ESearch term for a topic query limited to a window.

    One ESearch asks both for records *entered* in the window (``edat``: new to PubMed) and,
    when ``modified`` is set, records *modified* in it (``mdat``: retractions, corrections,
    MeSH indexing), so a quiet incremental run costs a single request per topic.
    """
    if window.start is None:
        return query
    span = f"{_pubmed_day(window.start)}:{_pubmed_day(window.end)}"
    clause = f"{span}[edat] OR {span}[mdat]" if modified else f"{span}[edat]"
    return f"({query}) AND ({clause})"


def ctgov_filter(window: Window) -> str | None:
    """The ``filter.advanced`` expression for studies updated in the window."""
    if window.start is None:
        return None
    return f"AREA[LastUpdatePostDate]RANGE[{window.start.isoformat()},MAX]"


def europepmc_query(query: str, window: Window) -> str:
    """The Europe PMC query for a topic limited to records indexed or updated in the window.

    By ``FIRST_IDATE`` (first indexed), never by publication date: a record can be indexed
    long before its "first publication" (a print issue dated months ahead), and would fall
    into a window that has already closed. ``UPDATE_DATE`` in the same query (one request,
    like PubMed's edat OR mdat) brings back preprints changed since, such as one that gained
    a link to its published version.
    """
    if window.start is None:
        return query
    span = f"[{window.start.isoformat()} TO {window.end.isoformat()}]"
    return f"({query}) AND (FIRST_IDATE:{span} OR UPDATE_DATE:{span})"
