"""Store scale: an incremental run on a store of 1,000,000 articles and 100,000 trials.

Builds a big store fast: a seed of realistic records (generated XML parsed by littrack, and
builder studies normalized by littrack) saved through ``Store.save_records``, then doubled
with ``INSERT … SELECT`` (PMIDs and NCT numbers shifted) up to the target size, with topic
matches spread over ~5 years of daily runs. Then the same incremental run — 1,000 new
articles over the three topics, 100 trials changed — goes through the store API the way
``pipeline`` drives it (per-topic transactions: save_records, match, watermark, run row;
then the linked-record lookup and the run's report queries over the last week) on an empty
store and on the big one, and the times are printed side by side. Finally
``EXPLAIN QUERY PLAN`` shows how each report query reaches the big tables.

    python bench/store_scale.py [--quick] [--articles N] [--trials N]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load, realistic_article_xml, table  # noqa: E402
from littrack.normalize import Normalized  # noqa: E402
from littrack.normalize.ctgov import normalize_study  # noqa: E402
from littrack.normalize.pubmed_efetch import parse_efetch  # noqa: E402
from littrack.store import QUERIES, Store  # noqa: E402
from littrack.tables import CTGOV_TABLES, PUBMED_TABLES  # noqa: E402
from tests.builders.ctgov import study  # noqa: E402
from tests.builders.pubmed import efetch_xml  # noqa: E402

TOPICS = ("mdma-ptsd", "mdma-end-of-life", "mdma-autism-social-anxiety")
PMID_BASE = 20_000_000  # 8 digits all the way up: text order is number order
NCT_BASE = 10_000_000
HISTORY_DAYS = 2000  # daily runs the big store's matches are spread over
TODAY = datetime.now(UTC).date()


def run_id_for(day: date, tag: str) -> str:
    return f"{day:%Y%m%d}T060000Z-{tag}"


def seed_articles(n: int, first: int, rng: random.Random) -> list[Normalized]:
    start = date(2016, 1, 1)
    xml = [realistic_article_xml(str(first + i), rng,
                                 edat=start + timedelta(days=rng.randrange(3500)),
                                 nct_ids=[f"NCT{NCT_BASE + rng.randrange(1000)}"]
                                 if rng.random() < 0.3 else [])
           for i in range(n)]
    return [r for r in parse_efetch(efetch_xml(xml)) if isinstance(r, Normalized)]


def seed_trials(n: int, first: int, rng: random.Random, status: str | None = None
                ) -> list[Normalized]:
    out = []
    countries = ["United States", "Canada", "Israel", "Switzerland", "Germany", "Brazil"]
    for i in range(n):
        nct = f"NCT{first + i}"
        locs = [(f"Site {k}", f"City {k}", None, rng.choice(countries), "RECRUITING")
                for k in range(rng.randint(1, 6))]
        refs = [(str(PMID_BASE + rng.randrange(100000)), rng.choice(["RESULT", "BACKGROUND"]),
                 f"Citation {k}") for k in range(rng.randint(0, 4))]
        s = study(nct, title=f"Synthetic trial {first + i}",
                  status=status or rng.choice(["RECRUITING", "COMPLETED", "NOT_YET_RECRUITING",
                                               "ACTIVE_NOT_RECRUITING"]),
                  phases=rng.choice([("PHASE2",), ("PHASE3",), ("PHASE1", "PHASE2")]),
                  last_update=(date(2022, 1, 1) + timedelta(days=rng.randrange(1400))
                               ).isoformat(),
                  primary_completion=(f"{rng.randrange(2018, 2030)}-0{rng.randrange(1, 9)}",
                                      "ESTIMATED"),
                  locations=locs, references=refs)
        out.append(normalize_study(s))
    return out


def _shift(expr: str, kind: str) -> str:
    return (f"CAST(CAST({expr} AS INTEGER) + :off AS TEXT)" if kind == "pmid"
            else f"'NCT' || (CAST(substr({expr}, 4) AS INTEGER) + :off)")


def _copy_sql(kind: str) -> list[str]:
    """INSERT … SELECT statements copying every record with id < :limit, id shifted by :off."""
    tables = PUBMED_TABLES if kind == "pmid" else CTGOV_TABLES
    key = "pmid" if kind == "pmid" else "nct_id"
    source = "pubmed" if kind == "pmid" else "ctgov"
    stmts = []
    for t in tables:
        cols = [c for c in t.columns]
        if t is tables[0]:
            cols += ["first_seen_at", "last_seen_at", "updated_at"]
        sel = [_shift(c, kind) if c == key else c for c in cols]
        stmts.append(f"INSERT INTO {t.name} ({', '.join(cols)}) SELECT {', '.join(sel)} "
                     f"FROM {t.name} WHERE {key} < :limit")
    stmts.append(
        f"INSERT INTO raw_records (source, record_id, content_hash, fetched_at, run_id, raw) "
        f"SELECT source, {_shift('record_id', kind)}, content_hash, fetched_at, run_id, raw "
        f"FROM raw_records WHERE source = '{source}' AND record_id < :limit")
    stmts.append(
        f"INSERT INTO topic_matches (topic, source, record_id, first_seen_run, last_seen_run) "
        f"SELECT topic, source, {_shift('record_id', kind)}, first_seen_run, last_seen_run "
        f"FROM topic_matches WHERE source = '{source}' AND record_id < :limit")
    # A link follows the copy of the record that states it: an article's DataBank link gets
    # the copied PMID, a trial's reference the copied NCT number (the other end stays).
    nct = "nct_id" if kind == "pmid" else _shift("nct_id", kind)
    pmid = _shift("pmid", kind) if kind == "pmid" else "pmid"
    evidence = "evidence LIKE 'pubmed%'" if kind == "pmid" else "evidence LIKE 'ctgov%'"
    stmts.append(
        f"INSERT OR IGNORE INTO trial_publication_links (nct_id, pmid, evidence, first_seen_run)"
        f" SELECT {nct}, {pmid}, evidence, first_seen_run FROM trial_publication_links "
        f"WHERE {key} < :limit AND {key} >= :low AND {evidence}")
    return stmts


def grow(store: Store, kind: str, seed: int, target: int) -> None:
    """Double the records of ``kind`` (ids contiguous from the base) until ``target``."""
    base = PMID_BASE if kind == "pmid" else NCT_BASE
    fmt = str if kind == "pmid" else (lambda n: f"NCT{n}")
    stmts = _copy_sql(kind)
    count = seed
    while count < target:
        n = min(count, target - count)
        with store.transaction():
            for sql in stmts:
                params = {"off": count, "limit": fmt(base + n)}
                if ":low" in sql:
                    params["low"] = fmt(base)
                store.db.execute(sql, params)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # keep the WAL small
        count += n


def history(store: Store) -> list[str]:
    """HISTORY_DAYS daily runs (three topics, two sources each) and the topics' watermarks."""
    days = [TODAY - timedelta(days=HISTORY_DAYS - k) for k in range(HISTORY_DAYS)]
    ids = [run_id_for(d, "hist00") for d in days]
    with store.transaction():
        rows = [(rid, t, s, f"{d}T06:00:00Z", f"{d}T06:05:00Z", "ok")
                for rid, d in zip(ids, days, strict=True) for t in TOPICS
                for s in ("pubmed", "ctgov")]
        store.db.executemany("INSERT INTO runs (run_id, topic, source, started_at, "
                             "finished_at, status) VALUES (?, ?, ?, ?, ?, ?)", rows)
        for t in TOPICS:
            for s in ("pubmed", "ctgov"):
                store.set_watermark(t, s, (TODAY - timedelta(days=1)).isoformat(), ids[-1],
                                    f"{TODAY}T06:00:00Z")
    return ids


