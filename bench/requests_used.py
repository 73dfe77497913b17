"""Requests a run uses against the minimum the APIs allow, per topic and source.

Starts both loopback fakes with a generated corpus shaped like the three mission topics,
runs ``littrack run`` in a subprocess as a user would, and counts what the fakes received.

The minimum (issue 7):
* PubMed, first run of a topic with N records to fetch: ceil(N / 9,999) ESearch (at
  least 1; ESearch lists at most 9,999 ids) and ceil(N / batch_size) EFetch;
* PubMed, a run with nothing new: 1 ESearch per topic and no EFetch;
* ClinicalTrials.gov: 1 ``/version`` per run, then ceil(N / pageSize) pages per topic (at
  least 1 when the data changed; none when ``dataTimestamp`` did not move).

    python bench/requests_used.py [--quick] [--spreads]
    python bench/requests_used.py --esearch-only --spreads   # issue 15 point 4 alone
"""

from __future__ import annotations

import argparse
import math
import sqlite3
import sys
import tempfile
from collections import Counter
from datetime import date
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load, max_in_window, run_cli, table  # noqa: E402
from bench.previous import PREVIOUS_TAG, Release, current, install, write_config  # noqa: E402
from littrack.config import Settings, Topic, load_settings  # noqa: E402
from tests.builders.ctgov import study  # noqa: E402
from tests.builders.pubmed import article_xml  # noqa: E402
from tests.corpus import (  # noqa: E402
    Corpus,
    ctgov_matches,
    fake_env,
    populate,
)
from tests.fakes import CtgovFake, EutilsFake  # noqa: E402
from tests.spreads import SPREADS, bench_growth  # noqa: E402

BENCH_SPREAD = "bench growth (2016-)"  # the spread scenario_big_topic uses

CAP = 9999


def esearch_minimum(n: int) -> int:
    """ESearches no client can do with less: each lists at most 9,999 ids."""
    return max(1, math.ceil(n / CAP))


def esearch_target(n: int) -> int:
    """Issue 15 point 4: at most 1 + ceil(N / 9,999) for N > 9,999."""
    return 1 if n <= CAP else 1 + math.ceil(n / CAP)


