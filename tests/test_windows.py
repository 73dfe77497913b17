"""Incremental windows: never move backwards, always overlap, leave no gap."""

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


@given(days, st.lists(st.integers(0, 40), min_size=1, max_size=12), st.integers(0, 30))
def test_consecutive_windows_are_monotone_and_overlap_by_the_configured_days(
        first_run: date, gaps: list[int], overlap: int) -> None:
    """A series of runs, each ``gap`` days after the one before (several on one day too).

    Each run's watermark is the day it started (what the pipeline stores). Every window
    then ends on its run's day, starts exactly ``overlap`` days before the previous run's
    day, so it covers every day since the previous window ended, with ``overlap + 1`` days
    (the previous run's day included) asked twice, and no window ends before the previous.
    """
    previous = next_window(None, first_run, overlap)
    assert previous.is_full and previous.end == first_run
    today = first_run
    for gap in gaps:
        watermark, today = today, today + timedelta(days=gap)
        window = next_window(watermark, today, overlap)
        assert window.start is not None
        assert window.end == today >= previous.end  # monotone: never moves backwards
        assert window.start == previous.end - timedelta(days=overlap)  # the overlap, exactly
        assert window.start <= previous.end + timedelta(days=1)  # no gap after the last one
        assert (previous.end - window.start).days + 1 == overlap + 1  # days asked twice
        previous = window


@given(days, days, st.integers(0, 30))
def test_a_watermark_after_today_never_opens_a_gap(wm: date, today: date, overlap: int) -> None:
    """A clock set back (the watermark is in the future) still asks from before today."""
    w = next_window(wm, today, overlap)
    assert w.start is not None and w.end == today
    assert w.start == min(wm, today) - timedelta(days=overlap) <= w.end
