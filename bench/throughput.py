"""First-run throughput against the parse-only rate, and backfill wall time against its floors.

Issue 15, points 1 and 2, for this tree and for the previous release (``bench/previous.py``),
each measured in this one bench run on the same records, so the ratios hold however busy
the machine is (the load average is printed with them):

* **parse-only rate**: the release's PubMed parser on the topic's records as EFetch replies
  of 500 (exactly the bytes the fake serves), in a fresh process of that release;
* **end-to-end rate**: a first run of that one topic (search, download, parse, normalize,
  store, commit; ``pipeline.run`` without the report) against the E-utilities fake with its
  rate limit lifted and no latency, with an API key (littrack paces 9.5 requests/s);
  target: at least 60% of the parse-only rate;
* **backfill**: a first run of the three mission topics with an API key against the fake
  enforcing 10 requests/s, every request taking ``--latency`` s; floors: requests ÷ 10
  (rate) and records ÷ the end-to-end rate above (processing); target: wall at most
  1.15 × the larger floor.

    python bench/throughput.py [--quick] [--repeat 3] [--no-previous]

Records are real-shaped (``bench/common.py``: ~12 KB each, 40% with reference lists).
Each figure is the median of ``--repeat`` runs, the releases taking turns.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import (  # noqa: E402
    load,
    make_realistic,
    realistic_article_xml,
    run_cli,
    table,
)
from bench.previous import PREVIOUS_TAG, Release, current, install, write_config  # noqa: E402
from tests.corpus import fake_env, populate  # noqa: E402
from tests.fakes import CtgovFake, EutilsFake  # noqa: E402

BATCH = 500
E2E_TARGET = 0.60  # end-to-end rate / parse-only rate, at least
OVERLAP_TARGET = 1.15  # backfill wall / max(rate floor, processing floor), at most
TIMED = str(Path(__file__).with_name("timed_run.py"))


def parse_rate(release: Release, files: list[Path]) -> float:
    out = subprocess.run([str(release.python), str(Path(__file__).with_name("parse_child.py")),
                          *map(str, files)], capture_output=True, text=True, check=True)
    import json

    r = json.loads(out.stdout)
    return float(r["records"]) / float(r["seconds"])


def _articles(db: Path) -> int:
    with sqlite3.connect(db) as con:
        return int(con.execute("SELECT COUNT(*) FROM articles").fetchone()[0])


class OneTopic:
    """The E-utilities fake serving ``n`` real-shaped records to the first mission topic."""

    def __init__(self, tmp: Path, eutils: EutilsFake, n: int) -> None:
        self.tmp, self.eutils, self.n = tmp, eutils, n
        self.query: str | None = None

    def fill(self, query: str) -> None:
        self.query = query
        self.eutils.register_query(query)
        rng = random.Random(5)
        for i in range(self.n):
            edat = date(2016, 1, 1) + timedelta(days=rng.randrange(3650))
            pmid = str(30000000 + i)
            self.eutils.add_article(pmid, realistic_article_xml(pmid, rng, edat=edat),
                                    edat=edat, queries=[query])

    def reply_files(self) -> list[Path]:
        """The records as the EFetch replies the fake sends for them, 500 a reply."""
        pmids = sorted(self.eutils.articles, key=int, reverse=True)
        files = []
        for i in range(0, len(pmids), BATCH):
            reply = self.eutils._efetch({"id": ",".join(pmids[i:i + BATCH])}, None)
            path = self.tmp / f"reply{i // BATCH:03d}.xml"
            body = reply.body
            path.write_bytes(body.encode("utf-8") if isinstance(body, str) else body)
            files.append(path)
        return files


def end_to_end(release: Release, tmp: Path, eutils: EutilsFake, ctgov: CtgovFake, n: int,
               k: int) -> tuple[float, float, float, float]:
    """(records/s of a first run of one topic, its peak RSS MB, CPU s of its process and
    of its side process)."""
    folder = tmp / f"e2e-{release.tag}-{k}"
    folder.mkdir()
    config = write_config(release, folder)
    env = {**fake_env(folder, eutils, ctgov), "NCBI_API_KEY": "bench-key"}
    topic = _first_topic(config)
    res = run_cli(config, env, "--source", "pubmed", "--topic", topic, "--no-report",
                  module=TIMED, python=release.python)
    if res.returncode != 0:
        raise SystemExit(f"{release.label()}: first run failed:\n{res.stderr[-3000:]}")
    stored = _articles(folder / "data" / "littrack.sqlite")
    if stored != n:
        raise SystemExit(f"{release.label()}: stored {stored} of {n} articles")
    return n / float(res.json()["seconds"]), res.together_mb, res.cpu_s, res.children_cpu_s


def _first_topic(config: Path) -> str:
    import tomllib

    return str(tomllib.loads(config.read_text("utf-8"))["topics"][0]["name"])


def backfill(release: Release, tmp: Path, eutils: EutilsFake, ctgov: CtgovFake,
             k: int) -> dict[str, Any]:
    """Wall time of a first run of the mission topics, requests and records it took."""
    folder = tmp / f"backfill-{release.tag}-{k}"
    folder.mkdir()
    config = write_config(release, folder)
    env = {**fake_env(folder, eutils, ctgov), "NCBI_API_KEY": "bench-key"}
    start = len(eutils.log)
    res = run_cli(config, env, "--source", "pubmed", "--no-report", module=TIMED,
                  python=release.python)
    if res.returncode != 0:
        raise SystemExit(f"{release.label()}: backfill failed:\n{res.stderr[-3000:]}")
    return {"seconds": float(res.json()["seconds"]), "requests": len(eutils.log) - start,
            "records": _articles(folder / "data" / "littrack.sqlite"),
            "rate_limited": eutils.rate_limited}


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller corpora")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    ap.add_argument("--latency", type=float, default=0.5,
                    help="seconds each request takes on the fake in the backfill")
    ap.add_argument("--no-previous", action="store_true",
                    help=f"skip the previous release ({PREVIOUS_TAG})")
    args = ap.parse_args(argv)
    n_e2e, n_backfill = (4000, 3000) if args.quick else (10000, 12000)
    releases = [current()] + ([] if args.no_previous else [install()])
    print("## First-run throughput and backfill wall time (issue 15, points 1-2)\n")
    print(f"{load()} at start\n")

    rates: dict[str, dict[str, list[float]]] = {
        r.tag: {"parse": [], "e2e": [], "rss": [], "cpu": [], "side_cpu": []}
        for r in releases}
    walls: dict[str, list[dict[str, Any]]] = {r.tag: [] for r in releases}
    with tempfile.TemporaryDirectory(prefix="littrack-bench-") as d:
        tmp = Path(d)
        with EutilsFake(rate_limit=None) as eutils, \
                CtgovFake(rate_limit_per_minute=None) as ctgov:
            one = OneTopic(tmp, eutils, n_e2e)
            one.fill(_query_of_first_topic(tmp, eutils, ctgov))
            files = one.reply_files()
            size = sum(f.stat().st_size for f in files)
            print(f"End-to-end: one topic, {n_e2e} records, {size / n_e2e / 1e3:.1f} KB of "
                  f"EFetch XML a record; fake without rate limit or latency; API key\n")
            for k in range(args.repeat):
                for rel in releases:
                    rates[rel.tag]["parse"].append(parse_rate(rel, files))
                    rate, rss, cpu, side_cpu = end_to_end(rel, tmp, eutils, ctgov, n_e2e, k)
                    rates[rel.tag]["e2e"].append(rate)
                    rates[rel.tag]["rss"].append(rss)
                    rates[rel.tag]["cpu"].append(cpu)
                    rates[rel.tag]["side_cpu"].append(side_cpu)
        with EutilsFake() as eutils, CtgovFake(rate_limit_per_minute=None) as ctgov:
            settings_dir = tmp / "corpus"
            settings_dir.mkdir()
            from littrack.config import load_settings

            cfg = write_config(releases[0], settings_dir)
            settings = load_settings(cfg, env=fake_env(settings_dir, eutils, ctgov))
            populate(settings, eutils, None, articles=n_backfill)
            make_realistic(eutils)
            eutils.latency = args.latency
            print(f"Backfill: the three mission topics, {n_backfill} articles; fake enforcing "
                  f"10 requests/s with a key, {args.latency:g} s a request\n")
            for k in range(args.repeat):
                for rel in releases:
                    walls[rel.tag].append(backfill(rel, tmp, eutils, ctgov, k))

    figures: dict[str, dict[str, float]] = {}
    for rel in releases:
        parse = statistics.median(rates[rel.tag]["parse"])
        e2e = statistics.median(rates[rel.tag]["e2e"])
        runs = walls[rel.tag]
        wall = statistics.median(r["seconds"] for r in runs)
        requests = statistics.median(r["requests"] for r in runs)
        records = statistics.median(r["records"] for r in runs)
        rate_floor = requests / 10.0
        proc_floor = records / e2e
        figures[rel.tag] = {
            "parse": parse, "e2e": e2e, "ratio": e2e / parse,
            "rss": statistics.median(rates[rel.tag]["rss"]),
            "cpu": statistics.median(rates[rel.tag]["cpu"]),
            "side_cpu": statistics.median(rates[rel.tag]["side_cpu"]),
            "e2e_s": n_e2e / e2e,
            "wall": wall, "requests": requests, "records": records,
            "rate_floor": rate_floor, "proc_floor": proc_floor,
            "overlap": wall / max(rate_floor, proc_floor),
            # Nothing arrives before the ESearch and the first EFetch have each taken their
            # round trip; then the records take the processing floor (and the last request
            # started at the rate floor takes one round trip). An estimate, not a bound: the
            # end-to-end run's own fixed costs (opening the store, starting the side
            # process) are in the processing floor, and a backfill hides them under those
            # round trips.
            "least": max(2 * args.latency + proc_floor, rate_floor + args.latency)
            / max(rate_floor, proc_floor),
            "rate_limited": max(r["rate_limited"] for r in runs),
        }
    now, prev = figures[releases[0].tag], figures.get(PREVIOUS_TAG)

    def row(label: str, key: str, fmt: str, target: str,
            ok: bool | None = None) -> list[object]:
        cells: list[object] = [label, format(now[key], fmt), target]
        cells.append(format(prev[key], fmt) if prev else "-")
        cells.append("" if ok is None else ("met" if ok else "NOT met"))
        return cells

    rows = [
        row("parse-only rate, records/s (500-record replies)", "parse", ".0f",
            "keep (v0.1.0: ~4,600 on a quiet machine)"),
        row("end-to-end first run, records/s", "e2e", ".0f", ""),
        row("end-to-end / parse-only", "ratio", ".2f", f">= {E2E_TARGET:.2f}",
            now["ratio"] >= E2E_TARGET),
        row("peak RSS of that run, MB", "rss", ".0f", ""),
        row("that run: wall s (pipeline.run)", "e2e_s", ".2f", ""),
        row("that run: CPU s, main process (with start-up)", "cpu", ".2f", ""),
        row("that run: CPU s, side process", "side_cpu", ".2f", ""),
        row("backfill: requests", "requests", ".0f", ""),
        row("backfill: records stored", "records", ".0f", ""),
        row("backfill: rate floor s (requests / 10)", "rate_floor", ".2f", ""),
        row("backfill: processing floor s (records / end-to-end rate)", "proc_floor",
            ".2f", ""),
        row("backfill: wall s", "wall", ".2f", ""),
        row("backfill: wall / max(floors)", "overlap", ".2f", f"<= {OVERLAP_TARGET:.2f}",
            now["overlap"] <= OVERLAP_TARGET),
        row("backfill: 2 round trips + processing floor, / max(floors)", "least",
            ".2f", ""),
        row("backfill: 429s from the fake", "rate_limited", ".0f", "0",
            now["rate_limited"] == 0),
    ]
    print(table(rows, ["figure", "this tree", "target", f"{PREVIOUS_TAG}", ""]))
    print(f"\nMedians of {args.repeat} runs each; {load()} at end")
    return figures


def _query_of_first_topic(tmp: Path, eutils: EutilsFake, ctgov: CtgovFake) -> str:
    """The first mission topic's PubMed query, as littrack sends it (what the fake matches)."""
    from littrack.config import load_settings

    folder = tmp / "query"
    folder.mkdir()
    cfg = write_config(current(), folder)
    return load_settings(cfg, env=fake_env(folder, eutils, ctgov)).topics[0].pubmed_query or ""

if __name__ == "__main__":
    main()
