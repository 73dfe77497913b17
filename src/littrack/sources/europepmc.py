"""Europe PMC: preprints per topic, walked by cursor (``shared/research/europepmc.md``).

Its traps, and what this module does about them:

* **Paging** is by ``cursorMark`` only (``*`` first, then the previous ``nextCursorMark``).
  Cursors are base64 with ``+ / =``, so they are sent percent-encoded. The end of a walk is
  documented as an absent ``nextCursorMark`` but has also been seen as an empty page that
  hands back the cursor it was sent: the walk stops on an absent or repeated cursor, or an
  empty page.
* **Completeness**: the first page's ``hitCount`` is what the pipeline checks the received
  count against (it has been seen to promise more than the pages hold), so a short walk
  fails the topic and the watermark stays.
* **Errors in a 200**: ``{"errCode": 404, "errMsg": "Invalid page size ..."}`` is our
  mistake (QueryRejected, not retried); a page without ``hitCount`` or ``resultList``, seen
  as a transient failure, is retried under the client's policy like a 5xx.
* **Incremental** by ``FIRST_IDATE`` (``windows.europepmc_query``), never by publication date.
* **One record per work**: a ``MED`` result is the PubMed article, stored once by the PubMed
  source (``Batch.elsewhere``), so only preprints are this source's records.
* **Pacing**: no published limit, so a conservative default rate (``europepmc.
  requests_per_second``); the service asks for reasonable use.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Sequence
from typing import Any

from littrack.config import EuropePmcSettings, Settings, Topic
from littrack.errors import MalformedResponse, QueryRejected
from littrack.http import HttpClient, Response
from littrack.normalize.europepmc import PREPRINT, normalize_result, pubmed_id, record_key
from littrack.sources import Batch, Hits, SourceBase
from littrack.vocab import EUROPEPMC, PUBMED
from littrack.windows import Window, europepmc_query

log = logging.getLogger(__name__)

IDS_PER_QUERY = 20  # EXT_ID lookups per query: long OR lists have been seen to find nothing
TRIALS_PER_QUERY = 25  # NCT numbers OR-ed into one accession search (well under 1,500 chars)
FULLTEXT = "europepmc_fulltext"  # evidence of a trial named in a work's text


def open_source(settings: Settings) -> EuropePmc:
    return EuropePmc(settings.europepmc, HttpClient(
        EUROPEPMC, settings.europepmc.requests_per_second, settings.retry))


def _page(response: Response) -> dict[str, Any]:
    """A search page in the promised shape; an ``errCode`` reply is our mistake."""
    try:
        body = json.loads(response.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"invalid JSON: {exc}", source=EUROPEPMC,
                                url=response.url) from None
    if not isinstance(body, dict):
        raise MalformedResponse("search reply is not an object", source=EUROPEPMC,
                                url=response.url)
    if "errCode" in body or "errMsg" in body:
        raise QueryRejected(f"Europe PMC error {body.get('errCode')}: {body.get('errMsg')}",
                            source=EUROPEPMC, url=response.url)
    hits = body.get("hitCount")
    results = body.get("resultList", {}).get("result") \
        if isinstance(body.get("resultList"), dict) else None
    if not isinstance(hits, int) or isinstance(hits, bool) or not isinstance(results, list):
        raise MalformedResponse("search reply without hitCount or resultList (a transient "
                                "failure of the service)", source=EUROPEPMC, url=response.url)
    for result in results:
        if not isinstance(result, dict):
            raise MalformedResponse("a search result is not an object", source=EUROPEPMC,
                                    url=response.url)
        record_key(result)
    cursor = body.get("nextCursorMark")
    if cursor is not None and not isinstance(cursor, str):
        raise MalformedResponse(f"non-string nextCursorMark {cursor!r}", source=EUROPEPMC,
                                url=response.url)
    return body


class EuropePmc(SourceBase):
    """The Europe PMC source of one run."""

    name = EUROPEPMC
    search_ahead = False  # the search is the walk itself; nothing to ask ahead

    def __init__(self, settings: EuropePmcSettings, client: HttpClient) -> None:
        self.settings = settings
        self.client = client
        self.overlap_days = settings.overlap_days
        self.base = settings.base_url.rstrip("/")

    def search(self, topic: Topic, window: Window) -> Hits:
        assert topic.europepmc_query is not None
        return Hits(None, handle=europepmc_query(topic.europepmc_query, window))

    def count(self, topic: Topic) -> int:
        """The topic's total hits: one id-only page of one result."""
        assert topic.europepmc_query is not None
        pages: list[dict[str, Any]] = []
        self.client.get(f"{self.base}/search", {
            "query": topic.europepmc_query, "resultType": "idlist", "format": "json",
            "pageSize": "1", "cursorMark": "*"}, check=lambda r: pages.append(_page(r)))
        return int(pages[-1]["hitCount"])

    def fetch(self, hits: Hits, ids: Sequence[str] | None = None) -> Iterator[Batch]:
        return self.walk(str(hits.handle))

    def by_id(self, ids: Sequence[str]) -> Iterator[Batch]:
        """Preprints by ``PPR`` id, a few per query (``EXT_ID:… AND SRC:PPR``)."""
        for i in range(0, len(ids), IDS_PER_QUERY):
            chunk = ids[i:i + IDS_PER_QUERY]
            query = "(" + " OR ".join(f"EXT_ID:{x}" for x in chunk) + ") AND SRC:PPR"
            for batch in self.walk(query):
                batch.announced = None  # fewer found than asked is reported per id
                yield batch

    def trial_mentions(self, nct_ids: Sequence[str], window: Window) -> Iterator[Batch]:
        """Works that name a tracked trial (``ACCESSION_ID:NCT…``, text-mined, mostly from
        full text), indexed or updated in ``window``.

        Trials are asked for in groups, so a quiet run costs one request per group; a group
        with hits is asked again trial by trial, since a result does not say which of the
        group's numbers it names. A journal article's link is ``europepmc_fulltext``
        evidence; a preprint is stored as a record and linked to the trial with the same
        evidence in ``preprint_links``.
        """
        for i in range(0, len(nct_ids), TRIALS_PER_QUERY):
            group = list(nct_ids[i:i + TRIALS_PER_QUERY])
            found = list(self._mentioning(group, window))
            if not any(b.records or b.elsewhere for b in found):
                continue
            if len(group) > 1:
                found = [b for nct in group for b in self._mentioning([nct], window)]
            yield from found

    def _mentioning(self, group: list[str], window: Window) -> Iterator[Batch]:
        query = europepmc_query(" OR ".join(f"ACCESSION_ID:{n}" for n in group), window)
        for batch in self.walk(query):
            if len(group) == 1:
                batch.links = [(group[0], pmid, FULLTEXT)
                               for pmid in batch.elsewhere.get(PUBMED, [])]
                batch.preprint_links = [(group[0], r.record_id, FULLTEXT)
                                        for r in batch.records]
            yield batch

    def walk(self, query: str) -> Iterator[Batch]:
        """Every page of ``query``; the first page's batch carries ``hitCount``."""
        cursor = "*"
        first = True
        pages: list[dict[str, Any]] = []
        while True:
            self.client.get(f"{self.base}/search", {
                "query": query, "resultType": "core", "format": "json",
                "pageSize": str(self.settings.page_size), "cursorMark": cursor,
            }, check=lambda r: pages.append(_page(r)))
            body = pages.pop()
            results: list[dict[str, Any]] = body["resultList"]["result"]
            batch = Batch([], announced=body["hitCount"] if first else None)
            for result in results:
                collection, ident = record_key(result)
                pmid = pubmed_id(result)
                if collection == PREPRINT:
                    batch.records.append(normalize_result(result))
                elif pmid is not None:
                    batch.elsewhere.setdefault(PUBMED, []).append(pmid)
                else:  # PMC-only, Agricola, ...: received, not tracked
                    batch.elsewhere.setdefault(f"{EUROPEPMC}:{collection}", []).append(ident)
            yield batch
            nxt = body.get("nextCursorMark")
            if not results or not nxt or nxt == cursor:
                return
            cursor, first = nxt, False
