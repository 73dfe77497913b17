"""Wall time of runs against the rate-limit floor (requests ÷ the rate the service allows).

The loopback fakes enforce NCBI's 3 requests/s without a key and 10/s with one, and
ClinicalTrials.gov's 50/min; every request takes ``--latency`` seconds on the server, like a
real round trip. ``littrack run`` runs in a subprocess, as a user runs it. Printed per run:

* requests, and the floor: requests ÷ allowed rate;
* the run's wall time: the topics' own seconds as littrack logs them (search, download,
  parse, store, commit), and the whole process (plus interpreter start-up and the report);
* wall ÷ floor for both, and the busiest second the fake saw (must stay within the limit)
  and its rate-limit 429s (must be 0).

    python bench/wall_time.py [--quick] [--latency 0.5]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    load,
    make_realistic,
    max_in_window,
    run_cli,
    set_config,
    table,
)
from littrack.config import load_settings  # noqa: E402
from tests.corpus import fake_env, populate, write_test_config  # noqa: E402
from tests.fakes import CtgovFake, EutilsFake  # noqa: E402

_TOPIC_LINE = re.compile(r"littrack\.pipeline: (pubmed|ctgov) (\S+): ok, .* (\d+) requests "
                         r"\(\d+ retries\) in ([\d.]+)s")


def topic_seconds(stderr: str, source: str) -> tuple[float, int]:
    """Sum of the per-topic seconds and requests littrack logged for ``source``."""
    secs, reqs = 0.0, 0
    for m in _TOPIC_LINE.finditer(stderr):
        if m[1] == source:
            secs += float(m[4])
            reqs += int(m[3])
    return secs, reqs


def pubmed_runs(articles: int, latency: float, key: bool) -> list[list[object]]:
    rows: list[list[object]] = []
    allowed = 10.0 if key else 3.0
    with tempfile.TemporaryDirectory(prefix="littrack-bench-") as d, \
            EutilsFake() as eutils, CtgovFake(rate_limit_per_minute=None) as ctgov:
        tmp = Path(d)
        config = write_test_config(tmp)
        env = fake_env(tmp, eutils, ctgov)
        if key:
            env["NCBI_API_KEY"] = "bench-key"
        settings = load_settings(config, env=env)
        populate(settings, eutils, None, articles=articles)
        make_realistic(eutils)  # real-size records: parse and store cost what they cost
        eutils.latency = latency
        label = f"PubMed, {'key, 10/s' if key else 'no key, 3/s'}"
        for name in ("first run", "nothing new"):
            start = len(eutils.log)
            res = run_cli(config, env, "--source", "pubmed")
            if res.returncode != 0:
                raise SystemExit(f"littrack run failed:\n{res.stderr[-3000:]}")
            reqs = eutils.log[start:]
            secs, logged = topic_seconds(res.stderr, "pubmed")
            n = len(reqs)
            floor = n / allowed
            rows.append([f"{label}: {name}" + (f" ({articles} articles)" if name ==
                                                "first run" else ""),
                         n, f"{floor:.2f}", f"{secs:.2f}", f"{secs / floor:.2f}",
                         f"{res.seconds:.2f}", f"{res.seconds / floor:.2f}",
                         f"{max_in_window([r.time for r in reqs])} / {allowed:g}",
                         eutils.rate_limited, f"{res.maxrss_mb:.0f}"])
            assert logged == n, (logged, n)
    return rows


def ctgov_runs(trials: int, latency: float) -> list[list[object]]:
    rows: list[list[object]] = []
    allowed = 50 / 60
    with tempfile.TemporaryDirectory(prefix="littrack-bench-") as d, \
            EutilsFake() as eutils, CtgovFake() as ctgov:
        tmp = Path(d)
        config = write_test_config(tmp)
        set_config(config, requests_per_minute=45)  # the shipped setting
        env = fake_env(tmp, eutils, ctgov)
        settings = load_settings(config, env=env)
        populate(settings, None, ctgov, articles=0, trials=trials)
        ctgov.latency = latency
        for name in ("first run", "data refreshed, nothing changed", "dataTimestamp unchanged"):
            if name.startswith("data refreshed"):
                ctgov.bump()
            start = len(ctgov.log)
            res = run_cli(config, env, "--source", "ctgov")
            if res.returncode != 0:
                raise SystemExit(f"littrack run failed:\n{res.stderr[-3000:]}")
            reqs = ctgov.log[start:]
            secs, _ = topic_seconds(res.stderr, "ctgov")
            n = len(reqs)
            floor = n / allowed
            rows.append([f"CT.gov, 50/min (littrack paces 45/min): {name}"
                         + (f" ({trials} trials)" if name == "first run" else ""),
                         n, f"{floor:.2f}", f"{secs:.2f}", f"{secs / floor:.2f}",
                         f"{res.seconds:.2f}", f"{res.seconds / floor:.2f}",
                         f"{max_in_window([r.time for r in reqs], 60.0)} / 50 per min",
                         ctgov.rate_limited, f"{res.maxrss_mb:.0f}"])
    return rows


HEADER = ["run", "requests", "floor s", "topics s", "topics / floor", "process s",
          "process / floor", "busiest window", "429s", "peak RSS MB"]


def main(argv: list[str] | None = None) -> list[list[object]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller corpora")
    ap.add_argument("--latency", type=float, default=0.5,
                    help="seconds every request takes on the fake server (default 0.5)")
    args = ap.parse_args(argv)
    articles, trials = (1500, 1500) if args.quick else (6000, 4000)
    print("## Wall time vs the rate-limit floor\n")
    print(f"Per-request latency {args.latency:g} s; {load()} at start\n")
    rows = pubmed_runs(articles, args.latency, key=False)
    rows += pubmed_runs(articles, args.latency, key=True)
    rows += ctgov_runs(trials, args.latency)
    print(table(rows, HEADER))
    print(f"\n{load()} at end")
    return rows


if __name__ == "__main__":
    main()