class Bench:
    """One data directory, both fakes, a config tuned for counting (fast, key-rate PubMed)."""

    def __init__(self, tmp: Path, eutils: EutilsFake, ctgov: CtgovFake, *, batch: int,
                 page_size: int, release: Release | None = None) -> None:
        self.tmp, self.eutils, self.ctgov = tmp, eutils, ctgov
        self.batch, self.page_size = batch, page_size
        self.release = release or current()
        self.config = write_config(self.release, tmp, batch_size=batch, page_size=page_size)
        self.env = {**fake_env(tmp, eutils, ctgov), "NCBI_API_KEY": "bench-key"}
        self.settings: Settings = load_settings(self.config, env=self.env)

    def run(self, *args: str) -> tuple[str, float]:
        before = {src: len(fake.log) for src, fake in (("pubmed", self.eutils),
                                                        ("ctgov", self.ctgov))}
        res = run_cli(self.config, self.env, *args, python=self.release.python)
        if res.returncode != 0:
            raise SystemExit(f"littrack run failed ({res.returncode}):\n{res.stderr[-3000:]}")
        self.new_requests = {"pubmed": self.eutils.log[before["pubmed"]:],
                             "ctgov": self.ctgov.log[before["ctgov"]:]}
        # Read with sqlite3 itself: the previous release's store may be an older schema.
        with sqlite3.connect(self.settings.db_path) as con:
            con.row_factory = sqlite3.Row
            run_id = con.execute("SELECT MAX(run_id) FROM runs").fetchone()[0]
            self.rows = {(r["topic"], r["source"]): dict(r) for r in
                         con.execute("SELECT * FROM runs WHERE run_id=?", (run_id,))}
        return run_id, res.seconds

    def esearches(self, topic: str) -> int:
        q = self.settings.topic(topic).pubmed_query or ""
        return sum(1 for r in self.new_requests["pubmed"]
                   if r.path.endswith("esearch.fcgi") and q in r.params.get("term", ""))

    def pubmed_rows(self, to_fetch: dict[str, int], matching: dict[str, int]
                    ) -> tuple[list[list[object]], int, int]:
        rows, used_total, min_total = [], 0, 0
        for t in self.settings.topics:
            r = self.rows.get((t.name, "pubmed"))
            if r is None:
                continue
            es = self.esearches(t.name)
            ef = r["n_requests"] - es
            es_min = esearch_minimum(matching.get(t.name, 0))
            ef_min = math.ceil(to_fetch.get(t.name, 0) / self.batch)
            used_total += es + ef
            min_total += es_min + ef_min
            rows.append([t.name, matching.get(t.name, 0), to_fetch.get(t.name, 0),
                         f"{es} / {es_min}", f"{ef} / {ef_min}", r["n_retries"]])
        return rows, used_total, min_total

    def ctgov_rows(self, changed: dict[str, int] | None) -> tuple[list[list[object]], int, int]:
        """``changed``: studies per topic in the window, or None when dataTimestamp held."""
        reqs = self.new_requests["ctgov"]
        versions = sum(1 for r in reqs if r.path.endswith("/version"))
        rows: list[list[object]] = [["/version (per run)", "", f"{versions} / 1"]]
        used_total, min_total = versions, 1
        for t in self.settings.topics:
            r = self.rows.get((t.name, "ctgov"))
            if r is None:
                continue
            pages = sum(1 for q in reqs if q.path.endswith("/studies")
                        and all(q.params.get(k) == v
                                for k, v in ctgov_matches(self.settings, t.name).items()))
            n = None if changed is None else changed.get(t.name, 0)
            p_min = 0 if n is None else max(1, math.ceil(n / self.page_size))
            used_total += pages
            min_total += p_min
            rows.append([t.name, "" if n is None else n, f"{pages} / {p_min}"])
        return rows, used_total, min_total

    def rate_line(self) -> str:
        times = [r.time for r in self.new_requests["pubmed"]]
        return (f"busiest second at E-utilities: {max_in_window(times)} requests (limit 10 "
                f"with a key); 429s from the fakes' rate limiters: "
                f"{self.eutils.rate_limited + self.ctgov.rate_limited}")


def per_topic(corpus: Corpus, settings: Settings, source: str) -> tuple[dict[str, int],
                                                                        dict[str, int]]:
    """(records each topic matches, records each topic must fetch in a first run).

    A record two topics match is fetched once, by the first topic in config order.
    """
    recs = corpus.articles if source == "pubmed" else corpus.trials
    names = [t.name for t in settings.topics]
    matching = Counter(t for topics in recs.values() for t in topics)
    first = Counter(min(topics, key=names.index) for topics in recs.values())
    return dict(matching), dict(first)


def print_pubmed(title: str, b: Bench, to_fetch: dict[str, int], matching: dict[str, int]
                 ) -> tuple[int, int]:
    rows, used, minimum = b.pubmed_rows(to_fetch, matching)
    print(f"\n{title}\n")
    print(table(rows, ["topic", "matching", "to fetch", "ESearch used / min",
                       "EFetch used / min", "retries"]))
    print(f"\nPubMed total: {used} requests, minimum {minimum}")
    return used, minimum


def print_ctgov(title: str, b: Bench, changed: dict[str, int] | None) -> tuple[int, int]:
    rows, used, minimum = b.ctgov_rows(changed)
    print(f"\n{title}\n")
    print(table(rows, ["topic", "studies in window", "requests used / min"]))
    print(f"\nClinicalTrials.gov total: {used} requests, minimum {minimum}")
    return used, minimum


