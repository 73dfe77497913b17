"""Fake NCBI E-utilities (ESearch + EFetch for db=pubmed) under /entrez/eutils/."""

from __future__ import annotations

import calendar
import json
import random
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from xml.sax.saxutils import escape

from .server import FakeServer, Fault, Reply, RequestRecord

XML = "text/xml; charset=UTF-8"
CAP = 9999  # PubMed serves only the first 9,999 ids of a search
ESEARCH_HEAD = (
    '<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eSearchResult PUBLIC '
    '"-//NLM//DTD esearch 20060628//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">\n'
)
EFETCH_ERROR_HEAD = (  # "eEfetchResult" (sic) is what NCBI sends
    '<?xml version="1.0" encoding="UTF-8" ?>\n<!DOCTYPE eEfetchResult PUBLIC '
    '"-//NLM//DTD efetch 20131226//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20131226/efetch.dtd">\n'
)
PUBMED_HEAD = (
    '<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC '
    '"-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
)
RETSTART_ERROR = (
    "Search Backend failed: Exception:\n'retstart' cannot be larger than 9998. For PubMed, "
    "ESearch can only retrieve the first 9,999 records matching the query. To obtain more than "
    "9,999 PubMed records, consider using EDirect that contains additional logic to batch "
    "PubMed search results automatically so that an arbitrary number can be retrieved. For "
    "details see https://www.ncbi.nlm.nih.gov/books/NBK25499/"
)

# "(BASE) AND (2024/01/01:2024/03/31[edat] OR 2024/01/01:2024/03/31[mdat])", as littrack writes it
_CLAUSE = re.compile(r"(\d{4}/\d{2}/\d{2}):(\d{4}/\d{2}/\d{2})\[(edat|mdat)\]")
_ONE = r"\d{4}/\d{2}/\d{2}:\d{4}/\d{2}/\d{2}\[(?:edat|mdat)\]"
_TERM = re.compile(rf"\((?P<base>.+)\) AND \((?P<clauses>{_ONE}(?: OR {_ONE})*)\)", re.S)
# "(TERM) AND 100:200[uid]": a term limited to a PMID range
_UID_RANGE = re.compile(r"\((?P<term>.+)\) AND (?P<lo>\d+):(?P<hi>\d+)\[uid\]", re.S | re.I)
_PARAM_DATE = re.compile(r"(\d{4})(?:/(\d{1,2})(?:/(\d{1,2}))?)?")
_DATETYPES = {"edat": "edat", "crdt": "edat", "pdat": "edat", "mdat": "mdat"}


@dataclass
class Article:
    xml: str
    edat: date
    mdat: date
    queries: frozenset[str]


