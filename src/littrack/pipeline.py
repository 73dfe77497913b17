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
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from littrack.config import Settings, Topic
from littrack.errors import Incomplete, LittrackError, StopRequested, redact
from littrack.http import HttpClient
from littrack.lock import DataDirLock
from littrack.sources import Hits, Source, open_source
from littrack.store import Store
from littrack.vocab import LINKED_TOPIC, SOURCES, TIMESTAMP_FORMAT
from littrack.windows import Window, next_window

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]



def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


def iso(dt: datetime) -> str:
    return dt.strftime(TIMESTAMP_FORMAT)


def new_run_id(now: datetime) -> str:
    """Sortable and unique: start time plus a short random suffix."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(3)}"


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


@dataclass
class RunResult:
    run_id: str
    results: list[TopicResult] = field(default_factory=list)
    report_dir: Path | None = None
    stopped: bool = False

    @property
    def exit_code(self) -> int:
        """0 all ok (or stopped on request), 1 some topic failed."""
        if self.stopped:
            return 0
        return 1 if any(r.status != "ok" for r in self.results) else 0


class Runner:
    """State of one run shared across topics: the sources, what each already fetched."""

    def __init__(self, settings: Settings, store: Store, run_id: str, *, full: bool,
                 stop: threading.Event, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.run_id = run_id
        self.full = full
        self.stop = stop
        self.clock = clock
        self._sources: dict[str, Source] = {}
        # Ids each source fetched (or was told were gone) in this run: never asked again.
        self.done: dict[str, set[str]] = {}
        self._before = (0, 0)  # client stats when the current topic started
        # Searches started ahead of their topics: (source, topic) -> (window, future, client)
        self._ahead: dict[tuple[str, str], tuple[Window, Future[Hits], HttpClient]] = {}
        self._ahead_pool: ThreadPoolExecutor | None = None

    def source(self, name: str) -> Source:
        """The run's source ``name``, opened on first use (no client for unused sources)."""
        if name not in self._sources:
            src = open_source(name, self.settings)
            src.client.stop = self.stop
            self._sources[name] = src
            self.done[name] = set()
        return self._sources[name]

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise StopRequested("stopped by signal before the topic finished; rolled back")

    def _window(self, topic: Topic, source: Source, now: datetime) -> Window:
        wm = self.store.watermark(topic.name, source.name)
        return next_window(date.fromisoformat(wm.watermark) if wm else None, now.date(),
                           source.overlap_days, self.full)

    def run_topic(self, topic: Topic, name: str) -> TopicResult:
        """Run one topic of one source; never raises LittrackError (records it instead)."""
        now = self.clock()
        source = self.source(name)
        window = self._window(topic, source, now)
        return self._accounted(TopicResult(topic.name, name), now, window,
                               lambda result: self._topic(source, topic, window, now, result))

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
            result.status, result.error = "failed", str(exc)
            raise
        except LittrackError as exc:
            result.status, result.error = "failed", str(exc)
        except Exception as exc:  # a bug: record it, keep the other topics running
            log.exception("%s %s: unexpected error", result.source, result.topic)
            result.status, result.error = "failed", redact(f"internal error: {exc!r}")
        finally:
            result.n_requests = client.stats.requests - before[0]
            result.n_retries = client.stats.retries - before[1]
            result.seconds = time.monotonic() - started
            client.deadline = None
            if result.status != "ok":
                self.store.finish_run(self.run_id, result.topic, result.source,
                                      iso(self.clock()), "failed", n_found=result.n_found,
                                      n_requests=result.n_requests,
                                      n_retries=result.n_retries, error=result.error)
            _log_result(result)
        return result

    def _finish_ok(self, topic: Topic, source: str, now: datetime, result: TopicResult,
                   version: str | None) -> None:
        """Watermark and run row, inside the topic's transaction."""
        self.store.set_watermark(topic.name, source, now.date().isoformat(), self.run_id,
                                 iso(now), version)
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

    def close(self) -> None:
        """Cancel searches started ahead for topics that did not run (stop, failure)."""
        if self._ahead_pool is not None:
            self._ahead_pool.shutdown(wait=True, cancel_futures=True)
            self._ahead_pool = None
        self._ahead.clear()

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
        wm = store.watermark(topic.name, name)
        hits = self._search(source, topic, window)
        last_version = wm.data_timestamp if wm else None
        if not self.full and last_version and hits.version == last_version:
            result.note = f"data unchanged since {last_version}; nothing to ask"
            with store.transaction():
                self._finish_ok(topic, name, now, result, hits.version)
            return
        asked: list[str] | None = None
        if hits.ids is not None:
            result.n_found = len(hits.ids)
            todo = [i for i in hits.ids if i not in done]
            if window.is_full and not self.full:
                # A topic's first run: records other topics already stored need no new fetch.
                known = store.known_ids(name, todo)
                todo = [i for i in todo if i not in known]
            queued = set(todo)
            retry = [i for i in store.missing_ids(name, topic.name)
                     if i not in done and i not in queued]
            asked = todo + retry
        self._check_stop()
        seen: dict[str, None] = {}  # every id the topic's batches delivered, in order
        missing: list[str] = []
        announced: int | None = None
        with store.transaction():
            for batch in source.fetch(hits, asked):
                self._check_stop()
                if batch.announced is not None:
                    announced = batch.announced  # a walk (re)started: its count holds
                fresh = [r for r in batch.records if r.record_id not in seen]
                seen.update((r.record_id, None) for r in fresh)
                saved = store.save_records([r for r in fresh if r.record_id not in done],
                                           stamp, self.run_id)
                result.n_updated += len(saved.updated)
                done.update(saved.new + saved.updated + saved.unchanged)
                if batch.deleted:
                    store.mark_deleted(batch.deleted, stamp, self.run_id)
                missing += batch.missing
            if asked is None:
                result.n_found = len(seen)
                if announced is not None and len(seen) < announced:
                    raise Incomplete(f"received {len(seen)} of the {announced} records the "
                                     f"service announced; watermark not advanced",
                                     source=name, topic=topic.name)
                matched = list(seen)
            else:
                gone = set(missing)
                store.clear_missing(name, [i for i in asked if i not in gone], topic.name)
                store.record_missing(name, missing, topic.name, self.run_id, stamp)
                matched = [i for i in (hits.ids or []) + retry if i not in gone]
                result.note = f"{len(missing)} id(s) missing" if missing else None
            result.n_new = store.match(topic.name, name, sorted(matched) if asked is None
                                       else matched, self.run_id)
            self._check_stop()
            self._finish_ok(topic, name, now, result, hits.version)
        if asked is not None:
            done.update(asked)

    # ---- linked records ------------------------------------------------------------------
    def resolve_links(self, sources: Iterable[str]) -> list[TopicResult]:
        """Fetch, once each, the records tracked ones link to but no topic matched.

        So every link of a tracked record resolves to a row (a trial's results paper, the
        trial an article reports). Saved without topic matches; each attempt, found or not,
        is remembered in ``linked_fetches`` and counted in ``runs`` under ``LINKED_TOPIC``.
        """
        out = []
        for name in sources:
            ids = self.store.unresolved_links(name)
            if ids:
                out.append(self._resolve(self.source(name), ids))
        return out

    def _resolve(self, source: Source, ids: list[str]) -> TopicResult:
        now = self.clock()
        stamp = iso(now)

        def work(result: TopicResult) -> None:
            outcomes = dict.fromkeys(ids, "not_found")
            with self.store.transaction():
                for batch in source.by_id(ids):
                    self._check_stop()
                    saved = self.store.save_records(batch.records, stamp, self.run_id)
                    result.n_new += len(saved.new)
                    result.n_updated += len(saved.updated)
                    self.done[source.name].update(r.record_id for r in batch.records)
                    outcomes.update({r.record_id: "saved" for r in batch.records
                                     if r.record_id in outcomes})
                    outcomes.update(dict.fromkeys(batch.deleted, "deleted"))
                    outcomes.update({alias: f"alias of {canonical}"
                                     for alias, canonical in batch.aliases.items()
                                     if outcomes.get(alias) == "not_found"})
                self.done[source.name].update(ids)
                self.store.record_linked_fetch(source.name, outcomes.items(), self.run_id,
                                               stamp)
                missing = sum(o != "saved" for o in outcomes.values())
                result.note = f"{missing} linked id(s) not found" if missing else None
                self._finish_run_ok(result)

        result = TopicResult(LINKED_TOPIC, source.name, n_found=len(ids))
        try:
            return self._accounted(result, now, Window(None, now.date()), work)
        except StopRequested:  # recorded as failed by _accounted; the report is still written
            return result


