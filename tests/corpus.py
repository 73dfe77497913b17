"""Generated corpora for the loopback fakes, shaped like the mission topics.

Used by the end-to-end tests and the benchmarks: a config whose topics the fakes know,
and ``populate`` to fill both fakes with our own records, some matched by several topics,
some citing trials, spread over many years of Entrez dates.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from littrack.config import Settings, load_settings
from tests.builders.ctgov import study
from tests.builders.pubmed import Author, article_xml
from tests.fakes import CtgovFake, EuropePmcFake, EutilsFake

ROOT = Path(__file__).resolve().parents[1]
SHIPPED_CONFIG = ROOT / "config" / "littrack.toml"


def write_test_config(tmp_path: Path, *, ctgov_per_minute: float = 600, backoff: float = 0.01,
                timeout: float = 10.0, extra: str = "", shipped: Path = SHIPPED_CONFIG,
                europepmc: bool = False) -> Path:
    """The shipped config (same topics and queries) tuned for fast loopback runs.

    PubMed keeps its real pacing (the fake enforces NCBI's 3/s); ClinicalTrials.gov pacing
    and backoff are shortened so tests do not wait on the 50/min courtesy limit. ``shipped``:
    another release's shipped config (the benchmarks run the previous release too).
    """
    text = shipped.read_text(encoding="utf-8")
    text = re.sub(r"(?m)^requests_per_minute = .*$", f"requests_per_minute = {ctgov_per_minute}",
                  text)
    text = re.sub(r"(?m)^backoff_base = .*$", f"backoff_base = {backoff}", text)
    text = re.sub(r"(?m)^timeout = .*$", f"timeout = {timeout}", text)
    text = re.sub(r"(?m)^backoff_cap = .*$", "backoff_cap = 2.0", text)
    text = text.replace("[ncbi]\n", "[ncbi]\nemail = \"tests@example.org\"\n", 1)
    text = re.sub(r"(?m)^requests_per_second = 1\.0 .*$", "requests_per_second = 10.0", text)
    if not europepmc:  # tests of the other two sources run without a Europe PMC fake
        text = re.sub(r'(?ms)^\[topics\.europepmc\]\n.*?"""\n.*?"""\n', "", text)
    path = tmp_path / "littrack.toml"
    path.write_text(text + extra, encoding="utf-8")
    return path


def fake_env(tmp_path: Path, eutils: EutilsFake, ctgov: CtgovFake,
             europepmc: EuropePmcFake | None = None) -> dict[str, str]:
    # Without a Europe PMC fake its URL is a closed loopback port: never the real service.
    return {
        "LITTRACK_DATA_DIR": str(tmp_path / "data"),
        "LITTRACK_EUTILS_URL": eutils.url + "/entrez/eutils",
        "LITTRACK_CTGOV_URL": ctgov.url + "/api/v2",
        "LITTRACK_EUROPEPMC_URL": (europepmc.url + europepmc.prefix if europepmc
                                   else "http://127.0.0.1:9/europepmc/webservices/rest"),
    }


def settings_for(tmp_path: Path, eutils: EutilsFake, ctgov: CtgovFake,
                 europepmc: EuropePmcFake | None = None, **kw: object) -> Settings:
    path = write_test_config(tmp_path, europepmc=europepmc is not None,
                             **kw)  # type: ignore[arg-type]
    return load_settings(path, env=fake_env(tmp_path, eutils, ctgov, europepmc))


@dataclass
class Corpus:
    """What was put into the fakes, to compare with what littrack stored."""

    articles: dict[str, set[str]]  # pmid -> topics
    trials: dict[str, set[str]]  # nct_id -> topics

    def matches(self, source: str) -> set[tuple[str, str]]:
        recs = self.articles if source == "pubmed" else self.trials
        return {(topic, rid) for rid, topics in recs.items() for topic in topics}


def ctgov_matches(settings: Settings, topic: str) -> dict[str, str]:
    """The query.* parameters littrack sends for a topic: what the fake must match."""
    q = settings.topic(topic).ctgov
    assert q is not None
    return {k: v for k, v in q.params().items() if k.startswith("query.")}


def populate(settings: Settings, eutils: EutilsFake | None, ctgov: CtgovFake | None, *,
             articles: int = 30, trials: int = 10, seed: int = 7, first_pmid: int = 30000000,
             today: date = date(2026, 11, 28)) -> Corpus:
    """Fill the fakes: ``articles`` PMIDs and ``trials`` studies spread over the topics.

    About a fifth of the records are found by two topics; Entrez dates spread over the
    previous ten years, all before ``today``.
    """
    rng = random.Random(seed)
    names = [t.name for t in settings.topics]
    corpus = Corpus({}, {})
    nct_pool = [f"NCT{9000000 + i:08d}" for i in range(trials)]
    if eutils is not None:
        for t in settings.topics:
            assert t.pubmed_query
            eutils.register_query(t.pubmed_query)
        for i in range(articles):
            pmid = str(first_pmid + i)
            topics = {names[i % len(names)]}
            if rng.random() < 0.2:
                topics.add(rng.choice(names))
            edat = today - timedelta(days=30 + rng.randrange(3650))
            nct = [nct_pool[i % len(nct_pool)]] if nct_pool and rng.random() < 0.3 else []
            xml = article_xml(
                pmid, title=f"Synthetic study {i} of MDMA-assisted therapy",
                abstract=[("BACKGROUND", f"Background {i}."), ("RESULTS", f"Result {i}.")],
                authors=[Author("Doe", "Jane", "J"), Author("Roe", "Rick", "R")],
                pub_date=(str(edat.year), "Jan", "15"), entrez_date=edat, nct_ids=nct,
                doi=f"10.5555/synthetic.{i}", pmcid=None)
            queries = [settings.topic(n).pubmed_query or "" for n in sorted(topics)]
            eutils.add_article(pmid, xml, edat=edat, mdat=edat, queries=queries)
            corpus.articles[pmid] = topics
    if ctgov is not None:
        for i, nct in enumerate(nct_pool):
            topics = {names[i % len(names)]}
            if rng.random() < 0.2:
                topics.add(rng.choice(names))
            updated = today - timedelta(days=30 + rng.randrange(1500))
            s = study(nct, title=f"Synthetic trial {i}", last_update=updated.isoformat(),
                      status=rng.choice(["RECRUITING", "COMPLETED", "NOT_YET_RECRUITING"]),
                      references=[(str(first_pmid + i), "RESULT", f"Citation {i}")])
            ctgov.add_study(s, matches=[ctgov_matches(settings, n) for n in sorted(topics)])
            corpus.trials[nct] = topics
    return corpus
