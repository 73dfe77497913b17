"""Fake ClinicalTrials.gov API v2 (/version, /studies, /studies/{nctId}) under /api/v2."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable
from datetime import date, datetime, timedelta

from .server import FakeServer, Fault, Reply, RequestRecord

JSON = "application/json"
STUDIES_PARAMS = frozenset(
    "format markupFormat query.cond query.term query.locn query.titles query.intr query.outc "
    "query.spons query.lead query.id query.patient filter.overallStatus filter.geo filter.ids "
    "filter.advanced filter.synonyms postFilter.overallStatus postFilter.geo postFilter.ids "
    "postFilter.advanced postFilter.synonyms aggFilters geoDecay fields sort countTotal pageSize "
    "pageToken".split()
)
STUDY_PARAMS = frozenset({"format", "markupFormat", "fields"})
STATUSES = frozenset(
    "ACTIVE_NOT_RECRUITING COMPLETED ENROLLING_BY_INVITATION NOT_YET_RECRUITING RECRUITING "
    "SUSPENDED TERMINATED WITHDRAWN AVAILABLE NO_LONGER_AVAILABLE TEMPORARILY_NOT_AVAILABLE "
    "APPROVED_FOR_MARKETING WITHHELD UNKNOWN".split()
)
NOT_PAGE_PARAMS = ("countTotal", "pageSize", "pageToken")  # may differ between pages
STALE = (
    "The data have probably changed while you were paginating. "
    "Please, start over from the first page."
)
_ADVANCED = re.compile(
    r"AREA\[LastUpdatePostDate\]RANGE\[\s*(\d{4}-\d{2}-\d{2})\s*,\s*(MAX|\d{4}-\d{2}-\d{2})\s*\]"
)
_NCT = re.compile(r"[Nn][Cc][Tt]0*[1-9]\d{0,7}")


class BadRequest(Exception):
    pass


def nct_id(study: dict) -> str:
    return study["protocolSection"]["identificationModule"]["nctId"]


class CtgovFake(FakeServer):
    prefix = "/api/v2"
    window = 60.0

    def __init__(self, *, rate_limit_per_minute: int | None = 50, **kwargs):
        super().__init__(**kwargs)
        self.rate_limit_per_minute = rate_limit_per_minute  # per client IP; None disables
        self.retry_after: int | None = None  # Retry-After seconds on rate-limit 429s
        self.api_version = "2.0.5"
        self.studies: dict[str, dict] = {}
        self.matches: dict[str, list[dict[str, str]]] = {}
        self._data_timestamp = "2026-09-04T09:00:06"
        self._generation = 0
        self._tokens: dict[str, tuple[tuple, int, int]] = {}  # token -> (params, offset, gen)
        # query.* values the real service refuses with 400 (bad Essie syntax): value -> message
        self.rejected_queries: dict[str, str] = {}

    # corpus --------------------------------------------------------------------------------

    def add_study(self, study: dict, matches: Iterable[dict[str, str]] = ()) -> None:
        with self.lock:
            self.studies[nct_id(study)] = study
            self.matches[nct_id(study)] = [dict(m) for m in matches]

    def update_study(self, study: dict) -> None:
        with self.lock:
            if nct_id(study) not in self.studies:
                raise KeyError(nct_id(study))
            self.studies[nct_id(study)] = study

    @property
    def data_timestamp(self) -> str:
        return self._data_timestamp

    @data_timestamp.setter
    def data_timestamp(self, value: str) -> None:
        """Setting it is a data refresh: all page tokens issued so far go stale."""
        with self.lock:
            self._data_timestamp = value
            self._generation += 1

    def bump(self) -> str:
        """Advance dataTimestamp by one day (a daily refresh); returns the new value."""
        ts = datetime.fromisoformat(self._data_timestamp) + timedelta(days=1)
        self.data_timestamp = ts.isoformat(timespec="seconds")
        return self.data_timestamp

    # hooks -----------------------------------------------------------------------------------

    def rate_check(self, rec: RequestRecord) -> Reply | dict[str, str]:
        if self.rate_limit_per_minute is None:
            return {}
        ok, _ = self._limiter.hit(rec.client, self.rate_limit_per_minute, rec.time)
        if ok:
            return {}
        self.rate_limited += 1
        reply = self.too_many_requests(rec)
        if self.retry_after is not None:
            reply.headers["Retry-After"] = str(self.retry_after)
        return reply

    def error200(self, rec: RequestRecord, fault: Fault) -> Reply:
        body = "<!DOCTYPE html><html><head><title>ClinicalTrials.gov</title></head>"
        body += f"<body><p>{fault.opts.get('message', 'Service temporarily unavailable')}</p>"
        return Reply(200, body + "</body></html>\n", "text/html; charset=UTF-8")

    def route(self, rec: RequestRecord, fault: Fault | None) -> Reply:
        if rec.method != "GET":
            return Reply(405, "Method Not Allowed\n")
        path = rec.path.removeprefix(self.prefix)
        try:
            if path == "/version":
                version = {"apiVersion": self.api_version, "dataTimestamp": self.data_timestamp}
                return _json(version)
            if path == "/studies":
                return self._list(rec.params)
            if path.startswith("/studies/"):
                return self._fetch(path.removeprefix("/studies/"), rec.params)
        except BadRequest as exc:
            return Reply(400, str(exc))
        return Reply(404, "Not Found\n")

    # endpoints -------------------------------------------------------------------------------

    def _fetch(self, nct: str, p: dict[str, str]) -> Reply:
        _check_params(p, STUDY_PARAMS)
        if not _NCT.fullmatch(nct):
            raise BadRequest(f"NCT number `{nct}` has incorrect format")
        study = self.studies.get(nct.upper())
        return _json(study) if study else Reply(404, f"Study `{nct}` not found")

    def _list(self, p: dict[str, str]) -> Reply:
        _check_params(p, STUDIES_PARAMS)
        if p.get("format", "json") != "json":
            raise BadRequest("fake ClinicalTrials.gov: only format=json is supported")
        size = _page_size(p.get("pageSize", "0"))
        query = {k: v for k, v in p.items() if k.startswith("query.") and v}
        for value in query.values():
            if value in self.rejected_queries:
                raise BadRequest(self.rejected_queries[value])
        keep = [_status_filter(p.get(f"{k}.overallStatus")) for k in ("filter", "postFilter")]
        keep += [_ids_filter(p.get(f"{k}.ids")) for k in ("filter", "postFilter")]
        keep += [_advanced_filter(p.get(f"{k}.advanced"), k) for k in ("filter", "postFilter")]
        ids = sorted(
            nct
            for nct, study in self.studies.items()
            if (not query or query in self.matches[nct]) and all(f(study) for f in keep)
        )

        signature = tuple(sorted((k, v) for k, v in p.items() if k not in NOT_PAGE_PARAMS))
        offset = 0
        if "pageToken" in p:
            entry = self._tokens.get(p["pageToken"])
            if entry is None or entry[2] != self._generation:
                raise BadRequest(STALE)
            if entry[0] != signature:
                raise BadRequest(
                    "pageToken does not match the query: repeat the parameters of the first page "
                    "(only countTotal, pageSize and pageToken may change)"
                )
            offset = entry[1]
        page = ids[offset : offset + size]
        out: dict = {"studies": [self.studies[nct] for nct in page]}
        if "pageToken" not in p and p.get("countTotal", "").lower() == "true":
            out["totalCount"] = len(ids)
        if len(page) == size:  # real quirk: a full page carries a token even if nothing follows
            token = secrets.token_urlsafe(36)
            self._tokens[token] = (signature, offset + size, self._generation)
            out["nextPageToken"] = token
        return _json(out)


def _json(obj) -> Reply:
    return Reply(200, json.dumps(obj, separators=(",", ":")), JSON)


def _check_params(p: dict[str, str], allowed: frozenset[str]) -> None:
    for name in p:
        if name not in allowed:
            raise BadRequest(f"`{name}` is unknown parameter")


def _page_size(text: str) -> int:
    try:
        size = int(text)
    except ValueError:
        raise BadRequest(f"Invalid value in parameter `pageSize`: `{text}`") from None
    if size < 0:
        raise BadRequest(f"Invalid value in parameter `pageSize`: `{text}`")
    return min(size or 10, 1000)


def _split(text: str) -> list[str]:
    return [v.strip() for v in re.split(r"[,|]", text) if v.strip()]


def _status_filter(text: str | None):
    if text is None:
        return lambda study: True
    wanted = _split(text)
    for value in wanted:
        if value not in STATUSES:
            raise BadRequest(f"Invalid value in parameter `overallStatus`: `{value}`")
    return lambda study: _get(study, "statusModule", "overallStatus") in wanted


def _ids_filter(text: str | None):
    if text is None:
        return lambda study: True
    wanted = {v.upper() for v in _split(text)}
    return lambda study: nct_id(study).upper() in wanted


def _advanced_filter(text: str | None, kind: str):
    if text is None:
        return lambda study: True
    m = _ADVANCED.fullmatch(text.strip())
    try:
        lo = date.fromisoformat(m[1]).isoformat()
        hi = "9999-12-31" if m[2] == "MAX" else date.fromisoformat(m[2]).isoformat()
    except (TypeError, ValueError):
        raise BadRequest(
            f"Error parsing query in {kind}.advanced: `{text}` (the fake supports only "
            "AREA[LastUpdatePostDate]RANGE[yyyy-MM-dd,MAX|yyyy-MM-dd])"
        ) from None

    def keep(study: dict) -> bool:
        updated = _get(study, "statusModule", "lastUpdatePostDateStruct", "date")
        return updated is not None and lo <= updated <= hi

    return keep


def _get(study: dict, *keys: str):
    node = study.get("protocolSection", {})
    for key in keys:
        node = node.get(key) if isinstance(node, dict) else None
    return node
