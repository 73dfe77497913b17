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
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from littrack.config import CtgovSettings, Settings, Topic
from littrack.errors import MalformedResponse, QueryRejected, SourceError, StopRequested
from littrack.http import HttpClient, Response
from littrack.normalize.ctgov import dig, normalize_study
from littrack.sources import Batch, Hits, SourceBase
from littrack.vocab import CTGOV
from littrack.windows import Window, ctgov_filter

log = logging.getLogger(__name__)

MAX_RESTARTS = 3  # stale-token restarts of one walk before giving up
IDS_PER_REQUEST = 100  # NCT numbers per filter.ids request: ~1,200 characters of URL
STUDIES_PER_BATCH = 100  # studies reshaped and stored at a time while a page is read
_STALE = ("start over", "changed while you were paginating")
ALIASES_PATH = "protocolSection.identificationModule.nctIdAliases"


@dataclass
class StudyPage:
    """One /studies reply of a walk, checked but not yet decoded study by study.

    A page of 1,000 full studies is some 25 MB of JSON and several times that as Python
    objects; holding them all at once made a first run's memory grow with its pages. The
    reply's text is kept with where each study lies in it (``_scan_page``), and ``studies``
    decodes one study at a time, each freed once reshaped.
    """

    text: str
    spans: list[tuple[int, int]]  # each study's JSON object in ``text``
    ids: list[str]  # each study's NCT number, in order
    total: int | None  # totalCount, first page of a walk only
    token: str | None  # nextPageToken
    restarted: bool = False  # first page of a walk restarted after a stale token

    def studies(self) -> Iterator[dict[str, Any]]:
        """Each study, decoded."""
        for start, end in self.spans:
            yield json.loads(self.text[start:end])


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
        _nct_of(study, bad)
    _check_meta(body, first, bad)
    return body


def _nct_of(study: Any, bad: Callable[[str], MalformedResponse]) -> str:
    ident = study.get("protocolSection", {}) if isinstance(study, dict) else None
    ident = ident.get("identificationModule", {}) if isinstance(ident, dict) else None
    if not isinstance(ident, dict) or not isinstance(ident.get("nctId"), str):
        raise bad("has a study without protocolSection.identificationModule.nctId")
    return str(ident["nctId"])


def _check_meta(body: dict[str, Any], first: bool,
                bad: Callable[[str], MalformedResponse]) -> None:
    total = body.get("totalCount")
    if first and (not isinstance(total, int) or isinstance(total, bool) or total < 0):
        raise bad(f"page 1 has no totalCount (got {total!r})")
    token = body.get("nextPageToken")
    if token is not None and not isinstance(token, str):
        raise bad(f"has a non-string nextPageToken {token!r}")


_SPACE = re.compile(r"[ \t\n\r]*")
_DECODE = json.JSONDecoder().raw_decode


def _skip(text: str, i: int) -> int:
    """The index of the first non-space character at or after ``i``."""
    m = _SPACE.match(text, i)
    return m.end() if m else i


def _after_item(text: str, i: int, close: str) -> int:
    """Past an array item or object member ending at ``i``: at the next one after a ',',
    or at the ``close`` bracket; a trailing ',' is not JSON."""
    i = _skip(text, i)
    if text[i:i + 1] == ",":
        i = _skip(text, i + 1)
        if text[i:i + 1] == close:
            raise ValueError(f"trailing ',' before '{close}' at {i}")
    elif text[i:i + 1] != close:
        raise ValueError(f"expected ',' or '{close}' at {i}")
    return i


def _scan_page(response: Response, *, first: bool) -> StudyPage:
    """``_studies_page``'s checks, made study by study: each study is decoded, checked and
    dropped, so a page's objects never exist all at once (``StudyPage``)."""
    ctype = response.headers.get_content_type() if response.headers else ""
    if ctype != "application/json":
        raise MalformedResponse(f"expected JSON, got {ctype or 'no content type'}: "
                                f"{response.body[:80]!r}", source="ctgov", url=response.url)

    def bad(what: str) -> MalformedResponse:
        return MalformedResponse(f"/studies reply {what}", source="ctgov", url=response.url)

    try:
        text = response.body.decode("utf-8")
        meta, spans, ids = _walk_object(text, bad)
    except (ValueError, UnicodeDecodeError) as exc:
        raise MalformedResponse(f"invalid JSON: {exc}", source="ctgov",
                                url=response.url) from None
    if spans is None:
        raise bad("has no 'studies' list")
    _check_meta(meta, first, bad)
    total = meta.get("totalCount")
    return StudyPage(text, spans, ids, total if isinstance(total, int) else None,
                     meta.get("nextPageToken"))


