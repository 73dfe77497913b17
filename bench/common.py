"""What the benchmark scripts share: the machine, realistic records, fakes, timed CLI runs.

Every script prints its figures; nothing here asserts a time. Records are generated with
the test builders (``tests/builders``) so they have the exact shape NCBI and
ClinicalTrials.gov send, sized like real ones (authors with affiliations, structured
abstracts, MeSH with qualifiers, reference lists), not like the builders' tiny defaults.
"""

from __future__ import annotations

import json
import os
import platform
import random
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # tests.* (builders, fakes, corpus) when run as a script
    sys.path.insert(0, str(ROOT))

from tests.builders.pubmed import Author, Mesh, article_xml  # noqa: E402

PYTHON = sys.executable

_WORDS = (
    "assisted therapy trial randomized placebo controlled participants outcome symptom "
    "severity clinician administered scale baseline follow up session dose response safety "
    "adverse events psychotherapy treatment resistant chronic veterans sessions integration "
    "preparatory measures significant reduction compared secondary endpoints durable effect "
    "anxiety depression quality life sleep functional impairment remission rates analysis"
).split()
_MESH = (
    "Humans", "Adult", "Female", "Male", "Middle Aged", "Young Adult", "Psychotherapy",
    "Treatment Outcome", "Double-Blind Method", "Anxiety", "Stress Disorders, Post-Traumatic",
    "N-Methyl-3,4-methylenedioxyamphetamine", "Hallucinogens", "Veterans", "Depression",
    "Autism Spectrum Disorder", "Palliative Care", "Neoplasms", "Severity of Illness Index",
)
_QUALIFIERS = ("drug therapy", "therapeutic use", "psychology", "adverse effects",
               "pharmacology", "methods")
_COUNTRIES = ("USA", "Canada", "Israel", "Switzerland", "Germany", "United Kingdom")


def machine() -> str:
    """One line naming the machine, for RESULTS.md."""
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(re.search(r"MemTotal:\s+(\d+)", Path("/proc/meminfo").read_text())[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, TypeError):
        pass
    import sqlite3

    import Bio

    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}){mem}; "
            f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, "
            f"Biopython {Bio.__version__}")


