"""A reply in memory takes the byte-search path; it must yield exactly what streaming yields."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from littrack.errors import MalformedResponse
from littrack.normalize.pubmed_efetch import _sliceable, _trailing_references, parse_efetch
from tests.builders.pubmed import Markup, article_xml, book_article_xml, efetch_xml

FIXTURES = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "pubmed"

ARTICLES = [
    article_xml("1001", references=[("One. J Ex. 2001;1:1.", "5"), ("Two.", "6")]),
    article_xml("1002", abstract=Markup("<i>x</i> y <sup>2</sup>")),
    book_article_xml("2001"),
]
BASE = efetch_xml(ARTICLES, deleted=["3001"])
SECOND = '<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM" ' \
    'IndexingMethod="Automated"><PMID Version="1">1002'


def outcome(source: bytes | io.BytesIO) -> list[object]:
    out: list[object] = []
    try:
        out.extend(parse_efetch(source))
    except MalformedResponse as exc:
        out.append(("error", str(exc)))
    return out


def same_as_streaming(data: bytes) -> list[object]:
    fast = outcome(data)
    assert fast == outcome(io.BytesIO(data))  # a stream always takes the streaming parser
    return fast


def test_a_plain_reply_takes_the_byte_search_path_and_matches_streaming() -> None:
    assert _sliceable(BASE) is not None
    items = same_as_streaming(BASE)
    assert [getattr(i, "record_id", None) for i in items] == ["1001", "1002", "2001", None]
    assert items[0].raw.startswith(b"<PubmedArticle>") and b"<ReferenceList>" in items[0].raw


@pytest.mark.parametrize("name,data", [
    ("comment", BASE.replace(b"<PubmedArticle>", b"<!-- c --><PubmedArticle>", 1)),
    ("cdata", BASE.replace(b"x</i>", b"x<![CDATA[</PubmedArticle>]]></i>", 1)),
    ("processing instruction", BASE.replace(b"<PubmedArticle>", b"<?pi x?><PubmedArticle>", 1)),
    ("text between records", BASE.replace(b"</PubmedArticle>\n", b"</PubmedArticle>junk\n", 1)),
    ("another element", BASE.replace(b"</PubmedArticle>\n", b"</PubmedArticle><Other/>\n", 1)),
    ("cut off", BASE[:-500]),
    ("junk after the root", BASE + b"<x/>"),
    ("namespace on the root", BASE.replace(b"<PubmedArticleSet>",
                                           b'<PubmedArticleSet xmlns:m="urn:x">')),
    ("entity declared in an internal subset",
     BASE.replace(b'pubmed_250101.dtd">', b'pubmed_250101.dtd" [<!ENTITY e "E">]>')
     .replace(b"Synthetic article 1001", b"&e; 1001")),
    ("undefined entity", BASE.replace(b"Synthetic article 1001", b"&e; 1001")),
    ("mismatched tag in the second record", BASE.replace(SECOND.encode(),
                                                         b"<X>" + SECOND.encode(), 1)),
    ("latin-1 declared", BASE.replace(b'<?xml version="1.0" ?>',
                                      b'<?xml version="1.0" encoding="ISO-8859-1"?>')),
    ("utf-8 declared", BASE.replace(b'<?xml version="1.0" ?>',
                                    b'<?xml version="1.0" encoding="UTF-8"?>')),
    ("byte order mark", b"\xef\xbb\xbf" + BASE),
    ("empty set", efetch_xml([])),
    ("self-closed empty set", b'<?xml version="1.0" ?>\n<PubmedArticleSet/>'),
    ("record without PMID", efetch_xml([article_xml("1"), article_xml("2").replace(
        '<PMID Version="1">2</PMID>', "")])),
    ("reference list before History", BASE.replace(
        b"<PubmedData><History>",
        b"<PubmedData><ReferenceList><Reference><Citation>z</Citation></Reference>"
        b"</ReferenceList><History>", 1)),
    ("MathML", efetch_xml([article_xml("1", abstract=Markup(
        '<mml:math xmlns:mml="http://www.w3.org/1998/Math/MathML"><mml:mi mml:x="1">x'
        "</mml:mi></mml:math> end"))])),
    ("error envelope", b'<?xml version="1.0"?><eFetchResult><ERROR>boom</ERROR></eFetchResult>'),
    ("JSON", b'{"error":"API rate limit exceeded"}'),
])
def test_every_shape_yields_what_streaming_yields(name: str, data: bytes) -> None:
    same_as_streaming(data)


def test_only_trailing_whole_reference_lists_are_left_out_of_the_parse() -> None:
    refs = article_xml("1001", references=[("c1", "5"), ("c2", "6")])
    nested = refs.replace(
        "</ReferenceList>",
        "<ReferenceList><Title>Sub</Title><Reference><Citation>n</Citation></Reference>"
        "</ReferenceList></ReferenceList><ReferenceList><Reference><Citation>second"
        "</Citation></Reference></ReferenceList>", 1)
    middle = article_xml("1002").replace(
        "<ArticleIdList>", "<ReferenceList><Reference><Citation>m</Citation></Reference>"
        "</ReferenceList><ArticleIdList>", 1)
    for xml in (refs, nested, middle):
        data = efetch_xml([xml])
        (rec,) = same_as_streaming(data)
        span = _trailing_references(rec.raw)
        if xml is middle:
            assert span is None
        else:
            assert span is not None
            cut = rec.raw[span[0]:span[1]]
            assert cut.startswith(b"<ReferenceList>") and cut.endswith(b"</ReferenceList>")
            assert rec.raw[span[1]:].strip() == b"</PubmedData></PubmedArticle>"


@pytest.mark.skipif(not FIXTURES.is_dir(), reason="no ../shared/fixtures beside the checkout")
def test_real_replies_yield_what_streaming_yields() -> None:
    for path in sorted(FIXTURES.glob("*.xml")):
        same_as_streaming(path.read_bytes())
