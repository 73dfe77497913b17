"""PubMed XML -> tidy rows: littrack's parser against ``Bio.Entrez.read``, speed and memory.

Generates EFetch replies of realistic records with ``tests/builders/pubmed.py`` (DOCTYPE
``pubmed_250101``, which Biopython bundles), then measures each parser in a fresh
subprocess so each peak RSS (``VmHWM``) is its own:

* ``Bio.Entrez.read`` on the whole file (a parse tree of Python objects, no tidy rows);
* littrack streaming the same file into ``Normalized`` records (tidy rows + raw bytes);
* littrack on the same records as the pipeline gets them: EFetch replies of 500 records,
  each parsed into a ``Batch`` by the function ``PubMed.fetch`` uses;
* both on a file a tenth the size: littrack's peak must not grow with the record count;
* whole runs (loopback fakes, realistic records, one topic) of two sizes, both past what
  the pipeline holds at once (the batch in hand plus up to 8 replies downloading ahead):
  the peak RSS of fetch + store must not grow with the number of records a run fetches.

    python bench/parse_speed.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import PYTHON, load, realistic_efetch_file, table  # noqa: E402
from bench.peak_rss import vm_hwm_mb, vm_rss_mb  # noqa: E402

BATCH = 500


def child(mode: str, paths: list[str]) -> None:
    """Run one measurement in this (fresh) process and print it as JSON."""
    if mode == "entrez":
        from Bio import Entrez

        base = vm_rss_mb()
        started = time.perf_counter()
        n = 0
        for p in paths:
            with open(p, "rb") as fh:
                n += len(Entrez.read(fh)["PubmedArticle"])
    else:
        from littrack.normalize import Normalized
        from littrack.normalize.pubmed_efetch import parse_efetch
        from littrack.sources.pubmed import Batch, parse_into

        base = vm_rss_mb()
        started = time.perf_counter()
        n = 0
        for p in paths:
            if mode == "stream":
                with open(p, "rb") as fh:  # read in 64 KiB chunks as it parses
                    n += sum(isinstance(r, Normalized) for r in parse_efetch(fh))
            else:  # one EFetch reply at a time into a Batch, as PubMed.fetch does
                body = Path(p).read_bytes()
                batch = Batch([], [], [])
                parse_into(body, batch)
                n += len(batch.records)
                del body, batch
    seconds = time.perf_counter() - started
    print(json.dumps({"records": n, "seconds": seconds, "peak_mb": vm_hwm_mb(),
                      "base_mb": base}))


def measure(mode: str, paths: list[Path]) -> dict[str, float]:
    out = subprocess.run([PYTHON, __file__, "--child", mode, *map(str, paths)],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def split_batches(records: int, folder: Path, seed: int) -> list[Path]:
    """The same generated records as EFetch replies of BATCH records each."""
    paths = []
    for i in range(0, records, BATCH):
        p = folder / f"batch{i // BATCH:03d}.xml"
        realistic_efetch_file(p, min(BATCH, records - i), seed=seed + i, first_pmid=30000000 + i)
        paths.append(p)
    return paths


def pipeline_rss(sizes: tuple[int, int]) -> list[list[object]]:
    """Peak RSS of whole ``littrack run`` processes fetching ``sizes`` realistic records.

    One topic, so both sizes are well past what the pipeline holds at once (the batch being
    parsed and stored plus at most 8 EFetch replies downloading ahead).
    """
    import random
    from datetime import date, timedelta

    from bench.common import realistic_article_xml, run_cli
    from littrack.config import load_settings
    from tests.corpus import fake_env, write_test_config
    from tests.fakes import CtgovFake, EutilsFake

    rows: list[list[object]] = []
    for n in sizes:
        with tempfile.TemporaryDirectory(prefix="littrack-bench-") as d, \
                EutilsFake() as eutils, CtgovFake(rate_limit_per_minute=None) as ctgov:
            tmp = Path(d)
            config = write_test_config(tmp)
            env = {**fake_env(tmp, eutils, ctgov), "NCBI_API_KEY": "bench-key"}
            topic = load_settings(config, env=env).topics[0]
            query = topic.pubmed_query or ""
            eutils.register_query(query)
            rng = random.Random(5)
            for i in range(n):
                edat = date(2016, 1, 1) + timedelta(days=rng.randrange(3650))
                pmid = str(30000000 + i)
                eutils.add_article(pmid, realistic_article_xml(pmid, rng, edat=edat),
                                   edat=edat, queries=[query])
            fetch = run_cli(config, env, "--topic", topic.name,
                            module=str(Path(__file__).with_name("fetch_only.py")))
            eutils.log.clear()
            (tmp / "data" / "littrack.sqlite").unlink()
            res = run_cli(config, env, "--source", "pubmed", "--topic", topic.name)
            if res.returncode != 0 or fetch.returncode != 0:
                raise SystemExit(f"littrack run failed:\n{res.stderr[-3000:]}")
            rows.append([f"first run of one topic, {n} records: fetch + store only", n,
                         f"{fetch.seconds:.1f}", f"{n / fetch.seconds:.0f}",
                         f"{fetch.maxrss_mb:.0f}", ""])
            rows.append(["same, whole `littrack run` (report folder too)", n,
                         f"{res.seconds:.1f}", f"{n / res.seconds:.0f}",
                         f"{res.maxrss_mb:.0f}", ""])
    return rows


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller pipeline runs")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1:])
        return {}
    n = 10_000
    print("## Parsing: PubMed XML -> tidy rows\n")
    print(f"{load()} at start\n")
    rows: list[list[object]] = []
    with tempfile.TemporaryDirectory(prefix="littrack-bench-") as d:
        folder = Path(d)
        big = realistic_efetch_file(folder / "efetch10k.xml", n, seed=1)
        small = realistic_efetch_file(folder / "efetch1k.xml", n // 10, seed=1)
        batches = split_batches(n, folder, seed=1)
        size_mb = big.stat().st_size / 1e6
        print(f"{n} generated records, {size_mb:.0f} MB of EFetch XML "
              f"({size_mb * 1e3 / n:.1f} KB a record)\n")
        results = {
            "entrez": measure("entrez", [big]),
            "stream": measure("stream", [big]),
            "batches": measure("batches", batches),
            "entrez_small": measure("entrez", [small]),
            "stream_small": measure("stream", [small]),
        }
    labels = {
        "entrez": f"Bio.Entrez.read, one {n}-record file",
        "stream": "littrack parse_efetch, same file streamed",
        "batches": f"littrack parse_efetch, {n // BATCH} replies of {BATCH} (as fetched)",
        "entrez_small": f"Bio.Entrez.read, {n // 10}-record file",
        "stream_small": f"littrack parse_efetch, {n // 10}-record file streamed",
    }
    for key, r in results.items():
        rows.append([labels[key], int(r["records"]), f"{r['seconds']:.2f}",
                     f"{r['records'] / r['seconds']:.0f}", f"{r['peak_mb']:.0f}",
                     f"{r['peak_mb'] - r['base_mb']:.0f}"])
    rows += pipeline_rss((5000, 10000) if args.quick else (8000, 20000))
    print(table(rows, ["what", "records", "seconds", "records/s", "peak RSS MB",
                       "peak over start MB"]))
    ent = results["entrez"]["records"] / results["entrez"]["seconds"]
    speedups = {key: results[key]["records"] / results[key]["seconds"] / ent
                for key in ("stream", "batches")}
    print(f"\nlittrack vs Bio.Entrez.read: {speedups['stream']:.1f}x (streamed file), "
          f"{speedups['batches']:.1f}x (500-record replies); peak memory "
          f"{results['stream']['peak_mb']:.0f} MB vs {results['entrez']['peak_mb']:.0f} MB")
    print(f"\n{load()} at end")
    return speedups


if __name__ == "__main__":
    main()