def _log_result(r: TopicResult) -> None:
    line = (f"{r.source} {r.topic}: {r.status}, found {r.n_found}, new {r.n_new}, "
            f"updated {r.n_updated}, {r.n_requests} requests ({r.n_retries} retries) "
            f"in {r.seconds:.1f}s")
    if r.note:
        line += f"; {r.note}"
    if r.error:
        line += f"; {r.error}"
    (log.info if r.status == "ok" else log.error)(line)


def _log_run(run: RunResult, seconds: float) -> None:
    """The one line per run that a cron mail or a journal shows first."""
    rs = run.results
    failed = sum(r.status != "ok" for r in rs)
    line = (f"run {run.run_id}: {len(rs) - failed} ok, {failed} failed; found "
            f"{sum(r.n_found for r in rs)}, new {sum(r.n_new for r in rs)}, updated "
            f"{sum(r.n_updated for r in rs)}, {sum(r.n_requests for r in rs)} requests "
            f"({sum(r.n_retries for r in rs)} retries) in {seconds:.1f}s")
    if run.stopped:
        line += "; stopped on request"
    if run.report_dir:
        line += f"; report {run.report_dir}"
    (log.warning if failed and not run.stopped else log.info)(line)


def run(settings: Settings, *, topics: Iterable[str] | None = None,
        sources: Iterable[str] | None = None, full: bool = False,
        stop: threading.Event | None = None, lock_timeout: float = 0.0,
        clock: Clock = utcnow, progress: bool = False, write_report: bool = True) -> RunResult:
    """Run the selected topics and sources under the data-dir lock; write the run report."""
    chosen = [settings.topic(t) for t in topics] if topics else list(settings.topics)
    chosen_sources = list(sources) if sources else list(SOURCES)
    stop = stop or threading.Event()
    if not settings.ncbi.email and "pubmed" in chosen_sources:
        log.warning("no NCBI email configured (ncbi.email or $NCBI_EMAIL): NCBI asks every "
                    "E-utilities user to send one")
    tasks = [(s, t) for s in chosen_sources for t in chosen if t.has(s)]
    with DataDirLock(settings.data_dir, lock_timeout), Store(settings.db_path) as store:
        now = clock()
        started = time.monotonic()
        run = RunResult(new_run_id(now))
        interrupted = store.fail_interrupted_runs(iso(now))
        if interrupted:
            log.warning("closed %d run(s) left 'running' by a process that was killed",
                        interrupted)
        runner = Runner(settings, store, run.run_id, full=full, stop=stop, clock=clock)
        try:
            runner.search_ahead(tasks)
            with _progress(len(tasks), progress) as bar:
                for source, topic in tasks:
                    bar.set_description(f"{source} {topic.name}")
                    try:
                        run.results.append(runner.run_topic(topic, source))
                    except StopRequested:
                        run.results.append(TopicResult(topic.name, source, "failed",
                                                       error="stopped by signal"))
                        run.stopped = True
                        log.warning("stop requested: %s %s rolled back; no further topics",
                                    source, topic.name)
                        break
                    bar.update(1)
        finally:
            runner.close()
        if not run.stopped:
            run.results += runner.resolve_links(chosen_sources)
            run.stopped = stop.is_set()
        if write_report:
            from littrack.reports import pending_run_ids, write_run_report

            # A killed earlier run never wrote its report: this one takes its rows in.
            run_ids = pending_run_ids(store, settings, run.run_id)
            run.report_dir = write_run_report(store, settings, run_ids, run.run_id)
    _log_run(run, time.monotonic() - started)
    return run


@contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Any]:
    """A tqdm bar on a terminal (log lines routed around it); a no-op bar otherwise."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with tqdm(total=total, unit="topic", leave=False, disable=not enabled) as bar:
        if not enabled:
            yield bar
            return
        with logging_redirect_tqdm():
            yield bar