def _walk_object(text: str, bad: Callable[[str], MalformedResponse]
                 ) -> tuple[dict[str, Any], list[tuple[int, int]] | None, list[str]]:
    """The top-level object of a /studies reply: its other members decoded, the studies
    located (and checked) one by one. Raises ValueError on anything that is not JSON."""
    meta: dict[str, Any] = {}
    spans: list[tuple[int, int]] | None = None
    ids: list[str] = []
    i = _skip(text, 0)
    if text[i:i + 1] != "{":
        raise bad("has no 'studies' list")
    i = _skip(text, i + 1)
    while text[i:i + 1] != "}":
        key, i = _DECODE(text, i)
        i = _skip(text, i)
        if not isinstance(key, str) or text[i:i + 1] != ":":
            raise ValueError(f"expected a member name and ':' at {i}")
        i = _skip(text, i + 1)
        if key == "studies" and text[i:i + 1] == "[":
            spans, ids = [], []
            i = _skip(text, i + 1)
            while text[i:i + 1] != "]":
                study, end = _DECODE(text, i)
                ids.append(_nct_of(study, bad))
                spans.append((i, end))
                del study
                i = _after_item(text, end, "]")
            i += 1
        else:
            value, i = _DECODE(text, i)
            if key == "studies":  # present but not a list
                spans = None
            meta[key] = value
        i = _after_item(text, i, "}")
    if _skip(text, i + 1) != len(text):
        raise ValueError("extra data after the reply")
    return meta, spans, ids


class ClinicalTrials(SourceBase):
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

    def search(self, topic: Topic, window: Window) -> Hits:
        """The data version (asked once per run) and the query; ``fetch`` walks the pages."""
        with self._version_lock:
            if not self._version:
                self._version.append(self.data_timestamp())
        return Hits(None, version=self._version[0], handle=(topic, window))

    def adopt_version(self, version: str | None) -> None:
        """Use the data version another worker asked for this round (a shared store), so
        the round asks ``/version`` once whatever the number of workers."""
        with self._version_lock:
            self._version[:] = [version]

    def fetch(self, hits: Hits, ids: Sequence[str] | None = None) -> Iterator[Batch]:
        """Every study of the search, in batches of ``STUDIES_PER_BATCH`` as each page is
        read; a walk's first page announces ``totalCount`` (again after a restart, which
        may repeat studies). A stop request is honoured every 25 studies (a page of 1,000
        takes longer to reshape than a stop may wait)."""
        topic, window = hits.handle
        for page in self.pages(topic, window):
            announced, records = page.total, []
            for n, study in enumerate(page.studies()):
                if n % 25 == 0 and self.client.stop is not None and self.client.stop.is_set():
                    raise StopRequested("stopped by signal while reading a page; rolled back")
                # Kept re-serialised compactly, not as sent: the same study stores the same
                # bytes however the service formats its pages.
                records.append(normalize_study(study))
                if len(records) == STUDIES_PER_BATCH:
                    yield Batch(records, announced=announced)
                    announced, records = None, []
            if records or announced is not None:
                yield Batch(records, announced=announced)
            del page, records  # before the next page is downloaded

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

    def count(self, topic: Topic) -> int:
        """The topic's total studies: one page of one study's id, with ``countTotal``
        (the API has no count-only request; this is its smallest reply)."""
        assert topic.ctgov is not None
        params = {**topic.ctgov.params(), "pageSize": "1", "countTotal": "true",
                  "fields": "NCTId"}
        total = self._page(params, first=True).get("totalCount")
        return int(total) if isinstance(total, int) else 0

    def _scanned(self, params: dict[str, str], *, first: bool) -> StudyPage:
        """GET one /studies page of a walk, checked study by study in the retry loop."""
        pages: list[StudyPage] = []
        self.client.get(f"{self.base}/studies", params,
                        check=lambda r: pages.append(_scan_page(r, first=first)))
        return pages[-1]

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
                page = self._scanned(page_params, first=token is None)
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
            if token is None:
                walk_total, walk_seen = page.total, set()
            else:
                page.total = None  # totalCount counts on a walk's first page only
            page.restarted = token is None and restarts > 0
            walk_seen.update(page.ids)
            empty = not page.spans
            token = page.token
            yield page
            del page  # its text: the next page's comes in meanwhile otherwise
            # An empty page ends the walk too: the API hands out a token after every full page.
            if not token or empty:
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
