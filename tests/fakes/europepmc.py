"""Fake Europe PMC Articles REST API: ``/search`` under /europepmc/webservices/rest.

What it keeps of the real service (``shared/research/europepmc.md``): cursor paging with
``cursorMark=*`` first and base64-looking cursors with ``+ / =`` (so a client that does not
percent-encode them breaks), ``hitCount`` on every page, application errors as HTTP 200
``{"errCode":..,"errMsg":..}`` (page size outside 1..1000, no query), and both observed ends
of a walk: ``end="absent"`` (the last page has no ``nextCursorMark``) or ``end="repeat"``
(a full last page still carries a cursor, and the page after it is empty and repeats the
cursor it was sent). ``hit_count_drift`` makes ``hitCount`` promise more than the pages hold.

Queries the fake understands: a topic query registered with ``add`` (matched as a string),
optionally ``AND (FIRST_IDATE:[a TO b] OR UPDATE_DATE:[a TO b])``, and ``ACCESSION_ID:NCT…``
(records registered as mentioning that trial), alone or OR-ed in parentheses, optionally with
the same date clause.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterable
from typing import Any

from .server import FakeServer, Fault, Reply, RequestRecord

JSON = "application/json;charset=UTF-8"
SEARCH_PARAMS = frozenset({"query", "resultType", "pageSize", "cursorMark", "format", "sort",
                           "synonym"})
_IDATE = re.compile(r"^\((?P<q>.*)\) AND \(FIRST_IDATE:\[(?P<a>\d{4}-\d{2}-\d{2}) TO "
                    r"(?P<b>\d{4}-\d{2}-\d{2})\] OR UPDATE_DATE:\[(?P=a) TO (?P=b)\]\)$")
_ACCESSION = re.compile(r"ACCESSION_ID:(NCT\d{8})")


def _cursor(offset: int, salt: int) -> str:
    # Looks like the real ones (base64 with + / =) so that an unencoded cursor breaks.
    raw = bytes([0x02, 0x82, 0x08, 0xfb, 0xff]) + f"{salt}:{offset}".encode()
    return base64.b64encode(raw).decode()


class EuropePmcFake(FakeServer):
    prefix = "/europepmc/webservices/rest"
    window = 1.0

    def __init__(self, *, rate_limit_per_second: int | None = None, end: str = "absent",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if end not in ("absent", "repeat"):
            raise ValueError(end)
        self.end = end
        self.rate_limit_per_second = rate_limit_per_second
        self.hit_count_drift = 0  # added to every hitCount: the service promising too much
        self.records: dict[tuple[str, str], dict[str, Any]] = {}  # (source, id) -> result
        self.matches: dict[tuple[str, str], set[str]] = {}  # -> topic queries it matches
        self.mentions: dict[tuple[str, str], set[str]] = {}  # -> NCT numbers it names
        self.updated: dict[tuple[str, str], str] = {}  # -> UPDATE_DATE (no record field)
        self._salt = 0

    # corpus --------------------------------------------------------------------------------
    def add(self, record: dict[str, Any], queries: Iterable[str] = (),
            mentions: Iterable[str] = (), updated: str | None = None) -> None:
        """Serve ``record``; adding it again replaces it (``updated``: its UPDATE_DATE)."""
        key = (record["source"], record["id"])
        with self.lock:
            self.records[key] = record
            self.matches[key] = set(queries)
            self.mentions[key] = set(mentions)
            self.updated[key] = updated or record.get("firstIndexDate", "")

    # hooks ---------------------------------------------------------------------------------
    def rate_check(self, rec: RequestRecord) -> Reply | dict[str, str]:
        if self.rate_limit_per_second is None:
            return {}
        ok, _ = self._limiter.hit(rec.client, self.rate_limit_per_second, rec.time)
        if ok:
            return {}
        self.rate_limited += 1
        return self.too_many_requests(rec)

    def error200(self, rec: RequestRecord, fault: Fault) -> Reply:
        """The transient shape seen in the wild: a 200 page without ``hitCount``."""
        return _json({"version": "6.9", "request": {"queryString": rec.params.get("query")},
                      "resultList": {"result": []}})

    def route(self, rec: RequestRecord, fault: Fault | None) -> Reply:
        path = rec.path.removeprefix(self.prefix)
        if path != "/search":
            return Reply(404, "Not Found\n")
        if rec.method != "GET":
            return Reply(405, "Method Not Allowed\n")
        return self._search(rec.params)

    # /search -------------------------------------------------------------------------------
    def _search(self, p: dict[str, str]) -> Reply:
        unknown = [k for k in p if k not in SEARCH_PARAMS]
        if unknown:
            return _json({"errCode": 400, "errMsg": f"Unknown parameter(s): {unknown}"})
        query = p.get("query", "")
        if not query.strip() or len(query) >= 1500:
            return _json({"errCode": 404, "errMsg": "No search criteria provided. Please "
                          "provide a search criteria which is less than 1500 characters."})
        try:
            size = int(p.get("pageSize", "25"))
        except ValueError:
            size = 0
        if not 1 <= size <= 1000:
            return _json({"errCode": 404, "errMsg": "Invalid page size provided. Valid size "
                          "is between 1 and 1000"})
        kind = p.get("resultType", "lite").lower()
        if p.get("format") != "json" or kind not in ("core", "idlist"):
            return _json({"errCode": 400, "errMsg": "the fake serves format=json, "
                          "resultType=core or idlist only"})
        keys = self._matching(query)
        cursor = p.get("cursorMark", "*")
        offset = 0 if cursor == "*" else self._offset(cursor)
        if offset is None:
            return _json({"errCode": 400, "errMsg": f"Invalid cursorMark {cursor!r}"})
        page = keys[offset:offset + size]
        out: dict[str, Any] = {"version": "6.9", "hitCount": len(keys) + self.hit_count_drift,
                               "request": {"queryString": query, "pageSize": size,
                                           "cursorMark": cursor, "resultType": "core"},
                               "resultList": {"result": [
                                   self.records[k] if kind == "core" else
                                   {"id": k[1], "source": k[0]} for k in page]}}
        nxt = offset + len(page)
        if page and (nxt < len(keys) or self.end == "repeat"):
            out["nextCursorMark"] = _cursor(nxt, self._salt)
        elif not page and self.end == "repeat" and cursor != "*":
            out["nextCursorMark"] = cursor  # Solr: the cursor sent comes back at the end
        return _json(out)

    def _offset(self, cursor: str) -> int | None:
        try:
            salt, offset = base64.b64decode(cursor, validate=True)[5:].decode().split(":")
            return int(offset) if int(salt) == self._salt else None
        except (ValueError, UnicodeDecodeError):
            return None

    def _matching(self, query: str) -> list[tuple[str, str]]:
        lo = hi = None
        m = _IDATE.match(query)
        if m:
            query, lo, hi = m["q"], m["a"], m["b"]
        accessions = set(_ACCESSION.findall(query))
        with self.lock:
            keys = [k for k in self.records
                    if (self.mentions[k] & accessions if accessions else query in self.matches[k])
                    and (lo is None or lo <= self.records[k].get("firstIndexDate", "") <= hi
                         or lo <= self.updated[k] <= hi)]
        return sorted(keys)


def _json(obj: Any) -> Reply:
    return Reply(200, json.dumps(obj, separators=(",", ":")), JSON)
