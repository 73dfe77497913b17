"""One worker against two, sharing one PostgreSQL store, over the same 6 topic×source jobs.

Issue 14's figure: the shipped config's 3 topics × 2 sources, a first run, against the
loopback fakes with every request taking ``--latency`` seconds server-side (a real round
trip), the services' rate limits enforced by the fakes (NCBI 10/s with a key,
ClinicalTrials.gov 50/min). Workers share those limits; littrack keeps one worker per
source at a time, so each paces at the shipped rates and two workers gain by fetching the
two sources in parallel, never by asking one service faster (the 429 column shows it).
Each mode starts from an empty database of its own on the PostgreSQL server of tests/pg.py.
Printed per mode: wall time (start of the first worker to the end of the last), requests
seen by the fakes (two workers must not need more than one), 429s, and who ran what.

    python bench/workers.py [--quick] [--latency 0.3]
"""

from __future__ import annotations

import argparse
import os
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load, machine, make_realistic, set_config, table  # noqa: E402
from littrack.config import load_settings  # noqa: E402
from littrack.store import Store  # noqa: E402
from tests.corpus import fake_env, populate, write_test_config  # noqa: E402
from tests.fakes import CtgovFake, EutilsFake  # noqa: E402
from tests.pg import ADMIN_URL, url_of  # noqa: E402


def fresh_database() -> tuple[str, str]:
    import psycopg

    name = f"littrack_bench_{secrets.token_hex(4)}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"CREATE DATABASE {name}")
    return name, url_of(name)


def drop_database(name: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def one_mode(n_workers: int, articles: int, trials: int, latency: float) -> list[object]:
    with tempfile.TemporaryDirectory(prefix="littrack-workers-") as d, \
            EutilsFake() as eutils, CtgovFake() as ctgov:
        tmp = Path(d)
        config = write_test_config(tmp, ctgov_per_minute=45)  # the shipped pacing
        set_config(config, backoff_base=1.0)
        env = {**fake_env(tmp, eutils, ctgov), "NCBI_API_KEY": "bench-key"}
        populate(load_settings(config, env=env), eutils, ctgov, articles=articles,
                 trials=trials)
        make_realistic(eutils)
        eutils.latency = ctgov.latency = latency
        name, url = fresh_database()
        try:
            with Store(url):  # the schema, once, before the clock starts
                pass
            base = {k: v for k, v in os.environ.items() if not k.startswith(("NCBI_", "LITTRACK_"))}
            started = time.monotonic()
            procs = []
            for i in range(n_workers):
                wenv = {**base, **env, "LITTRACK_DATA_DIR": str(tmp / f"worker{i}"),
                        "LITTRACK_DATABASE_URL": url}
                procs.append(subprocess.Popen(
                    [sys.executable, "-m", "littrack", "--config", str(config), "-q", "run"],
                    env=wenv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
            outs = [p.communicate(timeout=3600) for p in procs]
            seconds = time.monotonic() - started
            for p, (_, err) in zip(procs, outs, strict=True):
                if os.environ.get("BENCH_DEBUG"):
                    print(err)
                if p.returncode != 0:
                    raise SystemExit(f"a worker failed:\n{err[-3000:]}")
            with Store(url) as store:
                runs = [r for r in store.runs() if r["status"] == "ok"]
            by_worker = sorted(sum(1 for r in runs if r["run_id"] == rid)
                               for rid in {r["run_id"] for r in runs})
        finally:
            drop_database(name)
        requests = eutils.count() + ctgov.count()
        return [f"{n_workers} worker{'s' if n_workers > 1 else ''}", f"{seconds:.1f}",
                requests, eutils.rate_limited + ctgov.rate_limited,
                " + ".join(map(str, by_worker)), len(runs)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller corpus")
    parser.add_argument("--latency", type=float, default=0.3)
    args = parser.parse_args()
    articles, trials = (600, 60) if args.quick else (3000, 300)
    print(f"machine: {machine()}; load: {load()}")
    print(f"corpus: {articles} articles, {trials} trials over 3 topics; latency "
          f"{args.latency}s per request; NCBI 10/s and CT.gov 50/min shared by the workers\n")
    rows = [one_mode(n, articles, trials, args.latency) for n in (1, 2)]
    print(table(rows, ["mode", "wall s", "requests", "429s", "jobs per worker",
                       "ok runs (6 jobs + linked)"]))
    if rows[1][2] > rows[0][2]:  # type: ignore[operator]
        raise SystemExit("two workers used more requests than one")


if __name__ == "__main__":
    main()
