"""Requests and wall time of a first and a second `run` against the loopback fakes.

    python bench/first_runs.py --articles 5000 --trials 0 --source pubmed   # issue 2's figure
    python bench/first_runs.py --articles 0 --trials 3000 --source ctgov    # issue 3's figure

The shipped pacing (PubMed 2.85/s without a key, ClinicalTrials.gov 45/min), the fakes
enforcing the services' limits, the corpus of tests/corpus.py.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from littrack.pipeline import run  # noqa: E402
from tests.corpus import populate, settings_for  # noqa: E402
from tests.fakes import CtgovFake, EutilsFake  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--articles", type=int, default=5000)
    ap.add_argument("--trials", type=int, default=3000)
    ap.add_argument("--source", choices=["pubmed", "ctgov"], action="append")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp, EutilsFake() as e, CtgovFake() as c:
        s = settings_for(Path(tmp), e, c, ctgov_per_minute=45, backoff=1.0, timeout=60)
        populate(s, e, c, articles=args.articles, trials=args.trials)
        for label in ("first", "second"):
            before = [e.count("esearch.fcgi"), e.count("efetch.fcgi"), c.count("/version"),
                      c.count("/studies")]
            t0 = time.monotonic()
            result = run(s, sources=args.source)
            wall = time.monotonic() - t0
            now = [e.count("esearch.fcgi"), e.count("efetch.fcgi"), c.count("/version"),
                   c.count("/studies")]
            d = [b - a for a, b in zip(before, now, strict=True)]
            print(f"{label} run: exit {result.exit_code}, wall {wall:.1f}s; pubmed ESearch "
                  f"{d[0]}, EFetch {d[1]}; ctgov /version {d[2]}, /studies {d[3]}; "
                  f"429s from the fakes: {e.rate_limited + c.rate_limited}")


if __name__ == "__main__":
    main()
