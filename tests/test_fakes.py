"""Tests of the loopback fakes themselves, spoken to with plain urllib."""

import json
import re
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from datetime import date
from http.client import IncompleteRead
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import urlencode
from urllib.request import Request, urlopen

import pytest

from tests.fakes import CtgovFake
from tests.fakes.ctgov import STALE

ESEARCH_PROLOG = (
    '<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch '
    '20060628//EN" "https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n'
    "<eSearchResult><Count>"
)
PUBMED_PROLOG = (
    '<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st '
    'January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
    "<PubmedArticleSet>\n"
)
Q = "MDMA AND PTSD"


# helpers ---------------------------------------------------------------------------------------


def call(fake, path, params=None, *, post=False, timeout=5.0):
    """(status, headers, text) of one request; HTTP errors are returned, not raised."""
    url, data = fake.url + path, urlencode(params or {})
    req = Request(url, data=data.encode()) if post else Request(f"{url}?{data}" if data else url)
    try:
        with urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read().decode()
    except HTTPError as err:
        with err:
            return err.code, err.headers, err.read().decode()


def esearch(fake, **params):
    return call(fake, "/entrez/eutils/esearch.fcgi", {"db": "pubmed", **params})


def efetch(fake, *, post=False, **params):
    return call(fake, "/entrez/eutils/efetch.fcgi", {"db": "pubmed", **params}, post=post)


def studies(fake, **params):
    return call(fake, "/api/v2/studies", params)


def tag(body, name):
    return [e.text for e in ET.fromstring(body).iter(name)]


def pmids(body):
    return tag(body, "PMID")


def article(pmid):
    citation = f'<MedlineCitation><PMID Version="1">{pmid}</PMID></MedlineCitation>'
    return f"<PubmedArticle>{citation}</PubmedArticle>"


def study(nct, status="RECRUITING", updated="2024-01-10"):
    return {
        "protocolSection": {
            "identificationModule": {"nctId": nct},
            "statusModule": {
                "overallStatus": status,
                "lastUpdatePostDateStruct": {"date": updated},
            },
        }
    }


def nct_ids(body):
    return [
        s["protocolSection"]["identificationModule"]["nctId"] for s in json.loads(body)["studies"]
    ]


@pytest.fixture
def eu(eutils_fake):
    eutils_fake.rate_limit = None
    for pmid in range(1000, 1025):
        eutils_fake.add_article(str(pmid), article(pmid), edat=date(2024, 1, 1), queries=[Q])
    return eutils_fake


@pytest.fixture
def ct(ctgov_fake):
    ctgov_fake.rate_limit_per_minute = None
    for i in range(25, 0, -1):
        ctgov_fake.add_study(study(f"NCT{i:08d}"), matches=[{"query.intr": "MDMA"}])
    return ctgov_fake


# E-utilities: ESearch ----------------------------------------------------------------------------


def test_esearch_pages_newest_pmid_first(eu):
    status, headers, body = esearch(eu, term=Q, retmax="10", retstart="20")
    assert status == 200 and headers["Content-Type"] == "text/xml; charset=UTF-8"
    assert body.startswith(ESEARCH_PROLOG)
    assert tag(body, "Count") == ["25"] and tag(body, "RetMax") == ["5"]
    assert tag(body, "RetStart") == ["20"]
    assert tag(body, "Id") == ["1004", "1003", "1002", "1001", "1000"]
    assert tag(esearch(eu, term=Q)[2], "Id") == [str(i) for i in range(1024, 1004, -1)]


def test_esearch_history_then_efetch_pages_it(eu):
    body = esearch(eu, term=Q, usehistory="y", retmax="0")[2]
    (webenv,) = tag(body, "WebEnv")
    assert re.fullmatch(r"MCID_[0-9a-f]{24}", webenv) and tag(body, "QueryKey") == ["1"]
    again = esearch(eu, term=Q, usehistory="y", WebEnv=webenv)[2]
    assert tag(again, "QueryKey") == ["2"] and tag(again, "WebEnv") == [webenv]

    status, _, body = efetch(eu, WebEnv=webenv, query_key="1", retstart="20", retmax="10")
    assert status == 200 and body.startswith(PUBMED_PROLOG)
    assert pmids(body) == ["1004", "1003", "1002", "1001", "1000"]
    assert tag(efetch(eu, WebEnv="MCID_0", query_key="1")[2], "ERROR") == [
        "Unable to obtain query #1"
    ]
    refused = efetch(eu, WebEnv=webenv, query_key="1", retstart="9999")[2]
    assert tag(refused, "ERROR")[0].startswith("Cannot retrieve history data.")


