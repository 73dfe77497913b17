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
from collections.abc import Callable
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


class HoldA:
    """A ``before_reply`` hook: A's last batch is held until B's first EFetch has arrived.

    ``on_b`` runs once, when B's first EFetch arrives; ``a_last`` (None: the fake's own
    reply) answers A's last batch, every time it is asked for. ``waits`` records, for each
    ask of A's last batch, whether B had asked by then (False: the hold timed out).
    """

    def __init__(self, eutils: EutilsFake, pmids: list[list[str]],
                 on_b: Callable[[], None] = lambda: None, a_last: Reply | None = None) -> None:
        self.eutils, self.b_ids = eutils, set(pmids[1])
        self.last_of_a = min(pmids[0], key=int)  # ESearch lists newest first: A's last batch
        self.on_b, self.a_last = on_b, a_last
        self.b_asked = threading.Event()
        self.waits: list[bool] = []

    def __call__(self, rec: RequestRecord) -> Reply | None:
        if not rec.path.endswith("efetch.fcgi"):
            return None
        ids = _ids_of(self.eutils, rec)
        if ids and ids[0] in self.b_ids:
            if not self.b_asked.is_set():
                self.on_b()
                self.b_asked.set()
        elif self.last_of_a in ids:
            self.waits.append(self.b_asked.wait(WAIT))
            return self.a_last
        return None


def test_next_topics_first_replies_are_asked_for_while_the_topic_before_is_stored(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    a, b, c = (t.name for t in settings.topics)
    pmids = _fill(settings, eutils_fake, [1500, 1400], shared=300)
    a_then: list[str | None] = []
    hold = HoldA(eutils_fake, pmids, on_b=lambda: a_then.append(_status(settings, a)))
    eutils_fake.before_reply = hold  # A cannot finish before B has asked
    result = run(settings, sources=["pubmed"], write_report=False)

    assert [r.status for r in result.results] == ["ok", "ok", "ok"]
    assert hold.waits == [True]  # B asked before A's last reply
    assert a_then == ["running"]
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
    # after B's prefetch started, A's last batch never comes
    hold = HoldA(eutils_fake, pmids, a_last=_efetch_error("Search Backend failed"))
    eutils_fake.before_reply = hold
    result = run(settings, sources=["pubmed"], write_report=False)

    assert [r.status for r in result.results][:2] == ["failed", "ok"]
    assert hold.waits and all(hold.waits)  # each try of it came after B had asked
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
    stop = threading.Event()
    # a stop (as a signal would) when B's prefetch starts, while A is still under way
    hold = HoldA(eutils_fake, pmids, on_b=stop.set)
    eutils_fake.before_reply = hold
    before = set(threading.enumerate())
    result = run(settings, sources=["pubmed"], write_report=False, stop=stop)

    assert result.stopped
    assert hold.waits == [True]
    assert [t.name for t in set(threading.enumerate()) - before
            if t.name.startswith("efetch")] == []
    assert result.totals.requests == len(eutils_fake.log)  # B's prefetch counted too
    with sqlite3.connect(settings.db_path) as con:
        assert con.execute("SELECT COUNT(*) FROM articles").fetchone() == (0,)
