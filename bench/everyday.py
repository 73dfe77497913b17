"""Issue 11's two timings: a run with both services unreachable, and a stop during a large
backfill.

1. **Unreachable**: ``littrack run`` with E-utilities and ClinicalTrials.gov pointing at a
   closed loopback port (connection refused) and, separately, at a name that does not
   resolve (``.invalid``): wall time, exit code, requests, the hint lines.
2. **Interrupt**: a backfill of ``--articles`` realistic-size articles from the loopback
   fakes; SIGINT (then, on a fresh store, SIGTERM) is sent once the first EFetch batches
   are stored; prints the time from the signal to the process's exit, its exit code, and
   the status recorded in ``runs``.

    .venv/bin/python bench/everyday.py                 # defaults: 20,000 articles
    .venv/bin/python bench/everyday.py --articles 5000
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import make_realistic  # noqa: E402
from littrack.config import load_settings  # noqa: E402
from tests.corpus import fake_env, populate, write_test_config  # noqa: E402
from tests.fakes import CtgovFake, EutilsFake  # noqa: E402

PYTHON = sys.executable


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # closed again when the block ends


def littrack(config: Path, env: dict[str, str], *args: str) -> subprocess.Popen[bytes]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("NCBI_", "LITTRACK_"))}
    full.update(env)
    return subprocess.Popen([PYTHON, "-m", "littrack", "--config", str(config), *args],
                            env=full, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def unreachable(folder: Path) -> None:
    # The shipped config as it is (its real backoff), data and addresses from the environment
    config = folder / "shipped.toml"
    config.write_text((ROOT / "config" / "littrack.toml").read_text(encoding="utf-8"),
                      encoding="utf-8")
    for label, eutils, ctgov in (
            ("connection refused", f"http://127.0.0.1:{closed_port()}/entrez/eutils",
             f"http://127.0.0.1:{closed_port()}/api/v2"),
            ("DNS failure", "http://eutils.littrack-test.invalid/entrez/eutils",
             "http://ctgov.littrack-test.invalid/api/v2")):
        env = {"LITTRACK_DATA_DIR": str(folder / f"data-{label.split()[0]}"),
               "LITTRACK_EUTILS_URL": eutils, "LITTRACK_CTGOV_URL": ctgov}
        started = time.monotonic()
        proc = littrack(config, env, "run")
        out, err = proc.communicate(timeout=600)
        seconds = time.monotonic() - started
        db = sqlite3.connect(Path(env["LITTRACK_DATA_DIR"]) / "littrack.sqlite")
        requests = db.execute("SELECT COALESCE(SUM(n_requests), 0) FROM runs").fetchone()[0]
        db.close()
        print(f"unreachable ({label}): {seconds:.1f} s, exit {proc.returncode}, "
              f"{requests} requests")
        for line in (out + err).decode().splitlines():
            print(f"    {line[:160]}")


def interrupt(folder: Path, articles: int) -> None:
    with EutilsFake(rate_limit=None) as eutils, CtgovFake(rate_limit_per_minute=None) as ctgov:
        config = write_test_config(folder)
        env = fake_env(folder, eutils, ctgov)
        settings = load_settings(config, env=env)
        populate(settings, eutils, ctgov, articles=articles, trials=50)
        make_realistic(eutils)
        for sig in (signal.SIGINT, signal.SIGTERM):
            data = folder / f"data-{sig.name}"
            run_env = {**env, "LITTRACK_DATA_DIR": str(data)}
            before = eutils.count("efetch.fcgi")
            proc = littrack(config, run_env, "run", "--source", "pubmed")
            while eutils.count("efetch.fcgi") - before < 3 and proc.poll() is None:
                time.sleep(0.05)
            time.sleep(1.0)  # well inside the batch loop
            sent = time.monotonic()
            proc.send_signal(sig)
            out, err = proc.communicate(timeout=600)
            seconds = time.monotonic() - sent
            db = sqlite3.connect(data / "littrack.sqlite")
            statuses = db.execute("SELECT status, COUNT(*) FROM runs GROUP BY status"
                                  ).fetchall()
            articles_kept = db.execute("SELECT COUNT(*) FROM articles").fetchone()[0]
            db.close()
            print(f"{sig.name} during a backfill of {articles} articles: stopped "
                  f"{seconds:.2f} s after the signal, exit {proc.returncode}, runs "
                  f"{dict(statuses)}, articles committed {articles_kept}")
            last = (out + err).decode().strip().splitlines()[-3:]
            for line in last:
                print(f"    {line[:160]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=20000)
    parser.add_argument("--only", choices=["unreachable", "interrupt"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="littrack-everyday-") as tmp:
        if args.only != "interrupt":
            unreachable(Path(tmp))
        if args.only != "unreachable":
            interrupt(Path(tmp), args.articles)


if __name__ == "__main__":
    main()
