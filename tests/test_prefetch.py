"""A topic's first EFetch replies are on their way while the topic before it is stored.

Every topic after the first used to wait a round trip for its first reply. The pipeline
now starts the next topic's fetch once the current topic's downloads have all started
(``Runner._prefetch_next``), for the ids that topic will ask for once the current one
succeeds. These checks hold requests at the E-utilities fake (``before_reply``) to see the
order from the server's side, with no timing: the next topic's first request arrives
while the topic before it has not committed; a prefetch whose ids turn out wrong (the
topic before failed) is dropped and fetched again right; a stop leaves nothing running;
and every request is counted once, for the topic it was made for.
"""

from __future__ import annotations

import sqlite3
import threading
from datetime import date
from pathlib import Path

from littrack.config import Settings
from littrack.pipeline import run
from tests.builders.pubmed import article_xml
from tests.corpus import settings_for
from tests.fakes import CtgovFake, EutilsFake
from tests.fakes.eutils import _efetch_error
from tests.fakes.server import Reply, RequestRecord

WAIT = 60.0  # a hold that times out means the order checked for did not happen


def _fill(settings: Settings, eutils: EutilsFake, sizes: list[int], shared: int
          ) -> list[list[str]]:
    """Articles for the first topics, ``sizes[i]`` each, the second sharing the newest
    ``shared`` of the first's; PMIDs by topic."""
    by_topic: list[list[str]] = []
    for i, topic in enumerate(settings.topics):
        query = topic.pubmed_query or ""
        eutils.register_query(query)
        n = sizes[i] if i < len(sizes) else 0
        by_topic.append([str(1000000 * (i + 1) + k) for k in range(n)])
        for pmid in by_topic[-1]:
            eutils.add_article(pmid, article_xml(pmid), edat=date(2024, 5, 1), queries=[query])
    for pmid in by_topic[0][len(by_topic[0]) - shared:]:
        eutils.articles[pmid].queries |= {settings.topics[1].pubmed_query or ""}
    return by_topic


def _ids_of(eutils: EutilsFake, rec: RequestRecord) -> list[str]:
    """The PMIDs an EFetch request asks for, by id list or by history-server page."""
    if "id" in rec.params:
        return rec.params["id"].split(",")
    lists = eutils._history[rec.params["WebEnv"]]
    start, count = int(rec.params["retstart"]), int(rec.params["retmax"])
    return lists[int(rec.params["query_key"]) - 1][start:start + count]


def _status(settings: Settings, topic: str) -> str | None:
    with sqlite3.connect(settings.db_path) as con:
        row = con.execute("SELECT status FROM runs WHERE topic=? AND source='pubmed'",
                          (topic,)).fetchone()
    return row[0] if row else None


def _runs(settings: Settings) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(settings.db_path) as con:
        return {t: (s, n) for t, s, n in con.execute(
            "SELECT topic, status, n_requests FROM runs WHERE source='pubmed'")}


def test_next_topics_first_replies_are_asked_for_while_the_topic_before_is_stored(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    a, b, c = (t.name for t in settings.topics)
    pmids = _fill(settings, eutils_fake, [1500, 1400], shared=300)
    last_of_a = min(pmids[0], key=int)  # ESearch lists newest first: in A's last batch
    second_started = threading.Event()
    seen: dict[str, object] = {}

    def hold(rec: RequestRecord) -> Reply | None:
        if not rec.path.endswith("efetch.fcgi"):
            return None
        ids = _ids_of(eutils_fake, rec)
        if ids and ids[0] in pmids[1] and not second_started.is_set():
            seen["status of A then"] = _status(settings, a)
            second_started.set()
        elif last_of_a in ids:  # A cannot finish before B has asked
            seen["B asked before A's last reply"] = second_started.wait(WAIT)
        return None

    eutils_fake.before_reply = hold
    result = run(settings, sources=["pubmed"], write_report=False)

    assert [r.status for r in result.results] == ["ok", "ok", "ok"]
    assert seen == {"B asked before A's last reply": True, "status of A then": "running"}
    fetched = [p for r in eutils_fake.requests("efetch.fcgi") for p in _ids_of(eutils_fake, r)]
    assert sorted(fetched) == sorted(set(pmids[0]) | set(pmids[1]))  # each once
    # each request counted once, for its own topic: 1 ESearch + ceil(n / 500) EFetch
    assert _runs(settings) == {a: ("ok", 1 + 3), b: ("ok", 1 + 3), c: ("ok", 1)}
    assert result.totals.requests == len(eutils_fake.log)


def test_a_prefetch_the_topic_before_proved_wrong_is_dropped_and_fetched_again(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    """A fails after B's fetch started for B's hits minus A's: the 300 they share were not
    stored, so B asks for all of its own, and counts the dropped prefetch's requests."""
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    a, b, _ = (t.name for t in settings.topics)
    pmids = _fill(settings, eutils_fake, [1500, 1400], shared=300)
    last_of_a = min(pmids[0], key=int)
    second_started = threading.Event()

    def break_a(rec: RequestRecord) -> Reply | None:
        if not rec.path.endswith("efetch.fcgi"):
            return None
        ids = _ids_of(eutils_fake, rec)
        if ids and ids[0] in pmids[1]:
            second_started.set()
        elif last_of_a in ids:  # after B's prefetch started, A's last batch never comes
            assert second_started.wait(WAIT)
            return _efetch_error("Search Backend failed")
        return None

    eutils_fake.before_reply = break_a
    result = run(settings, sources=["pubmed"], write_report=False)

    assert [r.status for r in result.results][:2] == ["failed", "ok"]
    with sqlite3.connect(settings.db_path) as con:
        stored = {r[0] for r in con.execute("SELECT pmid FROM articles")}
    shared = set(pmids[0][-300:])  # stored by A's first batch, then rolled back with A
    assert stored == set(pmids[1]) | shared  # though the prefetch left them out
    runs = _runs(settings)
    assert runs[b][1] > 1 + 4  # 1,700 asked for, and the dropped prefetch's requests
    assert result.totals.requests == len(eutils_fake.log)


def test_a_stop_while_the_next_topic_is_prefetched_leaves_nothing_running(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    pmids = _fill(settings, eutils_fake, [1500, 1400], shared=0)
    last_of_a = min(pmids[0], key=int)
    stop = threading.Event()

    def stop_when_b_starts(rec: RequestRecord) -> Reply | None:
        if not rec.path.endswith("efetch.fcgi"):
            return None
        ids = _ids_of(eutils_fake, rec)
        if ids[0] in pmids[1]:
            stop.set()  # as a signal would
        elif last_of_a in ids:  # A is still under way when the stop comes
            assert stop.wait(WAIT)
        return None

    eutils_fake.before_reply = stop_when_b_starts
    before = set(threading.enumerate())
    result = run(settings, sources=["pubmed"], write_report=False, stop=stop)

    assert result.stopped
    assert [t.name for t in set(threading.enumerate()) - before
            if t.name.startswith("efetch")] == []
    assert result.totals.requests == len(eutils_fake.log)  # B's prefetch counted too
    with sqlite3.connect(settings.db_path) as con:
        assert con.execute("SELECT COUNT(*) FROM articles").fetchone() == (0,)