def test_esearch_caps_at_9999(eutils_fake):
    eutils_fake.rate_limit = None
    for pmid in range(1, 10_051):
        eutils_fake.add_article(str(pmid), "<PubmedArticle/>", edat=date(2024, 1, 1), queries=[Q])
    body = esearch(eutils_fake, term=Q, retmax="20000")[2]
    assert tag(body, "Count") == ["10050"] and tag(body, "RetMax") == ["9999"]
    assert tag(body, "OutputMessage") == [
        "Restrictions achieved. start and count adjusted to 0, 9999"
    ]
    body = esearch(eutils_fake, term=Q, retstart="9990", retmax="100")[2]
    assert tag(body, "RetMax") == ["9"] and tag(body, "Id")[-1] == "52"
    status, _, body = esearch(eutils_fake, term=Q, retstart="9999")
    assert status == 200
    assert tag(body, "ERROR")[0].startswith(
        "Search Backend failed: Exception:\n'retstart' cannot be larger than 9998."
    )


def test_esearch_date_clauses_in_term(eutils_fake):
    eutils_fake.rate_limit = None
    add = eutils_fake.add_article
    add("1", article(1), edat=date(2024, 1, 15), queries=[Q])
    add("2", article(2), edat=date(2023, 6, 1), mdat=date(2024, 2, 1), queries=[Q])
    add("3", article(3), edat=date(2023, 1, 1), queries=[Q])
    edat = f"({Q}) AND (2024/01/01:2024/03/31[edat])"
    both = f"({Q}) AND (2024/01/01:2024/03/31[edat] OR 2024/01/01:2024/03/31[mdat])"
    assert tag(esearch(eutils_fake, term=edat)[2], "Id") == ["1"]
    assert tag(esearch(eutils_fake, term=both)[2], "Id") == ["2", "1"]
    assert tag(esearch(eutils_fake, term=Q)[2], "Id") == ["3", "2", "1"]


def test_esearch_mindate_maxdate(eutils_fake):
    eutils_fake.rate_limit = None
    eutils_fake.add_article("1", article(1), edat=date(2024, 1, 15), queries=[Q])
    eutils_fake.add_article(
        "2", article(2), edat=date(2023, 6, 1), mdat=date(2024, 2, 29), queries=[Q]
    )
    ids = lambda **kw: tag(esearch(eutils_fake, term=Q, **kw)[2], "Id")  # noqa: E731
    assert ids(datetype="edat", mindate="2024", maxdate="2024") == ["1"]
    assert ids(datetype="mdat", mindate="2024/02", maxdate="2024/02") == ["2"]
    assert ids(datetype="edat", mindate="2023/06/01", maxdate="2023/06/01") == ["2"]
    assert tag(esearch(eutils_fake, term=Q, mindate="2024")[2], "ERROR") == [
        "mindate and maxdate must be given together"
    ]


def test_esearch_unknown_query_and_field_not_found(eu):
    body = esearch(eu, term="(nothing here) AND (2024/01/01:2024/01/31[edat])")[2]
    assert "<Count>0</Count><RetMax>0</RetMax><RetStart>0</RetStart><IdList/>" in body
    assert body.endswith(
        "<ErrorList><PhraseNotFound>nothing here</PhraseNotFound></ErrorList><WarningList>"
        "<OutputMessage>No items found.</OutputMessage></WarningList></eSearchResult>\n"
    )
    eu.register_query("empty topic")
    assert "ErrorList" not in esearch(eu, term="empty topic")[2]
    eu.register_query(Q, field_not_found="x[NoSuchField]")
    body = esearch(eu, term=Q)[2]
    assert tag(body, "Count") == ["25"] and tag(body, "FieldNotFound") == ["x[NoSuchField]"]
    assert tag(esearch(eu, term=Q, db="fleegle")[2], "ERROR") == [
        "Invalid db name specified: fleegle"
    ]


