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
from littrack.normalize.ctgov import dig, normalize_study
from littrack.sources.ctgov import ClinicalTrials
from littrack.sources.pubmed import PubMed, SearchResult
from littrack.store import Store
from littrack.tables import SOURCES
from littrack.vocab import TIMESTAMP_FORMAT
from littrack.windows import Window, next_window

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

# The ``runs.topic`` of a run's linked-record fetch; config topic names cannot look like it.
LINKED_TOPIC = "(linked)"
ALIASES_PATH = "protocolSection.identificationModule.nctIdAliases"


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
    """State of one run shared across topics: clients, what was fetched, the CT.gov version."""

    def __init__(self, settings: Settings, store: Store, run_id: str, *, full: bool,
                 stop: threading.Event, clock: Clock) -> None:
        self.settings = settings
        self.store = store
        self.run_id = run_id
        self.full = full
        self.stop = stop
        self.clock = clock
        self.clients = {
            "pubmed": HttpClient("pubmed", settings.ncbi.rate, settings.retry),
            "ctgov": HttpClient("ctgov", settings.ctgov.requests_per_minute / 60.0,
                                settings.retry),
        }
        for client in self.clients.values():
            client.stop = stop
        self._pubmed: PubMed | None = None
        self._ctgov: ClinicalTrials | None = None
        self.fetched_pmids: set[str] = set()
        self.saved_ncts: set[str] = set()
        self.ctgov_timestamp: str | None = None
        self._before = (0, 0)  # client stats when the current topic started
        # PubMed searches started ahead of their topics: topic -> (window, future, client)
        self._ahead: dict[str, tuple[Window, Future[SearchResult], HttpClient]] = {}
        self._ahead_pool: ThreadPoolExecutor | None = None

    @property
    def pubmed(self) -> PubMed:
        if self._pubmed is None:
            self._pubmed = PubMed(self.settings.ncbi, self.clients["pubmed"])
        return self._pubmed

    @property
    def ctgov(self) -> ClinicalTrials:
        if self._ctgov is None:
            self._ctgov = ClinicalTrials(self.settings.ctgov, self.clients["ctgov"])
        return self._ctgov

    def _check_stop(self) -> None:
        if self.stop.is_set():
            raise StopRequested("stopped by signal before the topic finished; rolled back")

    def run_topic(self, topic: Topic, source: str) -> TopicResult:
        """Run one topic of one source; never raises LittrackError (records it instead)."""
        now = self.clock()
        wm = self.store.watermark(topic.name, source)
        window = next_window(date.fromisoformat(wm.watermark) if wm else None, now.date(),
                             self._overlap(source), self.full)

        def work(result: TopicResult) -> None:
            if source == "pubmed":
                self._run_pubmed(topic, window, now, result)
            else:
                self._run_ctgov(topic, window, now, wm.data_timestamp if wm else None, result)

        return self._accounted(TopicResult(topic.name, source), now, window, work)

    def _accounted(self, result: TopicResult, now: datetime, window: Window,
                   work: Callable[[TopicResult], None]) -> TopicResult:
        """The bookkeeping every unit of work shares: its run row, its client's topic and
        deadline, its request counts, and a failure recorded rather than raised (a stop
        request still propagates, so no further work starts)."""
        client = self.clients[result.source]
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

    def _overlap(self, source: str) -> int:
        return (self.settings.ncbi if source == "pubmed" else self.settings.ctgov).overlap_days

    def _finish_ok(self, topic: Topic, source: str, now: datetime, result: TopicResult,
                   data_timestamp: str | None = None) -> None:
        """Watermark and run row, inside the topic's transaction."""
        self.store.set_watermark(topic.name, source, now.date().isoformat(), self.run_id,
                                 iso(now), data_timestamp)
        self._finish_run_ok(result)

    def _finish_run_ok(self, result: TopicResult) -> None:
        client = self.clients[result.source]
        self.store.finish_run(
            self.run_id, result.topic, result.source, iso(self.clock()), "ok",
            n_found=result.n_found, n_new=result.n_new, n_updated=result.n_updated,
            n_requests=client.stats.requests - self._before[0],
            n_retries=client.stats.retries - self._before[1])

    # ---- PubMed ------------------------------------------------------------------------
    def search_ahead(self, topics: list[Topic]) -> None:
        """Start the ESearch of every PubMed topic now, on side threads.

        A topic's search needs nothing from the topics before it, so while one topic
        downloads and stores, the next topics' searches are already done: a run costs about
        one round trip per request *rate* slot instead of one per request. The shared pacer
        keeps every start within NCBI's rate; each search has its own client, so its
        requests are counted for its own topic (``_pubmed_search``).
        """
        if not topics:
            return
        now = self.clock()
        self._ahead_pool = ThreadPoolExecutor(max_workers=min(4, len(topics)),
                                              thread_name_prefix="esearch")
        for topic in topics:
            wm = self.store.watermark(topic.name, "pubmed")
            window = next_window(date.fromisoformat(wm.watermark) if wm else None, now.date(),
                                 self._overlap("pubmed"), self.full)
            client = self.pubmed.client_for_topic(topic.name)
            client.deadline = time.monotonic() + self.settings.retry.topic_deadline
            future = self._ahead_pool.submit(self._search_on, client, topic, window)
            self._ahead[topic.name] = (window, future, client)

    def _search_on(self, client: HttpClient, topic: Topic, window: Window) -> SearchResult:
        if self.stop.is_set():
            raise StopRequested("stopped by signal before the search started")
        with self.pubmed.using(client):
            return self.pubmed.search(topic, window)

    def _pubmed_search(self, topic: Topic, window: Window) -> SearchResult:
        """The topic's search: the one started ahead when its window still holds."""
        ahead = self._ahead.pop(topic.name, None)
        if ahead is None:
            return self.pubmed.search(topic, window)
        ahead_window, future, client = ahead
        try:
            result = future.result()
        finally:  # the search's requests and retries belong to this topic
            self.clients["pubmed"].stats.absorb(client.stats)
        if ahead_window != window:  # the date changed since: ask for the right window
            return self.pubmed.search(topic, window)
        return result

    def close(self) -> None:
        """Cancel searches started ahead for topics that did not run (stop, failure)."""
        if self._ahead_pool is not None:
            self._ahead_pool.shutdown(wait=True, cancel_futures=True)
            self._ahead_pool = None
        self._ahead.clear()

    def _run_pubmed(self, topic: Topic, window: Window, now: datetime,
                    result: TopicResult) -> None:
        store, stamp = self.store, iso(now)
        search = self._pubmed_search(topic, window)
        result.n_found = len(search.ids)
        todo = [p for p in search.ids if p not in self.fetched_pmids]
        if window.is_full and not self.full:
            # A topic's first run: records other topics already stored need no new fetch.
            known = store.known_ids("pubmed", todo)
            todo = [p for p in todo if p not in known]
        retry = [p for p in store.missing_ids("pubmed", topic.name)
                 if p not in self.fetched_pmids and p not in set(todo)]
        self._check_stop()
        missing: list[str] = []
        with store.transaction():
            for batch in self.pubmed.fetch(todo + retry, search if not retry else None):
                self._check_stop()
                saved = store.save_records(batch.records, stamp, self.run_id)
                result.n_updated += len(saved.updated)
                store.mark_deleted(batch.deleted, stamp, self.run_id)
                missing += batch.missing
            found = [p for p in todo + retry if p not in set(missing)]
            store.clear_missing("pubmed", found, topic.name)
            store.record_missing("pubmed", missing, topic.name, self.run_id, stamp)
            matched = [p for p in search.ids if p not in set(missing)]
            matched += [p for p in retry if p not in set(missing)]
            result.n_new = store.match(topic.name, "pubmed", matched, self.run_id)
            self._check_stop()
            result.note = f"{len(missing)} PMID(s) missing" if missing else None
            self._finish_ok(topic, "pubmed", now, result)
        self.fetched_pmids.update(todo + retry)

    # ---- ClinicalTrials.gov ------------------------------------------------------------
    def _run_ctgov(self, topic: Topic, window: Window, now: datetime,
                   last_timestamp: str | None, result: TopicResult) -> None:
        store, stamp = self.store, iso(now)
        if self.ctgov_timestamp is None:
            self.ctgov_timestamp = self.ctgov.data_timestamp()
        if (not self.full and last_timestamp and self.ctgov_timestamp == last_timestamp):
            result.note = f"data unchanged since {last_timestamp}; nothing to ask"
            with store.transaction():
                self._finish_ok(topic, "ctgov", now, result, self.ctgov_timestamp)
            return
        seen: set[str] = set()
        total: int | None = None
        with store.transaction():
            for page in self.ctgov.search(topic, window):
                self._check_stop()
                if page.total is not None and (total is None or page.restarted):
                    total = page.total
                records = []
                for study in page.studies:
                    rec = normalize_study(study)
                    if rec.record_id in seen:
                        continue
                    seen.add(rec.record_id)
                    if rec.record_id not in self.saved_ncts:
                        records.append(rec)
                saved = store.save_records(records, stamp, self.run_id)
                result.n_updated += len(saved.updated)
                self.saved_ncts.update(saved.new + saved.updated + saved.unchanged)
            result.n_found = len(seen)
            if total is not None and len(seen) < total:
                raise Incomplete(f"received {len(seen)} of the {total} studies the service "
                                 f"announced; watermark not advanced", source="ctgov",
                                 topic=topic.name)
            result.n_new = store.match(topic.name, "ctgov", sorted(seen), self.run_id)
            self._check_stop()
            self._finish_ok(topic, "ctgov", now, result, self.ctgov_timestamp)

    # ---- linked records ----------------------------------------------------------------
    def resolve_links(self, sources: Iterable[str]) -> list[TopicResult]:
        """Fetch, once each, the records tracked ones link to but no topic matched.

        So every link of a tracked record resolves to a row (a trial's results paper, the
        trial an article reports). Saved without topic matches; each attempt, found or not,
        is remembered in ``linked_fetches`` and counted in ``runs`` under ``LINKED_TOPIC``.
        """
        out = []
        for source in sources:
            ids = self.store.unresolved_links(source)
            if ids:
                out.append(self._resolve(source, ids))
        return out

    def _resolve(self, source: str, ids: list[str]) -> TopicResult:
        now = self.clock()
        stamp = iso(now)

        def work(result: TopicResult) -> None:
            with self.store.transaction():
                outcomes = (self._fetch_linked_pubmed if source == "pubmed"
                            else self._fetch_linked_ctgov)(ids, stamp, result)
                self.store.record_linked_fetch(source, outcomes.items(), self.run_id, stamp)
                missing = sum(o != "saved" for o in outcomes.values())
                result.note = f"{missing} linked id(s) not found" if missing else None
                self._finish_run_ok(result)

        result = TopicResult(LINKED_TOPIC, source, n_found=len(ids))
        try:
            return self._accounted(result, now, Window(None, now.date()), work)
        except StopRequested:  # recorded as failed by _accounted; the report is still written
            return result

    def _fetch_linked_pubmed(self, pmids: list[str], stamp: str,
                             result: TopicResult) -> dict[str, str]:
        outcomes: dict[str, str] = {}
        for batch in self.pubmed.fetch(pmids):
            self._check_stop()
            saved = self.store.save_records(batch.records, stamp, self.run_id)
            result.n_new += len(saved.new)
            result.n_updated += len(saved.updated)
            outcomes.update({r.record_id: "saved" for r in batch.records})
            outcomes.update({p: "deleted" for p in batch.deleted})
            outcomes.update({p: "not_found" for p in batch.missing})
        self.fetched_pmids.update(pmids)
        return outcomes

    def _fetch_linked_ctgov(self, ncts: list[str], stamp: str,
                            result: TopicResult) -> dict[str, str]:
        outcomes = dict.fromkeys(ncts, "not_found")
        records = {}
        for study in self.ctgov.studies_by_id(ncts):
            self._check_stop()
            rec = normalize_study(study)
            records[rec.record_id] = rec
            for alias in dig(study, ALIASES_PATH) or ():
                if outcomes.get(alias) == "not_found":
                    outcomes[alias] = f"alias of {rec.record_id}"
        saved = self.store.save_records(records.values(), stamp, self.run_id)
        result.n_new += len(saved.new)
        result.n_updated += len(saved.updated)
        self.saved_ncts.update(records)
        outcomes.update({n: "saved" for n in records if n in outcomes})
        return outcomes


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
            runner.search_ahead([t for s, t in tasks if s == "pubmed"])
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
