"""PubMed records -> tidy rows: one ``PubmedArticle``/``PubmedBookArticle`` element at a time.

The EFetch reply itself is cut into record elements by ``littrack.normalize.pubmed_efetch``;
this module only reshapes one parsed record (and re-parses a stored one for ``rebuild``).
Below, why the reply is parsed the way it is:

Why not ``Bio.Entrez.read``: it builds the whole reply in memory, needs the DTD named in the
DOCTYPE (and fetches or fails on a new one such as ``pubmed_260101.dtd``) and is several times
slower. Here the reply is parsed with defusedxml's expat parser (entity declarations and
external references are refused, the DTD is never loaded), each ``PubmedArticle`` /
``PubmedBookArticle`` is normalized as soon as its end tag arrives and is then dropped, so
memory stays flat however many records a reply holds.

Speed: this drives defusedxml's ``XMLParser`` itself instead of ``defusedxml.ElementTree.
iterparse`` (same parser class, same refusals), replacing its element handlers with two lean
closures that track depth, note where each record starts and ends in the input, and do not
build subtrees the normalizer never reads (reference lists, grants, ...). That makes
``Normalized.raw`` the exact UTF-8 bytes NCBI sent for the record instead of a
re-serialization (``ET.tostring`` alone costs more than parsing). The slice is only used when
it is guaranteed to re-parse to the same element: UTF-8 (or ASCII) input, no internal DTD
subset (it could add default attributes) and no namespace declared on the root. Otherwise the
full tree is built and ``raw`` falls back to ``ET.tostring``. Either way
``normalize_raw(n.raw)`` gives the same tables as ``n``.

A reply already in memory (``bytes``, what ``PubMed.fetch`` has) with a plain prolog is
faster still: its records are cut apart by byte search and each is parsed by the C parser on
its own (``_parse_sliced``; see there why that is as safe), falling back to the streaming
parser for anything unexpected. Both paths yield the same items (tests/normalize/
test_pubmed_sliced.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import date
from xml.etree import ElementTree as ET
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from littrack.errors import MalformedResponse
from littrack.normalize import Normalized, Row
from littrack.tables import (
    ARTICLE_AFFILIATIONS,
    ARTICLE_AUTHORS,
    ARTICLE_COMMENTS,
    ARTICLE_IDS,
    ARTICLE_KEYWORDS,
    ARTICLE_MESH,
    ARTICLE_PUBLICATION_TYPES,
    ARTICLE_TRIAL_IDS,
    ARTICLES,
)

__all__ = [
    "EXPAT_NAMES", "element_text", "normalize_article", "normalize_element", "normalize_raw",
]

SOURCE = "pubmed"

_YEAR = re.compile(r"(?<!\d)(\d{4})(?!\d)")
# "1998 Dec-1999 Jan", "2013 Nov-Dec", "2005 Aug 20-26", "2000 Spring": year, month?, day?
_MEDLINE_DATE = re.compile(
    r"^(\d{4})(?:[ \t]+([A-Za-z]{3})[A-Za-z]*\.?(?:[ \t]+(\d{1,2})(?!\d))?)?"
)
_ORCID = re.compile(r"\d{4}-\d{4}-\d{4}-\d{3}[\dX]")
_ORCID_PREFIX = re.compile(r"^(?:HTTPS?://)?(?:WWW\.)?ORCID\.ORG/")
_NCT = re.compile(r"NCT\d{8}")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}

# RefTypes / publication types that flip the status flags (fact sheet §4).
_RETRACTED_REFS = frozenset({"RetractionIn", "RetractedandRepublishedIn"})
_ERRATUM_REFS = frozenset({"ErratumIn", "CorrectedandRepublishedIn"})
_CONCERN_REFS = frozenset({"ExpressionOfConcernIn"})
_NOTICE_REFS = frozenset({"RetractionOf"})


# --- public API -------------------------------------------------------------------------


def normalize_article(elem: Element) -> Normalized:
    """Normalize one ``PubmedArticle`` / ``PubmedBookArticle`` element already parsed."""
    return normalize_element(elem, None)


def normalize_raw(raw: bytes) -> Normalized:
    """Re-normalize a stored ``Normalized.raw`` (``littrack rebuild``), offline and safely."""
    try:
        elem = DET.fromstring(raw, forbid_dtd=False, forbid_entities=True, forbid_external=True)
    except (ET.ParseError, DefusedXmlException) as exc:
        msg = f"stored PubMed record is not valid XML: {exc}"
        raise MalformedResponse(msg, source=SOURCE) from exc
    return normalize_element(elem, bytes(raw))


# --- text and date helpers ----------------------------------------------------------------


def _collapse(text: str) -> str:
    # Unicode whitespace, not just XML's: real abstracts mix in NBSP and thin spaces (e.g.
    # inside MathML <mml:mtext>), and a tidy column should not keep runs like " \u2009 ".
    return " ".join(text.split())


def element_text(elem: Element | None) -> str | None:
    """Flatten inline markup (<i>, <sup>, MathML) and whitespace; empty -> None."""
    if elem is None:
        return None
    text: str | None
    if len(elem):
        text = "".join(elem.itertext())
    else:
        text = elem.text
        if not text:
            return None
    return " ".join(text.split()) or None  # _collapse, inlined: this runs ~70 times a record


def _month(value: str | None) -> int | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        n = int(value)
        return n if 1 <= n <= 12 else None
    return _MONTHS.get(value[:3].lower())


def _iso(year: str | None, month: str | None = None, day: str | None = None) -> str | None:
    """ISO date as precise as the parts allow: 'YYYY-MM-DD', 'YYYY-MM' or 'YYYY'."""
    if not year:
        return None
    year = year.strip()
    if len(year) != 4 or not year.isdigit():
        return None
    m = _month(month)
    if m is None:
        return year
    if day:
        day = day.strip()
        if day.isdigit():
            try:
                return date(int(year), m, int(day)).isoformat()
            except ValueError:
                pass
    return f"{year}-{m:02d}"


def _ymd(elem: Element | None) -> str | None:
    if elem is None:
        return None
    return _iso(elem.findtext("Year"), elem.findtext("Month"), elem.findtext("Day"))


def _pub_date(pd: Element | None) -> tuple[int | None, str | None, str | None]:
    """(pub_year, pub_date ISO, pub_date_text as printed) from a PubDate element."""
    if pd is None:
        return None, None, None
    medline = pd.find("MedlineDate")
    if medline is not None:
        text = element_text(medline)
        if not text:
            return None, None, None
        y = _YEAR.search(text)
        year = int(y.group(1)) if y else None
        m = _MEDLINE_DATE.match(text)
        iso = _iso(m.group(1), m.group(2), m.group(3)) if m else (y.group(1) if y else None)
        return year, iso, text
    parts = [t for t in (element_text(c) for c in pd) if t]
    year_s = pd.findtext("Year")
    year_s = year_s.strip() if year_s else None
    year = int(year_s) if year_s and year_s.isdigit() else None
    if pd.find("Season") is not None:
        iso = _iso(year_s)
    else:
        iso = _iso(year_s, pd.findtext("Month"), pd.findtext("Day"))
    return year, iso, " ".join(parts) or None


def _orcid(value: str | None) -> str | None:
    if not value:
        return None
    s = "".join(value.split()).upper()
    s = _ORCID_PREFIX.sub("", s)
    if len(s) == 16 and s[:15].isdigit():
        s = f"{s[:4]}-{s[4:8]}-{s[8:12]}-{s[12:]}"
    return s if _ORCID.fullmatch(s) else None


# --- record normalization ----------------------------------------------------------------


def normalize_element(elem: Element, raw: bytes | None) -> Normalized:
    tag = elem.tag
    if tag == "PubmedArticle":
        tables = _article(elem)
    elif tag == "PubmedBookArticle":
        tables = _book(elem)
    else:
        raise MalformedResponse(f"not a PubMed record: <{tag}>", source=SOURCE)
    if raw is None:
        raw = _serialize(elem)
    pmid = tables[ARTICLES.name][0]["pmid"]
    return Normalized(source=SOURCE, record_id=pmid, tables=tables, raw=raw)


class _Names(dict[str, str]):
    """expat's 'uri}local' names in ElementTree's '{uri}local' spelling, memoized."""

    def __missing__(self, key: str) -> str:
        name = "{" + key if "}" in key and key[0] != "{" else key
        self[key] = name
        return name


EXPAT_NAMES = _Names()


def _serialize(elem: Element) -> bytes:
    """The record as standalone UTF-8 XML, for when no byte slice of the input is usable."""
    for e in elem.iter():
        # The scanner leaves expat's 'uri}name' spelling on the (never read) namespaced tags
        # and attributes; ElementTree needs '{uri}name' to write them back.
        tag = e.tag
        if isinstance(tag, str) and "}" in tag and tag[0] != "{":
            e.tag = "{" + tag
        if e.attrib and any("}" in k and k[0] != "{" for k in e.attrib):
            e.attrib = {EXPAT_NAMES[k]: v for k, v in e.attrib.items()}
    tail, elem.tail = elem.tail, None
    try:
        return bytes(ET.tostring(elem, encoding="utf-8"))
    finally:
        elem.tail = tail


def _pmid(container: Element | None, where: str) -> str:
    pmid = element_text(container.find("PMID")) if container is not None else None
    if not pmid:
        raise MalformedResponse(f"PubMed record without {where}/PMID", source=SOURCE)
    return pmid


def _article(rec: Element) -> dict[str, list[Row]]:
    mc = rec.find("MedlineCitation")
    pmid = _pmid(mc, "MedlineCitation")
    assert mc is not None
    art = mc.find("Article")
    if art is None:
        art = Element("Article")
    journal = art.find("Journal")
    ji = journal.find("JournalIssue") if journal is not None else None
    pdata = rec.find("PubmedData")

    pub_year, pub_date, pub_date_text = _pub_date(ji.find("PubDate") if ji is not None else None)
    epub = None
    for ad in art.findall("ArticleDate"):
        if ad.get("DateType", "Electronic") == "Electronic":
            epub = _ymd(ad)
            break

    ids, doi, pmcid = _ids(pmid, pdata.find("ArticleIdList") if pdata is not None else None)
    if doi is None:
        doi = _elocation_doi(art)

    type_list = art.find("PublicationTypeList")
    pub_types = _publication_types(pmid, type_list if type_list is not None else ())
    comments = _comments(pmid, mc.find("CommentsCorrectionsList"))
    type_names = {r["publication_type"] for r in pub_types}
    ref_types = {r["ref_type"] for r in comments}

    authors, affiliations = _authors(pmid, _author_list(art))
    keywords = _keywords(pmid, mc.findall("KeywordList"))

    row: Row = {
        "pmid": pmid,
        "record_type": "article",
        "title": element_text(art.find("ArticleTitle")),
        "vernacular_title": element_text(art.find("VernacularTitle")),
        "abstract": _abstract(art.find("Abstract")),
        "journal": element_text(journal.find("Title")) if journal is not None else None,
        "journal_iso": (element_text(journal.find("ISOAbbreviation"))
                        if journal is not None else None),
        "volume": element_text(ji.find("Volume")) if ji is not None else None,
        "issue": element_text(ji.find("Issue")) if ji is not None else None,
        "pages": _pages(art.find("Pagination")),
        "pub_year": pub_year,
        "pub_date": pub_date,
        "pub_date_text": pub_date_text,
        "epub_date": epub,
        "entrez_date": _entrez_date(pdata),
        "doi": doi,
        "pmcid": pmcid,
        "language": _languages(art),
        "medline_status": mc.get("Status") or None,
        "is_retracted": int(
            "Retracted Publication" in type_names or not ref_types.isdisjoint(_RETRACTED_REFS)
        ),
        "has_erratum": int(not ref_types.isdisjoint(_ERRATUM_REFS)),
        "has_concern": int(not ref_types.isdisjoint(_CONCERN_REFS)),
        "is_retraction_notice": int(
            "Retraction of Publication" in type_names or not ref_types.isdisjoint(_NOTICE_REFS)
        ),
        "is_deleted": 0,
    }
    return {
        ARTICLES.name: [row],
        ARTICLE_AUTHORS.name: authors,
        ARTICLE_AFFILIATIONS.name: affiliations,
        ARTICLE_MESH.name: _mesh(pmid, mc.find("MeshHeadingList")),
        ARTICLE_PUBLICATION_TYPES.name: pub_types,
        ARTICLE_KEYWORDS.name: keywords,
        ARTICLE_TRIAL_IDS.name: _trial_ids(pmid, art.find("DataBankList")),
        ARTICLE_IDS.name: ids,
        ARTICLE_COMMENTS.name: comments,
    }


def _book(rec: Element) -> dict[str, list[Row]]:
    bd = rec.find("BookDocument")
    pmid = _pmid(bd, "BookDocument")
    assert bd is not None
    book = bd.find("Book")
    if book is None:
        book = Element("Book")
    bdata = rec.find("PubmedBookData")
    book_title = element_text(book.find("BookTitle"))

    pub_year, pub_date, pub_date_text = _pub_date(book.find("PubDate"))
    ids, doi, pmcid = _ids(
        pmid,
        bdata.find("ArticleIdList") if bdata is not None else None,
        bd.find("ArticleIdList"),
    )
    if doi is None:
        doi = _elocation_doi(book)
    pub_types = _publication_types(pmid, bd.findall("PublicationType"))
    type_names = {r["publication_type"] for r in pub_types}
    authors, affiliations = _authors(pmid, _author_list(bd) or _author_list(book))

    row: Row = {
        "pmid": pmid,
        "record_type": "book",
        "title": element_text(bd.find("ArticleTitle")) or book_title,
        "vernacular_title": element_text(bd.find("VernacularTitle")),
        "abstract": _abstract(bd.find("Abstract")),
        "journal": book_title,
        "journal_iso": None,
        "volume": element_text(book.find("Volume")),
        "issue": None,
        "pages": _pages(bd.find("Pagination")),
        "pub_year": pub_year,
        "pub_date": pub_date,
        "pub_date_text": pub_date_text,
        "epub_date": None,
        "entrez_date": _entrez_date(bdata),
        "doi": doi,
        "pmcid": pmcid,
        "language": _languages(bd),
        "medline_status": None,
        "is_retracted": int("Retracted Publication" in type_names),
        "has_erratum": 0,
        "has_concern": 0,
        "is_retraction_notice": int("Retraction of Publication" in type_names),
        "is_deleted": 0,
    }
    return {
        ARTICLES.name: [row],
        ARTICLE_AUTHORS.name: authors,
        ARTICLE_AFFILIATIONS.name: affiliations,
        ARTICLE_MESH.name: [],
        ARTICLE_PUBLICATION_TYPES.name: pub_types,
        ARTICLE_KEYWORDS.name: _keywords(pmid, bd.findall("KeywordList")),
        ARTICLE_TRIAL_IDS.name: [],
        ARTICLE_IDS.name: ids,
        ARTICLE_COMMENTS.name: [],
    }


def _abstract(abstract: Element | None) -> str | None:
    if abstract is None:
        return None
    parts = []
    for part in abstract.findall("AbstractText"):
        text = element_text(part)
        label = part.get("Label")
        label = _collapse(label) if label else None
        if label:
            parts.append(f"{label}: {text}" if text else label)
        elif text:
            parts.append(text)
    return "\n\n".join(parts) or None


def _pages(pagination: Element | None) -> str | None:
    if pagination is None:
        return None
    pages = element_text(pagination.find("MedlinePgn"))
    if pages:
        return pages
    first = element_text(pagination.find("StartPage"))
    last = element_text(pagination.find("EndPage"))
    if first and last:
        return f"{first}-{last}"
    return first or last


def _entrez_date(data: Element | None) -> str | None:
    history = data.find("History") if data is not None else None
    if history is None:
        return None
    fallback = None
    for d in history.findall("PubMedPubDate"):
        status = d.get("PubStatus")
        if status == "entrez":
            return _ymd(d)
        if status == "pubmed" and fallback is None:
            fallback = d
    return _ymd(fallback)


def _languages(parent: Element) -> str | None:
    codes = [c for c in (element_text(e) for e in parent.findall("Language")) if c]
    return "|".join(codes) or None


def _elocation_doi(parent: Element) -> str | None:
    for loc in parent.findall("ELocationID"):
        if loc.get("EIdType") == "doi" and loc.get("ValidYN") != "N":
            value = element_text(loc)
            if value:
                return value
    return None


def _ids(pmid: str, *lists: Element | None) -> tuple[list[Row], str | None, str | None]:
    """Rows for article_ids, plus the DOI and PMCID among them (direct ArticleIdList only)."""
    rows: list[Row] = []
    seen: set[tuple[str, str]] = set()
    doi = pmcid = None
    for id_list in lists:
        if id_list is None:
            continue
        for e in id_list.findall("ArticleId"):
            value = element_text(e)
            if not value:
                continue
            id_type = e.get("IdType") or ""
            key = (id_type, value)
            if key in seen:
                continue
            seen.add(key)
            rows.append({"pmid": pmid, "id_type": id_type, "value": value})
            if id_type == "doi" and doi is None:
                doi = value
            elif id_type == "pmc" and pmcid is None:
                pmcid = value
    return rows, doi, pmcid


def _author_list(parent: Element) -> Element | None:
    for al in parent.findall("AuthorList"):
        if al.get("Type") != "editors":
            return al
    return None


def _authors(pmid: str, author_list: Element | None) -> tuple[list[Row], list[Row]]:
    authors: list[Row] = []
    affiliations: list[Row] = []
    if author_list is None:
        return authors, affiliations
    position = 0
    for a in author_list.findall("Author"):
        if a.get("ValidYN") == "N":  # a misspelt name NLM keeps only for searching
            continue
        position += 1
        orcid = None
        for ident in a.findall("Identifier"):
            if ident.get("Source") == "ORCID":
                orcid = _orcid(ident.text)
                if orcid:
                    break
        affs = [
            t
            for t in (element_text(info.find("Affiliation"))
                      for info in a.findall("AffiliationInfo"))
            if t
        ]
        last = element_text(a.find("LastName"))
        authors.append(
            {
                "pmid": pmid,
                "position": position,
                "last_name": last,
                "fore_name": element_text(a.find("ForeName")),
                "initials": element_text(a.find("Initials")),
                # the DTD makes a person and a group exclusive
                "collective_name": element_text(a.find("CollectiveName")) if last is None else None,
                "orcid": orcid,
                "affiliation": affs[0] if affs else None,
            }
        )
        for i, aff in enumerate(affs, 1):
            affiliations.append(
                {"pmid": pmid, "position": position, "affiliation_position": i, "affiliation": aff}
            )
    return authors, affiliations


def _mesh(pmid: str, heading_list: Element | None) -> list[Row]:
    rows: list[Row] = []
    if heading_list is None:
        return rows
    seen: set[tuple[str, str]] = set()
    for heading in heading_list.findall("MeshHeading"):
        desc = heading.find("DescriptorName")
        if desc is None:
            continue
        d_ui = desc.get("UI") or ""
        d_name = element_text(desc)
        d_major = desc.get("MajorTopicYN") == "Y"
        qualifiers = heading.findall("QualifierName")
        if not qualifiers:
            if (d_ui, "") not in seen:
                seen.add((d_ui, ""))
                rows.append(
                    {"pmid": pmid, "descriptor_ui": d_ui, "descriptor": d_name,
                     "qualifier_ui": "", "qualifier": "", "is_major": int(d_major)}
                )
            continue
        for q in qualifiers:
            q_ui = q.get("UI") or ""
            if (d_ui, q_ui) in seen:
                continue
            seen.add((d_ui, q_ui))
            rows.append(
                {"pmid": pmid, "descriptor_ui": d_ui, "descriptor": d_name,
                 "qualifier_ui": q_ui, "qualifier": element_text(q) or "",
                 "is_major": int(d_major or q.get("MajorTopicYN") == "Y")}
            )
    return rows


def _publication_types(pmid: str, types: Iterable[Element]) -> list[Row]:
    rows: list[Row] = []
    seen: set[str] = set()
    for pt in types:
        name = element_text(pt)
        if not name or name in seen:
            continue
        seen.add(name)
        rows.append({"pmid": pmid, "publication_type": name, "ui": pt.get("UI") or None})
    return rows


def _keywords(pmid: str, keyword_lists: list[Element]) -> list[Row]:
    rows: list[Row] = []
    seen: set[str] = set()
    for kl in keyword_lists:
        owner = kl.get("Owner") or None
        for kw in kl.findall("Keyword"):
            text = element_text(kw)
            if not text or text in seen:
                continue
            seen.add(text)
            rows.append(
                {"pmid": pmid, "keyword": text, "owner": owner,
                 "is_major": int(kw.get("MajorTopicYN") == "Y")}
            )
    return rows


def _trial_ids(pmid: str, bank_list: Element | None) -> list[Row]:
    rows: list[Row] = []
    if bank_list is None:
        return rows
    seen: set[str] = set()
    for bank in bank_list.findall("DataBank"):
        if element_text(bank.find("DataBankName")) != "ClinicalTrials.gov":
            continue
        numbers = bank.find("AccessionNumberList")
        if numbers is None:
            continue
        for acc in numbers.findall("AccessionNumber"):
            nct = "".join((acc.text or "").split()).upper()
            if _NCT.fullmatch(nct) and nct not in seen:
                seen.add(nct)
                rows.append({"pmid": pmid, "nct_id": nct})
    return rows


def _comments(pmid: str, cc_list: Element | None) -> list[Row]:
    rows: list[Row] = []
    if cc_list is None:
        return rows
    seen: set[tuple[str, str]] = set()
    for cc in cc_list.findall("CommentsCorrections"):
        ref_type = cc.get("RefType") or ""
        source = element_text(cc.find("RefSource")) or ""
        if (ref_type, source) in seen:
            continue
        seen.add((ref_type, source))
        rows.append(
            {"pmid": pmid, "ref_type": ref_type, "ref_pmid": element_text(cc.find("PMID")),
             "ref_source": source}
        )
    return rows
