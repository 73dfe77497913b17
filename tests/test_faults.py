"""Whole littrack runs against fakes that fail the way NCBI and ClinicalTrials.gov fail.

The promise under test: nothing lost, nothing duplicated. A run under a seeded mix of every
fault the fakes can inject ends with tables equal to a fault-free run's; a short EFetch is
asked again and then accounted for; a short ClinicalTrials.gov walk fails its topic without
moving the watermark; malformed replies are retried and then fail only their topic; bad
queries and bad config are reported in the user's and the service's words; XML from the
wire can neither expand entities nor make littrack reach the network.

The helpers here (``tuned_config``, ``settings_at``, ``snapshot``) are shared with
``test_crash.py``, ``test_security.py`` and ``bench/faults.py``.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from littrack.config import Settings, load_settings
from littrack.errors import MalformedResponse
from littrack.normalize.pubmed_efetch import parse_efetch
from littrack.pipeline import LINKED_TOPIC, run
from littrack.sources.pubmed import parse_esearch
from tests.builders.pubmed import article_xml
from tests.corpus import Corpus, populate, write_test_config
from tests.fakes import CtgovFake, EutilsFake, FakeServer, Fault, Reply, RequestRecord
from tests.fakes import eutils as eutils_module
from tests.fakes.server import FAULT_KINDS

API_KEY = "fault-test-key-5dc1"  # with a key the E-utilities fake allows 10 requests/s
FIXED_NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
# Columns that name a run or a moment: they differ between two correct runs by design.
VOLATILE = frozenset({"first_seen_at", "last_seen_at", "updated_at", "fetched_at",
                      "observed_at", "run_id", "first_seen_run", "last_seen_run", "applied_at"})


def fixed_clock() -> datetime:
    return FIXED_NOW


# ---- shared helpers ------------------------------------------------------------------------
def tuned_config(folder: Path, *, batch_size: int = 6, page_size: int = 4,
                 timeout: float = 1.0, max_tries: int = 6, backoff: float = 0.01,
                 extra: str = "") -> Path:
    """The shipped config with small batches and pages, so a small corpus takes many requests
    (more places for a fault or a kill to land), and fast timeouts and backoff."""
    folder.mkdir(parents=True, exist_ok=True)
    path = write_test_config(folder, timeout=timeout, backoff=backoff, extra=extra)
    text = path.read_text(encoding="utf-8")
    for key, value in (("batch_size", batch_size), ("page_size", page_size),
                       ("max_tries", max_tries)):
        text = re.sub(rf"(?m)^{key} = \S+", f"{key} = {value}", text)
    path.write_text(text, encoding="utf-8")
    return path


def env_for(data_dir: Path, eutils: EutilsFake, ctgov: CtgovFake,
            api_key: str | None = API_KEY) -> dict[str, str]:
    env = {"LITTRACK_DATA_DIR": str(data_dir),
           "LITTRACK_EUTILS_URL": eutils.url + "/entrez/eutils",
           "LITTRACK_CTGOV_URL": ctgov.url + "/api/v2"}
    if api_key:
        env["NCBI_API_KEY"] = api_key
    return env


def settings_at(folder: Path, eutils: EutilsFake, ctgov: CtgovFake, **config: Any) -> Settings:
    """Settings for a data directory of its own under ``folder``, pointed at the fakes."""
    path = tuned_config(folder, **config)
    return load_settings(path, env=env_for(folder / "data", eutils, ctgov))


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every table but ``runs``, without run ids and timestamps, rows sorted (duplicates kept).

    Two runs that stored the same records, matches, links, changes, missing ids and
    watermarks give equal snapshots; a lost or duplicated row shows as a difference.
    """
    con = sqlite3.connect(db)
    try:
        out: dict[str, list[tuple[Any, ...]]] = {}
        tables = [r[0] for r in con.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")]
        for table in sorted(tables):
            if table == "runs":
                continue
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")
                    if r[1] not in VOLATILE]
            rows = con.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall()
            out[table] = sorted((tuple(r) for r in rows), key=repr)
        return out
    finally:
        con.close()


def differences(a: dict[str, list[tuple[Any, ...]]],
                b: dict[str, list[tuple[Any, ...]]]) -> dict[str, str]:
    """A short, readable account of how two snapshots differ (empty when equal)."""
    out = {}
    for table in sorted(set(a) | set(b)):
        ra, rb = a.get(table, []), b.get(table, [])
        if ra != rb:
            out[table] = f"{len(ra)} vs {len(rb)} rows; e.g. " + repr(
                next((r for r in ra if r not in rb), None) or next(r for r in rb if r not in ra)
            )[:200]
    return out


