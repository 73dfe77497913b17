"""PubMed through the E-utilities: ESearch (history server) then EFetch in batches.

Biopython's ``Bio.Entrez`` builds every request: the parameters, ``tool``/``email``/
``api_key``, and the switch to POST when an id list or a query is long (NCBI's advice). It
does not send them: its sender has fixed URLs, no timeout, and retries a 429 at once, and
configuring it means changing module attributes of Bio.Entrez for the whole process. So the
request Entrez builds is sent by littrack's own ``HttpClient`` (endpoint, timeouts, pacing,
one retry policy), and no module state of Biopython is touched: building a request only
reads Entrez's defaults, which littrack always overrides, so it is safe on the side threads
that run searches ahead and downloads in parallel.

Replies are parsed with littrack's own safe streaming parser, never with ``Entrez.read``,
which would fetch unknown DTDs from the network and build whole sets in memory.
"""

from __future__ import annotations

import logging
import math
import statistics
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit
from urllib.request import Request

from Bio import Entrez
from defusedxml import ElementTree as SafeET

from littrack.config import DEFAULT_EUTILS_URL, NcbiSettings, Settings, Topic
from littrack.errors import MalformedResponse, QueryRejected, StopRequested
from littrack.http import HttpClient, Response
from littrack.normalize import Normalized
from littrack.normalize.pubmed_efetch import parse_reply, parse_reply_prepared
from littrack.sideprocess import SharedJobs, SideProcess, usable_cpus
from littrack.sources import Batch, Hits, SourceBase
from littrack.vocab import PUBMED
from littrack.windows import Window, pubmed_term

log = logging.getLogger(__name__)

ESEARCH_CAP = 9999  # PubMed hands out at most this many ids per query (retstart < 9999)
RECHECK_MISSING = 1  # re-requests of PMIDs an EFetch silently left out
# EFetch downloads side by side (see fetch), with a key: 4 replies of 500 that arrive at
# once come faster than a batch is parsed and stored, and each waiting reply is ~6 MB.
EFETCH_IN_FLIGHT = 4
# ... and up to this many while each request takes long enough that 4 would leave the
# pacer idle (``_EFetch.depth``): a backfill of 12,000 articles with 0.5 s a request took
# 5.31 s instead of 5.42 (medians of 10 A/B runs; always 6: 5.22 against 5.37), while
# always 6 raised a big first run's peak, whose replies arrive at once, from 207 to 226 MB
# (bench/memory.py; 204 MB as it is).
EFETCH_IN_FLIGHT_MAX = 6
# ``parse_process = "auto"``: a fetch of this many batches or more is parsed in a side
# process (its start, a fifth of a second, pays for itself within the first batch).
PARSE_ASIDE_MIN_BATCHES = 3
# One parsed EFetch reply: its records and its withdrawn PMIDs.
Parsed = tuple[list[Normalized], list[str]]
# Above any PMID: the open top of the PMID ranges an over-cap search is walked down by.
UID_MAX = 999_999_999
# NCBI relays backend outages as HTTP 400 <ERROR> envelopes (research notes §5): retry those.
TRANSIENT_400 = (b"Failed to connect to PubOne", b"proxy_stream()")


@dataclass(frozen=True)
class History:
    """Where ESearch left its result on the history server (EFetch pages it by offset)."""

    webenv: str
    query_key: str | None


def open_source(settings: Settings) -> PubMed:
    return PubMed(settings.ncbi, HttpClient(PUBMED, settings.ncbi.rate, settings.retry))


def entrez_request(url: str, params: dict[str, Any]) -> Request:
    """The request ``Bio.Entrez`` would send for ``params`` to ``url``, built but not sent.

    ``email`` may be None (no address configured): Entrez would then warn on every request
    through the process-wide warnings machinery, so it is handed an empty address, which
    it does not warn about, and the empty parameter is taken out of the request again.
    """
    no_email = not params.get("email")
    if no_email:
        params = {**params, "email": ""}
    request: Request = Entrez._build_request(url, params)  # type: ignore[no-untyped-call]
    if no_email:
        if request.data is not None:
            body = request.data if isinstance(request.data, bytes) else b""
            request.data = urlencode(_without_email(body.decode("utf-8"))).encode("utf-8")
        else:
            parts = urlsplit(request.full_url)
            request.full_url = urlunsplit(parts._replace(query=urlencode(
                _without_email(parts.query))))
    return request