def scenario_mission(articles: int, trials: int, batch: int, page_size: int,
                     new_articles: int, changed_trials: int) -> list[tuple[str, int, int]]:
    """First run, a quiet run, then an incremental run, on the three mission topics."""
    out = []
    with tempfile.TemporaryDirectory(prefix="littrack-bench-") as d, \
            EutilsFake() as eutils, CtgovFake(rate_limit_per_minute=None) as ctgov:
        tmp = Path(d)
        b = Bench(tmp, eutils, ctgov, batch=batch, page_size=page_size)
        corpus = populate(b.settings, eutils, ctgov, articles=articles, trials=trials)
        matching, first = per_topic(corpus, b.settings, "pubmed")
        t_matching, _ = per_topic(corpus, b.settings, "ctgov")
        print(f"\n### Mission topics: {articles} articles, {trials} trials; EFetch batch "
              f"{batch}, CT.gov pageSize {page_size}")

        _, secs = b.run()
        used, minimum = print_pubmed(f"First run ({secs:.1f} s)", b, first, matching)
        out.append(("first run, PubMed", used, minimum))
        used, minimum = print_ctgov("First run, ClinicalTrials.gov", b, t_matching)
        out.append(("first run, CT.gov", used, minimum))
        print("\n" + b.rate_line())

        _, secs = b.run()
        none = {t.name: 0 for t in b.settings.topics}
        used, minimum = print_pubmed(f"Second run, nothing new ({secs:.1f} s)", b, none, none)
        out.append(("nothing new, PubMed", used, minimum))
        used, minimum = print_ctgov("Second run, dataTimestamp unchanged", b, None)
        out.append(("nothing new, CT.gov", used, minimum))

        # Incremental: new articles entered today, trials updated today, data refreshed.
        today = date.today()
        names = [t.name for t in b.settings.topics]
        new_by_topic: Counter[str] = Counter()
        for i in range(new_articles):
            pmid = str(39000000 + i)
            topic = names[i % len(names)]
            eutils.add_article(pmid, article_xml(pmid, entrez_date=today), edat=today,
                               mdat=today, queries=[b.settings.topic(topic).pubmed_query or ""])
            new_by_topic[topic] += 1
        changed_by_topic: Counter[str] = Counter()
        for nct in sorted(corpus.trials)[:changed_trials]:
            ctgov.update_study(study(nct, status="COMPLETED", last_update=today.isoformat()))
            for topic in corpus.trials[nct]:
                changed_by_topic[topic] += 1
        ctgov.bump()
        _, secs = b.run()
        used, minimum = print_pubmed(
            f"Incremental run: {new_articles} new articles, {changed_trials} trials changed "
            f"({secs:.1f} s)", b, dict(new_by_topic), dict(new_by_topic))
        out.append(("incremental, PubMed", used, minimum))
        used, minimum = print_ctgov("Incremental run, ClinicalTrials.gov", b,
                                    dict(changed_by_topic))
        out.append(("incremental, CT.gov", used, minimum))
    return out


def fill_one_topic(b: Bench, eutils: EutilsFake, dates: list[date]) -> Topic:
    """The bench config's first topic, matching one article per Entrez date in the fake."""
    topic = b.settings.topics[0]
    q = topic.pubmed_query or ""
    eutils.register_query(q)
    for i, edat in enumerate(dates):
        pmid = str(30000000 + i)
        eutils.add_article(pmid, article_xml(pmid, entrez_date=edat), edat=edat, queries=[q])
    return topic


def scenario_big_topic(n: int, batch: int, release: Release | None = None
                       ) -> list[tuple[str, int, int]]:
    """One topic with more than 9,999 hits: the ESearch must be walked down in PMID ranges."""
    with tempfile.TemporaryDirectory(prefix="littrack-bench-") as d, \
            EutilsFake() as eutils, CtgovFake(rate_limit_per_minute=None) as ctgov:
        b = Bench(Path(d), eutils, ctgov, batch=batch, page_size=1000, release=release)
        # denser in recent years, like real literature
        topic = fill_one_topic(b, eutils, bench_growth(n, date.today()))
        print(f"\n### One topic with {n} hits (ESearch hands out at most {CAP} ids per query), "
              f"{b.release.label()}")
        _, secs = b.run("--topic", topic.name, "--source", "pubmed")
        used, minimum = print_pubmed(f"First run ({secs:.1f} s)", b, {topic.name: n},
                                     {topic.name: n})
        print("\n" + b.rate_line())
    return [(f"first run, one topic of {n}, PubMed", used, minimum)]


