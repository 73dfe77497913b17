"""Fault-injection benchmark: does a littrack run under a 20% fault rate lose or duplicate?

Fills the loopback fakes with 2,000 PubMed articles and 500 ClinicalTrials.gov studies (the
shipped topics), runs littrack once with no faults (the reference), then again into a fresh
data directory while both fakes fail a seeded 20% of requests with every kind they know
(429 with Retry-After, 500/502/503, reset, stall, truncated body, 200 with an error body,
short EFetch). It prints the faults injected by kind, how many littrack runs the faulty side
needed to complete, the rows of every table compared with the reference, and the retries
spent. Nothing here asserts; ``tests/test_faults.py`` does, on a smaller corpus.

    /tmp/venv/bin/python bench/faults.py [--rate 0.2] [--seed 2024]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests.* (fakes, corpus, helpers) when run as a script
    sys.path.insert(0, str(ROOT))

from littrack.config import load_settings  # noqa: E402
from littrack.pipeline import LINKED_TOPIC, RunResult, run  # noqa: E402
from tests.corpus import populate  # noqa: E402
from tests.fakes import CtgovFake, EutilsFake  # noqa: E402
from tests.fakes.server import FAULT_KINDS  # noqa: E402
from tests.test_faults import (  # noqa: E402
    differences,
    env_for,
    fixed_clock,
    snapshot,
    tuned_config,
)

RETRY = {"timeout": 2.0, "backoff": 0.25, "max_tries": 6}  # backoff cap: 2 s (test config)
STALL_SECONDS = 10.0  # longer than the timeout: a stall costs one timeout
RETRY_AFTER = 1  # seconds, on injected 429s
MAX_RUNS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=0.2, help="share of requests failed")
    parser.add_argument("--seed", type=int, default=2024, help="seed of the first repeat")
    parser.add_argument("--repeats", type=int, default=5, help="faulty runs, one seed each")
    parser.add_argument("--articles", type=int, default=2000)
    parser.add_argument("--trials", type=int, default=500)
    parser.add_argument("--batch-size", type=int, default=25, help="PMIDs per EFetch")
    parser.add_argument("--page-size", type=int, default=10, help="studies per page")
    args = parser.parse_args()
    logging.basicConfig(level=logging.CRITICAL)  # retries log a warning each: keep it quiet

    with tempfile.TemporaryDirectory(prefix="littrack-faults-") as tmp, \
            EutilsFake() as eutils, CtgovFake(rate_limit_per_minute=None) as ctgov:
        root = Path(tmp)

        def settings(name: str):  # noqa: ANN202
            config = tuned_config(root / name, batch_size=args.batch_size,
                                  page_size=args.page_size, **RETRY)
            return load_settings(config, env=env_for(root / name / "data", eutils, ctgov))

        clean_settings = settings("clean")
        populate(clean_settings, eutils, ctgov, articles=args.articles, trials=args.trials)
        print(f"corpus: {args.articles} articles, {args.trials} trials, 3 topics (fakes); "
              f"EFetch batches of {args.batch_size}, pages of {args.page_size} (small, so "
              f"faults have many requests to land on); timeout {RETRY['timeout']:g}s, "
              f"backoff base {RETRY['backoff']:g}s (cap 2s), max_tries {RETRY['max_tries']}, "
              f"stalls {STALL_SECONDS:g}s, Retry-After {RETRY_AFTER}s")

        started = time.monotonic()
        clean_run = run(clean_settings, clock=fixed_clock, write_report=False)
        clean_seconds = time.monotonic() - started
        clean = snapshot(clean_settings.db_path)
        print(f"fault-free run: {_topics(clean_run)}, {eutils.count() + ctgov.count()} "
              f"requests, {clean_seconds:.1f}s")
        total_rows = sum(len(rows) for rows in clean.values())

        print(f"\nfaulty runs, {args.rate:.0%} of requests failed, each into a fresh data dir:")
        print("  seed  requests  faults  littrack runs  topic runs ok  retries  seconds  "
              "tables vs fault-free")
        injected_all: Counter[str] = Counter()
        completed = equal = retries_all = requests_all = 0
        differing: set[str] = set()
        for repeat in range(args.repeats):
            seed = args.seed + repeat
            eutils.faults.random(rate=args.rate, kinds=FAULT_KINDS, seed=seed,
                                 retry_after=RETRY_AFTER, stall_seconds=STALL_SECONDS)
            ctgov.faults.random(rate=args.rate, kinds=[k for k in FAULT_KINDS if k != "short"],
                                seed=seed + 1000, retry_after=RETRY_AFTER,
                                stall_seconds=STALL_SECONDS)
            before = eutils.faults.injected + ctgov.faults.injected
            sent = eutils.count() + ctgov.count()
            faulty_settings = settings(f"faulty-{seed}")
            runs: list[RunResult] = []
            started = time.monotonic()
            while len(runs) < MAX_RUNS:
                runs.append(run(faulty_settings, clock=fixed_clock, write_report=False))
                if (runs[-1].exit_code == 0
                        and not snapshot(faulty_settings.db_path)["missing_records"]):
                    break
            seconds = time.monotonic() - started
            eutils.faults.clear()
            ctgov.faults.clear()
            injected = eutils.faults.injected + ctgov.faults.injected - before
            requests = eutils.count() + ctgov.count() - sent
            faulty = snapshot(faulty_settings.db_path)
            diff = differences(clean, faulty)
            done = runs[-1].exit_code == 0 and not faulty["missing_records"]
            retries = sum(x.n_retries for r in runs for x in r.results)
            ok = ", ".join(_topics(r).split(" topic")[0] for r in runs)
            verdict = (f"EQUAL ({total_rows} rows)" if not diff
                       else "DIFFERENT in " + ", ".join(diff))
            print(f"  {seed:<5} {requests:>8}  {sum(injected.values()):>6}  {len(runs):>13}  "
                  f"{ok:>13}  {retries:>7}  {seconds:>7.1f}  {verdict}")
            injected_all += injected
            completed += done
            retries_all += retries
            requests_all += requests
            equal += not diff
            differing |= set(diff)

    print(f"\nfaults injected by kind (all {args.repeats} repeats):")
    for kind in FAULT_KINDS:
        print(f"  {kind:<9} {injected_all[kind]:>4}")
    print(f"  {'total':<9} {sum(injected_all.values()):>4}   of {requests_all} requests")
    print(f"\nrepeats completed: {completed}/{args.repeats}; tables equal to the fault-free "
          f"run: {equal}/{args.repeats}"
          + (f" (differing: {', '.join(sorted(differing))})" if differing else ""))
    print(f"rows compared per repeat: {total_rows} in {len(clean)} tables "
          f"(run ids and timestamps left out)")
    print(f"retries spent: {retries_all} ({retries_all / max(1, requests_all):.0%} of "
          f"{requests_all} requests)")


def _topics(result: RunResult) -> str:
    topics = [r for r in result.results if r.topic != LINKED_TOPIC]
    ok = sum(r.status == "ok" for r in topics)
    counts = Counter(r.status for r in result.results if r.topic == LINKED_TOPIC)
    linked = f" (+ linked-record fetch: {', '.join(counts)})" if counts else ""
    return f"{ok}/{len(topics)} topic runs ok{linked}"


if __name__ == "__main__":
    main()