# ---- fakes with the glitches no fault kind covers ----------------------------------------
class GlitchyEutils(EutilsFake):
    """An E-utilities fake that can garble bodies *inside* otherwise well-formed replies."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.garble_efetch = 0  # next N EFetch replies get broken markup mid-body
        self.garble_pmid: str | None = None  # every EFetch reply holding this PMID
        self.garble_query: str | None = None  # every ESearch for this query
        self.efetch_body: str | None = None  # answer every EFetch with exactly this

    def route(self, rec: RequestRecord, fault: Fault | None) -> Reply:
        reply = super().route(rec, fault)
        if reply.status != 200:
            return reply
        body = reply.body if isinstance(reply.body, str) else reply.body.decode()
        if rec.path.endswith("efetch.fcgi"):
            if self.efetch_body is not None:
                return Reply(200, self.efetch_body, reply.content_type)
            hit = self.garble_pmid and f'>{self.garble_pmid}</PMID>' in body
            if (self.garble_efetch > 0 or hit) and "<ArticleTitle>" in body:
                self.garble_efetch -= 0 if hit else 1
                # still ends with </PubmedArticleSet>: only a parser can tell
                body = body.replace("<ArticleTitle>", "<ArticleTitle><<&", 1)
                return Reply(200, body, reply.content_type)
        if (rec.path.endswith("esearch.fcgi") and self.garble_query
                and self.garble_query in rec.params.get("term", "")):
            return Reply(200, body.replace("</Count>", "</Cnt>", 1), reply.content_type)
        return reply


class GlitchyCtgov(CtgovFake):
    """A ClinicalTrials.gov fake that can leave studies out of pages or send non-pages."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(rate_limit_per_minute=None, **kwargs)
        self.drop: set[str] = set()  # NCT ids left out of /studies pages (totalCount kept)
        self.garble_cond: str | None = None  # /studies for this query.cond: JSON, not a page

    def route(self, rec: RequestRecord, fault: Fault | None) -> Reply:
        reply = super().route(rec, fault)
        if reply.status != 200 or not rec.path.endswith("/studies"):
            return reply
        if self.garble_cond and rec.params.get("query.cond") == self.garble_cond:
            return Reply(200, '{"studies": "temporarily unavailable"}', reply.content_type)
        if self.drop:
            page = json.loads(reply.body)
            page["studies"] = [s for s in page["studies"] if
                               s["protocolSection"]["identificationModule"]["nctId"]
                               not in self.drop]
            return Reply(200, json.dumps(page), reply.content_type)
        return reply


@pytest.fixture
def fakes() -> Iterator[tuple[GlitchyEutils, GlitchyCtgov]]:
    with GlitchyEutils() as eutils, GlitchyCtgov() as ctgov:
        yield eutils, ctgov
    assert not eutils.errors and not ctgov.errors, (eutils.errors + ctgov.errors)[0]


def fill(tmp_path: Path, eutils: EutilsFake, ctgov: CtgovFake, *, articles: int = 48,
         trials: int = 16) -> Corpus:
    probe = settings_at(tmp_path / "probe", eutils, ctgov)
    return populate(probe, eutils, ctgov, articles=articles, trials=trials, seed=11)


def reference(tmp_path: Path, eutils: EutilsFake, ctgov: CtgovFake,
              **config: Any) -> dict[str, list[tuple[Any, ...]]]:
    """Tables of a fault-free run over the same fakes (faults are pushed only after it)."""
    settings = settings_at(tmp_path / "clean", eutils, ctgov, **config)
    result = run(settings, clock=fixed_clock, write_report=False)
    assert result.exit_code == 0, [r.error for r in result.results]
    return snapshot(settings.db_path)