class EutilsFake(FakeServer):
    prefix = "/entrez/eutils"
    window = 1.0
    fault_kinds = FakeServer.fault_kinds | {"short"}

    def __init__(self, *, rate_limit: tuple[int, int] | None = (3, 10), **kwargs):
        super().__init__(**kwargs)
        self.rate_limit = rate_limit  # (without api_key, with api_key) per 1 s; None disables
        self.articles: dict[str, Article] = {}
        self.known_queries: set[str] = set()
        self.bad_field_queries: dict[str, str] = {}  # query -> FieldNotFound text
        self.missing_phrases: dict[str, list[str]] = {}  # query -> PhraseNotFound terms
        self.deleted_citations: set[str] = set()
        self.max_get_url = 4000  # longer GET request targets get HTTP 414
        self._history: dict[str, list[list[str]]] = {}  # WebEnv -> id lists by query_key - 1
        # How ESearch lists hits: "pmid" (newest first by descending PMID, as every real
        # reply on file does), "edat" (by Entrez date, newest first: PMIDs can fall out of
        # order) or "scrambled" (a fixed shuffle, like a relevance sort).
        self.order = "pmid"

    # corpus --------------------------------------------------------------------------------

    def add_article(
        self,
        pmid: str,
        xml: str,
        *,
        edat: date,
        mdat: date | None = None,
        queries: Iterable[str] = (),
    ) -> None:
        queries = frozenset(queries)
        with self.lock:
            self.articles[str(pmid)] = Article(xml.strip(), edat, mdat or edat, queries)
            self.known_queries |= queries

    def update_article(self, pmid: str, xml: str, *, mdat: date | None = None) -> None:
        with self.lock:
            old = self.articles[str(pmid)]
            self.articles[str(pmid)] = Article(xml.strip(), old.edat, mdat or old.mdat, old.queries)

    def remove_article(self, pmid: str) -> None:
        with self.lock:
            self.articles.pop(str(pmid), None)

    def register_query(self, query: str, *, field_not_found: str | None = None,
                       phrases_not_found: Iterable[str] = ()) -> None:
        """``phrases_not_found``: terms of an OR-list PubMed's index lacks; reported in the
        ErrorList of every reply while the rest of the query still finds its records."""
        with self.lock:
            self.known_queries.add(query)
            if field_not_found:
                self.bad_field_queries[query] = field_not_found
            if phrases_not_found:
                self.missing_phrases[query] = list(phrases_not_found)

    # hooks -----------------------------------------------------------------------------------

    def fault_applies(self, kind: str, path: str) -> bool:
        return kind != "short" or path.endswith("efetch.fcgi")

    def rate_check(self, rec: RequestRecord) -> Reply | dict[str, str]:
        if self.rate_limit is None:
            return {}
        key = rec.params.get("api_key") or rec.client
        limit = self.rate_limit[1 if rec.params.get("api_key") else 0]
        ok, count = self._limiter.hit(key, limit, rec.time)
        if ok:
            return {"X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": str(limit - count)}
        self.rate_limited += 1
        return self._too_many(key, count, limit)

    def too_many_requests(self, rec: RequestRecord) -> Reply:
        key = rec.params.get("api_key")
        limit = (self.rate_limit or (3, 10))[1 if key else 0]
        return self._too_many(key or rec.client, limit + 1, limit)

    @staticmethod
    def _too_many(key: str, count: int, limit: int) -> Reply:
        body = {"error": "API rate limit exceeded", "api-key": key}
        body |= {"count": str(count), "limit": str(limit)}
        return Reply(429, json.dumps(body, separators=(",", ":")), "application/json")

    def error200(self, rec: RequestRecord, fault: Fault) -> Reply:
        if rec.path.endswith("efetch.fcgi"):
            msg = "Error: CEFetchPApplication::proxy_stream(): Failed to connect to PubOne service"
            return _efetch_error(fault.opts.get("message", msg))
        msg = "Search Backend failed: Couldn't resolve #pmquerysrv-mz?, the address table is empty."
        return _esearch_error(fault.opts.get("message", msg))

    def route(self, rec: RequestRecord, fault: Fault | None) -> Reply:
        if rec.method == "GET" and len(rec.target) > self.max_get_url:
            title = "414 Request-URI Too Large"
            return Reply(414, f"<html><head><title>{title}</title></head></html>\n", "text/html")
        p = rec.params
        if p.get("retmode", "xml") != "xml":
            return Reply(400, "fake E-utilities: only retmode=xml is supported\n")
        if rec.path == self.prefix + "/esearch.fcgi":
            try:
                return self._esearch(p)
            except ValueError as exc:  # bad number or date in the parameters
                return _esearch_error(str(exc))
        if rec.path == self.prefix + "/efetch.fcgi":
            try:
                return self._efetch(p, fault)
            except ValueError as exc:
                return _efetch_error(str(exc))
        return Reply(404, "fake E-utilities: only esearch.fcgi and efetch.fcgi exist\n")

    # ESearch ---------------------------------------------------------------------------------

    def _esearch(self, p: dict[str, str]) -> Reply:
        db = p.get("db", "pubmed")
        if db != "pubmed":
            return _esearch_error(f"Invalid db name specified: {db}")
        if "reldate" in p:
            return _esearch_error("fake E-utilities: reldate is not supported, use mindate/maxdate")
        term = p.get("term", "")
        if not term.strip():
            return _esearch_error("Empty term and query_key - nothing todo")
        retmax, retstart = int(p.get("retmax", 20)), max(0, int(p.get("retstart", 0)))
        if retstart >= CAP:
            return _esearch_error(RETSTART_ERROR)
        known, ids = self._search(term, p)

        warnings = []
        if retstart + retmax > CAP:
            retmax = CAP - retstart
            warnings.append(
                f"Restrictions achieved. start and count adjusted to {retstart}, {retmax}"
            )
        page = ids[retstart : retstart + max(0, retmax)]
        out = [
            f"<Count>{len(ids)}</Count><RetMax>{len(page)}</RetMax><RetStart>{retstart}</RetStart>"
        ]
        if p.get("usehistory") == "y" or p.get("WebEnv"):
            webenv = p.get("WebEnv") or "MCID_" + secrets.token_hex(12)
            if webenv not in self._history:
                if p.get("WebEnv"):
                    return _esearch_error(f"Unknown WebEnv: {webenv}")
                self._history[webenv] = []
            self._history[webenv].append(ids)
            out.append(
                f"<QueryKey>{len(self._history[webenv])}</QueryKey><WebEnv>{webenv}</WebEnv>"
            )
        id_list = "".join(f"<Id>{i}</Id>\n" for i in page)
        out.append(f"<IdList>\n{id_list}</IdList>" if page else "<IdList/>")
        out.append(f"<TranslationSet/><QueryTranslation>{escape(term)}</QueryTranslation>")
        base = known or _split_term(term)[0]
        if not known:
            out.append(f"<ErrorList><PhraseNotFound>{escape(base)}</PhraseNotFound></ErrorList>")
        elif base in self.bad_field_queries:
            field = escape(self.bad_field_queries[base])
            out.append(f"<ErrorList><FieldNotFound>{field}</FieldNotFound></ErrorList>")
        elif base in self.missing_phrases:
            terms = "".join(f"<PhraseNotFound>{escape(t)}</PhraseNotFound>"
                            for t in self.missing_phrases[base])
            out.append(f"<ErrorList>{terms}</ErrorList>")
        if not ids:
            warnings.append("No items found.")
        if warnings:
            msgs = "".join(f"<OutputMessage>{escape(w)}</OutputMessage>" for w in warnings)
            out.append(f"<WarningList>{msgs}</WarningList>")
        return Reply(
            200, ESEARCH_HEAD + "<eSearchResult>" + "".join(out) + "</eSearchResult>\n", XML
        )

    def _search(self, term: str, p: dict[str, str]) -> tuple[str | None, list[str]]:
        """(the known base query or None, matching pmids in the fake's ``order``)."""
        uids = _UID_RANGE.fullmatch(term)
        if uids:
            term = uids["term"]
        base, clauses = _split_term(term)
        datetype = _DATETYPES.get(p.get("datetype", "pdat"))
        if datetype is None:
            raise ValueError(f"fake E-utilities: unsupported datetype {p['datetype']}")
        if ("mindate" in p) != ("maxdate" in p):
            raise ValueError("mindate and maxdate must be given together")
        window = None
        if "mindate" in p:
            window = (_param_date(p["mindate"], end=False), _param_date(p["maxdate"], end=True))
        if base not in self.known_queries:
            return None, []
        hits = []
        for pmid, art in self.articles.items():
            if base not in art.queries:
                continue
            if clauses and not any(lo <= getattr(art, f) <= hi for lo, hi, f in clauses):
                continue
            if window and not window[0] <= getattr(art, datetype) <= window[1]:
                continue
            if uids and not int(uids["lo"]) <= int(pmid) <= int(uids["hi"]):
                continue
            hits.append(pmid)
        hits.sort(key=int, reverse=True)
        if self.order == "edat":
            hits.sort(key=lambda p: self.articles[p].edat, reverse=True)
        elif self.order == "scrambled":
            random.Random(len(hits)).shuffle(hits)
        return base, hits

    # EFetch ----------------------------------------------------------------------------------

    def _efetch(self, p: dict[str, str], fault: Fault | None) -> Reply:
        db = p.get("db", "pubmed")
        if db != "pubmed":
            return _efetch_error(f"Invalid db name specified: {db}")
        if p.get("WebEnv"):
            webenv, key = p["WebEnv"], p.get("query_key", "")
            lists = self._history.get(webenv, [])
            if not (key.isascii() and key.isdigit() and 1 <= int(key) <= len(lists)):
                return _efetch_error(f"Unable to obtain query #{key}")
            retstart, retmax = int(p.get("retstart", 0)), int(p.get("retmax", 20))
            if retstart >= CAP:
                return _efetch_error(
                    f"Cannot retrieve history data. query_key: {key}, WebEnv: {webenv}, "
                    f"retstart: {retstart}, retmax: {retmax}"
                )
            ids = lists[int(key) - 1][retstart : min(retstart + retmax, CAP)]
        else:
            raw = p.get("id", "")
            if not raw.strip():
                return _efetch_error("Supplied id parameter is empty.")
            tokens = (t.strip() for t in raw.split(","))
            ids = list(dict.fromkeys(str(int(t)) for t in tokens if _is_uid(t)))
            if not ids:
                return _efetch_error("ID list is empty! Possibly it has no correct IDs.", 400)

        deleted = [i for i in ids if i in self.deleted_citations]
        found = [self.articles[i].xml for i in ids if i in self.articles and i not in deleted]
        if fault is not None and fault.kind == "short" and found:
            found = found[: len(found) - max(1, round(len(found) * fault.opts.get("share", 0.5)))]
        body = PUBMED_HEAD + "<PubmedArticleSet>\n" + "".join(x + "\n" for x in found)
        if deleted:
            pmids = "".join(f'<PMID Version="1">{i}</PMID>\n' for i in deleted)
            body += f"<DeleteCitation>\n{pmids}</DeleteCitation>\n"
        return Reply(200, body + "</PubmedArticleSet>\n", XML)


