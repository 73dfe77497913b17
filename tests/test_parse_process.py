"""Parsing in a side process: what it stores, how it shares the work, how it fails.

A first backfill parses EFetch replies in a second process while the first stores
(``[ncbi] parse_process``). The store must not be able to tell: the same rows, raw records
and digests as parsing here. The side process is a real spawned process in every test.
"""

from __future__ import annotations

import logging
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from datetime import date
from pathlib import Path

import pytest

from littrack.config import load_settings
from littrack.http import HttpClient
from littrack.normalize import Normalized, unpack_raw
from littrack.normalize.pubmed import normalize_raw
from littrack.pipeline import run
from littrack.sideprocess import SharedJobs, SideProcess
from littrack.sources.pubmed import EFETCH_IN_FLIGHT, PubMed
from tests.builders.pubmed import article_xml
from tests.corpus import populate
from tests.fakes import CtgovFake, EutilsFake
from tests.fakes.server import Reply, RequestRecord
from tests.test_faults import env_for, snapshot, tuned_config


def settings_with(folder: Path, eutils: EutilsFake, ctgov: CtgovFake, mode: str,
                  batch_size: int = 5):
    path = tuned_config(folder, batch_size=batch_size)
    text = re.sub(r'(?m)^parse_process = \S+', f'parse_process = "{mode}"',
                  path.read_text(encoding="utf-8"))
    path.write_text(text, encoding="utf-8")
    return load_settings(path, env=env_for(folder / "data", eutils, ctgov))


def raw_records(db: Path) -> list[tuple[str, str, str, bytes]]:
    con = sqlite3.connect(db)
    try:
        return sorted((s, r, h, unpack_raw(raw)) for s, r, h, raw in con.execute(
            "SELECT source, record_id, content_hash, raw FROM raw_records"))
    finally:
        con.close()


def test_the_side_process_stores_exactly_what_one_process_stores(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake,
        caplog: pytest.LogCaptureFixture) -> None:
    one = settings_with(tmp_path / "one", eutils_fake, ctgov_fake, "never")
    populate(one, eutils_fake, None, articles=60)
    two = settings_with(tmp_path / "two", eutils_fake, ctgov_fake, "always")

    assert run(one, sources=["pubmed"], write_report=False).exit_code == 0
    with caplog.at_level(logging.DEBUG, logger="littrack.sources.pubmed"):
        assert run(two, sources=["pubmed"], write_report=False).exit_code == 0
    shared = [int(m[1]) for m in map(re.compile(r", (\d+) parsed in the side process").search,
                                     caplog.messages) if m]
    assert shared and 0 not in shared

    db_one, db_two = (s.data_dir / "littrack.sqlite" for s in (one, two))
    assert snapshot(db_two) == snapshot(db_one)
    assert raw_records(db_two) == raw_records(db_one)
    assert len(raw_records(db_one)) == 60


def test_digests_agree_across_processes(tmp_path: Path) -> None:
    """A digest made in the side process (a fresh interpreter: other interned strings, other
    object sharing) equals the one made here, or every record would look changed."""
    xml = article_xml("31000001", title="Équipe MDMA — “a trial”", nct_ids=["NCT01234567"])
    here = normalize_raw(xml.encode("utf-8"))
    script = ("import sys; from littrack.normalize.pubmed import normalize_raw; "
              "print(normalize_raw(sys.stdin.buffer.read()).content_hash())")
    there = subprocess.run([sys.executable, "-c", script], input=xml.encode("utf-8"),
                           capture_output=True, check=True).stdout.decode().strip()
    assert there == here.content_hash()
    # equal rows built from other string objects: the same digest; other rows: another
    rebuilt = Normalized(here.source, here.record_id, {
        name: [{"".join(list(k)): (v if not isinstance(v, str) else "".join(list(v)))
                for k, v in row.items()} for row in rows]
        for name, rows in here.tables.items()})
    assert rebuilt.content_hash() == here.content_hash()
    changed = Normalized(here.source, here.record_id, {
        **here.tables, "articles": [{**here.main, "title": "Another title"}]})
    assert changed.content_hash() != here.content_hash()


