"""One run: for each selected source and topic, window → search → fetch → normalize → store.

This is the one place the stages meet. The rules it keeps:

* a topic's records, matches, run row and watermark commit in one transaction, and the
  watermark only moves when everything the service promised arrived;
* one topic's failure is recorded (``runs.status='failed'``) and the next topic still runs;
* a PMID fetched for one topic is not fetched again for another in the same run;
* a stop request (SIGTERM/SIGINT) is honoured between batches: the current topic rolls
  back and nothing else starts.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from itertools import pairwise
from pathlib import Path

from littrack.claims import SOURCE_CLAIM, VERSION_CLAIM, Claims, LocalClaims, open_claims
from littrack.config import Settings, Topic
from littrack.errors import Incomplete, LittrackError, StopRequested, Unreachable, redact
from littrack.http import HttpClient, Stats
from littrack.lock import DataDirLock
from littrack.memory import give_back_memory
from littrack.progress import Progress, routed_logging
from littrack.sources import Batch, Fetching, Hits, Prefetch, Source, TrialMentions, open_source
from littrack.store import Store, Watermark
from littrack.vocab import CTGOV, LINKED_TOPIC, SOURCES, TIMESTAMP_FORMAT, TRIAL_MENTIONS_TOPIC
from littrack.windows import Window, next_window

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# Where a user sets each service's address: named when nothing answers there.
ADDRESS_SETTING = {"pubmed": "LITTRACK_EUTILS_URL / [ncbi] base_url",
                   "ctgov": "LITTRACK_CTGOV_URL / [ctgov] base_url"}



def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(dt: datetime) -> str:
    return dt.strftime(TIMESTAMP_FORMAT)


_last_run_id = ""  # this process's latest run id: the next one in its second sorts after it
_run_id_lock = threading.Lock()


def new_run_id(now: datetime) -> str:
    """Unique, and sortable by start: start time plus a short random suffix; a run this
    process starts in the same second as its previous one steps past that one's suffix.

    (Nothing depends on the order any more: notifications track which runs they considered;
    but a report or a reader listing runs by id sees this process's runs in start order.)"""
    global _last_run_id
    stamp = now.strftime('%Y%m%dT%H%M%SZ')
    with _run_id_lock:
        run_id = f"{stamp}-{secrets.token_hex(3)}"
        last = _last_run_id
        if last.startswith(stamp + "-") and run_id <= last and last[-6:] != "ffffff":
            run_id = f"{stamp}-{int(last[-6:], 16) + 1:06x}"
        _last_run_id = run_id
    return run_id


@dataclass
class TopicResult:
    topic: str
    source: str
    status: str = "running"
    n_found: int = 0
    n_new: int = 0
    n_updated: int = 0
    n_requests: int = 0
    n_retries: int = 0
    seconds: float = 0.0
    error: str | None = None
    note: str | None = None
    n_missing: int = 0  # linked records asked for that the service did not return

    def counts(self) -> list[tuple[str, int, int]]:
        """(label, value, column width) of the counts, worded once for stdout and the log,
        so the two always say the same (the linked line counts what was asked)."""
        if self.topic == LINKED_TOPIC:
            return [("asked", self.n_found, 5), ("not returned", self.n_missing, 4),
                    ("new", self.n_new, 5), ("updated", self.n_updated, 4)]
        return [("found", self.n_found, 5), ("new", self.n_new, 5),
                ("updated", self.n_updated, 4)]


@dataclass(frozen=True)
class Totals:
    """A run's totals: each record once, however many topics found it."""

    found: int = 0
    new: int = 0
    updated: int = 0
    requests: int = 0
    retries: int = 0

    def __str__(self) -> str:
        return (f"found {self.found}, new {self.new}, updated {self.updated}, "
                f"{self.requests} requests ({self.retries} retries)")


@dataclass
class RunResult:
    run_id: str
    results: list[TopicResult] = field(default_factory=list)
    report_dir: Path | None = None
    stopped: bool = False
    totals: Totals = Totals()

    @property
    def exit_code(self) -> int:
        """0 all ok, 1 some topic failed; a stop's code is the CLI's (128 + signal)."""
        if self.stopped:
            return 0
        return 1 if any(r.status != "ok" for r in self.results) else 0


class Runner:
    """State of one run shared across topics: the sources, what each already fetched."""

    def __init__(self, settings: Settings, store: Store, run_id: str, *, full: bool,
                 stop: threading.Event, clock: Clock, progress: Progress | None = None,
                 claims: Claims | None = None, claim_wait: float = 0.0) -> None:
        self.settings = settings
        self.store = store
        self.claims: Claims = claims or LocalClaims()
        self.claim_wait = claim_wait
        self.versions: set[str] = set()  # sources whose round version this run adopted
        self.since = iso(clock())  # when this run (with others sharing the store: its round)
        # started
        self.run_id = run_id
        self.full = full
        self.stop = stop
        self.clock = clock
        self._sources: dict[str, Source] = {}
        # Ids each source fetched (or was told were gone) in this run: never asked again.
        self.done: dict[str, set[str]] = {}
        # Ids of a source that another source's results named as the same work (a Europe
        # PMC journal article is the PubMed record): fetched with the linked records.
        self.wanted: dict[str, set[str]] = {}
        self._before = (0, 0)  # client stats when the current topic started
        # Searches started ahead of their topics: (source, topic) -> (window, future, client)
        self._ahead: dict[tuple[str, str], tuple[Window, Future[Hits], HttpClient]] = {}
        self._ahead_pool: ThreadPoolExecutor | None = None
        # (source, topic) -> the topic of that source run after it, for topics searched ahead
        self._next_topic: dict[tuple[str, str], Topic] = {}
        # Fetches started ahead of their topics: (source, topic) -> (ids, batches, client)
        self._prefetched: dict[tuple[str, str], tuple[list[str], Fetching, HttpClient]] = {}
        # source -> why: nothing answered there, so its other topics are skipped at once
        self.unreachable: dict[str, str] = {}
        self.progress = progress or Progress(terminal=False)
        # each record once for the run's totals, however many topics found it
        self.found_ids: dict[str, set[str]] = {s: set() for s in SOURCES}
        self.updated_ids: dict[str, set[str]] = {s: set() for s in SOURCES}
        self.leftover = Stats()  # searches run ahead for topics that never ran

    def source(self, name: str) -> Source:
        """The run's source ``name``, opened on first use (no client for unused sources)."""
        if name not in self._sources:
            src = open_source(name, self.settings)
            src.client.stop = self.stop
            src.client.setting = ADDRESS_SETTING.get(name, "")
            self._sources[name] = src
            self.done[name] = set()
        return self._sources[name]

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise StopRequested("stopped by signal before the topic finished; rolled back")

    def _watermark(self, topic: Topic, source: str) -> tuple[Watermark | None, bool]:
        """The topic's watermark, or None when its query changed since the watermark was
        set (then the topic starts over, as on its first run); and whether it changed."""
        wm = self.store.watermark(topic.name, source)
        changed = bool(wm and wm.query_fingerprint
                       and wm.query_fingerprint != topic.fingerprint(source))
        return (None if changed else wm), changed

    def _window(self, topic: Topic, source: Source, now: datetime) -> Window:
        wm, _ = self._watermark(topic, source.name)
        return next_window(date.fromisoformat(wm.watermark) if wm else None, now.date(),
                           source.overlap_days, self.full)

    def run_topic(self, topic: Topic, name: str) -> TopicResult:
        """Run one topic of one source; never raises LittrackError (records it instead)."""
        now = self.clock()
        source = self.source(name)
        _, changed = self._watermark(topic, name)
        if changed:
            log.info("%s %s: the query changed since the last run; searching everything it "
                     "matches, as on a first run", name, topic.name)
        window = self._window(topic, source, now)
        log.debug("%s %s: window %s", name, topic.name, window)

        def work(result: TopicResult) -> None:
            if name in self.unreachable:
                self._drop_ahead(name, topic.name)
                raise Unreachable(f"skipped: {self.unreachable[name]}", source=name,
                                  topic=topic.name)
            self._round_version(source)
            self._topic(source, topic, window, now, result)

        first = TopicResult(topic.name, name,
                            note="query changed: searched from the beginning" if changed else None)
        return self._accounted(first, now, window, work)

    def _round_version(self, source: Source) -> None:
        """A source with a data version (ClinicalTrials.gov's /version) is asked once per
        round and the answer kept in ``source_versions``; workers sharing a store take it
        from there when another worker asked since this run started."""
        adopt = getattr(source, "adopt_version", None)
        ask = getattr(source, "data_timestamp", None)
        if adopt is None or ask is None or source.name in self.versions:
            return
        shared = not isinstance(self.claims, LocalClaims)
        if shared:
            self.claims.claim(VERSION_CLAIM, source.name, 600.0)
        try:
            version = self.store.round_version(source.name, self.since) if shared else None
            if version is None:
                version = ask()
                if version is not None:
                    self.store.record_version(source.name, version, self.run_id,
                                              iso(self.clock()))
        finally:
            if shared:
                self.claims.release(VERSION_CLAIM, source.name)
        adopt(version)
        self.versions.add(source.name)

    def _accounted(self, result: TopicResult, now: datetime, window: Window,
                   work: Callable[[TopicResult], None]) -> TopicResult:
        """The bookkeeping every unit of work shares: its run row, its client's topic and
        deadline, its request counts, and a failure recorded rather than raised (a stop
        request still propagates, so no further work starts)."""
        client = self.source(result.source).client
        before = self._before = (client.stats.requests, client.stats.retries)
        client.topic = result.topic
        client.deadline = time.monotonic() + self.settings.retry.topic_deadline
        started = time.monotonic()
        self.store.start_run(self.run_id, result.topic, result.source, iso(now),
                             (window.start.isoformat() if window.start else None,
                              window.end.isoformat()))
        try:
            work(result)
            result.status = "ok"
        except StopRequested as exc:
            result.status, result.error = "stopped", str(exc)
            exc.result = result  # type: ignore[attr-defined]  # run() lists it
            raise
        except LittrackError as exc:
            result.status, result.error = "failed", str(exc)
            if isinstance(exc, Unreachable) and result.source not in self.unreachable:
                self.unreachable[result.source] = str(exc).split("] ", 1)[-1]
        except Exception as exc:  # a bug: record it, keep the other topics running
            log.exception("%s %s: unexpected error", result.source, result.topic)
            result.status = "failed"
            result.error = redact(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self.progress.done()
            result.n_requests = client.stats.requests - before[0]
            result.n_retries = client.stats.retries - before[1]
            result.seconds = time.monotonic() - started
            client.deadline = None
            give_back_memory()  # what the topic's batches freed, before the next one
            if result.status != "ok":
                self.store.finish_run(self.run_id, result.topic, result.source,
                                      iso(self.clock()), result.status, n_found=result.n_found,
                                      n_requests=result.n_requests,
                                      n_retries=result.n_retries, error=result.error)
            _log_result(result)
        return result

    def _finish_ok(self, topic: Topic, source: str, now: datetime, result: TopicResult,
                   version: str | None) -> None:
        """Watermark and run row, inside the topic's transaction."""
        self.store.set_watermark(topic.name, source, now.date().isoformat(), self.run_id,
                                 iso(now), version, topic.fingerprint(source))
        self._finish_run_ok(result)

    def _finish_run_ok(self, result: TopicResult) -> None:
        client = self.source(result.source).client
        self.store.finish_run(
            self.run_id, result.topic, result.source, iso(self.clock()), "ok",
            n_found=result.n_found, n_new=result.n_new, n_updated=result.n_updated,
            n_requests=client.stats.requests - self._before[0],
            n_retries=client.stats.retries - self._before[1])

    # ---- searches ahead ------------------------------------------------------------------
    def search_ahead(self, tasks: list[tuple[str, Topic]]) -> None:
        """Start the search of every topic whose source allows it now, on side threads.

        A topic's search needs nothing from the topics before it, so while one topic
        downloads and stores, the next topics' searches are already done: a run costs about
        one round trip per request *rate* slot instead of one per request. The shared pacer
        keeps every start within the service's rate; each search has its own client, so its
        requests are counted for its own topic (``_search``).
        """
        ahead = [(self.source(n), t) for n, t in tasks if self.source(n).search_ahead]
        if not ahead:
            return
        for (source, topic), (then, after) in pairwise(ahead):
            if then is source:
                self._next_topic[(source.name, topic.name)] = after
        now = self.clock()
        self._ahead_pool = ThreadPoolExecutor(max_workers=min(4, len(ahead)),
                                              thread_name_prefix="search")
        for source, topic in ahead:
            window = self._window(topic, source, now)
            client = source.client.for_topic(topic.name)
            client.deadline = time.monotonic() + self.settings.retry.topic_deadline
            future = self._ahead_pool.submit(self._search_on, source.with_client(client),
                                             topic, window)
            self._ahead[(source.name, topic.name)] = (window, future, client)

    def _search_on(self, source: Source, topic: Topic, window: Window) -> Hits:
        if self.stop.is_set():
            raise StopRequested("stopped by signal before the search started")
        return source.search(topic, window)

    def _search(self, source: Source, topic: Topic, window: Window) -> Hits:
        """The topic's search: the one started ahead when its window still holds."""
        ahead = self._ahead.pop((source.name, topic.name), None)
        if ahead is None:
            return source.search(topic, window)
        ahead_window, future, client = ahead
        try:
            hits = future.result()
        finally:  # the search's requests and retries belong to this topic
            source.client.stats.absorb(client.stats)
        if ahead_window != window:  # the date changed since: ask for the right window
            return source.search(topic, window)
        return hits

    def _drop_ahead(self, source: str, topic: str) -> None:
        """A skipped topic's search run ahead: wait it out and count its requests here."""
        ahead = self._ahead.pop((source, topic), None)
        if ahead is not None:
            try:
                ahead[1].result()
            except (LittrackError, StopRequested):
                pass
            finally:
                self.source(source).client.stats.absorb(ahead[2].stats)

    def close(self) -> None:
        """Cancel searches started ahead for topics that did not run (stop, failure); the
        requests they made still count in the run's totals. Close the sources."""
        if self._ahead_pool is not None:
            self._ahead_pool.shutdown(wait=True, cancel_futures=True)
            self._ahead_pool = None
        for _, _, client in self._ahead.values():
            self.leftover.absorb(client.stats)
        self._ahead.clear()
        for _, batches, client in self._prefetched.values():
            batches.close()
            self.leftover.absorb(client.stats)
        self._prefetched.clear()
        for source in self._sources.values():
            source.close()

    def totals(self, results: list[TopicResult]) -> Totals:
        """Each record once (found by three topics: once here, once in each topic's line);
        requests: every one this run sent, so stdout and log say the same."""
        new = self.store.new_matches(self.run_id) + sum(
            r.n_new for r in results if r.topic == LINKED_TOPIC)
        return Totals(
            found=sum(len(ids) for ids in self.found_ids.values()),
            new=new,
            updated=sum(len(ids) for ids in self.updated_ids.values())
            + sum(r.n_updated for r in results if r.topic == LINKED_TOPIC),
            requests=sum(r.n_requests for r in results) + self.leftover.requests,
            retries=sum(r.n_retries for r in results) + self.leftover.retries)

    # ---- a topic, whatever the source ----------------------------------------------------
    def _topic(self, source: Source, topic: Topic, window: Window, now: datetime,
               result: TopicResult) -> None:
        """Search, fetch, store and match one topic in one transaction.

        An id-listing search is fetched minus what this run already fetched (and, on a
        topic's first run, minus what other topics stored), plus the ids earlier runs were
        promised but never got; ids still missing are remembered, not fatal. A streamed
        search is fetched whole, and must deliver as many records as the service announced,
        or the watermark stays.
        """
        store, stamp, name, done = self.store, iso(now), source.name, self.done[source.name]
        wm, _ = self._watermark(topic, name)
        hits = self._search(source, topic, window)
        last_version = wm.data_timestamp if wm else None
        if not self.full and last_version and hits.version == last_version:
            result.note = f"data unchanged since {last_version}; nothing to ask"
            with store.transaction():
                self._finish_ok(topic, name, now, result, hits.version)
            return
        asked: list[str] | None = None
        retry: list[str] = []
        if hits.ids is not None:
            result.n_found = len(hits.ids)
            self.found_ids.setdefault(name, set()).update(hits.ids)
            asked, retry = self._to_fetch(name, topic, window, hits)
        self._check_stop()
        seen: dict[str, None] = {}  # every id the topic's batches delivered, in order
        elsewhere: dict[str, dict[str, None]] = {}  # results that are other sources' records
        missing: list[str] = []
        # stored in this topic's transaction: this run's to skip only once it commits (a
        # rolled-back topic's records must still be fetched by the topics after it)
        fetched: set[str] = set()
        announced: int | None = None
        self.progress.start(f"{name} {topic.name}", len(asked) if asked is not None else None)
        with store.transaction():
            batches, prefetched_on = self._fetching(source, topic, hits, asked)
            try:
                for batch in batches:
                    self._check_stop()
                    if batch.announced is not None:
                        announced = batch.announced  # a walk (re)started: its count holds
                        self.progress.total(announced)
                    fresh = [r for r in batch.records if r.record_id not in seen]
                    seen.update((r.record_id, None) for r in fresh)
                    saved = store.save_records([r for r in fresh if r.record_id not in done],
                                               stamp, self.run_id, self.stop)
                    result.n_updated += len(saved.updated)
                    self.updated_ids.setdefault(name, set()).update(saved.updated)
                    fetched.update(saved.new + saved.updated + saved.unchanged)
                    if batch.deleted:
                        store.mark_deleted(batch.deleted, stamp, self.run_id)
                    missing += batch.missing
                    for other, ids in batch.elsewhere.items():
                        elsewhere.setdefault(other, {}).update(dict.fromkeys(ids))
                    self.progress.advance(len(batch.records) + len(batch.deleted)
                                          + len(batch.missing)
                                          + sum(len(ids) for ids in batch.elsewhere.values()))
                    if (asked is not None and isinstance(batches, Fetching)
                            and batches.all_sent):  # the pacer is free for the next topic
                        self._prefetch_next(source, topic, asked)
            finally:
                close = getattr(batches, "close", None)  # (a generator's, or a Fetching's)
                if close is not None:
                    close()
                if prefetched_on is not None:  # its requests were this topic's
                    source.client.stats.absorb(prefetched_on.stats)
            if asked is None:
                received = len(seen) + sum(len(ids) for ids in elsewhere.values())
                result.n_found = received
                self.found_ids.setdefault(name, set()).update(seen)
                if announced is not None and received < announced:
                    raise Incomplete(f"received {received} of the {announced} records the "
                                     f"service announced; watermark not advanced",
                                     source=name, topic=topic.name)
                matched = list(seen)
                for other, found in elsewhere.items():
                    if other in SOURCES:  # the same works, as that source's records
                        store.match(topic.name, other, sorted(found), self.run_id)
                        self.wanted.setdefault(other, set()).update(found)
            else:
                gone = set(missing)
                store.clear_missing(name, [i for i in asked if i not in gone], topic.name)
                store.record_missing(name, missing, topic.name, self.run_id, stamp)
                matched = [i for i in (hits.ids or []) + retry if i not in gone]
                if missing:
                    result.note = "; ".join(n for n in (result.note,
                                                        f"{len(missing)} id(s) missing") if n)
            result.n_new = store.match(topic.name, name, sorted(matched) if asked is None
                                       else matched, self.run_id)
            self._check_stop()
            self._finish_ok(topic, name, now, result, hits.version)
        done.update(fetched)
        if asked is not None:
            done.update(asked)

    def _to_fetch(self, name: str, topic: Topic, window: Window, hits: Hits,
                  also_done: Collection[str] = ()) -> tuple[list[str], list[str]]:
        """(ids to fetch, of which retried): the hits minus what this run fetched (and, on a
        topic's first run, minus what other topics stored), plus the ids earlier runs were
        promised but never got. ``also_done``: ids a topic still under way will have
        fetched (``_prefetch_next``)."""
        done = self.done[name]
        todo = [i for i in hits.ids or () if i not in done and i not in also_done]
        if window.is_full and not self.full:
            # A topic's first run: records other topics already stored need no new fetch.
            known = self.store.known_ids(name, todo)
            todo = [i for i in todo if i not in known]
        queued = set(todo)
        retry = [i for i in self.store.missing_ids(name, topic.name)
                 if i not in done and i not in also_done and i not in queued]
        return todo + retry, retry

    def _prefetch_next(self, source: Source, topic: Topic, asked: list[str]) -> None:
        """Once a topic's downloads have all started, start the next topic's, so its first
        replies arrive while this topic's last batches are stored: without it, every topic
        after the first waits a round trip before it has anything to work on.

        Which ids the next topic will fetch is known now: its search ran ahead, and this
        topic, once it succeeds, will have fetched ``asked``. If it does not succeed (or
        the next topic's window moved), the ids differ when the next topic starts and the
        prefetch is dropped (``_fetching``); what it cost is counted all the same.
        """
        key = (source.name, topic.name)
        after = self._next_topic.get(key)
        if after is None or not isinstance(source, Prefetch):
            return
        ahead = self._ahead.get((source.name, after.name))
        if ahead is not None and not ahead[1].done():
            return  # its search is still under way: try after the next batch
        del self._next_topic[key]
        if ahead is None or ahead[1].cancelled() or ahead[1].exception() is not None:
            return
        window, future, _ = ahead
        hits = future.result()
        if hits.ids is None:
            return
        ids, _ = self._to_fetch(source.name, after, window, hits, also_done=set(asked))
        if not ids:
            return
        client = source.client.for_topic(after.name)
        client.deadline = time.monotonic() + self.settings.retry.topic_deadline
        batches = source.with_client(client).prefetch(hits, ids)
        self._prefetched[(source.name, after.name)] = (ids, batches, client)

    def _fetching(self, source: Source, topic: Topic, hits: Hits, asked: list[str] | None
                  ) -> tuple[Iterator[Batch], HttpClient | None]:
        """The topic's batches: the fetch started ahead when it is of the same ids, else a
        new one; and the client of the one started ahead (its requests are this topic's)."""
        pre = self._prefetched.pop((source.name, topic.name), None)
        if pre is not None:
            ids, batches, client = pre
            if ids == asked:
                return batches, client
            batches.close()
            source.client.stats.absorb(client.stats)
        return source.fetch(hits, asked), None

    # ---- works that name tracked trials --------------------------------------------------
    def trial_mentions(self, sources: list[str]) -> list[TopicResult]:
        """Ask every source that can (``TrialMentions``) for works naming a tracked trial.

        Run after the topics, so the trials tracked include this run's; the articles found
        are fetched one step out with the linked records, and their links count in the
        unreported-trials rule like any other. Incremental, with its own watermark.
        """
        out = []
        trials = self.store.tracked_ids(CTGOV)
        for name in sources:
            src = self.source(name)
            if trials and isinstance(src, TrialMentions) and name not in self.unreachable:
                out.append(self._mentions(src, trials))
        return out

    def _mentions(self, source: Source, trials: list[str]) -> TopicResult:
        assert isinstance(source, TrialMentions)
        now = self.clock()
        stamp = iso(now)
        wm = self.store.watermark(TRIAL_MENTIONS_TOPIC, source.name)
        window = next_window(date.fromisoformat(wm.watermark) if wm else None, now.date(),
                             source.overlap_days, self.full)
        done = self.done[source.name]

        def work(result: TopicResult) -> None:
            fetched: set[str] = set()  # this run's once the transaction commits
            links: dict[tuple[str, str, str], None] = {}
            preprint_links: dict[tuple[str, str, str], None] = {}
            with self.store.transaction():
                for batch in source.trial_mentions(trials, window):
                    self._check_stop()
                    fresh = [r for r in batch.records
                             if r.record_id not in done and r.record_id not in fetched]
                    saved = self.store.save_records(fresh, stamp, self.run_id)
                    result.n_updated += len(saved.updated)
                    fetched.update(r.record_id for r in fresh)
                    links.update(dict.fromkeys(batch.links))
                    preprint_links.update(dict.fromkeys(batch.preprint_links))
                result.n_found = len(links) + len(preprint_links)
                result.n_new = (self.store.add_links(links, self.run_id)
                                + self.store.add_preprint_links(preprint_links, self.run_id))
                self.store.set_watermark(TRIAL_MENTIONS_TOPIC, source.name,
                                         now.date().isoformat(), self.run_id, stamp, None)
                self._finish_run_ok(result)
            done.update(fetched)

        result = TopicResult(TRIAL_MENTIONS_TOPIC, source.name)
        try:
            return self._accounted(result, now, window, work)
        except StopRequested:  # recorded as failed by _accounted; the report is still written
            return result

    # ---- linked records ------------------------------------------------------------------
    def resolve_links(self, sources: list[str]) -> list[TopicResult]:
        """Fetch, once each, the records tracked ones link to but no topic matched.

        So every link of a tracked record resolves to a row (a trial's results paper, the
        trial an article reports). Saved without topic matches; each attempt, found or not,
        is remembered in ``linked_fetches`` and counted in ``runs`` under ``LINKED_TOPIC``.
        """
        # Workers sharing a store: the last of the round to finish resolves them, once every
        # topic is stored, so a linked record is never fetched before a topic matches it.
        if not self.claims.last_worker():
            log.info("%s: left to the workers still running", LINKED_TOPIC)
            return []
        out = []
        for name in [*sources, *(s for s in self.wanted if s not in sources)]:
            if name in self.unreachable:
                continue
            ids = self.store.unresolved_links(name)
            wanted = sorted(self.wanted.get(name, set()) - set(ids) - self.done.get(name, set()))
            if wanted:
                known = self.store.known_ids(name, wanted)
                ids += [i for i in wanted if i not in known]
            if ids:
                out.append(self._resolve(self.source(name), ids))
        return out

    def _resolve(self, source: Source, ids: list[str]) -> TopicResult:
        now = self.clock()
        stamp = iso(now)

        def work(result: TopicResult) -> None:
            outcomes = dict.fromkeys(ids, "not_found")
            fetched: set[str] = set(ids)  # this run's once the transaction commits
            with self.store.transaction():
                for batch in source.by_id(ids):
                    self._check_stop()
                    saved = self.store.save_records(batch.records, stamp, self.run_id)
                    result.n_new += len(saved.new)
                    result.n_updated += len(saved.updated)
                    fetched.update(r.record_id for r in batch.records)
                    outcomes.update({r.record_id: "saved" for r in batch.records
                                     if r.record_id in outcomes})
                    outcomes.update(dict.fromkeys(batch.deleted, "deleted"))
                    outcomes.update({alias: f"alias of {canonical}"
                                     for alias, canonical in batch.aliases.items()
                                     if outcomes.get(alias) == "not_found"})
                self.store.record_linked_fetch(source.name, outcomes.items(), self.run_id,
                                               stamp)
                result.n_missing = sum(o != "saved" for o in outcomes.values())
                self._finish_run_ok(result)
            self.done[source.name].update(fetched)

        result = TopicResult(LINKED_TOPIC, source.name, n_found=len(ids))
        try:
            return self._accounted(result, now, Window(None, now.date()), work)
        except StopRequested:  # recorded as stopped by _accounted
            return result


def _log_result(r: TopicResult) -> None:
    counted = ", ".join(f"{label} {value}" for label, value, _ in r.counts())
    line = (f"{r.source} {r.topic}: {r.status}, {counted}, {r.n_requests} requests "
            f"({r.n_retries} retries) in {r.seconds:.1f}s")
    if r.note:
        line += f"; {r.note}"
    if r.error:
        line += f"; {r.error}"
    {"ok": log.info, "stopped": log.warning}.get(r.status, log.error)(line)


def _log_run(run: RunResult, seconds: float) -> None:
    """The one line per run that a cron mail or a journal shows first."""
    rs = run.results
    failed = sum(r.status == "failed" for r in rs)
    ok = sum(r.status == "ok" for r in rs)
    line = f"run {run.run_id}: {ok} ok, {failed} failed; {run.totals} in {seconds:.1f}s"
    if run.stopped:
        line += "; stopped on request"
    if run.report_dir:
        line += f"; report {run.report_dir}"
    (log.warning if failed and not run.stopped else log.info)(line)


def run(settings: Settings, *, topics: Iterable[str] | None = None,
        sources: Iterable[str] | None = None, full: bool = False,
        stop: threading.Event | None = None, lock_timeout: float = 0.0,
        clock: Clock = utcnow, progress: bool = False, write_report: bool = True,
        progress_every: float = 10.0) -> RunResult:
    """Run the selected topics and sources under the data-dir lock; write the run report.

    ``progress``: a bar per topic on the terminal; otherwise a progress log line at least
    every ``progress_every`` seconds while a topic stores records.
    """
    chosen = [settings.topic(t) for t in topics] if topics else list(settings.topics)
    chosen_sources = list(sources) if sources else list(SOURCES)
    stop = stop or threading.Event()
    if not settings.ncbi.email and "pubmed" in chosen_sources:
        log.warning("no NCBI email configured (ncbi.email or $NCBI_EMAIL): NCBI asks every "
                    "E-utilities user to send one")
    tasks = [(s, t) for s in chosen_sources for t in chosen if t.has(s)]
    # SQLite: the data-directory lock makes this run the only writer. PostgreSQL: workers on
    # any machine share the store; each topic×source is claimed in the database instead.
    shared = settings.shared_store
    lock = nullcontext() if shared else DataDirLock(settings.data_dir, lock_timeout)
    with lock, Store(settings.store_location) as store:
        now = clock()
        started = time.monotonic()
        run = RunResult(new_run_id(now))
        if not shared:
            interrupted = store.fail_interrupted_runs(iso(now))
            if interrupted:
                log.warning("closed %d run(s) left 'running' by a process that was killed",
                            interrupted)
        claims = open_claims(store.target, run.run_id)
        runner = Runner(settings, store, run.run_id, full=full, stop=stop, clock=clock,
                        progress=Progress(terminal=progress, every=progress_every),
                        claims=claims, claim_wait=lock_timeout if shared else 0.0)
        runner.since = claims.round_start(iso(now))
        try:
            if not shared:  # searching ahead would search topics other workers then take
                runner.search_ahead(tasks)
            with routed_logging(progress):
                pending = tasks
                while pending and not run.stopped:
                    later = []
                    for source, topic in pending:
                        try:
                            result = _claimed(runner, topic, source) if shared \
                                else runner.run_topic(topic, source)
                            if result is _LATER:
                                later.append((source, topic))
                            elif result is not None:
                                run.results.append(result)
                        except StopRequested as exc:
                            run.results.append(getattr(exc, "result", None) or TopicResult(
                                topic.name, source, "stopped", error="stopped by signal"))
                            run.stopped = True
                            log.warning("stop requested: %s %s rolled back; no further "
                                        "topics", source, topic.name)
                            break
                    if later and len(later) == len(pending):  # all wait on one source
                        runner.claims.claim(SOURCE_CLAIM, later[0][0], 3600.0)
                        runner.claims.release(SOURCE_CLAIM, later[0][0])
                    pending = later
            if not run.stopped:
                # only sources some chosen topic searches: a config without Europe PMC
                # queries never asks it for trial mentions
                run.results += runner.trial_mentions(sorted({s for s, _ in tasks},
                                                            key=chosen_sources.index))
                run.stopped = stop.is_set()
            if not run.stopped:
                run.results += runner.resolve_links(chosen_sources)
                run.stopped = stop.is_set()
        finally:
            runner.close()
            claims.close()
        give_back_memory()  # what the fetches left, before the report
        run.totals = runner.totals(run.results)
        if write_report and not run.stopped:
            # A stopped run exits at once; the next run's report takes in what it committed.
            from littrack.reports import pending_run_ids, write_run_report

            # A killed earlier run never wrote its report: this one takes its rows in. With
            # workers sharing a store, each reports its own run (`report --since` joins them).
            run_ids = [run.run_id] if shared else pending_run_ids(store, settings, run.run_id)
            run.report_dir = write_run_report(store, settings, run_ids, run.run_id)
    _log_run(run, time.monotonic() - started)
    return run


_LATER = TopicResult("", "")  # _claimed: this source is busy in another worker; try again


def _claimed(runner: Runner, topic: Topic, source: str) -> TopicResult | None:
    """Run a topic×source this worker claims; None when another worker has it or finished it
    in this round (so no topic×source is fetched twice in one round); ``_LATER`` when another
    worker is on a topic of the same source.

    One worker per source at a time: the service's rate limit is per client address or API
    key, shared by every worker, so each worker may pace at the full rate while it holds the
    source; and a record two topics share is fetched once, not by two workers at once.
    Workers gain by fetching different sources in parallel.
    """
    claims, store = runner.claims, runner.store
    if not claims.claim(topic.name, source, runner.claim_wait):
        log.info("%s %s: another worker is fetching it; skipped", source, topic.name)
        return None
    if not claims.claim(SOURCE_CLAIM, source):
        claims.release(topic.name, source)
        return _LATER
    try:
        if store.finished_ok_since(topic.name, source, runner.since, runner.run_id):
            log.info("%s %s: another worker fetched it in this round; skipped",
                     source, topic.name)
            return None
        # Holding the claim, any 'running' row of it belongs to a worker that was killed.
        if store.fail_interrupted_runs(iso(runner.clock()), topic.name, source):
            log.warning("%s %s: closed a run left 'running' by a killed worker", source,
                        topic.name)
        return runner.run_topic(topic, source)
    finally:
        claims.release(SOURCE_CLAIM, source)
        claims.release(topic.name, source)
