"""Every littrack benchmark in one command; prints every figure of bench/RESULTS.md.

    .venv/bin/python bench/run_all.py            # full sizes (about 15 minutes, ~15 GB disk)
    .venv/bin/python bench/run_all.py --quick    # smaller corpora and store (about 3 minutes)
    .venv/bin/python bench/run_all.py --only parse,store

The parts, each also runnable alone with the same ``--quick``:

* ``requests_used.py``: requests a run uses against the minimum the APIs allow;
* ``wall_time.py``: run wall time against the rate-limit floor, fakes enforcing the limits;
* ``parse_speed.py``: PubMed XML to tidy rows against ``Bio.Entrez.read``, speed and memory;
* ``store_scale.py``: an incremental run on an empty store and on 1,000,000 articles;
* ``throughput.py``: first-run throughput against the parse-only rate, backfill wall time
  against its floors (issue 15);
* ``memory.py``: peak RSS of a whole first run at two sizes (issue 15).

``throughput``, ``memory`` and ``requests`` print each figure beside its target and beside
the previous release's (installed from its git tag by ``previous.py``).

Everything runs against the loopback fakes (``tests/fakes``) on this machine: no network.
Timings depend on what else the machine does; the load average is printed with them.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import (  # noqa: E402
    memory,
    parse_speed,
    requests_used,
    store_scale,
    throughput,
    wall_time,
)
from bench.common import load, machine  # noqa: E402

PARTS = {"requests": requests_used, "wall": wall_time, "parse": parse_speed,
         "store": store_scale, "throughput": throughput, "memory": memory}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    ap.add_argument("--only", default=",".join(PARTS),
                    help=f"comma-separated parts to run (default: {','.join(PARTS)})")
    args = ap.parse_args(argv)
    chosen = [p.strip() for p in args.only.split(",") if p.strip()]
    unknown = [p for p in chosen if p not in PARTS]
    if unknown:
        ap.error(f"unknown part(s) {', '.join(unknown)}; choose from {', '.join(PARTS)}")
    print(f"# littrack benchmarks{' (--quick)' if args.quick else ''}\n")
    print(f"Machine: {machine()}")
    print(f"Started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {load()}\n")
    started = time.monotonic()
    outcomes = {}
    for name in chosen:
        t0 = time.monotonic()
        outcomes[name] = PARTS[name].main(["--quick"] if args.quick else [])
        print(f"\n({name}: {time.monotonic() - t0:.0f} s)\n")

    print("# Summary\n")
    if "requests" in outcomes:
        worst = max(used / minimum for _, used, minimum in outcomes["requests"] if minimum)
        total = sum(u for _, u, _ in outcomes["requests"])
        least = sum(m for _, _, m in outcomes["requests"])
        print(f"* requests: {total} used where the minimum is {least}; worst scenario "
              f"{worst:.2f}x its minimum")
    if "wall" in outcomes:
        print("* wall time / rate-limit floor (topics' own time): "
              + "; ".join(f"{row[0]} {row[4]}" for row in outcomes["wall"]))
    if "parse" in outcomes:
        s = outcomes["parse"]
        print(f"* parsing: {s['stream']:.1f}x Bio.Entrez.read streamed, {s['batches']:.1f}x "
              f"as fetched (500-record replies)")
    if "store" in outcomes:
        print(f"* store: an incremental run's store work on the big store takes "
              f"{outcomes['store']['ratio']:.2f}x its time on an empty store; the week's "
              f"report {outcomes['store']['report']:.1f} s")
    if "throughput" in outcomes:
        t = outcomes["throughput"]["this tree"]
        print(f"* throughput: end-to-end {t['e2e']:.0f} records/s = {t['ratio']:.2f} of the "
              f"parse-only {t['parse']:.0f}/s (target 0.60); backfill wall "
              f"{t['overlap']:.2f}x max(floors) (target 1.15)")
    if "memory" in outcomes:
        m = outcomes["memory"]["this tree"]
        print(f"* memory: whole first run {m['small']:.0f} MB small, {m['big']:.0f} MB big "
              f"({m['growth']:.2f}x; targets 1.3x and 300 MB)")
    print(f"\nAll done in {time.monotonic() - started:.0f} s; {load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
