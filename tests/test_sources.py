"""The two sources against their loopback fakes: paging, the 9,999 cap, history vs POST."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta
from pathlib import Path

import pytest

from littrack.config import CtgovQuery, Topic
from littrack.errors import MalformedResponse, QueryRejected
from littrack.http import HttpClient
from littrack.sources.ctgov import ClinicalTrials
from littrack.sources.pubmed import (
    EFETCH_IN_FLIGHT,
    EFETCH_IN_FLIGHT_MAX,
    ESEARCH_CAP,
    PubMed,
)
from littrack.windows import Window
from tests.builders.ctgov import study
from tests.builders.pubmed import article_xml
from tests.corpus import settings_for
from tests.fakes import CtgovFake, EutilsFake
from tests.fakes.eutils import ESEARCH_HEAD, XML
from tests.fakes.server import Reply, RequestRecord
from tests.spreads import SPREADS

TODAY = date(2026, 11, 28)
EVERYTHING = Window(None, TODAY)


@pytest.fixture
def pubmed(tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> PubMed:
    s = settings_for(tmp_path, eutils_fake, ctgov_fake)
    return PubMed(s.ncbi, HttpClient("pubmed", s.ncbi.rate, s.retry))


@pytest.fixture
def trials(tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> ClinicalTrials:
    s = settings_for(tmp_path, eutils_fake, ctgov_fake)
    return ClinicalTrials(s.ctgov, HttpClient("ctgov", 100.0, s.retry))


def test_more_than_9999_hits_are_walked_down_by_pmid_and_found_completely(
        pubmed: PubMed, eutils_fake: EutilsFake) -> None:
    eutils_fake.register_query("big")
    n = ESEARCH_CAP + 1200
    for i in range(n):
        edat = date(2000, 1, 1) + timedelta(days=i % 9000)
        eutils_fake.add_article(str(100000 + i), "<PubmedArticle/>", edat=edat,
                                queries=["big"])
    result = pubmed.search(Topic("big", pubmed_query="big"), Window(None, TODAY))
    assert len(result.ids) == n and len(set(result.ids)) == n
    terms = [r.params["term"] for r in eutils_fake.requests("esearch.fcgi")]
    # asked plainly first (the newest 9,999), then for the PMIDs below the lowest listed
    assert terms == ["big", f"(big) AND 1:{100000 + 1200 - 1}[uid]"]
    assert all(int(r.params["retmax"]) <= ESEARCH_CAP for r in eutils_fake.requests())


def _esearches_for(pubmed: PubMed, eutils: EutilsFake, dates: list[date],
                   window: Window = EVERYTHING) -> int:
    """ESearches ``pubmed`` spends on a search of one topic with a hit per date (PMIDs
    rising with the dates, as PubMed assigns them), checking it finds each hit once."""
    eutils.register_query("big")
    for i, edat in enumerate(dates):
        eutils.add_article(str(300000 + i), "<PubmedArticle/>", edat=edat, queries=["big"])
    result = pubmed.search(Topic("big", pubmed_query="big"), window)
    assert len(result.ids) == len(set(result.ids))
    assert sorted(result.ids, key=int) == [str(300000 + i) for i in range(len(dates))
                                           if window.start is None or dates[i] >= window.start]
    # answered ones: a 429 from the fake's rate limiter (a busy machine) is retried as is
    return sum(1 for r in eutils.requests("esearch.fcgi") if r.status == 200)


@pytest.mark.parametrize(("spread", "n"), [
    ("bench growth (2016-)", 12000), ("new, 4 years", 12000), ("bursts", 12000),
    ("growing, 30 years", 21000), ("even, 24 years", 25000), ("bench growth (2016-)", 25000),
    ("+7%/year since 1950", 30000)])
def test_a_big_topic_costs_one_esearch_per_9999_hits_whatever_their_spread(
        pubmed: PubMed, eutils_fake: EutilsFake, spread: str, n: int) -> None:
    """Issue 15 point 4 (at most 1 + ceil(N / 9,999)): walking down by PMID costs
    ceil(N / 9,999), however the hits spread over time."""
    assert _esearches_for(pubmed, eutils_fake, SPREADS[spread](n, TODAY)) == \
        math.ceil(n / ESEARCH_CAP)


def test_an_incremental_window_over_the_cap_is_walked_down_within_its_dates(
        pubmed: PubMed, eutils_fake: EutilsFake) -> None:
    dates = [date(2026, 1, 1) + timedelta(days=i // 100) for i in range(22000)]
    window = Window(date(2026, 1, 20), TODAY)  # 20,100 of the hits: three ESearches
    assert _esearches_for(pubmed, eutils_fake, dates, window) == 3
    terms = [r.params["term"] for r in eutils_fake.requests("esearch.fcgi")]
    assert all("2026/01/20:2026/11/28[edat]" in t for t in terms)


def test_more_than_9999_entered_on_one_day_are_found(pubmed: PubMed,
                                                     eutils_fake: EutilsFake) -> None:
    """Date slices could not split one day; PMID ranges can."""
    assert _esearches_for(pubmed, eutils_fake, [date(2025, 3, 3)] * 15000) == 2


@pytest.mark.parametrize("order", ["edat", "scrambled"])
def test_hits_listed_in_another_order_are_still_found_completely(
        pubmed: PubMed, eutils_fake: EutilsFake, order: str) -> None:
    """The walk checks that the hits it takes from a reply are all there are in their PMID
    range (counts), so an order other than by PMID costs requests, never records: by Entrez
    date, where one PMID in 40 was entered years after its number was given; scrambled."""
    eutils_fake.order = order
    dates = [date(2015, 1, 1) + timedelta(days=i // 8) for i in range(24000)]
    for i in range(0, len(dates), 40):
        dates[i] += timedelta(days=900)
    used = _esearches_for(pubmed, eutils_fake, dates)
    assert used > math.ceil(len(dates) / ESEARCH_CAP)  # the order was noticed


def test_first_fetch_pages_the_history_server(pubmed: PubMed, eutils_fake: EutilsFake) -> None:
    eutils_fake.register_query("q")
    for i in range(1200):
        pmid = str(20000000 + i)
        eutils_fake.add_article(pmid, article_xml(pmid), edat=date(2020, 1, 1), queries=["q"])
    search = pubmed.search(Topic("q", pubmed_query="q"), Window(None, TODAY))
    got = [r.record_id for b in pubmed.fetch(search) for r in b.records]
    assert sorted(got) == sorted(search.ids)
    fetches = eutils_fake.requests("efetch.fcgi")
    assert len(fetches) == 3  # ceil(1200 / 500)
    assert all(r.params.get("WebEnv") and "id" not in r.params for r in fetches)
    assert [r.params["retstart"] for r in fetches] == ["0", "500", "1000"]


def test_id_lists_are_posted(pubmed: PubMed, eutils_fake: EutilsFake) -> None:
    ids = [str(20000000 + i) for i in range(450)]
    for p in ids:
        eutils_fake.add_article(p, article_xml(p), edat=date(2020, 1, 1))
    got = [r.record_id for b in pubmed.by_id(ids[::-1]) for r in b.records]
    assert sorted(got) == sorted(ids)
    (req,) = eutils_fake.requests("efetch.fcgi")
    assert req.method == "POST" and len(req.params["id"].split(",")) == 450


def test_an_efetch_reply_cut_off_before_its_end_is_asked_for_again(
        pubmed: PubMed, eutils_fake: EutilsFake) -> None:
    """A 200 whose body stops before ``</PubmedArticleSet>`` (cut off on the way, or by a
    proxy) is retried; a body that ends in a long run of whitespace after it is whole."""
    ids = [str(20000000 + i) for i in range(3)]
    for p in ids:
        eutils_fake.add_article(p, article_xml(p), edat=date(2020, 1, 1))
    sent: list[bytes] = []

    def cut_then_padded(rec: RequestRecord) -> Reply | None:
        if not rec.path.endswith("efetch.fcgi"):
            return None
        whole = eutils_fake._efetch(rec.params, None).body
        body = whole.encode("utf-8") if isinstance(whole, str) else whole
        body = body[:len(body) // 2] if not sent else body + b" \n" * 400
        sent.append(body)
        return Reply(200, body, content_type="text/xml; charset=UTF-8")

    eutils_fake.before_reply = cut_then_padded
    got = [r.record_id for b in pubmed.by_id(ids) for r in b.records]
    assert sorted(got) == ids
    assert len(sent) == 2 and not sent[0].rstrip().endswith(b"</PubmedArticleSet>")


def test_more_downloads_are_under_way_while_each_request_takes_long(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake) -> None:
    """Enough EFetch requests in flight to keep the pacer busy through a round trip, from 4
    (with a key; 3 at 3 requests/s) up to 6; replies that arrive at once gain nothing from
    more, and would only wait in memory. Round trips are those of real requests."""
    s = settings_for(tmp_path, eutils_fake, ctgov_fake)
    ids = [str(20000000 + i) for i in range(1200)]
    for p in ids:
        eutils_fake.add_article(p, article_xml(p), edat=date(2020, 1, 1))
    keyed = PubMed(s.ncbi, HttpClient("pubmed", 9.5, s.retry))
    assert keyed.by_id(ids).depth == EFETCH_IN_FLIGHT  # nothing measured yet
    try:
        assert sorted(r.record_id for b in keyed.by_id(ids) for r in b.records) == ids
    finally:
        keyed.close()  # (its side process)
    assert keyed.round_trips.typical() > 0  # measured
    for _ in range(8):
        keyed.round_trips.add(0.05)  # replies that come at once
    assert keyed.by_id(ids).depth == EFETCH_IN_FLIGHT
    for _ in range(8):
        keyed.round_trips.add(0.5)
    assert keyed.by_id(ids).depth == EFETCH_IN_FLIGHT_MAX
    keyed.round_trips.add(0.3)  # (a median: one quick reply changes nothing)
    assert keyed.by_id(ids).depth == EFETCH_IN_FLIGHT_MAX
    unkeyed = PubMed(s.ncbi, HttpClient("pubmed", 3.0, s.retry))
    assert unkeyed.by_id(ids).depth == 3
    for _ in range(8):
        unkeyed.round_trips.add(0.5)
    assert unkeyed.by_id(ids).depth == 3  # 0.5 s: 1.5 starts apart, 3 keep the pacer busy
    for _ in range(8):
        unkeyed.round_trips.add(2.0)
    assert unkeyed.by_id(ids).depth == EFETCH_IN_FLIGHT_MAX


def test_every_request_identifies_us_and_stays_under_the_rate(
        pubmed: PubMed, eutils_fake: EutilsFake) -> None:
    eutils_fake.register_query("q")
    for i in range(5):
        ids = [str(900 + i)]
        pubmed.by_id(ids)  # generator: nothing sent
        list(pubmed.by_id(ids))
    reqs = eutils_fake.requests()
    assert len(reqs) == 10  # each fetch of a missing id is re-asked once
    assert eutils_fake.rate_limited == 0
    for r in reqs:
        assert r.params["tool"] == "littrack" and r.params["email"] == "tests@example.org"
    starts = [r.time for r in reqs]
    # 2.85 requests/s: the schedule spaces starts 0.35 s apart (a single late wake-up can
    # shorten one gap, never the schedule, so check the span; the fake's limiter checks
    # every 1 s window and sent no 429 above)
    assert starts[-1] - starts[0] >= 9 * 0.35 - 0.05


def test_unknown_field_is_a_rejected_query(pubmed: PubMed, eutils_fake: EutilsFake) -> None:
    eutils_fake.register_query("x[NoField]", field_not_found="x[NoField]")
    with pytest.raises(QueryRejected, match=r"topic 't'.*x\[NoField\]"):
        pubmed.search(Topic("t", pubmed_query="x[NoField]"), Window(None, TODAY))


def test_ctgov_walks_every_page_and_stops_once_total_count_is_in(
        trials: ClinicalTrials, ctgov_fake: CtgovFake) -> None:
    match = {"query.intr": "MDMA"}
    for i in range(2000):
        ctgov_fake.add_study(study(f"NCT{1000000 + i:08d}"), matches=[match])
    topic = Topic("t", ctgov=CtgovQuery(intr="MDMA"))
    pages = list(trials.pages(topic, Window(None, TODAY)))
    # a full last page carries a token, but totalCount says nothing follows: no empty page
    assert [len(p.ids) for p in pages] == [1000, 1000]
    assert pages[0].total == 2000 and pages[1].total is None
    reqs = ctgov_fake.requests("/studies")
    assert [r.params.get("pageSize") for r in reqs] == ["1000"] * 2
    assert "pageToken" not in reqs[0].params and reqs[1].params["pageToken"]


def test_ctgov_restarts_a_walk_whose_token_went_stale(
        trials: ClinicalTrials, ctgov_fake: CtgovFake) -> None:
    for i in range(1500):
        ctgov_fake.add_study(study(f"NCT{1000000 + i:08d}"), matches=[{"query.intr": "MDMA"}])
    walk = trials.pages(Topic("t", ctgov=CtgovQuery(intr="MDMA")), Window(None, TODAY))
    first = next(walk)
    ctgov_fake.bump()  # data changed mid-walk: the token is now stale
    rest = list(walk)
    assert rest[0].restarted and rest[0].total == 1500
    ids = {s["protocolSection"]["identificationModule"]["nctId"]
           for p in [first, *rest] for s in p.studies()}
    assert len(ids) == 1500


def test_ctgov_page_is_read_study_by_study_in_batches(
        tmp_path: Path, ctgov_fake: CtgovFake, trials: ClinicalTrials) -> None:
    """A page is checked and decoded one study at a time (issue 15: memory flat in the run's
    size), and each study is kept whole."""
    for i in range(250):
        ctgov_fake.add_study(study(f"NCT{2000000 + i:08d}", title=f"Trial {i} \u00e9\u4e2d"),
                             matches=[{"query.intr": "MDMA"}])
    topic = Topic("t", ctgov=CtgovQuery(intr="MDMA"))
    batches = list(trials.fetch(trials.search(topic, Window(None, TODAY))))
    assert [len(b.records) for b in batches] == [100, 100, 50]
    assert [b.announced for b in batches] == [250, None, None]
    for rec in (r for b in batches for r in b.records):
        assert json.loads(rec.raw) == ctgov_fake.studies[rec.record_id]
        assert rec.main["brief_title"].endswith("\u00e9\u4e2d")


@pytest.mark.parametrize("body, why", [
    (b'{"totalCount": 1, "studies": [{"protocolSection": {}}]}', "without protocolSection"),
    (b'{"totalCount": 1}', "no 'studies' list"),
    (b'{"totalCount": 1, "studies": {}}', "no 'studies' list"),
    (b'{"studies": []}', "page 1 has no totalCount"),
    (b'{"totalCount": 1, "studies": [] ', "invalid JSON"),
    (b'{"totalCount": 1, "studies": []} x', "invalid JSON"),
    (b'{"totalCount": 1, "studies": [{"protocolSection": {"identificationModule": '
     b'{"nctId": "NCT00000001"}}}, ]}', "invalid JSON"),
    (b'{"totalCount": 1, "studies": [], }', "invalid JSON"),
])
def test_ctgov_page_scan_rejects_what_the_whole_parse_rejected(body: bytes, why: str) -> None:
    from email.message import Message

    from littrack.http import Response
    from littrack.sources.ctgov import _scan_page

    headers = Message()
    headers["Content-Type"] = "application/json"
    with pytest.raises(MalformedResponse, match=why):
        _scan_page(Response(200, headers, body, "http://x/studies"), first=True)


def test_an_over_cap_reply_listing_no_id_is_malformed(pubmed: PubMed,
                                                      eutils_fake: EutilsFake) -> None:
    eutils_fake.register_query("q")
    eutils_fake.before_reply = lambda rec: Reply(200, ESEARCH_HEAD + (
        "<eSearchResult><Count>20000</Count><RetMax>0</RetMax><RetStart>0</RetStart>"
        "<IdList/><TranslationSet/><QueryTranslation>q</QueryTranslation></eSearchResult>"),
        XML)
    with pytest.raises(MalformedResponse, match="counted 20000 hits and listed no id"):
        pubmed.search(Topic("t", pubmed_query="q"), EVERYTHING)