# ---- the acceptance test -------------------------------------------------------------------
def test_full_run_under_mixed_faults_equals_fault_free_run(
        tmp_path: Path, fakes: tuple[GlitchyEutils, GlitchyCtgov]) -> None:
    """Every fault kind at least once, plus 20% seeded random faults: same tables as clean."""
    eutils, ctgov = fakes
    corpus = fill(tmp_path, eutils, ctgov)
    clean = reference(tmp_path, eutils, ctgov)
    assert len(clean["articles"]) == len(corpus.articles)
    assert len(clean["trials"]) == len(corpus.trials)

    # Every kind at least once, where it can land, before the random ones. One-shot faults
    # for a path hit its next requests, perhaps the retries of one request: max_tries=8
    # leaves room for that plus a random streak.
    pushed = {"esearch.fcgi": ["429", "reset", "error200"],
              "efetch.fcgi": ["short", "truncate", "500", "stall"],
              "/studies": ["502", "stall", "503"], "/version": ["error200"]}
    assert {k for kinds in pushed.values() for k in kinds} == set(FAULT_KINDS)
    for path, kinds in pushed.items():
        fake = ctgov if path.startswith("/") else eutils
        for kind in kinds:
            fake.faults.push(kind, path, retry_after=0.2, stall_seconds=5)
    eutils.faults.random(rate=0.2, kinds=FAULT_KINDS, seed=2024, retry_after=0.2,
                         stall_seconds=5)
    ctgov.faults.random(rate=0.2, kinds=[k for k in FAULT_KINDS if k != "short"], seed=2025,
                        retry_after=0.2, stall_seconds=5)

    settings = settings_at(tmp_path / "faulty", eutils, ctgov, max_tries=8)
    runs = [run(settings, clock=fixed_clock, write_report=False)]
    assert all(r.status == "ok" for r in runs[0].results), [r.error for r in runs[0].results]
    # A short EFetch whose re-request is short again is recorded missing (by design) and
    # fetched by the next run; with this seed that may or may not happen, so allow one more.
    if snapshot(settings.db_path)["missing_records"]:
        runs.append(run(settings, clock=fixed_clock, write_report=False))
        assert runs[1].exit_code == 0
    faulty = snapshot(settings.db_path)

    assert differences(clean, faulty) == {}
    injected = eutils.faults.injected + ctgov.faults.injected
    assert set(injected) == set(FAULT_KINDS)
    n_faults = sum(injected.values())
    assert n_faults > 11  # the pushed ones and some random ones
    # every fault costs a retry except a short EFetch, which costs a re-request instead
    retries = sum(r.n_retries for run_ in runs for r in run_.results)
    assert retries >= n_faults - injected["short"]


# ---- completeness ----------------------------------------------------------------------------
def one_topic() -> dict[str, Any]:
    """run() arguments for the first PubMed topic alone (with batch_size=100 that is one
    EFetch batch, so pushed faults land on known requests)."""
    return {"topics": ["mdma-ptsd"], "sources": ["pubmed"], "clock": fixed_clock,
            "write_report": False}


def test_short_efetch_is_asked_again_and_completes(
        tmp_path: Path, fakes: tuple[GlitchyEutils, GlitchyCtgov]) -> None:
    """EFetch returning fewer records than asked: the missing PMIDs are requested by id."""
    eutils, ctgov = fakes
    fill(tmp_path, eutils, ctgov)
    settings = settings_at(tmp_path / "run", eutils, ctgov, batch_size=100)
    eutils.faults.push("short", "efetch.fcgi", share=0.5)
    result = run(settings, **one_topic())
    assert result.exit_code == 0
    first, again = eutils.requests("efetch.fcgi")
    assert first.fault == "short" and "WebEnv" in first.params
    asked_again = again.params["id"].split(",")
    assert 0 < len(asked_again) < result.results[0].n_found
    snap = snapshot(settings.db_path)
    assert snap["missing_records"] == []
    matched = {r[2] for r in snap["topic_matches"]}
    assert set(asked_again) <= matched and len(matched) == result.results[0].n_found


def test_pmids_never_returned_are_recorded_missing_then_fetched_next_run(
        tmp_path: Path, fakes: tuple[GlitchyEutils, GlitchyCtgov],
        caplog: pytest.LogCaptureFixture) -> None:
    """Short twice (batch and re-request): a warning, missing_records rows, and the next run
    fetches exactly those; the end state equals a clean run's."""
    eutils, ctgov = fakes
    fill(tmp_path, eutils, ctgov)
    clean_settings = settings_at(tmp_path / "clean", eutils, ctgov, batch_size=100)
    run(clean_settings, **one_topic())
    clean = snapshot(clean_settings.db_path)

    settings = settings_at(tmp_path / "run", eutils, ctgov, batch_size=100)
    eutils.faults.push("short", "efetch.fcgi", share=0.5)
    eutils.faults.push("short", "efetch.fcgi", share=0.5)
    first = run(settings, **one_topic())
    (topic,) = first.results
    assert topic.status == "ok" and topic.note and "missing" in topic.note
    missing = [r[1] for r in snapshot(settings.db_path)["missing_records"]]
    assert missing and any("not returned by EFetch" in m and missing[0] in m
                           for m in caplog.messages)
    matched = {r[2] for r in snapshot(settings.db_path)["topic_matches"]}
    assert not matched & set(missing)  # not claimed before it arrived

    before = eutils.count("efetch.fcgi")
    second = run(settings, **one_topic())
    assert second.exit_code == 0
    (refetch,) = eutils.requests("efetch.fcgi")[before:]
    assert sorted(refetch.params["id"].split(",")) == sorted(missing)
    assert differences(clean, snapshot(settings.db_path)) == {}