def test_a_digest_made_another_way_is_no_change(tmp_path: Path, eutils_fake: EutilsFake,
                                                ctgov_fake: CtgovFake) -> None:
    """A store whose digests were made otherwise (release 0.2.0 hashed sorted JSON) sees
    its records unchanged on the next fetch, and takes the new digests; a record that did
    change in the meantime is still an update."""
    settings = settings_with(tmp_path, eutils_fake, ctgov_fake, "auto")
    corpus = populate(settings, eutils_fake, None, articles=12)
    assert run(settings, sources=["pubmed"], write_report=False).exit_code == 0
    db = settings.data_dir / "littrack.sqlite"
    digests = {r: h for _, r, h, _ in raw_records(db)}
    con = sqlite3.connect(db)
    with con:
        con.execute("UPDATE raw_records SET content_hash = 'made-another-way'")
    con.close()
    edited = sorted(corpus.articles)[0]
    xml = re.sub(r"<ArticleTitle>.*?</ArticleTitle>", "<ArticleTitle>A corrected title"
                 "</ArticleTitle>", eutils_fake.articles[edited].xml, count=1)
    eutils_fake.update_article(edited, xml)

    result = run(settings, sources=["pubmed"], full=True, write_report=False)
    assert result.exit_code == 0
    assert sum(r.n_updated for r in result.results) == 1
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT record_id, fields FROM record_updates").fetchall() == [
            (edited, "title")]
        # (titles are not followed in the change log: only flags such as a retraction)
        assert con.execute("SELECT pmid, field FROM article_changes").fetchall() == []
    finally:
        con.close()
    after = {r: h for _, r, h, _ in raw_records(db)}
    assert "made-another-way" not in after.values()
    assert {r: h for r, h in after.items() if r != edited} == {
        r: h for r, h in digests.items() if r != edited}


