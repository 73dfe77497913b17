"""Fetch raw PubMed records for a topic: ESearch (history server) then EFetch in batches.

Biopython's ``Bio.Entrez`` builds every request (parameters, ``tool``/``email``/``api_key``,
POST when the id list is long); littrack replaces the one function it sends them with,
``Bio.Entrez.urlopen``, so that endpoints, timeouts, pacing and retries are littrack's
(``littrack.http``) rather than Entrez's (fixed URLs, no timeout, immediate retries of 429).
Replies are parsed with littrack's own safe streaming parser, never with ``Entrez.read``,
which would fetch unknown DTDs from the network and build whole sets in memory.
"""

from __future__ import annotations

import io
import logging
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.request import Request

from Bio import Entrez
from defusedxml import ElementTree as SafeET

from littrack.config import DEFAULT_EUTILS_URL, NcbiSettings, Topic
from littrack.errors import Incomplete, MalformedResponse, QueryRejected
from littrack.http import HttpClient, Response
from littrack.normalize import Deleted, Normalized
from littrack.normalize.pubmed import parse_efetch
from littrack.windows import Window, pubmed_term

log = logging.getLogger(__name__)

ESEARCH_CAP = 9999  # PubMed hands out at most this many ids per query (retstart < 9999)
RECHECK_MISSING = 1  # re-requests of PMIDs an EFetch silently left out


@dataclass
class SearchResult:
    """What ESearch said for one window (possibly split in date halves)."""

    ids: list[str]
    count: int
    webenv: str | None = None  # set when the ids came from one search (history paging works)
    query_key: str | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass
class Batch:
    """One EFetch batch, reconciled against the PMIDs asked for."""

    records: list[Normalized]
    deleted: list[str]
    missing: list[str]


# ---- the Entrez seam ---------------------------------------------------------------------
_transport_lock = threading.Lock()
_active: tuple[HttpClient, str] | None = None
_ENTREZ_BASE = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils"