# E-utilities: EFetch -----------------------------------------------------------------------------


def test_efetch_long_id_list_needs_post(eu):
    eu.remove_article("1024")
    ids = ",".join(str(i) for i in range(1000, 1600))
    assert efetch(eu, id=ids)[0] == 414
    status, headers, body = efetch(eu, post=True, id=ids)
    assert status == 200 and headers["Content-Type"].startswith("text/xml")
    assert body.startswith(PUBMED_PROLOG) and body.endswith("</PubmedArticleSet>\n")
    assert pmids(body) == [str(i) for i in range(1000, 1024)]
    assert eu.requests("efetch.fcgi")[-1].method == "POST"


def test_efetch_id_errors(eu):
    status, _, body = efetch(eu, id="")
    assert status == 200 and tag(body, "ERROR") == ["Supplied id parameter is empty."]
    status, _, body = efetch(eu, id="00000000,abc")
    assert status == 400 and tag(body, "ERROR") == [
        "ID list is empty! Possibly it has no correct IDs."
    ]
    assert pmids(efetch(eu, id="99999999")[2]) == []


def test_efetch_update_and_deleted_citations(eu):
    eu.update_article("1001", article(1001).replace("<MedlineCitation>", "<MedlineCitation X='1'>"))
    eu.deleted_citations = {"1002"}
    body = efetch(eu, id="1001,1002,1003")[2]
    assert "X='1'" in body and pmids(body) == ["1001", "1003", "1002"]
    assert '<DeleteCitation>\n<PMID Version="1">1002</PMID>\n</DeleteCitation>' in body


# E-utilities: rate limit and request log ---------------------------------------------------------


def test_eutils_rate_limit_429_json(eutils_fake):
    replies = [esearch(eutils_fake, term=Q) for _ in range(4)]
    assert [r[0] for r in replies] == [200, 200, 200, 429]
    assert [r[1]["X-RateLimit-Remaining"] for r in replies[:3]] == ["2", "1", "0"]
    assert replies[0][1]["X-RateLimit-Limit"] == "3"
    _, headers, body = replies[3]
    assert headers["Content-Type"] == "application/json" and "Retry-After" not in headers
    assert (
        body == '{"error":"API rate limit exceeded","api-key":"127.0.0.1","count":"4","limit":"3"}'
    )
    assert eutils_fake.rate_limited == 1
    keyed = [esearch(eutils_fake, term=Q, api_key="K")[0] for _ in range(11)]
    assert keyed == [200] * 10 + [429]


def test_request_log_merges_post_form_and_query(eu):
    eu.latency = 0.05
    started = time.monotonic()
    call(eu, "/entrez/eutils/efetch.fcgi?db=pubmed&tool=lt", {"id": "1000", "db": "x"}, post=True)
    assert time.monotonic() - started >= 0.05
    (rec,) = eu.requests("efetch.fcgi")
    assert rec.method == "POST" and rec.status == 200 and rec.path.endswith("/efetch.fcgi")
    assert rec.params == {"db": "x", "tool": "lt", "id": "1000"}
    assert rec.headers.get("content-type") == "application/x-www-form-urlencoded"
    assert eu.count("efetch.fcgi") == 1 and eu.count("esearch.fcgi") == 0


# ClinicalTrials.gov ------------------------------------------------------------------------------


def test_ctgov_pages_with_tokens_and_count_total_on_first_page(ct):
    status, headers, body = studies(ct, **{"query.intr": "MDMA"}, pageSize="10", countTotal="true")
    first = json.loads(body)
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert list(first) == ["studies", "totalCount", "nextPageToken"] and first["totalCount"] == 25
    assert nct_ids(body) == [f"NCT{i:08d}" for i in range(1, 11)]
    assert re.fullmatch(r"[\w-]{48}", first["nextPageToken"])
    params = {"query.intr": "MDMA", "pageSize": "10", "countTotal": "true"}
    second = json.loads(studies(ct, **params, pageToken=first["nextPageToken"])[2])
    assert list(second) == ["studies", "nextPageToken"]
    last = json.loads(studies(ct, **params, pageToken=second["nextPageToken"])[2])
    assert list(last) == ["studies"] and len(last["studies"]) == 5


