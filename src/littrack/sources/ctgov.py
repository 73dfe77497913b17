"""ClinicalTrials.gov v2 studies for a topic and window, page by page, normalized.

The v2 paging contract has traps (see ``shared/research/ctgov_api_v2.md`` §3): a full page
carries a ``nextPageToken`` even when nothing follows (the next page is empty), tokens go
stale when the data change mid-walk (HTTP 400 "…start over from the first page"), and
``totalCount`` comes on the first page only. This module walks the pages, restarts a stale
walk from page 1 (the caller dedupes by NCT number), and reports what ``totalCount``
promised so the pipeline can refuse to advance the watermark on a short walk.

``/version``'s ``dataTimestamp`` is the search: asked once per run, it lets the pipeline skip
a topic whose data cannot have changed since the watermark (one request for all topics).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Sequence
from copy import copy
from dataclasses import dataclass
from typing import Any, Self

from littrack.config import CtgovSettings, Settings, Topic
from littrack.errors import MalformedResponse, QueryRejected, SourceError, StopRequested
from littrack.http import HttpClient, Response
from littrack.normalize import Normalized
from littrack.normalize.ctgov import dig, normalize_study
from littrack.sources import Batch, Hits
from littrack.vocab import CTGOV
from littrack.windows import Window, ctgov_filter

log = logging.getLogger(__name__)

MAX_RESTARTS = 3  # stale-token restarts of one walk before giving up
IDS_PER_REQUEST = 100  # NCT numbers per filter.ids request: ~1,200 characters of URL
_STALE = ("start over", "changed while you were paginating")
ALIASES_PATH = "protocolSection.identificationModule.nctIdAliases"


@dataclass
class StudyPage:
    """One /studies reply of a walk, as the service sent it."""

    studies: list[dict[str, Any]]
    total: int | None  # totalCount, first page of a walk only
    restarted: bool = False  # first page of a walk restarted after a stale token


def open_source(settings: Settings) -> ClinicalTrials:
    return ClinicalTrials(settings.ctgov, HttpClient(
        CTGOV, settings.ctgov.requests_per_minute / 60.0, settings.retry))


def _json(response: Response) -> Any:
    ctype = response.headers.get_content_type() if response.headers else ""
    if ctype != "application/json":
        raise MalformedResponse(f"expected JSON, got {ctype or 'no content type'}: "
                                f"{response.body[:80]!r}", source="ctgov", url=response.url)
    try:
        return json.loads(response.body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"invalid JSON: {exc}", source="ctgov",
                                url=response.url) from None


def _check_version(response: Response) -> None:
    """A /version reply that is JSON but not an object is retried like any garbled reply."""
    if not isinstance(_json(response), dict):
        raise MalformedResponse("/version reply is not an object", source="ctgov",
                                url=response.url)


def _studies_page(response: Response, *, first: bool) -> dict[str, Any]:
    """A /studies reply in the promised shape, or MalformedResponse (which the client retries).

    Checked inside the retry loop rather than after it, so a page that parses as JSON but is
    not a page (no ``studies`` list, a study without its NCT number, no ``totalCount`` on
    the first page although ``countTotal=true`` asked for it) is re-requested like a 5xx
    instead of failing the topic, or worse, being counted as complete.
    """
    body = _json(response)

    def bad(what: str) -> MalformedResponse:
        return MalformedResponse(f"/studies reply {what}", source="ctgov", url=response.url)

    if not isinstance(body, dict) or not isinstance(body.get("studies"), list):
        raise bad("has no 'studies' list")
    for study in body["studies"]:
        ident = study.get("protocolSection", {}) if isinstance(study, dict) else None
        ident = ident.get("identificationModule", {}) if isinstance(ident, dict) else None
        if not isinstance(ident, dict) or not isinstance(ident.get("nctId"), str):
            raise bad("has a study without protocolSection.identificationModule.nctId")
    total = body.get("totalCount")
    if first and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
        raise bad(f"page 1 has no totalCount (got {total!r})")
    token = body.get("nextPageToken")
    if token is not None and not isinstance(token, str):
        raise bad(f"has a non-string nextPageToken {token!r}")
    return body


class ClinicalTrials:
    """The ClinicalTrials.gov source of one run."""

    name = CTGOV
    search_ahead = False  # the search is one /version request shared by every topic

    def __init__(self, settings: CtgovSettings, client: HttpClient) -> None:
        self.settings = settings
        self.client = client
        self.overlap_days = settings.overlap_days
        self.base = settings.base_url.rstrip("/")
        self._version: list[str | None] = []  # /version's dataTimestamp, once asked
        self._version_lock = threading.Lock()

    def with_client(self, client: HttpClient) -> Self:
        other = copy(self)
        other.client = client
        return other

    def search(self, topic: Topic, window: Window) -> Hits:
        """The data version (asked once per run) and the query; ``fetch`` walks the pages."""
        with self._version_lock:
            if not self._version:
                self._version.append(self.data_timestamp())
        return Hits(None, version=self._version[0], handle=(topic, window))

    def fetch(self, hits: Hits, ids: Sequence[str] | None = None) -> Iterator[Batch]:
        """Every study of the search, one batch per page; a walk's first page announces
        ``totalCount`` (again after a restart, which may repeat studies)."""
        topic, window = hits.handle
        for page in self.pages(topic, window):
            yield Batch(self._normalized(page.studies), announced=page.total)

    def by_id(self, ids: Sequence[str]) -> Iterator[Batch]:
        """Studies by NCT number; one asked for as an alias comes back under its own."""
        asked = set(ids)
        for studies in self._pages_by_id(ids):
            batch = Batch([])
            for study in studies:
                record = normalize_study(study)
                batch.records.append(record)
                batch.aliases.update({a: record.record_id
                                      for a in dig(study, ALIASES_PATH) or () if a in asked})
            yield batch

    def _normalized(self, studies: list[dict[str, Any]]) -> list[Normalized]:
        """A page's studies as records; a stop request is honoured every 25 studies (a page
        of 1,000 takes longer to reshape than a stop may wait)."""
        out = []
        for n, study in enumerate(studies):
            if n % 25 == 0 and self.client.stop is not None and self.client.stop.is_set():
                raise StopRequested("stopped by signal while reading a page; rolled back")
            out.append(normalize_study(study))
        return out

    def count(self, topic: Topic) -> int:
        """The topic's total studies: one page of one study's id, with ``countTotal``
        (the API has no count-only request; this is its smallest reply)."""
        assert topic.ctgov is not None
        params = {**topic.ctgov.params(), "pageSize": "1", "countTotal": "true",
                  "fields": "NCTId"}
        total = self._page(params, first=True).get("totalCount")
        return int(total) if isinstance(total, int) else 0

    def _page(self, params: dict[str, str], *, first: bool) -> dict[str, Any]:
        """GET one /studies page, its shape checked inside the client's retry loop."""
        pages: list[dict[str, Any]] = []
        self.client.get(f"{self.base}/studies", params,
                        check=lambda r: pages.append(_studies_page(r, first=first)))
        return pages[-1]

    def data_timestamp(self) -> str | None:
        """``/version``'s dataTimestamp: when it has not moved, nothing can have changed."""
        body = _json(self.client.get(f"{self.base}/version", check=_check_version))
        ts = body.get("dataTimestamp")
        return str(ts) if ts else None

    def params(self, topic: Topic, window: Window) -> dict[str, str]:
        assert topic.ctgov is not None
        params = topic.ctgov.params()
        flt = ctgov_filter(window)
        if flt:
            params["filter.advanced"] = flt
        params["pageSize"] = str(self.settings.page_size)
        params["countTotal"] = "true"
        # Full study documents, no `fields=`: partial records would lose hasResults and
        # the date types (see the fields-limited fixtures).
        return params

    def pages(self, topic: Topic, window: Window) -> Iterator[StudyPage]:
        """Yield every page of the topic's studies in the window."""
        params = self.params(topic, window)
        restarts = 0
        token: str | None = None
        walk_total: int | None = None  # totalCount of the current walk
        walk_seen: set[str] = set()
        while True:
            page_params = dict(params)
            if token:
                page_params["pageToken"] = token
            try:
                body = self._page(page_params, first=token is None)
            except QueryRejected as exc:
                if token and exc.status == 400 and any(s in str(exc).lower() for s in _STALE):
                    restarts += 1
                    if restarts > MAX_RESTARTS:
                        raise SourceError(f"page tokens kept going stale ({restarts} restarts)",
                                          source="ctgov", topic=topic.name) from None
                    log.warning("ctgov topic %s: page token went stale; restarting from page "
                                "1 (%d/%d)", topic.name, restarts, MAX_RESTARTS)
                    token = None
                    continue
                raise
            total = body.get("totalCount") if token is None else None
            if token is None:
                walk_total, walk_seen = (total if isinstance(total, int) else None), set()
            walk_seen.update(s["protocolSection"]["identificationModule"]["nctId"]
                             for s in body["studies"])
            yield StudyPage(body["studies"], total if isinstance(total, int) else None,
                       restarted=token is None and restarts > 0)
            token = body.get("nextPageToken")
            # An empty page ends the walk too: the API hands out a token after every full page.
            if not token or not body["studies"]:
                return
            # Every study totalCount announced is in: the token after a full last page
            # would only fetch an empty page.
            if walk_total is not None and len(walk_seen) >= walk_total:
                return

    def _pages_by_id(self, nct_ids: Sequence[str]) -> Iterator[list[dict[str, Any]]]:
        """The studies with these NCT numbers (``filter.ids``), a chunk of ids per request.

        The service matches aliases too and answers with the canonical record, so a caller
        must not assume every study it gets back carries an id it asked for.
        """
        for i in range(0, len(nct_ids), IDS_PER_REQUEST):
            params = {"filter.ids": ",".join(nct_ids[i:i + IDS_PER_REQUEST]),
                      "pageSize": str(self.settings.page_size)}
            token: str | None = None
            while True:
                page_params = {**params, **({"pageToken": token} if token else {})}
                body = self._page(page_params, first=False)
                yield body["studies"]
                token = body.get("nextPageToken")
                if not token or not body["studies"]:
                    break