def build_big(path: Path, articles: int, trials: int) -> dict[str, float]:
    """The big store: a saved seed, doubled by INSERT … SELECT (no ANALYZE: users have none).

    Each seed record is first seen in one of the HISTORY_DAYS daily runs, so every copy is
    spread over the same runs and a week of runs holds a week's share of the store.
    """
    rng = random.Random(3)
    seed_a, seed_t = min(5000, articles), min(1000, trials)
    t0 = time.perf_counter()
    arts = seed_articles(seed_a, PMID_BASE, rng)
    trs = seed_trials(seed_t, NCT_BASE, rng)
    t1 = time.perf_counter()
    with Store(path) as store:
        runs = history(store)
        with store.transaction():
            for i, rec in enumerate(arts + trs):
                run = runs[(i * 7919) % HISTORY_DAYS]  # a day spread, not clustered by id
                store.save_records([rec], f"{TODAY}T00:00:00Z", run)
                store.match(TOPICS[i % 3], rec.source, [rec.record_id], run)
                if i % 5 == 0:
                    store.match(TOPICS[(i + 1) % 3], rec.source, [rec.record_id], run)
        t2 = time.perf_counter()
        store.db.execute("PRAGMA synchronous=OFF")  # building only; the runs use the default
        grow(store, "pmid", seed_a, articles)
        grow(store, "nct", seed_t, trials)
        store.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        t3 = time.perf_counter()
        counts = store.counts()
    return {"generate seed": t1 - t0, "save seed": t2 - t1, "INSERT…SELECT": t3 - t2,
            "articles": counts["articles"], "trials": counts["trials"],
            "rows": sum(counts.values()), "MB": path.stat().st_size / 1e6}