def test_a_reply_sent_over_makes_room_for_the_next_download_at_once(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    """While the storing thread holds a batch, each reply that goes to the side process
    frees its download place there and then: the next download starts without waiting for
    the storing thread to come round (with requests taking half a second, a place stayed
    empty through every batch stored). Seen from the fake, with no timing: more EFetch
    requests arrive than the places, while the first batch is still held."""
    settings = settings_with(tmp_path, eutils_fake, ctgov_fake, "always", batch_size=5)
    pmids = [str(32000000 + k) for k in range(60)]  # 12 batches
    for pmid in pmids:
        eutils_fake.add_article(pmid, article_xml(pmid), edat=date(2024, 5, 1))
    arrived = threading.Semaphore(0)

    def count(rec: RequestRecord) -> Reply | None:
        if rec.path.endswith("efetch.fcgi"):
            arrived.release()
        return None

    eutils_fake.before_reply = count
    source = PubMed(settings.ncbi, HttpClient("pubmed", settings.ncbi.rate, settings.retry))
    batches = source.by_id(pmids)
    try:
        first = next(batches)  # parsed here while the side process starts; now held
        assert len(first.records) == 5
        for k in range(EFETCH_IN_FLIGHT + 2):  # the places, then two more while it is held
            assert arrived.acquire(timeout=60), f"EFetch request {k + 1} never came"
        rest = list(batches)
    finally:
        batches.close()
        source.close()
    assert sorted(r.record_id for b in [first, *rest] for r in b.records) == sorted(pmids)


# -- the side process itself ---------------------------------------------------------------

def read_fifo(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


@contextmanager
def then_written(side: SideProcess, fifo: Path, data: bytes) -> Iterator[None]:
    """Write ``data`` to the fifo a job over there reads, after the block. A block that
    fails kills the side process instead: its close would wait for that job for ever."""
    try:
        yield
    except BaseException:
        if side._pool is not None:
            for process in list(side._pool._processes.values()):
                process.kill()
        raise
    with open(fifo, "wb") as fh:
        fh.write(data)


def fail(message: str) -> None:
    raise ValueError(message)


def die() -> None:
    os._exit(3)


def test_it_takes_no_more_than_its_queue(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with SideProcess("test jobs", max_queued=1) as side:
        held = side.submit(read_fifo, str(fifo))  # blocks over there until written
        assert held is not None
        assert side.submit(read_fifo, str(fifo)) is None  # full: the caller does this one
        with open(fifo, "wb") as fh:
            fh.write(b"released")
        assert side.outcome(held) == b"released"
        again = side.submit(str.upper, "free again")
        assert side.outcome(again) == "FREE AGAIN"
        assert side.jobs == 2


def test_a_failing_job_or_a_dead_process_leaves_the_work_here(
        caplog: pytest.LogCaptureFixture) -> None:
    with SideProcess("test jobs") as side:
        assert side.outcome(side.submit(fail, "bad input")) is None  # the caller redoes it
        assert not side.broken
        assert side.outcome(side.submit(str.upper, "still there")) == "STILL THERE"
        with caplog.at_level(logging.WARNING, logger="littrack.sideprocess"):
            assert side.outcome(side.submit(die)) is None
            assert side.broken
            assert side.submit(str.upper, "gone") is None
            assert side.outcome(None) is None
        warnings = [r.getMessage() for r in caplog.records]
        assert len(warnings) == 1 and "test jobs: the side process is unavailable" in warnings[0]


def fifo_or_upper(arg: bytes) -> str:
    return read_fifo(arg.decode()).decode() if arg.startswith(b"/") else arg.decode().upper()


def next_finished(jobs: SharedJobs[str]) -> tuple[int, Future[str]]:
    """Wait for the side process to finish a job, as ``_EFetch`` does, and collect it."""
    while (done := jobs.finished()) is None:
        wait(jobs.running(), return_when=FIRST_COMPLETED)
    return done


def test_shared_jobs_go_where_there_is_room_and_come_out_as_they_finish(
        tmp_path: Path) -> None:
    """The side process takes waiting jobs lowest number first while it has room; the
    caller claims the last waiting one rather than wait, and collects the side process's
    jobs as they finish, whatever their number."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with SideProcess("test jobs", max_queued=1) as side:
        jobs = SharedJobs(side, fifo_or_upper, total=4)
        jobs.ready(0, str(fifo).encode())  # sent: busy over there until the fifo is written
        with then_written(side, fifo, b"a"):
            jobs.ready(1, b"b")
            jobs.ready(2, b"c")  # no room: both wait
            assert jobs.finished() is None
            assert jobs.claim() == (2, b"c")  # the last waiting one, now the caller's
            jobs.ready(2, b"c again")  # already the caller's: not sent
        i, first = next_finished(jobs)
        assert (i, jobs.result(first)) == (0, ("a", None))
        i, second = next_finished(jobs)  # sent over once job 0 made room
        assert (i, jobs.result(second)) == (1, ("B", None))
        assert jobs.ready(3, b"d") is True  # held here, then sent over
        i, third = next_finished(jobs)
        assert (i, jobs.result(third)) == (3, ("D", None))
        assert jobs.claim() is None and jobs.running() == []
        assert side.jobs == 3
        folder = side._folder
        assert folder is not None and os.listdir(folder) == []  # every file read and gone
    assert not os.path.exists(folder)


def test_the_last_job_is_not_queued_behind_a_busy_side_process(tmp_path: Path) -> None:
    """The caller, free before the side process, does the last job: the run must not end
    waiting for one process while the other has nothing left to do."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with SideProcess("test jobs", max_queued=2) as side:
        jobs = SharedJobs(side, fifo_or_upper, total=3)
        jobs.keep(0)  # the caller's from the start
        assert jobs.ready(0, b"mine") is False  # not sent: the caller's
        jobs.ready(1, str(fifo).encode())  # sent: busy until the fifo is written
        with then_written(side, fifo, b"b"):
            jobs.ready(2, b"last")  # there is room, but the side process is busy: kept here
            assert side.jobs == 1
            assert jobs.claim() == (2, b"last")
        i, future = next_finished(jobs)
        assert (i, jobs.result(future)) == (1, ("b", None))

    with SideProcess("test jobs", max_queued=2) as side:  # an idle side process takes it
        jobs = SharedJobs(side, fifo_or_upper, total=1)
        jobs.ready(0, b"only")
        assert side.jobs == 1 and jobs.claim() is None
        i, future = next_finished(jobs)
        assert (i, jobs.result(future)) == (0, ("ONLY", None))


def upper_or_fail(arg: bytes) -> str:
    if arg == b"bad":
        raise ValueError("unparseable")
    return arg.decode().upper()


def test_a_job_that_fails_over_there_gives_its_input_back() -> None:
    """The caller keeps no copy of an input it sent over (a 6 MB reply): when the job fails
    there, the input comes back from its file for the caller's own run, and no file stays."""
    with SideProcess("test jobs") as side:
        jobs = SharedJobs(side, upper_or_fail, total=3)
        assert jobs.ready(0, b"bad") and jobs.ready(1, b"good")
        results = dict(next_finished(jobs) for _ in range(2))
        assert jobs.result(results[0]) == (None, b"bad")
        assert jobs.result(results[1]) == ("GOOD", None)
        folder = side._folder
        assert folder is not None and os.listdir(folder) == []


def test_jobs_made_held_wait_while_the_side_process_is_busy(tmp_path: Path) -> None:
    """A fetch started ahead of its topic keeps its replies here while the side process
    works on the topic due now (``SharedJobs(held=True)``), so they do not crowd it out;
    once released they go over as any other."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with SideProcess("test jobs") as side:
        now = SharedJobs(side, fifo_or_upper, total=3)
        ahead = SharedJobs(side, fifo_or_upper, total=3, held=True)
        now.ready(0, str(fifo).encode())  # busy over there until the fifo is written
        with then_written(side, fifo, b"a"):
            ahead.ready(0, b"x")
            ahead.ready(1, b"y")
            assert side.jobs == 1  # room for one more, but it is busy: both wait
            ahead.release()
            assert side.jobs == 2  # released: it goes over while there is room
        i, first = next_finished(now)
        assert (i, now.result(first)) == (0, ("a", None))
        assert ahead.claim() == (1, b"y")  # still waiting here, for whoever is free first
        i, second = next_finished(ahead)
        assert (i, ahead.result(second)) == (0, ("X", None))


def test_held_jobs_go_over_one_at_a_time_whenever_the_side_process_falls_idle(
        tmp_path: Path) -> None:
    """An idle second core is not kept idle for work started ahead: a held job goes over
    when its input arrives to an idle side process, or when another caller's jobs leave
    it with nothing to do, one job at a time so what is due next still finds room."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with SideProcess("test jobs", max_queued=2) as side:
        now = SharedJobs(side, fifo_or_upper, total=2)
        ahead = SharedJobs(side, fifo_or_upper, total=4, held=True)
        assert side.standby == [ahead]
        ahead.ready(0, str(fifo).encode())  # idle: goes over (busy until the fifo is written)
        with then_written(side, fifo, b"w"):
            ahead.ready(1, b"x")
            ahead.ready(2, b"y")
            assert side.jobs == 1  # busy with the first: the others wait
            now.ready(0, b"due")  # the work due now takes the room left
            assert side.jobs == 2
        i, due = next_finished(now)
        assert (i, now.result(due)) == (0, ("DUE", None))
        # collecting it, ``now`` found the side process with nothing to do: one held job
        # went over, the lowest waiting, and only one
        assert side.jobs == 3 and len(ahead.running()) == 2
        ahead.release()
        results = {}
        for _ in range(3):
            i, done = next_finished(ahead)
            results[i] = ahead.result(done)[0]
        assert results == {0: "w", 1: "X", 2: "Y"}
        ahead.withdraw()  # its caller closes: nothing more goes over ahead
        assert side.standby == []


def test_the_side_process_does_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    script = (
        "import os, signal, sys\n"
        "from littrack.sideprocess import SideProcess\n"
        "from tests.test_parse_process import read_fifo\n"
        "side = SideProcess('test jobs')\n"
        "print(side.outcome(side.submit(os.getpid)), side._folder, flush=True)\n"
        "side.submit_bytes(len, b'a reply on its way')\n"
        f"side.submit(read_fifo, {str(fifo)!r})\n"  # busy over there, for ever
        "os.kill(os.getpid(), signal.SIGKILL)\n")
    parent = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            timeout=60, cwd=Path(__file__).resolve().parents[1])
    assert parent.returncode == -9, parent.stderr
    side_pid, folder = int(parent.stdout.split()[0]), Path(parent.stdout.split()[1])
    deadline = time.monotonic() + 30
    while Path(f"/proc/{side_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)  # waiting for it to notice (it looks twice a second)
    assert not Path(f"/proc/{side_pid}").exists(), "the side process outlived its parent"
    assert not folder.exists()  # nor the files that were crossing


def test_folders_left_by_killed_parents_are_cleared(tmp_path: Path) -> None:
    """A parent killed before its side process started leaves its folder; the next side
    process to start clears it, and leaves a living parent's folder alone."""
    import tempfile

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = Path(tempfile.gettempdir()) / f"littrack-side-{gone.stdout.strip()}-test"
    alive = Path(tempfile.gettempdir()) / f"littrack-side-{os.getpid()}-test"
    for folder in (dead, alive):
        folder.mkdir()
        (folder / "reply.in").write_bytes(b"<PubmedArticleSet/>")
    try:
        with SideProcess("test jobs") as side:
            assert side.outcome(side.submit(str.upper, "x")) == "X"
            assert not dead.exists()
            assert (alive / "reply.in").exists()
    finally:
        for folder in (dead, alive):
            if folder.exists():
                for f in folder.iterdir():
                    f.unlink()
                folder.rmdir()
