"""Incremental windows: never move backwards, always overlap, split without gaps."""

from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given
from hypothesis import strategies as st

from littrack.windows import Window, ctgov_filter, next_window, pubmed_term

days = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 1, 1))


def test_first_run_is_full() -> None:
    w = next_window(None, date(2026, 11, 28), 3)
    assert w == Window(None, date(2026, 11, 28)) and w.is_full
    assert pubmed_term("q", w, modified=True) == "q"
    assert ctgov_filter(w) is None


def test_incremental_window_overlaps_the_watermark() -> None:
    w = next_window(date(2026, 11, 20), date(2026, 11, 28), 3)
    assert w == Window(date(2026, 11, 17), date(2026, 11, 28))
    assert pubmed_term("a OR b", w, modified=True) == (
        "(a OR b) AND (2026/11/17:2026/11/28[edat] OR 2026/11/17:2026/11/28[mdat])")
    assert pubmed_term("a", w, modified=False) == "(a) AND (2026/11/17:2026/11/28[edat])"
    assert ctgov_filter(w) == "AREA[LastUpdatePostDate]RANGE[2026-11-17,MAX]"


def test_full_flag_ignores_watermark() -> None:
    assert next_window(date(2026, 1, 1), date(2026, 2, 1), 3, full=True).is_full


@given(days, days, st.integers(0, 30))
def test_window_contains_watermark_day_minus_overlap(wm: date, today: date, overlap: int) -> None:
    w = next_window(wm, today, overlap)
    assert w.start is not None and w.start <= min(wm, today) - timedelta(days=overlap) + \
        timedelta(days=0)
    assert w.end == today and w.start <= w.end