def test_ctgov_short_walk_is_incomplete_and_keeps_the_watermark(
        tmp_path: Path, fakes: tuple[GlitchyEutils, GlitchyCtgov]) -> None:
    """Fewer studies than totalCount: that topic fails as incomplete, its watermark stays put,
    the other topics commit, and the next (healthy) run completes it."""
    eutils, ctgov = fakes
    corpus = fill(tmp_path, eutils, ctgov)
    clean_settings = settings_at(tmp_path / "clean", eutils, ctgov)
    run(clean_settings, sources=["ctgov"], clock=fixed_clock, write_report=False)
    clean = snapshot(clean_settings.db_path)

    victim = sorted(n for n, t in corpus.trials.items() if t == {"mdma-end-of-life"})[0]
    ctgov.drop = {victim}
    settings = settings_at(tmp_path / "run", eutils, ctgov)
    first = run(settings, sources=["ctgov"], clock=fixed_clock, write_report=False)
    by_topic = {r.topic: r for r in first.results}
    bad = by_topic["mdma-end-of-life"]
    assert bad.status == "failed" and "mdma-end-of-life" in (bad.error or "")
    assert "announced" in (bad.error or "") and "watermark not advanced" in (bad.error or "")
    assert by_topic["mdma-ptsd"].status == "ok"
    snap = snapshot(settings.db_path)
    assert {w[0] for w in snap["watermarks"]} == {"mdma-ptsd", "mdma-autism-social-anxiety"}
    assert not [m for m in snap["topic_matches"] if m[0] == "mdma-end-of-life"]

    ctgov.drop = set()
    second = run(settings, sources=["ctgov"], clock=fixed_clock, write_report=False)
    assert second.exit_code == 0
    assert differences(clean, snapshot(settings.db_path)) == {}


# ---- malformed replies -------------------------------------------------------------------------
def test_garbled_efetch_batch_is_fetched_again(
        tmp_path: Path, fakes: tuple[GlitchyEutils, GlitchyCtgov]) -> None:
    """Broken markup inside a reply that ends properly: the batch is re-requested."""
    eutils, ctgov = fakes
    fill(tmp_path, eutils, ctgov)
    clean_settings = settings_at(tmp_path / "clean", eutils, ctgov)
    run(clean_settings, **one_topic())
    clean = snapshot(clean_settings.db_path)

    eutils.garble_efetch = 2
    settings = settings_at(tmp_path / "run", eutils, ctgov)
    result = run(settings, **one_topic())
    assert result.exit_code == 0 and result.results[0].n_retries == 2
    assert eutils.garble_efetch == 0
    assert differences(clean, snapshot(settings.db_path)) == {}


def test_persistently_malformed_replies_fail_only_their_topic(
        tmp_path: Path, fakes: tuple[GlitchyEutils, GlitchyCtgov]) -> None:
    """Garbage from a server for one topic never crashes the run: retried, then that topic
    fails with a message naming it; the other topics commit."""
    eutils, ctgov = fakes
    corpus = fill(tmp_path, eutils, ctgov)
    settings = settings_at(tmp_path / "run", eutils, ctgov, max_tries=3)
    eutils.garble_query = settings.topic("mdma-end-of-life").pubmed_query
    eutils.garble_pmid = sorted(p for p, t in corpus.articles.items()
                                if t == {"mdma-autism-social-anxiety"})[0]
    cond = settings.topic("mdma-ptsd").ctgov
    assert cond is not None
    ctgov.garble_cond = cond.cond
    result = run(settings, clock=fixed_clock, write_report=False)
    # (records that tracked ones link to are fetched after the topics; the garbled PMID is
    # among them, so that fetch may fail too: it is not a topic of the config)
    status = {(r.source, r.topic): r for r in result.results if r.topic != LINKED_TOPIC}
    assert result.exit_code == 1
    assert {k for k, r in status.items() if r.status == "failed"} == {
        ("pubmed", "mdma-end-of-life"), ("pubmed", "mdma-autism-social-anxiety"),
        ("ctgov", "mdma-ptsd")}
    esearch = status[("pubmed", "mdma-end-of-life")].error or ""
    efetch = status[("pubmed", "mdma-autism-social-anxiety")].error or ""
    studies = status[("ctgov", "mdma-ptsd")].error or ""
    assert "mdma-end-of-life" in esearch and "gave up after 3 tries" in esearch
    assert "ESearch reply is not valid XML" in esearch
    assert "mdma-autism-social-anxiety" in efetch and "unusable after 3 tries" in efetch
    assert "mdma-ptsd" in studies and "no 'studies' list" in studies
    assert all(r.n_retries >= 2 for r in status.values() if r.status == "failed")
    snap = snapshot(settings.db_path)
    assert {(w[0], w[1]) for w in snap["watermarks"]} == {
        ("mdma-ptsd", "pubmed"), ("mdma-end-of-life", "ctgov"),
        ("mdma-autism-social-anxiety", "ctgov")}