def test_ctgov_full_page_then_empty_page(ct):
    first = json.loads(studies(ct, **{"query.intr": "MDMA"}, pageSize="25")[2])
    assert len(first["studies"]) == 25 and "nextPageToken" in first
    body = studies(ct, **{"query.intr": "MDMA"}, pageSize="25", pageToken=first["nextPageToken"])[2]
    assert body == '{"studies":[]}'


def test_ctgov_token_must_match_query_and_goes_stale_on_bump(ct):
    token = json.loads(studies(ct, **{"query.intr": "MDMA"})[2])["nextPageToken"]
    status, headers, body = studies(ct, **{"query.intr": "PTSD"}, pageToken=token)
    assert status == 400 and headers["Content-Type"].startswith("text/plain")
    assert studies(ct, **{"query.intr": "MDMA"}, pageToken=token, pageSize="3")[0] == 200
    status, _, body = studies(ct, **{"query.intr": "MDMA"}, pageToken="nope")
    assert (status, body) == (400, STALE)
    assert ct.bump() == "2026-09-05T09:00:06"
    status, _, body = studies(ct, **{"query.intr": "MDMA"}, pageToken=token)
    assert (status, body) == (400, STALE)
    assert json.loads(call(ct, "/api/v2/version")[2]) == {
        "apiVersion": "2.0.5",
        "dataTimestamp": "2026-09-05T09:00:06",
    }


def test_ctgov_unknown_parameter_and_bad_values(ct):
    status, headers, body = studies(ct, **{"filter.phase": "PHASE3"})
    assert (status, body) == (400, "`filter.phase` is unknown parameter")
    assert headers["Content-Type"].startswith("text/plain")
    assert studies(ct, **{"filter.overallStatus": "RECRUITING|DONE"})[2] == (
        "Invalid value in parameter `overallStatus`: `DONE`"
    )
    assert studies(ct, pageSize="-1")[0] == 400
    assert len(json.loads(studies(ct, pageSize="0")[2])["studies"]) == 10


def test_ctgov_page_size_is_capped_at_1000(ctgov_fake):
    ctgov_fake.rate_limit_per_minute = None
    for i in range(1, 1006):
        ctgov_fake.add_study(study(f"NCT{i:08d}"))
    assert len(json.loads(studies(ctgov_fake, pageSize="5000")[2])["studies"]) == 1000


def test_ctgov_query_and_filters(ct):
    ct.update_study(study("NCT00000003", "COMPLETED", "2024-03-01"))
    ct.add_study(
        study("NCT00000099", updated="2024-02-01"), [{"query.intr": "MDMA", "query.cond": "PTSD"}]
    )
    assert nct_ids(studies(ct, **{"query.intr": "MDMA", "query.cond": "PTSD"})[2]) == [
        "NCT00000099"
    ]
    since = {
        "query.intr": "MDMA",
        "filter.advanced": "AREA[LastUpdatePostDate]RANGE[2024-03-01,MAX]",
    }
    assert nct_ids(studies(ct, **since)[2]) == ["NCT00000003"]
    between = "AREA[LastUpdatePostDate]RANGE[2024-01-10,2024-02-01]"
    assert len(nct_ids(studies(ct, **{"filter.advanced": between}, pageSize="100")[2])) == 25
    status, _, body = studies(ct, **{"filter.advanced": "AREA[Phase]PHASE3"})
    assert status == 400 and body.startswith("Error parsing query in filter.advanced: ")
    completed = {"filter.overallStatus": "COMPLETED,WITHDRAWN"}
    assert nct_ids(studies(ct, **completed)[2]) == ["NCT00000003"]


def test_ctgov_single_study_and_version(ct):
    status, _, body = call(ct, "/api/v2/studies/NCT00000007")
    assert status == 200 and json.loads(body) == study("NCT00000007")
    assert call(ct, "/api/v2/studies/NCT09999999")[0] == 404
    assert call(ct, "/api/v2/studies/XYZ")[0] == 400
    assert json.loads(call(ct, "/api/v2/version")[2])["apiVersion"] == "2.0.5"