class _Handle(io.BytesIO):
    """What Entrez expects back from urlopen: a readable body with ``headers`` and ``url``."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.body)
        self.headers = response.headers
        self.url = response.url


def _urlopen(request: Request, *args: Any, **kwargs: Any) -> _Handle:
    if _active is None:
        raise RuntimeError("littrack's Entrez transport used without an active client")
    client, base = _active
    url = request.full_url
    if url.startswith(_ENTREZ_BASE):
        request.full_url = base + url[len(_ENTREZ_BASE):]
    return _Handle(client.send(request, check=_check_xml_reply))


def _check_xml_reply(response: Response) -> None:
    """Reject, so the client retries, bodies NCBI sends with a 200 but cannot be used."""
    head = response.body[:2048].lstrip()
    if not head.startswith(b"<"):
        raise MalformedResponse(f"not XML: {head[:80]!r}", source="pubmed", url=response.url)
    if b"<ERROR>" in head and b"<PubmedArticle" not in head:
        raise MalformedResponse(f"in-band error: {_error_text(response.body)}",
                                source="pubmed", url=response.url)
    if b"<PubmedArticleSet" in head and not response.body.rstrip().endswith(
            b"</PubmedArticleSet>"):
        raise MalformedResponse("EFetch reply cut off before </PubmedArticleSet>",
                                source="pubmed", url=response.url)


def _error_text(body: bytes) -> str:
    start = body.find(b"<ERROR>")
    end = body.find(b"</ERROR>", start)
    return body[start + 7:end if end > 0 else start + 300].decode("utf-8", "replace").strip()


def install_transport(client: HttpClient, base_url: str) -> None:
    """Route Bio.Entrez requests through ``client`` to ``base_url`` (process-wide)."""
    global _active
    with _transport_lock:
        _active = (client, base_url.rstrip("/"))
        Entrez.urlopen = _urlopen  # type: ignore[attr-defined]
        # Entrez's own retry loop would re-send 429s at once; ours waits. One try each.
        Entrez.max_tries = 1


def uninstall_transport() -> None:
    global _active
    with _transport_lock:
        _active = None


# ---- ESearch -----------------------------------------------------------------------------
@dataclass
class ESearchReply:
    count: int
    ids: list[str]
    webenv: str | None
    query_key: str | None
    errors: list[tuple[str, str]]  # (kind, text): PhraseNotFound, FieldNotFound, ...
    warnings: list[tuple[str, str]]


def parse_esearch(body: bytes) -> ESearchReply:
    """Parse an eSearchResult; an ``<ERROR>`` or non-XML body is MalformedResponse."""
    try:
        root = SafeET.fromstring(body)
    except Exception as exc:  # defusedxml and expat raise several unrelated types
        raise MalformedResponse(f"ESearch reply is not valid XML: {exc}",
                                source="pubmed") from None
    if root.tag != "eSearchResult":
        raise MalformedResponse(f"ESearch reply has root <{root.tag}>", source="pubmed")
    err = root.find("ERROR")
    if err is not None:
        raise MalformedResponse(f"ESearch error: {(err.text or '').strip()}", source="pubmed")
    count_el = root.find("Count")
    if count_el is None or not (count_el.text or "").strip().isdigit():
        raise MalformedResponse("ESearch reply has no Count", source="pubmed")

    def pairs(tag: str) -> list[tuple[str, str]]:
        node = root.find(tag)
        return [] if node is None else [(c.tag, (c.text or "").strip()) for c in node]

    return ESearchReply(
        count=int(count_el.text or 0),
        ids=[(e.text or "").strip() for e in root.iterfind("IdList/Id")],
        webenv=root.findtext("WebEnv"),
        query_key=root.findtext("QueryKey"),
        errors=pairs("ErrorList"),
        warnings=pairs("WarningList"),
    )


class PubMed:
    """The PubMed source of one run: search a topic's window, then fetch PMIDs in batches."""

    def __init__(self, settings: NcbiSettings, client: HttpClient) -> None:
        self.settings = settings
        self.client = client
        install_transport(client, settings.base_url or DEFAULT_EUTILS_URL)

    def _identity(self) -> dict[str, str | None]:
        return {"tool": self.settings.tool, "email": self.settings.email,
                "api_key": self.settings.api_key}

    def _call(self, func: Any, **params: Any) -> bytes:
        with warnings.catch_warnings():
            # Entrez warns on every request without an email; littrack warns once at start.
            warnings.filterwarnings("ignore", message=".*Email address is not specified",
                                    category=UserWarning)
            handle = func(db="pubmed", **params, **self._identity())
        body = handle.read()
        return body.encode("utf-8") if isinstance(body, str) else body

    # -- search --
    def search(self, topic: Topic, window: Window) -> SearchResult:
        """All PMIDs of the topic in the window, splitting by date under the 9,999 cap."""
        # Incremental windows also ask for records *modified* in the window (corrections,
        # retractions); a full backfill needs no such clause.
        return self._search(topic, window, modified=not window.is_full, full=window.is_full)

    def _search(self, topic: Topic, window: Window, modified: bool, full: bool) -> SearchResult:
        assert topic.pubmed_query is not None
        term = pubmed_term(topic.pubmed_query, window, modified=modified)
        reply = parse_esearch(self._call(Entrez.esearch, term=term, retmax=ESEARCH_CAP,
                                         usehistory="y"))
        notes = self._vet(topic, reply, full)
        if reply.count <= len(reply.ids):
            return SearchResult(reply.ids, reply.count, reply.webenv, reply.query_key, notes)
        # More hits than ESearch hands out: halve the date range until each half fits.
        try:
            halves = window.split()
        except ValueError:
            raise Incomplete(f"{reply.count} records entered on one day exceed PubMed's "
                             f"{ESEARCH_CAP}-id limit; narrow the query", source="pubmed",
                             topic=topic.name) from None
        log.info("pubmed topic %s: %d hits > %d, splitting %s", topic.name, reply.count,
                 ESEARCH_CAP, window)
        seen: dict[str, None] = {}
        for half in halves:
            part = self._search(topic, half, modified, full=False)
            seen.update(dict.fromkeys(part.ids))
            notes += part.warnings
        return SearchResult(list(seen), len(seen), None, None, notes)

    def _vet(self, topic: Topic, reply: ESearchReply, full: bool) -> list[str]:
        """Turn ErrorList/WarningList into a rejection or logged warnings."""
        notes = [f"{k}: {v}" for k, v in reply.errors + reply.warnings
                 if k != "OutputMessage"]
        fields = [v for k, v in reply.errors if k == "FieldNotFound"]
        phrases = [v for k, v in reply.errors + reply.warnings
                   if k in ("PhraseNotFound", "QuotedPhraseNotFound")]
        if fields:
            raise QueryRejected(f"PubMed does not know the field(s) {', '.join(fields)} in "
                                f"the query; fix [topics.pubmed] query", source="pubmed",
                                topic=topic.name)
        # A rare synonym missing from the index is normal in an OR-list, so only a full
        # search that finds nothing *because* of unknown phrases is the user's error.
        if phrases and reply.count == 0 and full:
            raise QueryRejected(f"PubMed found nothing; phrase(s) not found: "
                                f"{', '.join(phrases)}", source="pubmed", topic=topic.name)
        for note in notes:
            log.warning("pubmed topic %s: ESearch says %s", topic.name, note)
        return notes

    # -- fetch --
    def fetch(self, ids: list[str], search: SearchResult | None = None) -> Iterator[Batch]:
        """EFetch ``ids`` in batches, downloading the next batch while this one is parsed.

        When ``ids`` is exactly the ESearch result in order, batches page the history
        server (short GETs); otherwise they POST id lists.
        """
        size = self.settings.batch_size
        use_history = bool(search and search.webenv and search.ids == ids)
        chunks = [ids[i:i + size] for i in range(0, len(ids), size)]

        def download(i: int) -> bytes:
            if use_history and search is not None:
                return self._call(Entrez.efetch, retmode="xml", WebEnv=search.webenv,
                                  query_key=search.query_key, retstart=i * size,
                                  retmax=len(chunks[i]))
            return self._call(Entrez.efetch, retmode="xml", id=",".join(chunks[i]))

        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="efetch") as pool:
            pending: Future[bytes] | None = pool.submit(download, 0) if chunks else None
            for i, chunk in enumerate(chunks):
                assert pending is not None
                body = pending.result()
                pending = pool.submit(download, i + 1) if i + 1 < len(chunks) else None
                yield self._reconcile(chunk, body)

    def _reconcile(self, asked: list[str], body: bytes) -> Batch:
        """Parse a batch and account for every PMID asked for: returned, deleted or missing."""
        batch = Batch([], [], [])
        self._parse_into(body, batch)
        wanted = set(asked)
        got = {r.record_id for r in batch.records} | set(batch.deleted)
        missing = [p for p in asked if p not in got]
        for _ in range(RECHECK_MISSING):
            if not missing:
                break
            self._parse_into(self._call(Entrez.efetch, retmode="xml", id=",".join(missing)),
                             batch)
            got = {r.record_id for r in batch.records} | set(batch.deleted)
            missing = [p for p in asked if p not in got]
        batch.records = [r for r in batch.records if r.record_id in wanted]
        batch.missing = missing
        if missing:
            log.warning("pubmed: %d PMID(s) were not returned by EFetch after a re-request: "
                        "%s", len(missing), ", ".join(missing[:10]))
        return batch

    def _parse_into(self, body: bytes, batch: Batch) -> None:
        seen = {r.record_id for r in batch.records}
        for item in parse_efetch(body):
            if isinstance(item, Deleted):
                batch.deleted.extend(item.pmids)
            elif item.record_id not in seen:
                seen.add(item.record_id)
                batch.records.append(item)