# ---- bad input from the user -----------------------------------------------------------------
def test_invalid_pubmed_query_names_topic_and_service_words(
        tmp_path: Path, fakes: tuple[GlitchyEutils, GlitchyCtgov]) -> None:
    """A query PubMed cannot find (ErrorList/PhraseNotFound) fails its topic, not the run."""
    eutils, ctgov = fakes
    fill(tmp_path, eutils, ctgov)
    typo = '"midomafetamine-typo"[tiab] AND nonsensephrase[tiab]'
    config = tuned_config(tmp_path / "run")
    text = config.read_text(encoding="utf-8")  # the first topic's query becomes the typo
    start = text.index("[topics.pubmed]\nquery = ")
    end = text.index('"""', text.index('"""', start) + 3) + 3
    config.write_text(text[:start] + f"[topics.pubmed]\nquery = '{typo}'" + text[end:],
                      encoding="utf-8")
    settings = load_settings(config, env=env_for(tmp_path / "run" / "data", eutils, ctgov))
    assert settings.topics[0].pubmed_query == typo
    result = run(settings, sources=["pubmed"], clock=fixed_clock, write_report=False)
    by_topic = {r.topic: r for r in result.results}
    error = by_topic["mdma-ptsd"].error or ""
    assert by_topic["mdma-ptsd"].status == "failed" and "mdma-ptsd" in error
    assert "phrase(s) not found" in error and "nonsensephrase" in error
    assert by_topic["mdma-end-of-life"].status == "ok"
    assert by_topic["mdma-autism-social-anxiety"].status == "ok"
    assert eutils.count("esearch.fcgi") == 3  # rejected, not retried


def cli(config: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "littrack", "--config", str(config), *args],
                          env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=120)


def test_config_mistakes_and_unknown_topics_exit_2_before_any_request(
        tmp_path: Path, fakes: tuple[GlitchyEutils, GlitchyCtgov]) -> None:
    eutils, ctgov = fakes
    env = env_for(tmp_path / "data", eutils, ctgov)
    config = tuned_config(tmp_path)
    unknown = cli(config, env, "run", "--topic", "mdma-nope")
    assert unknown.returncode == 2
    assert "unknown topic 'mdma-nope'" in unknown.stderr and "mdma-ptsd" in unknown.stderr
    broken = tmp_path / "broken.toml"
    broken.write_text(config.read_text(encoding="utf-8").replace("batch_size = 6",
                                                                 "batch_size = 'six'"))
    bad = cli(broken, env, "run")
    assert bad.returncode == 2
    assert "broken.toml" in bad.stderr and "ncbi.batch_size" in bad.stderr
    assert "Traceback" not in unknown.stderr + bad.stderr
    assert eutils.count() == 0 and ctgov.count() == 0