def _esearch_error(message: str) -> Reply:
    body = f"{ESEARCH_HEAD}<eSearchResult><ERROR>{escape(message)}</ERROR></eSearchResult>\n"
    return Reply(200, body, XML)


def _efetch_error(message: str, status: int = 200) -> Reply:
    body = (
        f"{EFETCH_ERROR_HEAD}<eFetchResult>\n\t<ERROR>{escape(message)}</ERROR>\n</eFetchResult>\n"
    )
    return Reply(status, body, XML)


def _is_uid(token: str) -> bool:
    return token.isascii() and token.isdigit() and int(token) > 0


def _split_term(term: str) -> tuple[str, list[tuple[date, date, str]]]:
    """Split littrack's `(BASE) AND (a:b[edat] OR a:b[mdat])` into BASE and date clauses."""
    m = _TERM.fullmatch(term)
    if not m:
        return term, []
    clauses = [
        (_slash_date(lo), _slash_date(hi), field) for lo, hi, field in _CLAUSE.findall(m["clauses"])
    ]
    return m["base"], clauses


def _slash_date(text: str) -> date:
    return date(*map(int, text.split("/")))


def _param_date(text: str, *, end: bool) -> date:
    m = _PARAM_DATE.fullmatch(text)
    if not m:
        raise ValueError(f"Invalid date format: {text}")
    year, month, day = (int(g) if g else None for g in m.groups())
    if month is None:
        month, day = (12, 31) if end else (1, 1)
    elif day is None:
        day = calendar.monthrange(year, month)[1] if end else 1
    return date(year, month, day)