def _without_email(query: str) -> list[tuple[str, str]]:
    return [(k, v) for k, v in parse_qsl(query, keep_blank_values=True) if k != "email"]


def _check_xml_reply(response: Response) -> None:
    """Reject, so the client retries, bodies NCBI sends with a 200 but cannot be used.

    ESearch replies are small, so they are parsed here in full: a garbled one is retried like
    a 5xx. EFetch replies are only checked for their envelope; their records are parsed (and
    a garbled batch re-requested) by ``PubMed.fetch``.
    """
    head = response.body[:2048].lstrip()
    if not head.startswith(b"<"):
        raise MalformedResponse(f"not XML: {head[:80]!r}", source="pubmed", url=response.url)
    if b"<ERROR>" in head and b"<PubmedArticle" not in head:
        raise MalformedResponse(f"in-band error: {_error_text(response.body)}",
                                source="pubmed", url=response.url)
    # The tail alone: stripping the whole body copied a 6 MB reply into fresh pages.
    tail = response.body[-256:].rstrip() or response.body.rstrip()[-256:]
    if b"<PubmedArticleSet" in head and not tail.endswith(
            (b"</PubmedArticleSet>", b"<PubmedArticleSet/>")):
        raise MalformedResponse("EFetch reply cut off before </PubmedArticleSet>",
                                source="pubmed", url=response.url)
    if b"<eSearchResult" in head:
        parse_esearch(response.body)


def _error_text(body: bytes) -> str:
    start = body.find(b"<ERROR>")
    end = body.find(b"</ERROR>", start)
    return body[start + 7:end if end > 0 else start + 300].decode("utf-8", "replace").strip()


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