# ---- XML from the wire ---------------------------------------------------------------------
class NoNetwork:
    """Refuses every non-loopback connection and remembers the attempt."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.attempts: list[str] = []
        real = socket.getaddrinfo

        def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
            if host not in ("127.0.0.1", "localhost", "::1", None):
                self.attempts.append(str(host))
                raise OSError(f"network access to {host} refused by the test")
            return real(host, *args, **kwargs)

        monkeypatch.setattr(socket, "getaddrinfo", guarded)


def test_a_pubmed_reply_naming_an_unbundled_dtd_parses_offline(
        tmp_path: Path, fakes: tuple[GlitchyEutils, GlitchyCtgov],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A future pubmed_260101.dtd (Biopython bundles up to 250101) must not matter."""
    eutils, ctgov = fakes
    fill(tmp_path, eutils, ctgov, articles=12)
    guard = NoNetwork(monkeypatch)
    future = eutils_module.PUBMED_HEAD.replace("pubmed_250101.dtd", "pubmed_260101.dtd")
    assert future != eutils_module.PUBMED_HEAD
    monkeypatch.setattr(eutils_module, "PUBMED_HEAD", future)
    settings = settings_at(tmp_path / "run", eutils, ctgov)
    result = run(settings, sources=["pubmed"], clock=fixed_clock, write_report=False)
    assert result.exit_code == 0, [r.error for r in result.results]
    assert len(snapshot(settings.db_path)["articles"]) == 12
    assert guard.attempts == []


@pytest.fixture
def sentinel() -> Iterator[FakeServer]:
    """A loopback server an attack would make the parser fetch from; it must stay unasked."""
    with FakeServer() as server:
        yield server


def _attacks(url: str) -> dict[str, bytes]:
    record = article_xml("31000001")
    laughs = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 9))
    return {
        "billion laughs": (f'<?xml version="1.0"?><!DOCTYPE PubmedArticleSet [<!ENTITY l0 '
                           f'"ha">{laughs}]><PubmedArticleSet><PubmedArticle>&l8;'
                           f'</PubmedArticle></PubmedArticleSet>').encode(),
        "external entity": (f'<?xml version="1.0"?><!DOCTYPE PubmedArticleSet [<!ENTITY x '
                            f'SYSTEM "{url}/secret">]><PubmedArticleSet>{record}&x;'
                            f'</PubmedArticleSet>').encode(),
        "parameter entity": (f'<?xml version="1.0"?><!DOCTYPE PubmedArticleSet [<!ENTITY % p '
                             f'SYSTEM "{url}/p.dtd"> %p;]><PubmedArticleSet>{record}'
                             f'</PubmedArticleSet>').encode(),
    }


@pytest.mark.parametrize("attack", ["billion laughs", "external entity", "parameter entity"])
def test_hostile_xml_is_refused_without_reaching_the_network(
        sentinel: FakeServer, attack: str, monkeypatch: pytest.MonkeyPatch) -> None:
    guard = NoNetwork(monkeypatch)
    body = _attacks(sentinel.url)[attack]
    with pytest.raises(MalformedResponse):
        list(parse_efetch(body))
    esearch = body.replace(b"PubmedArticleSet", b"eSearchResult")
    with pytest.raises(MalformedResponse):
        parse_esearch(esearch)
    assert sentinel.count() == 0 and guard.attempts == []


def test_an_external_dtd_is_never_fetched(sentinel: FakeServer,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A DOCTYPE naming any DTD (even on a reachable host) is read past, not loaded."""
    guard = NoNetwork(monkeypatch)
    body = (f'<?xml version="1.0"?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD X//EN" '
            f'"{sentinel.url}/pubmed_270101.dtd">\n<PubmedArticleSet>'
            f'{article_xml("31000002")}</PubmedArticleSet>').encode()
    (record,) = list(parse_efetch(body))
    assert getattr(record, "record_id", None) == "31000002"
    assert sentinel.count() == 0 and guard.attempts == []


def test_hostile_efetch_replies_fail_the_topic_cleanly(
        tmp_path: Path, fakes: tuple[GlitchyEutils, GlitchyCtgov], sentinel: FakeServer) -> None:
    """Over the wire, an entity attack in every EFetch reply: retried, then a clean failure
    of each PubMed topic; ClinicalTrials.gov still runs; nothing is fetched from the attacker."""
    eutils, ctgov = fakes
    fill(tmp_path, eutils, ctgov, articles=6, trials=6)
    eutils.efetch_body = _attacks(sentinel.url)["external entity"].decode()
    settings = settings_at(tmp_path / "run", eutils, ctgov, max_tries=2)
    result = run(settings, clock=fixed_clock, write_report=False)
    failed = [r for r in result.results if r.status == "failed" and r.topic != LINKED_TOPIC]
    assert {r.source for r in failed} == {"pubmed"} and len(failed) == 3
    assert all("safe XML parser" in (r.error or "") for r in failed)
    assert all(r.status == "ok" for r in result.results if r.source == "ctgov")
    assert sentinel.count() == 0