def test_ctgov_rate_limit(ctgov_fake):
    ctgov_fake.rate_limit_per_minute, ctgov_fake.retry_after = 2, 7
    replies = [call(ctgov_fake, "/api/v2/version") for _ in range(3)]
    assert [r[0] for r in replies] == [200, 200, 429]
    assert replies[2][1]["Retry-After"] == "7" and ctgov_fake.rate_limited == 1


# faults ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["500", "502", "503"])
def test_http_error_faults_are_one_shot_and_path_bound(eu, kind):
    eu.faults.push(kind, path_suffix="efetch.fcgi")
    assert esearch(eu, term=Q)[0] == 200
    assert efetch(eu, id="1000")[0] == int(kind)
    assert efetch(eu, id="1000")[0] == 200
    assert eu.faults.injected == {kind: 1} and eu.requests("efetch.fcgi")[0].fault == kind


def test_fault_429_with_retry_after(eu):
    eu.faults.push("429", retry_after=2)
    status, headers, body = esearch(eu, term=Q)
    assert (status, headers["Retry-After"]) == (429, "2")
    assert json.loads(body)["error"] == "API rate limit exceeded" and eu.rate_limited == 0


def test_fault_reset(ct):
    ct.faults.push("reset")
    with pytest.raises((URLError, ConnectionError)):
        call(ct, "/api/v2/version")
    assert ct.requests()[0].status is None and call(ct, "/api/v2/version")[0] == 200


def test_fault_stall(eu):
    eu.faults.push("stall", stall_seconds=5)
    with pytest.raises((URLError, TimeoutError)):
        call(eu, "/entrez/eutils/esearch.fcgi", {"term": Q}, timeout=0.2)
    eu.faults.push("stall", stall_seconds=0.05)
    assert esearch(eu, term=Q)[0] == 200 and eu.faults.injected["stall"] == 2


def test_fault_truncate(eu):
    eu.faults.push("truncate")
    with pytest.raises(IncompleteRead):
        efetch(eu, id="1000,1001")
    assert eu.faults.injected["truncate"] == 1


def test_fault_error200(eu, ct):
    eu.faults.push("error200", "esearch.fcgi")
    eu.faults.push("error200", "efetch.fcgi")
    status, _, body = esearch(eu, term=Q)
    assert status == 200 and tag(body, "ERROR")[0].startswith("Search Backend failed")
    status, _, body = efetch(eu, id="1000")
    assert status == 200 and ET.fromstring(body).tag == "eFetchResult" and tag(body, "ERROR")
    ct.faults.push("error200")
    status, headers, body = studies(ct)
    assert status == 200 and headers["Content-Type"].startswith("text/html")


def test_fault_short_only_hits_efetch(eu):
    eu.faults.push("short")
    assert tag(esearch(eu, term=Q)[2], "Count") == ["25"]
    assert pmids(efetch(eu, id="1000,1001,1002,1003")[2]) == ["1000", "1001"]
    assert eu.faults.injected == {"short": 1}
    with pytest.raises(ValueError):
        CtgovFake().faults.push("short")


def test_random_faults_are_seeded(ct):
    def statuses(fake):
        fake.rate_limit_per_minute = None
        fake.faults.random(rate=0.5, kinds=["500", "503"], seed=7, path_suffix="/version")
        return [call(fake, "/api/v2/version")[0] for _ in range(20)]

    first = statuses(ct)
    with CtgovFake() as other:
        assert statuses(other) == first
    assert {200, 500, 503} <= set(first)
    assert sum(ct.faults.injected.values()) == sum(s != 200 for s in first)
    ct.faults.clear()
    assert call(ct, "/api/v2/version")[0] == 200


def test_serve_forever_in_foreground():
    code = "from tests.fakes import *; serve_forever_in_foreground(CtgovFake())"
    root = Path(__file__).resolve().parents[1]
    with subprocess.Popen(
        [sys.executable, "-c", code], cwd=root, stdout=subprocess.PIPE, text=True
    ) as proc:
        try:
            url = proc.stdout.readline().strip()
            with urlopen(url + "/api/v2/version", timeout=5) as resp:
                assert json.loads(resp.read())["apiVersion"] == "2.0.5"
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=5) == 0
