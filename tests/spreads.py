"""How a big topic's hits spread over Entrez dates: shapes for the over-cap ESearch checks.

An over-cap search is walked down by PMID (``PubMed._walk_down``), so what it costs should
not depend on how the hits spread over time (date slices sized from counts did: from 3 to 6
ESearches for the same 25,000 hits). These are the shapes it is checked on
(``tests/test_sources.py``, ``bench/requests_used.py``): literature growing steadily, evenly
spread, growing by a fixed rate a year, arriving in bursts, all recent. Each returns N
Entrez dates, oldest first, by quantiles (deterministic, no random draw).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import date, timedelta

Spread = Callable[[int, date], list[date]]


def _by_quantile(n: int, first: date, last: date, inverse: Callable[[float], float]
                 ) -> list[date]:
    """N dates whose share ``u`` of the hits lies before ``first + span * inverse(u)``."""
    span = (last - first).days
    return [first + timedelta(days=int(span * inverse((i + 0.5) / n))) for i in range(n)]


def bench_growth(n: int, today: date) -> list[date]:
    """The bench's topic: 2016 to October 2026, density rising linearly from nothing."""
    return _by_quantile(n, date(2016, 1, 1), date(2026, 10, 1), math.sqrt)


def even_24_years(n: int, today: date) -> list[date]:
    """As many hits every day of the last 24 years."""
    return _by_quantile(n, today - timedelta(days=24 * 365), today, lambda u: u)


def growing_30_years(n: int, today: date) -> list[date]:
    """Density rising linearly from nothing 30 years ago up to today."""
    return _by_quantile(n, today - timedelta(days=30 * 365), today, math.sqrt)


def compound_7_percent(n: int, today: date) -> list[date]:
    """7% more hits every year than the year before, since 1950 (PubMed-like growth)."""
    years = today.year - 1950
    r = math.log(1.07)
    total = math.exp(r * years) - 1
    return _by_quantile(n, date(1950, 1, 1), today,
                        lambda u: math.log(1 + u * total) / (r * years))


def bursts(n: int, today: date) -> list[date]:
    """A steady trickle over 20 years, with three bursts (half the hits) in 2009, 2020-21
    and the last six months."""
    out: list[date] = []
    parts = [(0.5, today - timedelta(days=20 * 365), today),
             (0.1, date(2009, 4, 1), date(2009, 10, 1)),
             (0.25, date(2020, 3, 1), date(2021, 6, 1)),
             (0.15, today - timedelta(days=182), today)]
    for share, first, last in parts:
        out += _by_quantile(round(n * share), first, last, lambda u: u)
    out += [today] * (n - len(out))
    return sorted(out)


def recent_4_years(n: int, today: date) -> list[date]:
    """A new subject: all its hits in the last 4 years, evenly."""
    return _by_quantile(n, today - timedelta(days=4 * 365), today, lambda u: u)


SPREADS: dict[str, Spread] = {
    "bench growth (2016-)": bench_growth,
    "even, 24 years": even_24_years,
    "growing, 30 years": growing_30_years,
    "+7%/year since 1950": compound_7_percent,
    "bursts": bursts,
    "new, 4 years": recent_4_years,
}