def load() -> str:
    """The 1/5/15-minute load averages (other work on the machine skews timings)."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f} on {os.cpu_count()} cores"


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(_WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + "."


def realistic_article_xml(pmid: str, rng: random.Random, *, edat: date,
                          nct_ids: list[str] | tuple[str, ...] = (),
                          title: str | None = None) -> str:
    """A ``<PubmedArticle>`` about the size of a typical recent record (~11 KB of XML).

    Sized after the real replies in ``shared/fixtures/pubmed`` (4.6-44 KB a record, 1-22
    authors, 5-23 MeSH headings, up to 49 references): 2-16 authors with affiliations and
    some ORCIDs, a four-part abstract of ~200 words, 6-16 MeSH headings with qualifiers,
    keywords, and for 40% of the records a reference list of 10-50 citations.
    """
    authors = []
    for k in range(rng.randint(2, 16)):
        affs = [f"Department of Psychiatry, Example University {k}, City {rng.randrange(99)}, "
                f"{rng.choice(_COUNTRIES)}."]
        if rng.random() < 0.3:
            affs.append("Example Research Institute, Example City, USA.")
        orcid = (f"0000-000{rng.randrange(10)}-{rng.randrange(10000):04d}-"
                 f"{rng.randrange(1000):03d}X") if rng.random() < 0.4 else None
        authors.append(Author(f"Author{k}", f"Given{k} M", orcid=orcid, affiliations=affs))
    mesh = []
    for name in rng.sample(_MESH, rng.randint(6, 16)):
        quals = tuple((q, rng.random() < 0.2) for q in rng.sample(_QUALIFIERS,
                                                                  rng.randint(0, 2)))
        mesh.append(Mesh(name, major=rng.random() < 0.15, qualifiers=quals))
    abstract = [(label, " ".join(_sentence(rng, rng.randint(12, 25)) for _ in range(2)))
                for label in ("BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS")]
    refs = [(f"Ref{r} A, Other B. {_sentence(rng, 8)} J Ex Med. {2000 + r % 25};"
             f"{r}:{r * 3}-{r * 3 + 9}.", str(10000000 + rng.randrange(20000000)))
            for r in range(rng.randint(10, 50) if rng.random() < 0.4 else 0)]
    return article_xml(
        pmid, title=title or _sentence(rng, rng.randint(10, 20)), abstract=abstract,
        authors=authors, mesh=mesh,
        publication_types=("Journal Article", "Randomized Controlled Trial")
        if rng.random() < 0.3 else ("Journal Article",),
        keywords=tuple(rng.sample(_WORDS, 5)), nct_ids=list(nct_ids),
        pub_date=(str(edat.year), "Mar", "3"), entrez_date=edat,
        epub_date=edat - timedelta(days=3), pmcid=f"PMC{pmid}" if rng.random() < 0.4 else None,
        references=refs,
    )


def realistic_efetch_file(path: Path, n: int, seed: int = 1, first_pmid: int = 30000000
                          ) -> Path:
    """An EFetch reply of ``n`` realistic records (DOCTYPE pubmed_250101, bundled in Bio)."""
    from tests.builders.pubmed import efetch_xml

    rng = random.Random(seed)
    start = date(2016, 1, 1)
    arts = [realistic_article_xml(str(first_pmid + i), rng,
                                  edat=start + timedelta(days=rng.randrange(3650)))
            for i in range(n)]
    path.write_bytes(efetch_xml(arts))
    return path


def realistic_study(nct_id: str, rng: random.Random, *, title: str, status: str,
                    last_update: str, references: list[tuple[str | None, str | None,
                                                         str | None]] | None = None
                    ) -> dict[str, object]:
    """A v2 ``Study`` about the size of a real one (~25 KB of JSON, 5-70 KB).

    Sized after the full records in ``shared/fixtures/ctgov`` (11-98 KB): a detailed
    description, eligibility criteria, 1-3 primary and 2-10 secondary outcomes, arm groups,
    2-40 locations, MeSH terms, and for a third of the studies a results section of group
    measurements: the deep nesting of many small objects that makes a parsed page of 1,000
    studies weigh hundreds of MB.
    """
    from tests.builders.ctgov import study

    locations = [(f"Example Clinical Research Site {k}", f"City {rng.randrange(500)}",
                  None, rng.choice(_COUNTRIES), rng.choice(["RECRUITING", "COMPLETED", None]))
                 for k in range(rng.randint(2, 40))]
    s = study(nct_id, title=title, status=status, last_update=last_update,
              official_title=_sentence(rng, rng.randint(15, 30)),
              summary=" ".join(_sentence(rng, rng.randint(12, 25)) for _ in range(4)),
              conditions=tuple(rng.sample(_MESH, rng.randint(1, 4))),
              keywords=tuple(rng.sample(_WORDS, 5)), locations=locations,
              references=references if references is not None else [
                  (str(10000000 + rng.randrange(20000000)), rng.choice(["BACKGROUND",
                                                                         "RESULT"]),
                   _sentence(rng, 14)) for _ in range(rng.randint(0, 8))])
    proto = s["protocolSection"]
    proto["descriptionModule"]["detailedDescription"] = "\n\n".join(
        " ".join(_sentence(rng, rng.randint(12, 25)) for _ in range(6))
        for _ in range(rng.randint(1, 12)))
    proto["eligibilityModule"] = {
        "eligibilityCriteria": "Inclusion Criteria:\n\n" + "\n".join(
            f"* {_sentence(rng, rng.randint(6, 18))}" for _ in range(rng.randint(4, 20))),
        "healthyVolunteers": False, "sex": "ALL", "minimumAge": "18 Years",
        "stdAges": ["ADULT", "OLDER_ADULT"]}

    def outcome() -> dict[str, str]:
        return {"measure": _sentence(rng, rng.randint(4, 12)),
                "description": _sentence(rng, rng.randint(10, 40)),
                "timeFrame": f"{rng.randint(1, 52)} weeks"}

    proto["outcomesModule"] = {
        "primaryOutcomes": [outcome() for _ in range(rng.randint(1, 3))],
        "secondaryOutcomes": [outcome() for _ in range(rng.randint(2, 10))]}
    arms = proto.setdefault("armsInterventionsModule", {})
    arms["armGroups"] = [{"label": f"Arm {k}", "type": rng.choice(["EXPERIMENTAL",
                                                                     "PLACEBO_COMPARATOR"]),
                          "description": _sentence(rng, rng.randint(10, 30)),
                          "interventionNames": ["Drug: MDMA"]} for k in range(2)]
    if rng.random() < 1 / 3:
        groups = [{"id": f"OG00{g}", "title": f"Arm {g}",
                   "description": _sentence(rng, 20)} for g in range(2)]

        def measure() -> dict[str, object]:
            return {"type": "PRIMARY", "title": _sentence(rng, 5), "paramType": "MEAN",
                    "unitOfMeasure": "score on a scale", "timeFrame": "12 weeks",
                    "groups": groups,
                    "denoms": [{"units": "Participants", "counts": [
                        {"groupId": g["id"], "value": str(rng.randint(10, 90))}
                        for g in groups]}],
                    "classes": [{"title": _sentence(rng, 3), "categories": [{"measurements": [
                        {"groupId": g["id"], "value": f"{rng.random() * 80:.2f}",
                         "lowerLimit": f"{rng.random() * 10:.1f}",
                         "upperLimit": f"{80 + rng.random() * 10:.1f}"}
                        for g in groups]}]} for _ in range(rng.randint(1, 6))]}

        s["resultsSection"] = {
            "baselineCharacteristicsModule": {"groups": groups,
                                              "measures": [measure() for _ in range(6)]},
            "outcomeMeasuresModule": {"outcomeMeasures": [measure()
                                                          for _ in range(rng.randint(3, 14))]}}
    return s


def make_realistic_trials(ctgov, seed: int = 13) -> None:  # noqa: ANN001 - a CtgovFake
    """Swap every study the fake serves for a real-size one (same id, dates and status)."""
    rng = random.Random(seed)
    with ctgov.lock:
        items = list(ctgov.studies.items())
    for nct, s in items:
        proto = s["protocolSection"]
        refs = [(r.get("pmid"), r.get("type"), r.get("citation"))
                for r in proto.get("referencesModule", {}).get("references", [])]
        ctgov.update_study(realistic_study(
            nct, rng, title=proto["identificationModule"]["briefTitle"],
            status=proto["statusModule"]["overallStatus"],
            last_update=proto["statusModule"]["lastUpdatePostDateStruct"]["date"],
            references=refs))


def make_realistic(eutils, seed: int = 11) -> None:  # noqa: ANN001 - an EutilsFake
    """Swap every article the fake serves for a realistic-size one (same PMID and dates)."""
    rng = random.Random(seed)
    with eutils.lock:
        items = list(eutils.articles.items())
    for pmid, art in items:
        ncts = re.findall(r"NCT\d{8}", art.xml)
        eutils.update_article(pmid, realistic_article_xml(pmid, rng, edat=art.edat,
                                                          nct_ids=ncts))


def set_config(path: Path, **values: object) -> None:
    """Replace ``key = …`` lines of a written config (batch_size, page_size, …)."""
    text = path.read_text(encoding="utf-8")
    for key, value in values.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        if not n:
            raise KeyError(key)
    path.write_text(text, encoding="utf-8")


@dataclass
class CliRun:
    returncode: int
    seconds: float
    maxrss_mb: float
    stderr: str
    stdout: str = ""
    child_maxrss_mb: float = 0.0  # the largest peak among the processes the run started
    together_mb: float = 0.0  # the run's processes at once (peak of their summed RSS)
    cpu_s: float = 0.0  # CPU seconds of the run's own process
    children_cpu_s: float = 0.0  # … and of the processes it started (its side process)

    def json(self) -> dict[str, Any]:
        """The JSON line a ``bench/timed_run.py`` child printed last."""
        return json.loads(self.stdout.strip().splitlines()[-1])


def run_cli(config: Path, env: dict[str, str], *args: str, timeout: float = 1800,
            module: str = "littrack", python: str | Path = PYTHON) -> CliRun:
    """``python -m littrack --config CONFIG run ARGS`` as a user runs it: wall time, peak RSS.

    The process runs under ``bench/peak_rss.py``, which adds nothing to the run but a read of
    ``/proc/self/status`` at exit. ``module`` may instead be a script of bench/ taking the
    config first; ``python`` another release's interpreter (``bench/previous.py``).
    """
    rss_path = config.with_suffix(".rss")
    cmd = [str(python), str(ROOT / "bench" / "peak_rss.py"), str(rss_path), module,
           "--config", str(config), "run", *args]
    if module != "littrack":  # a script of bench/ taking the config first
        cmd = [str(python), str(ROOT / "bench" / "peak_rss.py"), str(rss_path), module,
               str(config), *args]
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("NCBI_", "LITTRACK_"))}  # the bench decides these
    full_env.update(env)
    err_path = config.with_suffix(".stderr")
    out_path = config.with_suffix(".stdout")
    with open(err_path, "w+b") as err, open(out_path, "w+b") as out:
        started = time.monotonic()
        proc = subprocess.Popen(cmd, env=full_env, stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL)
        try:
            proc.wait(timeout)
        finally:
            if proc.returncode is None:
                proc.kill()
                proc.wait()
        seconds = time.monotonic() - started
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
        out.seek(0)
        stdout = out.read().decode("utf-8", "replace")
    try:
        figures = rss_path.read_text().split()
        peak, child = float(figures[0]), float(figures[1]) if len(figures) > 1 else 0.0
        together = float(figures[2]) if len(figures) > 2 else peak
        cpu, kids_cpu = (float(figures[3]), float(figures[4])) if len(figures) > 4 else (
            float("nan"), float("nan"))
    except (OSError, ValueError, IndexError):
        peak = child = together = cpu = kids_cpu = float("nan")
    return CliRun(proc.returncode, seconds, peak, stderr, stdout, child, together, cpu,
                  kids_cpu)


def max_in_window(times: list[float], window: float = 1.0) -> int:
    """The most request arrivals inside any ``window``-second span (rate actually used)."""
    best = 0
    j = 0
    times = sorted(times)
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def table(rows: list[list[object]], header: list[str]) -> str:
    """A Markdown table (the scripts print these; RESULTS.md quotes them)."""
    cells = [[str(c) for c in header]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |"
             for r in cells]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)