def incremental_run(path: Path, new_articles: list[Normalized], changed: list[Normalized]
                    ) -> dict[str, float]:
    """One run's store work, as pipeline.Runner does it, timed by phase."""
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    run_id = now.strftime("%Y%m%dT%H%M%SZ") + "-bench0"
    times: dict[str, float] = {}
    by_topic: dict[str, list[Normalized]] = {t: [] for t in TOPICS}
    for i, rec in enumerate(new_articles):
        by_topic[TOPICS[i % 3]].append(rec)
    trials_by_topic: dict[str, list[Normalized]] = {t: [] for t in TOPICS}
    for i, rec in enumerate(changed):
        trials_by_topic[TOPICS[i % 3]].append(rec)
    with Store(path) as store:
        t0 = time.perf_counter()
        store.fail_interrupted_runs(stamp)
        for source, groups in (("pubmed", by_topic), ("ctgov", trials_by_topic)):
            for topic, recs in groups.items():
                wm = store.watermark(topic, source)
                store.start_run(run_id, topic, source, stamp,
                                (wm.watermark if wm else None, now.date().isoformat()))
                ids = [r.record_id for r in recs]
                with store.transaction():
                    store.missing_ids(source, topic)
                    for i in range(0, len(recs), 500):
                        store.save_records(recs[i:i + 500], stamp, run_id)
                        if source == "pubmed":
                            store.mark_deleted([], stamp, run_id)
                    store.clear_missing(source, ids, topic)
                    store.record_missing(source, [], topic, run_id, stamp)
                    store.match(topic, source, ids, run_id)
                    store.set_watermark(topic, source, now.date().isoformat(), run_id, stamp)
                    store.finish_run(run_id, topic, source, stamp, "ok", n_found=len(ids))
        t1 = time.perf_counter()
        times["save + match + commit"] = t1 - t0
        for source in ("pubmed", "ctgov"):
            if hasattr(store, "unresolved_links"):
                store.unresolved_links(source)
        t2 = time.perf_counter()
        times["linked-record lookup"] = t2 - t1
        week = store.run_ids_since((now - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ"))
        from littrack.reports import report_frames, write_report

        frames = report_frames(store, week)
        t3 = time.perf_counter()
        times["report queries, last week"] = t3 - t2
        write_report(store, path.parent / f"report-{path.stem}", week, "bench")
        t4 = time.perf_counter()
        times["report folder, last week"] = t4 - t3
        times["total"] = t4 - t0
        times["report rows"] = sum(len(f) for f in frames.values())
        times["week runs"] = len(week)
    return times


def query_times(path: Path) -> list[list[object]]:
    """Each named report query over the last week's runs, timed, with its plan's full scans."""
    rows: list[list[object]] = []
    with Store(path) as store:
        since = (datetime.now(UTC) - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ")
        week = store.run_ids_since(since)
        for name, sql in QUERIES.items():
            params: dict[str, object] = {}
            if ":today" in sql:
                params["today"] = TODAY.isoformat()
            started = time.perf_counter()
            frame = (store.query(name, run_ids=week, **params) if ":run_ids" in sql
                     else store.query(name, **params))
            seconds = time.perf_counter() - started
            plan_sql = sql.replace(":run_ids", ",".join("?" * len(week)) or "NULL")
            args: list[object] = list(week) * sql.count(":run_ids")
            if ":today" in sql:  # named, so it binds whatever the number of uses
                args = {"today": TODAY.isoformat()}  # type: ignore[assignment]
            plan = store.db.execute("EXPLAIN QUERY PLAN " + plan_sql, args).fetchall()
            scans = sorted({r[3].removeprefix("SCAN ") for r in plan
                            if r[3].startswith("SCAN") and "subquery" not in r[3].lower()
                            and "CONSTANT" not in r[3]})
            rows.append([name, len(frame), f"{seconds:.3f}", ", ".join(scans) or "-"])
    return rows


def big_store_args(description: str, argv: list[str] | None) -> tuple[int, int]:
    """How big a store to build (``--quick``, ``--articles``, ``--trials``): the same
    options for every bench that measures on a big store."""
    ap = argparse.ArgumentParser(description=description.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="100,000 articles, 10,000 trials")
    ap.add_argument("--articles", type=int)
    ap.add_argument("--trials", type=int)
    args = ap.parse_args(argv)
    return (args.articles or (100_000 if args.quick else 1_000_000),
            args.trials or (10_000 if args.quick else 100_000))


def incremental_records() -> tuple[list[Normalized], list[Normalized]]:
    """The incremental run measured on the big store: 1,000 new articles, 100 of the
    store's trials changed (seeded, so every bench measures the same records)."""
    rng = random.Random(99)
    new = seed_articles(1000, 39_000_000, rng)
    return new, seed_trials(100, NCT_BASE + 100, rng, status="COMPLETED")


def main(argv: list[str] | None = None) -> dict[str, float]:
    articles, trials = big_store_args(__doc__ or "", argv)
    print("## Store scale\n")
    print(f"{load()} at start\n")
    new, changed = incremental_records()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="littrack-bench-") as d:
        empty, big = Path(d) / "empty.sqlite", Path(d) / "big.sqlite"
        warm = Path(d) / "warm.sqlite"
        with Store(warm) as store:  # imports, fonts and chart set-up: not the store's cost
            from littrack.reports import write_report

            write_report(store, Path(d) / "warm-report", [], "warm-up")
        Store(empty).close()
        os.sync()  # nothing of the set-up left for the run's fsyncs to wait for
        results["empty store"] = incremental_run(empty, new, changed)
        built = build_big(big, articles, trials)
        os.sync()  # the build wrote gigabytes: flush them before timing the run's commits
        print(f"Big store: {built['articles']:,} articles, {built['trials']:,} trials, "
              f"{built['rows']:,} rows, {built['MB']:,.0f} MB; built in "
              + ", ".join(f"{k} {v:.0f} s" for k, v in built.items()
                          if k not in ("articles", "trials", "rows", "MB")) + "\n")
        results["big store"] = incremental_run(big, new, changed)
        plans = query_times(big)
    phases = ["save + match + commit", "linked-record lookup", "report queries, last week",
              "report folder, last week", "total"]
    e, b = results["empty store"], results["big store"]
    print("Incremental run: 1,000 new articles over 3 topics, 100 trials changed; its "
          f"report covers the last week ({int(e['week runs'])} run, {int(e['report rows'])} "
          f"rows on the empty store; {int(b['week runs'])} runs, {int(b['report rows'])} "
          "rows on the big one), CSVs plus summary and charts in the report folder\n")
    print(table([[p, f"{e[p]:.2f}", f"{b[p]:.2f}", f"{b[p] / e[p]:.2f}" if e[p] else "-"]
                 for p in phases],
                ["phase", "empty store s", f"big store s ({articles:,} articles)",
                 "big / empty"]))
    print("\nEvery report query on the big store, over the last week's runs "
          "(full scans from EXPLAIN QUERY PLAN):\n")
    print(table(plans, ["query", "rows", "seconds", "full table scans"]))
    print(f"\n{load()} at end")
    run_phases = ("save + match + commit", "linked-record lookup")
    return {"ratio": sum(b[p] for p in run_phases) / sum(e[p] for p in run_phases),
            "report": b["report folder, last week"] + b["report queries, last week"]}


if __name__ == "__main__":
    main()
