"""A fetch parsed in two processes keeps its downloads going and its side process busy.

Against the E-utilities fake and a real side process: requests stay under way while
earlier replies wait to be parsed, and the replies fetched ahead for the next topic go to
the side process as soon as the fetch under way has shared out all of its own, but never
those of a fetch that was dropped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

import pytest

from littrack.http import HttpClient
from littrack.sources import Batch, Hits
from littrack.sources.pubmed import PubMed
from tests.builders.pubmed import article_xml
from tests.corpus import settings_for
from tests.fakes import CtgovFake, EutilsFake

BATCH = 5


@pytest.fixture
def pubmed(tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> Iterator[PubMed]:
    s = settings_for(tmp_path, eutils_fake, ctgov_fake)
    ncbi = dataclasses.replace(s.ncbi, parse_process="always", batch_size=BATCH)
    source = PubMed(ncbi, HttpClient("pubmed", ncbi.rate, s.retry))
    yield source
    source.close()


def _articles(eutils: EutilsFake, first: int, n: int) -> list[str]:
    pmids = [str(first + k) for k in range(n)]
    for pmid in pmids:
        eutils.add_article(pmid, article_xml(pmid), edat=date(2024, 5, 1))
    return pmids


def _got(batches: Iterable[Batch]) -> list[str]:
    return sorted(r.record_id for batch in batches for r in batch.records)


def test_requests_stay_under_way_while_earlier_replies_wait(
        pubmed: PubMed, eutils_fake: EutilsFake) -> None:
    """Replies that arrived and wait to be parsed do not hold a request's place: the next
    turn after they arrive sends ``depth`` requests more, up to ``depth`` replies waiting
    beside them (counting waiting replies as under way left the pacer idle while they
    were parsed)."""
    pmids = _articles(eutils_fake, 1000, 12 * BATCH)
    fetching = pubmed.fetch(Hits(None), pmids)
    depth, got = fetching.depth, [next(fetching)]
    assert depth >= 3  # (three requests a second without a key)
    for future in list(fetching.downloads.values()):
        future.result()  # every reply asked for so far has arrived
    assert len(fetching.downloads) >= depth - 1  # and waits: one was handed out
    got.append(next(fetching))  # a turn: as many requests as there were under way go out
    under_way = [f for f in fetching.downloads.values() if not f.done()]
    assert depth < len(fetching.downloads) <= 2 * depth and len(under_way) <= depth
    assert _got([*got, *fetching]) == sorted(pmids)


def test_replies_fetched_ahead_go_over_once_the_fetch_under_way_shared_out_its_own(
        pubmed: PubMed, eutils_fake: EutilsFake) -> None:
    now = _articles(eutils_fake, 1000, 6 * BATCH)
    ahead = _articles(eutils_fake, 2000, 6 * BATCH)
    dropped = _articles(eutils_fake, 3000, 6 * BATCH)
    gone = pubmed.prefetch(Hits(None), dropped)
    gone.close()  # (a prefetch the topic before proved wrong)
    nxt = pubmed.prefetch(Hits(None), ahead)
    assert nxt.shared is not None and nxt.shared.held and gone.shared is not None
    assert _got(pubmed.fetch(Hits(None), now)) == sorted(now)
    assert not nxt.shared.held  # released to the side process before its topic began
    assert gone.shared.held and gone.shared.running() == []  # never
    assert _got(nxt) == sorted(ahead)