class PubMed(SourceBase):
    """The PubMed source of one run: search a topic's window, then fetch PMIDs in batches."""

    name = PUBMED
    search_ahead = True  # one ESearch per topic, independent of the others

    def __init__(self, settings: NcbiSettings, client: HttpClient) -> None:
        self.settings = settings
        self.client = client
        self.overlap_days = settings.overlap_days
        self.base = (settings.base_url or DEFAULT_EUTILS_URL).rstrip("/")
        client.secrets = (settings.api_key,) if settings.api_key else ()
        client.transient_4xx = TRANSIENT_400
        # Its process starts with the first fetch that wants it and serves the run's later
        # topics (a start costs a fifth of a second); one object, so the copies that fetch
        # ahead on other clients (``with_client``) share it.
        self._aside = SideProcess("pubmed: parsing EFetch replies", warm=parse_reply.__module__)
        self.round_trips = RoundTrips()  # of its requests, shared the same way

    def close(self) -> None:
        """Stop the side process kept for the run's later topics."""
        self._aside.close()

    def _call(self, util: str, **params: Any) -> bytes:
        return self._send(util, **params).body

    def _send(self, util: str, **params: Any) -> Response:
        """One E-utility request: built by Bio.Entrez, sent (paced, retried) by our client."""
        request = entrez_request(f"{self.base}/{util}.fcgi", {
            "db": "pubmed", **params, "tool": self.settings.tool,
            "email": self.settings.email, "api_key": self.settings.api_key})
        reply = self.client.send(request, check=_check_xml_reply)
        self.round_trips.add(reply.seconds)
        return reply

    def count(self, topic: Topic) -> int:
        """The topic's total hits (``retmax=0``: a count and the error lists, no ids)."""
        assert topic.pubmed_query is not None
        reply = parse_esearch(self._call("esearch", term=topic.pubmed_query, retmax=0))
        self._vet(topic, reply, full=True)
        return reply.count

    # -- search --
    def search(self, topic: Topic, window: Window) -> Hits:
        """All PMIDs of the topic in the window, walked down by PMID under the 9,999 cap."""
        # Incremental windows also ask for records *modified* in the window (corrections,
        # retractions); a full backfill needs no such clause.
        hits = self._search(topic, window, modified=not window.is_full, full=window.is_full)
        if hits.notes:
            # A term missing from the index is normal in a long OR-list: one line per topic
            # (every PMID range of a big topic repeats the same notes), not one warning per term.
            unique = list(dict.fromkeys(hits.notes))
            shown = "; ".join(unique[:5]) + (f"; … {len(unique) - 5} more"
                                             if len(unique) > 5 else "")
            log.info("pubmed topic %s: ESearch notes: %s", topic.name, shown)
        return hits

    def _search(self, topic: Topic, window: Window, modified: bool, full: bool) -> Hits:
        assert topic.pubmed_query is not None
        term = pubmed_term(topic.pubmed_query, window, modified=modified)
        reply = parse_esearch(self._call("esearch", term=term, retmax=ESEARCH_CAP,
                                         usehistory="y"))
        notes = self._vet(topic, reply, full)
        if reply.count <= len(reply.ids):
            history = History(reply.webenv, reply.query_key) if reply.webenv else None
            return Hits(reply.ids, notes=notes, handle=history)
        log.info("pubmed topic %s: %d hits > %d, walking down by PMID", topic.name,
                 reply.count, ESEARCH_CAP)
        return Hits(self._walk_down(topic, term, 1, UID_MAX, reply, notes), notes=notes)

    def _walk_down(self, topic: Topic, term: str, lo: int, hi: int, reply: ESearchReply,
                   notes: list[str]) -> list[str]:
        """All PMIDs of ``term`` within ``lo:hi[uid]``, of which ``reply`` holds the first
        9,999 ids (in the service's order) and the count.

        ESearch lists PubMed hits newest first, by descending PMID (every real reply on
        file does), so an over-cap reply holds every hit from its lowest PMID up: one
        more ESearch for the hits below that PMID gets the next 9,999 and the count left,
        and so on down. N hits cost ceil(N / 9,999) ESearches, whatever their spread
        over time, and no date slice can hold too many (a day of more than 9,999 entries
        was a hard stop for date slicing). The order is checked, never assumed: the counts
        say whether the hits from the lowest PMID up are exactly the ones listed (total
        minus the count below). If more are there (another order), that range is halved
        at the middle of the ids it listed and each half walked the same way: complete
        in any order, only dearer.
        """
        found: dict[str, None] = {}
        while True:
            if reply.count <= len(reply.ids):
                found.update(dict.fromkeys(reply.ids))
                return list(found)
            if not reply.ids:
                raise MalformedResponse(f"ESearch counted {reply.count} hits and listed no "
                                        f"id", source="pubmed", topic=topic.name)
            pmids = sorted(int(i) for i in reply.ids)
            lowest = pmids[0]
            below = self._uid_range(topic, term, lo, lowest - 1, notes) if lowest > lo \
                else None
            held = reply.count - (below.count if below else 0)  # hits in lowest:hi
            if held <= len(pmids):
                found.update(dict.fromkeys(reply.ids))
            else:  # not listed by PMID: halve the range at the middle of what it listed
                mid = min(max(pmids[len(pmids) // 2], lowest), hi - 1)
                for a, b in ((mid + 1, hi), (lowest, mid)):
                    part = self._uid_range(topic, term, a, b, notes)
                    found.update(dict.fromkeys(self._walk_down(topic, term, a, b, part,
                                                               notes)))
            if below is None:
                return list(found)
            reply, hi = below, lowest - 1

    def _uid_range(self, topic: Topic, term: str, lo: int, hi: int,
                   notes: list[str]) -> ESearchReply:
        """One ESearch of ``term`` limited to PMIDs ``lo`` to ``hi``."""
        reply = parse_esearch(self._call("esearch", term=f"({term}) AND {lo}:{hi}[uid]",
                                         retmax=ESEARCH_CAP))
        notes += self._vet(topic, reply, full=False)
        return reply

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
        return notes

    # -- fetch --
    def fetch(self, hits: Hits, ids: Sequence[str] | None = None) -> _EFetch:
        """EFetch ``ids`` (all of ``hits.ids`` by default) in batches (see ``_EFetch``);
        nothing is sent before the first batch is asked for."""
        return self._start(hits, ids, ahead=False)

    def prefetch(self, hits: Hits, ids: Sequence[str] | None = None) -> _EFetch:
        """``fetch``, with its first replies asked for now: they arrive while the topic before
        is still being stored (``pipeline.Runner._prefetch_next``). Until it runs, its
        replies go to the side process only when it has nothing else to do (``SharedJobs``).
        ``close`` it if it is not used.

        As many are asked for as a topic keeps in flight, so its first batches are there
        to work on when it starts instead of a round trip later (a backfill of 12,000
        articles with 0.5 s a request: 0.1-0.95 s sooner than with one reply, medians of
        four A/B runs of five). They wait beside the topic still being stored: a big first
        run's peak was 213-215 MB instead of 194 (bench/memory.py; 261-279 MB before
        memory.hand_back_large_blocks)."""
        return self._start(hits, ids, ahead=True)

    def _start(self, hits: Hits, ids: Sequence[str] | None, *, ahead: bool) -> _EFetch:
        ids = list(hits.ids or ()) if ids is None else list(ids)
        history = hits.handle if isinstance(hits.handle, History) and hits.ids == ids else None
        fetching = _EFetch(self, ids, history)
        if ahead:
            fetching.begin(held=True)
        return fetching

    def by_id(self, ids: Sequence[str]) -> Iterator[Batch]:
        return self.fetch(Hits(None), ids)

    def _parser_process(self, batches: int) -> SideProcess | None:
        """A side process to parse in, when ``parse_process`` says so for this many batches."""
        mode = self.settings.parse_process
        if mode == "never" or (mode == "auto" and (batches < PARSE_ASIDE_MIN_BATCHES
                                                   or usable_cpus() < 2)):
            return None
        return self._aside

    def _reconcile(self, asked: list[str], body: bytes | None, again: Callable[[], bytes],
                   batch: Batch | None = None) -> Batch:
        """Parse a batch (unless ``batch``, parsed already; ``body`` None: downloaded
        ``again``) and account for every PMID asked for: returned, deleted or missing."""
        if batch is None:
            batch = self._parse_batch(again() if body is None else body, again)
        elif self.client.stop is not None and self.client.stop.is_set():
            raise StopRequested("stopped by signal while parsing a batch; rolled back")
        wanted = set(asked)
        got = {r.record_id for r in batch.records} | set(batch.deleted)
        missing = [p for p in asked if p not in got]
        for _ in range(RECHECK_MISSING):
            if not missing:
                break
            log.info("pubmed: EFetch returned %d of %d PMIDs asked for; asking again for %d",
                     len(asked) - len(missing), len(asked), len(missing))
            ids = ",".join(missing)

            def refetch(ids: str = ids) -> bytes:
                return self._call("efetch", retmode="xml", id=ids)

            more = self._parse_batch(refetch(), refetch)
            seen = {r.record_id for r in batch.records}
            batch.records += [r for r in more.records if r.record_id not in seen]
            batch.deleted += more.deleted
            got = {r.record_id for r in batch.records} | set(batch.deleted)
            missing = [p for p in asked if p not in got]
        batch.records = [r for r in batch.records if r.record_id in wanted]
        batch.missing = missing
        if missing:
            log.warning("pubmed: %d PMID(s) were not returned by EFetch after a re-request: "
                        "%s", len(missing), ", ".join(missing[:10]))
        return batch

    def _parse_batch(self, body: bytes, again: Callable[[], bytes]) -> Batch:
        """Parse one EFetch reply; a garbled one is downloaded ``again`` under the retry policy.

        The envelope check in the transport catches cut-off and in-band-error replies; this
        catches what only a parse can see (broken markup inside a well-ended body, an
        unparseable record), so such a batch is re-requested instead of failing the topic.
        """
        tries = self.client.retry.max_tries
        for attempt in range(tries):
            batch = Batch([])
            try:
                parse_into(body, batch, self.client.stop)
                return batch
            except MalformedResponse as exc:
                reason = str(exc).removeprefix("[pubmed] ")
                if attempt + 1 >= tries:
                    raise MalformedResponse(f"EFetch reply unusable after {tries} tries: "
                                            f"{reason}", source="pubmed",
                                            topic=self.client.topic) from None
                self.client.retry_later(attempt, f"malformed reply ({reason})", "efetch.fcgi")
                body = again()
        raise AssertionError("unreachable")  # pragma: no cover


class RoundTrips:
    """How long the last few E-utility requests took, from any thread: how many EFetch
    downloads to keep in flight depends on it (``_EFetch.depth``). The ESearch that comes
    first tells it before the first EFetch is sent."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._recent: deque[float] = deque(maxlen=8)

    def add(self, seconds: float) -> None:
        with self._lock:
            self._recent.append(seconds)

    def typical(self) -> float:
        """The median of the recent ones; 0 before the first."""
        with self._lock:
            return statistics.median(self._recent) if self._recent else 0.0


class _EFetch(Iterator[Batch]):
    """One fetch's batches, downloading and parsing the next while one is stored.

    When ``ids`` is exactly the ESearch result in order, batches page the history server
    (short GETs); otherwise they POST id lists. Downloads start with ``begin`` (at once for
    a prefetch, else when the first batch is asked for): up to ``depth`` replies are
    requested ahead of the batch being stored, besides those the side process is parsing
    (enough to keep the pacer busy when a reply takes about a second; starts stay paced,
    memory bounded).

    In a fetch of several batches the replies are parsed in a side process
    (``parse_process``) as they arrive, while it has room, and here when this process is
    free first (``SharedJobs``). Batches then come out in the order they are ready, not
    the order of ``ids``: in order, this process would wait for the side process at every
    batch that is not done yet, though a later reply sat waiting to be parsed (a tenth
    of the run's wall time on two cores). Nothing downstream needs the order: a topic's
    batches are stored in one transaction, and each is reconciled against its own ids.
    """

    def __init__(self, source: PubMed, ids: list[str], history: History | None) -> None:
        self.source, self.history = source, history
        self.size = size = source.settings.batch_size
        self.chunks = [ids[i:i + size] for i in range(0, len(ids), size)]
        self.aside = source._parser_process(len(self.chunks))
        self.shared: SharedJobs[Parsed] | None = None
        self.jobs_before = self.aside.jobs if self.aside else 0
        self.interval = source.client.pacer.interval
        # (4 with a key; 3 at NCBI's 3 requests/s without one)
        self.least = max(2, min(EFETCH_IN_FLIGHT, math.ceil(1.0 / self.interval)))
        self.pool: ThreadPoolExecutor | None = None  # downloads, once begun
        # started, batch not yet handed out (a reply ``shared`` holds: None); changed by the
        # download threads too (``_job``), under ``lock``
        self.downloads: dict[int, Future[bytes | None]] = {}
        self.sent = 0  # downloads started
        self.lock = threading.Lock()
        self.stopped = False  # closed: no download starts any more
        self._batches: Generator[Batch, None, None] = self._run()

    @property
    def depth(self) -> int:
        """Downloads kept under way here: ``least``, or while each request takes longer,
        as many as keep the pacer busy through a round trip (one start per ``interval``),
        up to ``EFETCH_IN_FLIGHT_MAX``. Replies that arrive at once gain nothing from more:
        they would only wait here, 6 MB each."""
        busy = math.ceil(self.source.round_trips.typical() / self.interval) + 1
        return max(self.least, min(EFETCH_IN_FLIGHT_MAX, busy))

    def begin(self, held: bool = False) -> None:
        """Start downloading, ``depth`` replies; ``held``: for a fetch started before its
        topic runs (its replies go to the side process only while it is idle, until then)."""
        if self.pool is not None:
            return
        if self.aside:
            # A fetch started ahead sends its replies over only while the side process has
            # nothing else to do, until it runs: parsing them sooner would crowd out the
            # topic being stored.
            self.shared = SharedJobs(self.aside, parse_reply_prepared, len(self.chunks),
                                     held=held)
            if not self.aside.started:  # the first reply is parsed here while it starts
                self.aside.start()
                self.shared.keep(0)
        self.pool = ThreadPoolExecutor(max_workers=EFETCH_IN_FLIGHT_MAX,
                                       thread_name_prefix="efetch")
        self._download_more()

    def _download_more(self) -> None:
        """Start downloads in order while fewer than ``depth`` batches are under way here:
        downloading, or downloaded and not yet handed out. A reply the side process is
        parsing holds no place (nor memory here: it crossed in a file): counting it left
        the pacer idle while it was parsed, with a request taking half a second (a
        backfill of 12,000 articles: 7.6 s instead of 6.7).

        Called whenever a place may have come free: by this process as it hands out a
        batch, and by a download thread whose reply went to the side process. Waiting for
        the storing thread to come round instead left a place empty while it stored a
        batch (a tenth of a second or more, each time, with requests taking half a second).
        """
        assert self.pool is not None
        with self.lock:
            if self.stopped:
                return
            aside = len(self.shared.running()) if self.shared is not None else 0
            most = self.depth
            while self.sent < len(self.chunks) and len(self.downloads) - aside < most:
                self.downloads[self.sent] = self.pool.submit(self._job, self.sent)
                self.sent += 1

    def __next__(self) -> Batch:
        return next(self._batches)

    @property
    def all_sent(self) -> bool:
        """Every download has started: the pacer is free for the next topic's."""
        return self.pool is not None and self.sent >= len(self.chunks)

    def close(self) -> None:
        """Stop: downloads not started are dropped, running ones waited for."""
        self._batches.close()
        self._shutdown()

    def _shutdown(self) -> None:
        with self.lock:  # no download thread starts another from now on
            self.stopped = True
        if self.shared is not None:
            self.shared.withdraw()
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)

    def _download(self, i: int) -> bytes:
        if self.history is not None:
            reply = self.source._send("efetch", retmode="xml", WebEnv=self.history.webenv,
                                      query_key=self.history.query_key,
                                      retstart=i * self.size, retmax=len(self.chunks[i]))
        else:
            reply = self.source._send("efetch", retmode="xml", id=",".join(self.chunks[i]))
        return reply.body

    def _job(self, i: int) -> bytes | None:
        """Download batch ``i``: its reply, or None once ``shared`` holds it (one copy of a
        6 MB reply in this process, none while the side process parses it)."""
        body = self._download(i)
        if self.shared and self.shared.ready(i, body):
            self._download_more()  # (sent over: its place is free for the next one)
            return None
        return body

    def _run(self) -> Generator[Batch, None, None]:
        self.begin()
        assert self.pool is not None
        try:
            yield from self._shared() if self.shared else self._in_order()
        finally:
            self._shutdown()
            log.debug("pubmed: %d EFetch replies, %d parsed in the side process; a request "
                      "took %.2f s (median of the last few), %d kept under way",
                      len(self.chunks), self.aside.jobs - self.jobs_before if self.aside else 0,
                      self.source.round_trips.typical(), self.depth)

    def _in_order(self) -> Generator[Batch, None, None]:
        for i, chunk in enumerate(self.chunks):
            body = self.downloads.pop(i).result()
            self._download_more()
            yield self.source._reconcile(chunk, body, partial(self._download, i))

    def _shared(self) -> Generator[Batch, None, None]:
        """Each turn: a batch the side process parsed, else one parsed here (one of ours,
        or a waiting reply claimed), else a wait for either to become possible."""
        shared, downloads, reconcile = self.shared, self.downloads, self.source._reconcile
        assert shared is not None
        shared.release()
        for _ in self.chunks:
            while True:
                self._download_more()
                with self.lock:  # (download threads add to it)
                    under_way_here = list(downloads.items())
                for _, future in under_way_here:  # a failed download: the topic fails
                    if future.done() and future.exception() is not None:
                        future.result()
                done = shared.finished()
                if done is not None:
                    i, parsing = done
                    parsed, body = shared.result(parsing)  # (body: it failed over there)
                    batch = Batch(*parsed) if parsed is not None else None
                    break
                # a reply kept for this process (``keep``): the one download that gave a body
                i = next((j for j, f in under_way_here
                          if f.done() and f.result() is not None), -1)
                if i >= 0:
                    batch, body = None, downloads[i].result()
                    break
                claimed = shared.claim()
                if claimed is not None:
                    (i, body), batch = claimed, None
                    break
                with self.lock:
                    under_way: list[Future[Any]] = [
                        *shared.running(), *(f for f in downloads.values() if not f.done())]
                if not under_way:  # every batch left is one of the above: never here
                    raise AssertionError("pubmed: no EFetch batch under way")
                wait(under_way, return_when=FIRST_COMPLETED)
            with self.lock:
                del downloads[i]
            self._download_more()  # its place, before it is parsed and stored
            yield reconcile(self.chunks[i], body, partial(self._download, i), batch)


def parse_into(body: bytes, batch: Batch, stop: threading.Event | None = None) -> None:
    """Add one EFetch reply's records and deletions to ``batch`` (first copy of a PMID wins)."""
    records, deleted = parse_reply(body, stop)
    seen = {r.record_id for r in batch.records}
    batch.records += [r for r in records if r.record_id not in seen]
    batch.deleted += deleted
