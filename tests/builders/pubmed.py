"""Build our own PubMed EFetch XML in the exact shapes NCBI sends.

Tests must not ship real records, yet the parser has to be exercised on realistic documents:
every element sits where ``pubmed_250101.dtd`` and the real responses put it (MedlineCitation
with Article/Journal/JournalIssue/PubDate, PubmedData with History and ArticleIdList, ...), and
the output is compact one-record-per-line XML like a current EFetch reply.

``article_xml("1001")`` alone is a complete, valid article; every keyword only changes one part::

    efetch_xml([
        article_xml("1001"),
        article_xml("1002", abstract=[("BACKGROUND", "Why."), ("RESULTS", "What.")],
                    medline_date="1998 Dec-1999 Jan", nct_ids=["NCT01234567"]),
        book_article_xml("2001"),
    ], deleted=["3001"])

Text is XML-escaped; wrap a value in ``Markup`` to insert it verbatim (inline ``<i>``,
``<sup>`` or MathML, as in real titles and abstracts).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from xml.sax.saxutils import escape

__all__ = [
    "Author",
    "Markup",
    "Mesh",
    "article_xml",
    "book_article_xml",
    "efetch_xml",
    "fake_ui",
]

MATHML_NS = "http://www.w3.org/1998/Math/MathML"

# The UIs NCBI uses for the publication types tests tend to need (others get a stable fake UI).
PUBLICATION_TYPE_UI = {
    "Journal Article": "D016428",
    "Review": "D016454",
    "Randomized Controlled Trial": "D016449",
    "Clinical Trial, Phase III": "D017428",
    "Published Erratum": "D016425",
    "Retracted Publication": "D016441",
    "Retraction of Publication": "D016440",
    "Expression of Concern": "D000075742",
    "Comment": "D016420",
}
_NLM_CATEGORIES = {"BACKGROUND", "OBJECTIVE", "METHODS", "RESULTS", "CONCLUSIONS"}
_MONTH_NAMES = (
    "January February March April May June July August September October November December"
).split()


class Markup(str):
    """An already-valid XML fragment: inserted as is instead of being escaped."""


def _x(text: str) -> str:
    """Escape element content unless the caller handed us markup on purpose."""
    return str(text) if isinstance(text, Markup) else escape(text)


def _a(value: str) -> str:
    """Escape an attribute value for use inside double quotes."""
    return escape(value, {'"': "&quot;", "\n": "&#10;", "\r": "&#13;", "\t": "&#9;"})


def fake_ui(prefix: str, name: str) -> str:
    """A stable, realistic-looking MeSH UI, so tests need not invent one per term."""
    return f"{prefix}{zlib.crc32(name.encode('utf-8')) % 1_000_000:06d}"


@dataclass(frozen=True)
class Author:
    """One ``<Author>``: a person (last/fore name) or a group (``collective_name``)."""

    last_name: str | None = None
    fore_name: str | None = None
    initials: str | None = None
    collective_name: str | None = None
    orcid: str | None = None  # written as given, so tests can feed URL or spaced forms
    affiliations: Sequence[str] = ()
    valid: bool = True

    def xml(self) -> str:
        parts = [f'<Author ValidYN="{"Y" if self.valid else "N"}">']
        if self.collective_name is not None:
            parts.append(f"<CollectiveName>{_x(self.collective_name)}</CollectiveName>")
        else:
            parts.append(f"<LastName>{_x(self.last_name or '')}</LastName>")
            if self.fore_name is not None:
                parts.append(f"<ForeName>{_x(self.fore_name)}</ForeName>")
            initials = self.initials
            if initials is None and self.fore_name:
                initials = "".join(w[0] for w in self.fore_name.split() if w[:1].isalpha())
            if initials:
                parts.append(f"<Initials>{_x(initials)}</Initials>")
        if self.orcid is not None:
            parts.append(f'<Identifier Source="ORCID">{_x(self.orcid)}</Identifier>')
        for aff in self.affiliations:
            parts.append(f"<AffiliationInfo><Affiliation>{_x(aff)}</Affiliation></AffiliationInfo>")
        parts.append("</Author>")
        return "".join(parts)


@dataclass(frozen=True)
class Mesh:
    """One ``<MeshHeading>``.

    Qualifiers are ``name``, ``(name, major)`` or ``(name, major, ui)``; UIs default to stable
    fake ones derived from the name.
    """

    descriptor: str
    major: bool = False
    qualifiers: Sequence[str | tuple[str, bool] | tuple[str, bool, str]] = field(default=())
    ui: str | None = None

    def xml(self) -> str:
        ui = self.ui or fake_ui("D", self.descriptor)
        parts = [
            f'<MeshHeading><DescriptorName UI="{_a(ui)}" MajorTopicYN="{_yn(self.major)}">'
            f"{_x(self.descriptor)}</DescriptorName>"
        ]
        for q in self.qualifiers:
            if isinstance(q, str):
                name, major, qui = q, False, fake_ui("Q", q)
            elif len(q) == 2:
                name, major = q  # type: ignore[misc]
                qui = fake_ui("Q", name)
            else:
                name, major, qui = q  # type: ignore[misc]
            parts.append(
                f'<QualifierName UI="{_a(qui)}" MajorTopicYN="{_yn(major)}">{_x(name)}'
                "</QualifierName>"
            )
        parts.append("</MeshHeading>")
        return "".join(parts)


DEFAULT_AUTHORS: tuple[Author, ...] = (
    Author(
        "Carberry",
        "Josiah S",
        orcid="0000-0002-1825-0097",  # ORCID's own documented example identifier
        affiliations=(
            "Department of Testing, Example University, Springfield, USA.",
            "Institute of Fixtures, Example City, Example Country.",
        ),
    ),
    Author("Roe", "Richard", affiliations=("Example Hospital, Example City, USA.",)),
)
DEFAULT_MESH: tuple[Mesh, ...] = (
    Mesh("Humans", ui="D006801"),
    Mesh("Asthma", ui="D001249", qualifiers=(("drug therapy", True, "Q000188"),)),
)
DEFAULT_ABSTRACT = "This synthetic abstract exists only to exercise the parser."


def _yn(flag: bool) -> str:
    return "Y" if flag else "N"


def _date_parts(d: date, tag: str, attrs: str = "", *, pad: bool = True) -> str:
    """A Year/Month/Day element; History uses unpadded months and days like NCBI does."""
    m, dd = (f"{d.month:02d}", f"{d.day:02d}") if pad else (str(d.month), str(d.day))
    return f"<{tag}{attrs}><Year>{d.year}</Year><Month>{m}</Month><Day>{dd}</Day></{tag}>"


def _pub_date(
    pub_date: Sequence[str] | None, medline_date: str | None, season: str | None
) -> str:
    if medline_date is not None:
        return f"<PubDate><MedlineDate>{_x(medline_date)}</MedlineDate></PubDate>"
    parts = ["<PubDate>"]
    pd = tuple(pub_date or ())
    if pd:
        parts.append(f"<Year>{_x(pd[0])}</Year>")
    if season is not None:
        parts.append(f"<Season>{_x(season)}</Season>")
    else:
        if len(pd) > 1:
            parts.append(f"<Month>{_x(pd[1])}</Month>")
        if len(pd) > 2:
            parts.append(f"<Day>{_x(pd[2])}</Day>")
    parts.append("</PubDate>")
    return "".join(parts)


AbstractSpec = str | Sequence[tuple[str | None, str]] | None


def _abstract(abstract: AbstractSpec, copyright: str | None) -> str:
    if abstract is None:
        return ""
    parts = ["<Abstract>"]
    if isinstance(abstract, str):
        parts.append(f"<AbstractText>{_x(abstract)}</AbstractText>")
    else:
        for label, text in abstract:
            if label is None:
                parts.append(f"<AbstractText>{_x(text)}</AbstractText>")
                continue
            cat = label.upper() if label.upper() in _NLM_CATEGORIES else "UNASSIGNED"
            parts.append(
                f'<AbstractText Label="{_a(label)}" NlmCategory="{cat}">{_x(text)}</AbstractText>'
            )
    if copyright is not None:
        parts.append(f"<CopyrightInformation>{_x(copyright)}</CopyrightInformation>")
    parts.append("</Abstract>")
    return "".join(parts)


def _author(author: Author | str) -> Author:
    """'Doe Jane A' is shorthand for Author('Doe', 'Jane A')."""
    if isinstance(author, Author):
        return author
    last, _, fore = author.strip().partition(" ")
    return Author(last, fore or None)


def _author_list(authors: Sequence[Author | str], kind: str = "authors") -> str:
    if not authors:
        return ""
    type_attr = ' Type="editors"' if kind == "editors" else ""
    body = "".join(_author(a).xml() for a in authors)
    return f'<AuthorList CompleteYN="Y"{type_attr}>{body}</AuthorList>'


def _languages(language: str | Sequence[str]) -> str:
    langs = [language] if isinstance(language, str) else list(language)
    return "".join(f"<Language>{_x(code)}</Language>" for code in langs)


def _pub_types(publication_types: Sequence[str | tuple[str, str]]) -> list[str]:
    out = []
    for pt in publication_types:
        if isinstance(pt, str):
            name, ui = pt, PUBLICATION_TYPE_UI.get(pt) or fake_ui("D", pt)
        else:
            name, ui = pt
        out.append(f'<PublicationType UI="{_a(ui)}">{_x(name)}</PublicationType>')
    return out


def _keywords(keywords: Sequence[str | tuple[str, bool]], owner: str) -> str:
    if not keywords:
        return ""
    items = []
    for kw in keywords:
        text, major = (kw, False) if isinstance(kw, str) else kw
        items.append(f'<Keyword MajorTopicYN="{_yn(major)}">{_x(text)}</Keyword>')
    return f'<KeywordList Owner="{_a(owner)}">' + "".join(items) + "</KeywordList>"


def _history(entrez_date: date | None, received: date | None) -> str:
    if entrez_date is None and received is None:
        return ""
    parts = ["<History>"]
    if received is not None:
        parts.append(_date_parts(received, "PubMedPubDate", ' PubStatus="received"'))
    if entrez_date is not None:
        for status in ("pubmed", "medline", "entrez"):
            parts.append(
                f'<PubMedPubDate PubStatus="{status}"><Year>{entrez_date.year}</Year>'
                f"<Month>{entrez_date.month}</Month><Day>{entrez_date.day}</Day>"
                "<Hour>6</Hour><Minute>0</Minute></PubMedPubDate>"
            )
    parts.append("</History>")
    return "".join(parts)


def _article_ids(ids: Sequence[tuple[str, str]]) -> str:
    return (
        "<ArticleIdList>"
        + "".join(f'<ArticleId IdType="{_a(t)}">{_x(v)}</ArticleId>' for t, v in ids)
        + "</ArticleIdList>"
    )


def article_xml(
    pmid: str,
    *,
    title: str | None = None,
    vernacular_title: str | None = None,
    abstract: AbstractSpec = DEFAULT_ABSTRACT,
    copyright: str | None = None,
    journal: str = "Journal of Synthetic Results",
    journal_iso: str | None = "J Synth Res",
    volume: str | None = "12",
    issue: str | None = "3",
    pages: str | None = "101-109",
    start_page: str | None = None,
    end_page: str | None = None,
    pub_date: Sequence[str] | None = ("2024", "Aug", "27"),
    medline_date: str | None = None,
    season: str | None = None,
    epub_date: date | None = None,
    authors: Sequence[Author | str] = DEFAULT_AUTHORS,
    mesh: Sequence[Mesh | str] = DEFAULT_MESH,
    publication_types: Sequence[str | tuple[str, str]] = ("Journal Article",),
    keywords: Sequence[str | tuple[str, bool]] = ("synthetic data", "parser testing"),
    keyword_owner: str = "NOTNLM",
    nct_ids: Sequence[str] = (),
    doi: str | None = "",
    elocation_doi: str | bool | None = True,
    elocation_valid: bool = True,
    pmcid: str | None = None,
    extra_ids: Sequence[tuple[str, str]] = (),
    comments: Sequence[tuple[str, str | None] | tuple[str, str | None, str]] = (),
    entrez_date: date | None = date(2024, 3, 27),
    received_date: date | None = None,
    language: str | Sequence[str] = "eng",
    status: str = "MEDLINE",
    references: Sequence[tuple[str, str]] = (),
) -> str:
    """One ``<PubmedArticle>`` (MedlineCitation + PubmedData) as a string.

    Defaults: title ``"Synthetic article <pmid>."``, a plain abstract, two authors (the first
    with an ORCID and two affiliations), two MeSH headings, ``Journal Article``, two keywords,
    DOI ``10.5555/test.<pmid>`` in both ArticleIdList and ELocationID, PubDate 2024 Aug 27,
    entrez date 2024-03-27. ``doi=None`` drops the DOI everywhere; ``elocation_doi=False`` keeps
    it only in the ArticleIdList, a string puts a different value in ELocationID.
    ``abstract`` is a string, a list of ``(label or None, text)`` parts, or None for none.
    ``authors`` are ``Author`` objects (collective names, ORCIDs, affiliations, invalid names)
    or ``"Last Fore"`` strings; ``mesh`` items are ``Mesh`` or a descriptor name;
    ``keywords`` are strings or ``(keyword, major)``; ``pub_date`` is ``(year, month, day)``
    with any prefix, ``season`` keeps only its year, ``medline_date`` replaces both.
    ``comments`` are ``(RefType, PMID or None[, RefSource])``; ``references`` are
    ``(citation, pmid)`` pairs whose ArticleIdLists must never leak into the record's IDs.
    """
    if title is None:
        title = f"Synthetic article {pmid}."
    if doi == "":
        doi = f"10.5555/test.{pmid}"
    if elocation_doi is True:
        elocation_doi = doi
    elif elocation_doi is False:
        elocation_doi = None

    journal_issue = ['<JournalIssue CitedMedium="Internet">']
    if volume is not None:
        journal_issue.append(f"<Volume>{_x(volume)}</Volume>")
    if issue is not None:
        journal_issue.append(f"<Issue>{_x(issue)}</Issue>")
    journal_issue.append(_pub_date(pub_date, medline_date, season))
    journal_issue.append("</JournalIssue>")

    art = [
        '<Article PubModel="Print-Electronic"><Journal>'
        '<ISSN IssnType="Electronic">1234-5678</ISSN>',
        "".join(journal_issue),
        f"<Title>{_x(journal)}</Title>",
        f"<ISOAbbreviation>{_x(journal_iso)}</ISOAbbreviation>" if journal_iso is not None else "",
        "</Journal>",
        f"<ArticleTitle>{_x(title)}</ArticleTitle>" if title else "<ArticleTitle/>",
    ]
    if pages is not None or start_page is not None:
        art.append("<Pagination>")
        if start_page is not None:
            art.append(f"<StartPage>{_x(start_page)}</StartPage>")
        if end_page is not None:
            art.append(f"<EndPage>{_x(end_page)}</EndPage>")
        if pages is not None:
            art.append(f"<MedlinePgn>{_x(pages)}</MedlinePgn>")
        art.append("</Pagination>")
    if elocation_doi:
        art.append(
            f'<ELocationID EIdType="doi" ValidYN="{_yn(elocation_valid)}">{_x(elocation_doi)}'
            "</ELocationID>"
        )
    elif pages is None and start_page is None:
        art.append(f'<ELocationID EIdType="pii" ValidYN="Y">e{_x(pmid)}</ELocationID>')
    art.append(_abstract(abstract, copyright))
    art.append(_author_list(authors))
    art.append(_languages(language))
    if nct_ids:
        art.append(
            '<DataBankList CompleteYN="Y"><DataBank><DataBankName>ClinicalTrials.gov</DataBankName>'
            "<AccessionNumberList>"
            + "".join(f"<AccessionNumber>{_x(n)}</AccessionNumber>" for n in nct_ids)
            + "</AccessionNumberList></DataBank></DataBankList>"
        )
    art.append("<PublicationTypeList>" + "".join(_pub_types(publication_types)))
    art.append("</PublicationTypeList>")
    if vernacular_title is not None:
        art.append(f"<VernacularTitle>{_x(vernacular_title)}</VernacularTitle>")
    if epub_date is not None:
        art.append(_date_parts(epub_date, "ArticleDate", ' DateType="Electronic"'))
    art.append("</Article>")

    mc = [
        f'<MedlineCitation Status="{_a(status)}" Owner="NLM" IndexingMethod="Automated">'
        f'<PMID Version="1">{_x(pmid)}</PMID>'
        "<DateRevised><Year>2024</Year><Month>09</Month><Day>01</Day></DateRevised>",
        "".join(art),
        "<MedlineJournalInfo><Country>United States</Country>"
        f"<MedlineTA>{_x(journal_iso or journal)}</MedlineTA><NlmUniqueID>0000001</NlmUniqueID>"
        "<ISSNLinking>1234-5678</ISSNLinking></MedlineJournalInfo>",
        "<CitationSubset>IM</CitationSubset>",
    ]
    if comments:
        mc.append("<CommentsCorrectionsList>")
        for c in comments:
            ref_type, ref_pmid = c[0], c[1]
            source = c[2] if len(c) > 2 else f"J Synth Res. 2025;1:{ref_pmid or 'n/a'}"  # type: ignore[misc]
            mc.append(
                f'<CommentsCorrections RefType="{_a(ref_type)}"><RefSource>{_x(source)}</RefSource>'
                + (f'<PMID Version="1">{_x(ref_pmid)}</PMID>' if ref_pmid else "")
                + "</CommentsCorrections>"
            )
        mc.append("</CommentsCorrectionsList>")
    if mesh:
        mc.append(
            "<MeshHeadingList>"
            + "".join((Mesh(m) if isinstance(m, str) else m).xml() for m in mesh)
            + "</MeshHeadingList>"
        )
    mc.append(_keywords(keywords, keyword_owner))
    mc.append("</MedlineCitation>")

    ids: list[tuple[str, str]] = [("pubmed", pmid)]
    if doi:
        ids.append(("doi", doi))
    if pmcid:
        ids.append(("pmc", pmcid))
    ids.extend(extra_ids)
    pd = [
        "<PubmedData>",
        _history(entrez_date, received_date),
        "<PublicationStatus>ppublish</PublicationStatus>",
        _article_ids(ids),
    ]
    if references:
        pd.append("<ReferenceList>")
        for citation, ref_pmid in references:
            pd.append(
                f"<Reference><Citation>{_x(citation)}</Citation>"
                + _article_ids([("pubmed", ref_pmid), ("doi", f"10.5555/ref.{ref_pmid}")])
                + "</Reference>"
            )
        pd.append("</ReferenceList>")
    pd.append("</PubmedData>")
    return "<PubmedArticle>" + "".join(mc) + "".join(pd) + "</PubmedArticle>"


def book_article_xml(
    pmid: str,
    *,
    title: str | None = None,
    book_title: str = "Synthetic Reviews",
    abstract: AbstractSpec = DEFAULT_ABSTRACT,
    authors: Sequence[Author | str] = DEFAULT_AUTHORS,
    editors: Sequence[Author | str] = (Author("Editor", "Edith"),),
    publisher: str = "Example University Press",
    pub_date: Sequence[str] | None = ("2020",),
    accession: str | None = None,
    doi: str | None = None,
    publication_types: Sequence[str | tuple[str, str]] = ("Review",),
    keywords: Sequence[str | tuple[str, bool]] = (),
    language: str | Sequence[str] = "eng",
    entrez_date: date | None = date(2020, 3, 20),
) -> str:
    """One ``<PubmedBookArticle>`` (a GeneReviews/StatPearls-style chapter).

    ``title=""`` makes a whole-book record (no chapter ArticleTitle, so the BookTitle is the
    title). The book's editors sit in ``Book/AuthorList Type="editors"``, the chapter authors in
    ``BookDocument/AuthorList Type="authors"``; IDs are ``bookaccession`` ``NBK<pmid>``.
    """
    if title is None:
        title = f"Synthetic chapter {pmid}"
    accession = accession or f"NBK{pmid}"
    book = [
        "<Book><Publisher>",
        f"<PublisherName>{_x(publisher)}</PublisherName>",
        "<PublisherLocation>Example City</PublisherLocation></Publisher>",
        f'<BookTitle book="{_a(accession.lower())}">{_x(book_title)}</BookTitle>',
        _pub_date(pub_date, None, None),
        _author_list(editors, "editors"),
        "<Medium>Internet</Medium></Book>",
    ]
    doc = [
        f'<BookDocument><PMID Version="1">{_x(pmid)}</PMID>',
        _article_ids([("bookaccession", accession)]),
        "".join(book),
        '<LocationLabel Type="chapter">chapter</LocationLabel>' if title else "",
        f'<ArticleTitle book="{_a(accession.lower())}" part="ch1">{_x(title)}</ArticleTitle>'
        if title
        else "",
        _languages(language),
    ]
    if authors:
        doc.append(
            '<AuthorList Type="authors">' + "".join(_author(a).xml() for a in authors)
            + "</AuthorList>"
        )
    doc.extend(_pub_types(publication_types))
    doc.append(_abstract(abstract, None))
    doc.append(_keywords(keywords, "NOTNLM"))
    doc.append(
        "<ContributionDate><Year>2020</Year><Month>01</Month><Day>15</Day></ContributionDate>"
        "</BookDocument>"
    )
    ids: list[tuple[str, str]] = [("bookaccession", accession), ("pubmed", pmid)]
    if doi:
        ids.append(("doi", doi))
    data = (
        "<PubmedBookData>"
        + _history(entrez_date, None)
        + "<PublicationStatus>ppublish</PublicationStatus>"
        + _article_ids(ids)
        + "</PubmedBookData>"
    )
    return "<PubmedBookArticle>" + "".join(doc) + data + "</PubmedBookArticle>"


def _doctype_label(doctype_year: str) -> str:
    """'250101' -> '1st January 2025', the wording NCBI puts in the DTD public identifier."""
    yy, mm, dd = int(doctype_year[:2]), int(doctype_year[2:4]), int(doctype_year[4:6])
    suffix = "th" if 10 <= dd % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(dd % 10, "th")
    return f"{dd}{suffix} {_MONTH_NAMES[mm - 1]} {2000 + yy}"


def efetch_xml(
    articles: Sequence[str], deleted: Sequence[str] = (), doctype_year: str = "250101"
) -> bytes:
    """A whole EFetch reply: XML declaration, PubMed DOCTYPE, the records, a DeleteCitation.

    ``doctype_year`` names the DTD (``pubmed_<doctype_year>.dtd``), so tests can pretend NCBI
    moved to a DTD nobody has downloaded.
    """
    head = (
        '<?xml version="1.0" ?>\n'
        f'<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, '
        f'{_doctype_label(doctype_year)}//EN" '
        f'"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_{doctype_year}.dtd">\n'
        "<PubmedArticleSet>\n"
    )
    body = "".join(a + "\n" for a in articles)
    if deleted:
        body += (
            "<DeleteCitation>\n"
            + "".join(f'<PMID Version="1">{_x(p)}</PMID>\n' for p in deleted)
            + "</DeleteCitation>\n"
        )
    return (head + body + "</PubmedArticleSet>").encode("utf-8")