def esearch_targets(sizes: list[int], batch: int, previous: Release | None,
                    spreads: list[str]) -> list[list[object]]:
    """Issue 15, point 4: ESearches of a topic of N > 9,999 hits, at most 1 + ceil(N/9,999).

    On each spread of ``tests/spreads.py`` asked for (the bench's growing topic is the
    first): the previous release's date slices cost more or less with how the hits
    spread over time; walking down by PMID should not.
    """
    rows: list[list[object]] = []
    for spread in spreads:
        for n in sizes:
            counts = {}
            for rel in [current()] + ([previous] if previous else []):
                with tempfile.TemporaryDirectory(prefix="littrack-bench-") as d, \
                        EutilsFake() as eutils, CtgovFake(rate_limit_per_minute=None) as ctgov:
                    b = Bench(Path(d), eutils, ctgov, batch=batch, page_size=1000, release=rel)
                    topic = fill_one_topic(b, eutils, SPREADS[spread](n, date.today()))
                    b.run("--topic", topic.name, "--source", "pubmed")
                    counts[rel.tag] = b.esearches(topic.name)
            target = esearch_target(n)
            now = counts[current().tag]
            rows.append([f"ESearch requests, {n:,} hits, {spread}", now, f"<= {target}",
                         counts.get(PREVIOUS_TAG, "-"), "met" if now <= target else "NOT met"])
    return rows


def scenario_ctgov_full_pages(page_size: int, pages: int) -> list[tuple[str, int, int]]:
    """A topic whose studies fill its pages exactly (the API still hands out a next token)."""
    n = page_size * pages
    with tempfile.TemporaryDirectory(prefix="littrack-bench-") as d, \
            EutilsFake() as eutils, CtgovFake(rate_limit_per_minute=None) as ctgov:
        b = Bench(Path(d), eutils, ctgov, batch=500, page_size=page_size)
        topic = b.settings.topics[0]
        match = ctgov_matches(b.settings, topic.name)
        for i in range(n):
            ctgov.add_study(study(f"NCT{5000000 + i:08d}"), matches=[match])
        print(f"\n### One topic with exactly {pages} x pageSize = {n} studies")
        _, secs = b.run("--topic", topic.name, "--source", "ctgov")
        used, minimum = print_ctgov(f"First run ({secs:.1f} s)", b, {topic.name: n})
    return [(f"first run, one topic of {n} studies, CT.gov", used, minimum)]


def main(argv: list[str] | None = None) -> list[tuple[str, int, int]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller corpora")
    ap.add_argument("--no-previous", action="store_true",
                    help=f"skip the previous release ({PREVIOUS_TAG})")
    ap.add_argument("--esearch-only", action="store_true",
                    help="only the issue-15 ESearch table (point 4)")
    ap.add_argument("--spreads", action="store_true",
                    help="the ESearch table on every spread of tests/spreads.py, not only "
                    "the bench's growing topic")
    args = ap.parse_args(argv)
    print("## Requests used vs the minimum\n")
    print(f"Machine state at start: {load()}")
    spreads = list(SPREADS) if args.spreads else [BENCH_SPREAD]
    if args.esearch_only:
        previous = None if args.no_previous else install()
        rows = esearch_targets([12000, 25000], 500, previous, spreads)
        print("\n" + table(rows, ["figure", "this tree", "target", PREVIOUS_TAG, ""]))
        return []
    if args.quick:
        summary = scenario_mission(articles=1500, trials=300, batch=500, page_size=100,
                                   new_articles=30, changed_trials=20)
        summary += scenario_big_topic(12000, batch=500)
        summary += scenario_ctgov_full_pages(100, 3)
    else:
        summary = scenario_mission(articles=6000, trials=2500, batch=500, page_size=1000,
                                   new_articles=300, changed_trials=100)
        summary += scenario_big_topic(25000, batch=500)
        summary += scenario_ctgov_full_pages(1000, 3)
    previous = None if args.no_previous else install()
    target_rows = esearch_targets([12000] if args.quick else [12000, 25000], 500, previous,
                                  spreads)
    print("\n### Summary\n")
    print(table([[name, used, minimum, f"{used / minimum:.2f}" if minimum else "-"]
                 for name, used, minimum in summary],
                ["scenario", "requests used", "minimum", "used / minimum"]))
    print("\n" + table(target_rows, ["figure", "this tree", "target", PREVIOUS_TAG, ""]))
    return summary


if __name__ == "__main__":
    main()
