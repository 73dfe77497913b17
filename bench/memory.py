"""Peak memory of a whole first run against its size (issue 15, point 3).

A first ``littrack run`` of the three mission topics and both sources, report included, as a
user runs it (a subprocess; peak RSS is that of its processes together: the main one and
the side process it parses in, ``bench/peak_rss.py``), at two sizes four times apart:
3,000 articles + 600 trials and 12,000 articles + 2,500 trials. Records are real-shaped
(``bench/common.py``: ~12 KB PubMed records, ~25 KB ClinicalTrials.gov studies, a third with
results sections) and fetched as in production: EFetch batches of 500, pages of 1,000
studies. Targets: the big run's peak at most 1.3x the small run's, and at most 300 MB.
The previous release (``bench/previous.py``) runs the same two corpora.

    python bench/memory.py [--quick] [--no-previous]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load, make_realistic, make_realistic_trials, run_cli, table  # noqa: E402
from bench.previous import PREVIOUS_TAG, Release, current, install, write_config  # noqa: E402
from tests.corpus import fake_env, populate  # noqa: E402
from tests.fakes import CtgovFake, EutilsFake  # noqa: E402

GROWTH_TARGET = 1.3
PEAK_TARGET_MB = 300.0


def first_run(releases: list[Release], articles: int, trials: int) -> dict[str, dict[str, float]]:
    """Peak RSS and wall time of each release's first run over the same corpus."""
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="littrack-bench-") as d, \
            EutilsFake(rate_limit=None) as eutils, CtgovFake(rate_limit_per_minute=None) as ctgov:
        tmp = Path(d)
        from littrack.config import load_settings

        corpus_dir = tmp / "corpus"
        corpus_dir.mkdir()
        cfg = write_config(releases[0], corpus_dir)
        settings = load_settings(cfg, env=fake_env(corpus_dir, eutils, ctgov))
        populate(settings, eutils, ctgov, articles=articles, trials=trials)
        make_realistic(eutils)
        make_realistic_trials(ctgov)
        for rel in releases:
            folder = tmp / rel.tag.replace(" ", "-")
            folder.mkdir()
            config = write_config(rel, folder)
            env = {**fake_env(folder, eutils, ctgov), "NCBI_API_KEY": "bench-key"}
            res = run_cli(config, env, python=rel.python)
            if res.returncode != 0:
                raise SystemExit(f"{rel.label()}: run failed:\n{res.stderr[-3000:]}")
            out[rel.tag] = {"rss": res.together_mb, "seconds": res.seconds,
                            "main": res.maxrss_mb}
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="a quarter of the sizes")
    ap.add_argument("--no-previous", action="store_true",
                    help=f"skip the previous release ({PREVIOUS_TAG})")
    args = ap.parse_args(argv)
    sizes = [(750, 150), (3000, 625)] if args.quick else [(3000, 600), (12000, 2500)]
    releases = [current()] + ([] if args.no_previous else [install()])
    print("## Peak memory of a whole first run (issue 15, point 3)\n")
    print(f"{load()} at start\n")
    small = first_run(releases, *sizes[0])
    big = first_run(releases, *sizes[1])
    figures = {}
    for rel in releases:
        figures[rel.tag] = {"small": small[rel.tag]["rss"], "big": big[rel.tag]["rss"],
                            "growth": big[rel.tag]["rss"] / small[rel.tag]["rss"],
                            "small_s": small[rel.tag]["seconds"],
                            "big_s": big[rel.tag]["seconds"],
                            "small_main": small[rel.tag]["main"],
                            "big_main": big[rel.tag]["main"]}
    now, prev = figures[releases[0].tag], figures.get(PREVIOUS_TAG)

    def row(label: str, key: str, fmt: str, target: str, ok: bool | None) -> list[object]:
        return [label, format(now[key], fmt), target,
                format(prev[key], fmt) if prev else "-",
                "" if ok is None else ("met" if ok else "NOT met")]

    label_s = f"{sizes[0][0]:,} articles + {sizes[0][1]:,} trials"
    label_b = f"{sizes[1][0]:,} articles + {sizes[1][1]:,} trials"
    rows = [
        row(f"peak RSS MB, {label_s}", "small", ".0f", "", None),
        row(f"peak RSS MB, {label_b}", "big", ".0f", f"<= {PEAK_TARGET_MB:.0f}",
            now["big"] <= PEAK_TARGET_MB),
        row("big / small", "growth", ".2f", f"<= {GROWTH_TARGET}",
            now["growth"] <= GROWTH_TARGET),
        row(f"main process alone, peak MB, {label_s}", "small_main", ".0f", "", None),
        row(f"main process alone, peak MB, {label_b}", "big_main", ".0f", "", None),
        row(f"wall s, {label_s}", "small_s", ".1f", "", None),
        row(f"wall s, {label_b}", "big_s", ".1f", "", None),
    ]
    print(table(rows, ["figure", "this tree", "target", PREVIOUS_TAG, ""]))
    print(f"\nWhole `littrack run` (3 topics, both sources, report), API key, fakes without "
          f"rate limits. Peak RSS is the run's processes together: the largest sum of the "
          f"main process's and its side process's RSS at one moment (sampled every 20 ms; "
          f"at least the main process's VmHWM), so no memory hides in a second process; "
          f"{load()} at end")
    return figures


if __name__ == "__main__":
    main()
