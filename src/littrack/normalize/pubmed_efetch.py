"""PubMed EFetch replies -> record elements, streamed: the record iterator.

A reply is cut into ``PubmedArticle`` / ``PubmedBookArticle`` elements (and
``DeleteCitation`` notices) here; each element becomes tidy rows in
``littrack.normalize.pubmed``. Why it is parsed this way is told there, in full.
"""

from __future__ import annotations

import io
import itertools
import re
import threading
from collections.abc import Iterator
from typing import Any, BinaryIO
from xml.etree import ElementTree as ET
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as DET
from defusedxml import DefusedXmlException

from littrack.errors import MalformedResponse, StopRequested
from littrack.memory import collector_paused
from littrack.normalize import Deleted, Normalized
from littrack.normalize.pubmed import EXPAT_NAMES, SOURCE, element_text, normalize_element

__all__ = ["parse_efetch", "parse_reply", "parse_reply_prepared"]

_UTF8_NAMES = frozenset({"utf-8", "utf8", "us-ascii", "ascii"})

# Records parsed between two looks at the stop request: a reply of 500 takes a second or
# more to parse, longer than a stop may wait.
STOP_CHECK_EVERY = 25

_RECORD_TAGS = frozenset({"PubmedArticle", "PubmedBookArticle"})
_CHUNK = 64 * 1024
_ERROR_BODY_LIMIT = 1024 * 1024  # an <ERROR> reply is tiny; stop reading a bogus one early
_UTF16_STARTS = (b"\xff\xfe", b"\xfe\xff", b"\x00<", b"<\x00")  # BOMs, or none


def parse_efetch(source: bytes | BinaryIO) -> Iterator[Normalized | Deleted]:
    """Yield a ``Normalized`` per record and a ``Deleted`` per ``DeleteCitation``, streaming.

    Records that were complete before a fault are yielded first; then ``MalformedResponse`` is
    raised (non-XML such as a JSON 429 body, a cut-off reply, an ``<eFetchResult><ERROR>``
    envelope or any other root, entity declarations). A caller that needs all-or-nothing must
    therefore consume the whole iterator before committing.
    """
    if isinstance(source, bytes | bytearray | memoryview):
        source = bytes(source)
        body_start = _sliceable(source)
        if body_start is not None:
            yield from _parse_sliced(source, body_start)
            return
    stream: BinaryIO = (
        io.BytesIO(bytes(source)) if isinstance(source, bytes | bytearray | memoryview) else source
    )
    scanner = _Scanner()
    buf = bytearray()  # input bytes from `base` on, kept until the records in them are done
    base = 0
    head = b""
    root_checked = False
    error_mode = False
    fault: Exception | None = None
    eof = False
    while not eof:
        chunk = stream.read(_CHUNK)
        if not chunk:
            eof = True
            try:
                scanner.close()
            except (ET.ParseError, DefusedXmlException) as exc:
                fault = exc
        else:
            if len(head) < 256:
                head += chunk[: 256 - len(head)]
                if head.startswith(_UTF16_STARTS):  # known long before the first record
                    scanner.use_slices = False
            buf += chunk
            try:
                scanner.feed(chunk)
            except (ET.ParseError, DefusedXmlException) as exc:
                fault = exc
                eof = True

        root = scanner.root
        if not root_checked and root is not None:
            root_checked = True
            if root.tag != "PubmedArticleSet":
                error_mode = True
        if error_mode:
            if fault is not None or eof or base + len(buf) > _ERROR_BODY_LIMIT:
                raise _unexpected_root(root, fault)  # type: ignore[arg-type]
            continue

        finished = scanner.finished
        if finished:
            scanner.finished = []
            slices = scanner.use_slices  # settled by the prolog, before any record
            for elem, start, end in finished:
                tag = elem.tag
                if tag in _RECORD_TAGS:
                    raw = None
                    if slices:
                        stop = end - base
                        if buf.startswith(b"</", stop):
                            stop = buf.index(b">", stop) + 1
                        raw = bytes(buf[start - base : stop])
                    yield normalize_element(elem, raw)
                elif tag == "DeleteCitation":
                    pmids = tuple(p for p in (element_text(e) for e in elem.iter("PMID")) if p)
                    yield Deleted(pmids)
                elem.clear()
            if root is not None:
                del root[: len(finished)]
        # Drop the bytes no record slice can need any more. Not simply up to the end of `buf`:
        # expat may hold back the start of a tag split across reads until it sees the rest.
        keep_from = scanner.mark
        if keep_from > base:
            del buf[: keep_from - base]
            base = keep_from

    if fault is not None:
        raise _parse_fault(fault, head)
    if scanner.root is None:
        raise MalformedResponse("empty EFetch reply (no XML element)", source=SOURCE)



# --- a whole reply in memory: records cut out by byte search ------------------------------
#
# What PubMed.fetch has is a whole EFetch reply in memory. When its prolog is plain (UTF-8, a
# DOCTYPE without internal subset, a bare <PubmedArticleSet>), it ends with
# </PubmedArticleSet>, and its body holds no comment, CDATA section or processing
# instruction, every "</PubmedArticle>" in it is an end tag, so the records can be cut apart
# with bytes.find and each parsed on its own by the C XMLParser, with no Python code per
# element: about twice the speed of the streaming parser. This is as safe as the defused
# parser: a record slice has no DOCTYPE, so nothing in it can declare an entity, and expat
# refuses every entity but the five predefined ones. Anything unexpected (another element
# between records, text, a record that does not parse on its own) hands the reply to the
# streaming parser, which skips the records already yielded, so both paths yield the same.

_PROLOG = re.compile(
    rb"\A(?:\xef\xbb\xbf)?(<\?xml[^>]*\?>)?[ \t\r\n]*(?:<!DOCTYPE[^>\[]*>)?[ \t\r\n]*"
    rb"<PubmedArticleSet>"
)
_DECL_ENCODING = re.compile(rb"encoding[ \t\r\n]*=[ \t\r\n]*[\"']([A-Za-z0-9._-]+)")
_END_ROOT = b"</PubmedArticleSet>"
_XML_SPACE = b" \t\r\n"
_TOP_LEVEL = {
    b"<PubmedArticle>": b"</PubmedArticle>",
    b"<PubmedBookArticle>": b"</PubmedBookArticle>",
    b"<DeleteCitation>": b"</DeleteCitation>",
}
_REFERENCE_TAG = re.compile(rb"<(/?)ReferenceList[ \t\r\n>]")


def parse_reply(body: bytes, stop: threading.Event | None = None, *,
                prepare: bool = False) -> tuple[list[Normalized], list[str]]:
    """One whole EFetch reply: its records (first copy of a PMID wins) and withdrawn PMIDs.

    The cyclic garbage collector is paused meanwhile (``memory.collector_paused``: parsing
    makes no cycles, and would cost a quarter more with it). ``prepare``: each record
    ``Normalized.prepared`` (hash and packed raw computed here, raw dropped).
    """
    with collector_paused():
        records: list[Normalized] = []
        deleted: list[str] = []
        seen: set[str] = set()
        for n, item in enumerate(parse_efetch(body)):
            if stop is not None and n % STOP_CHECK_EVERY == 0 and stop.is_set():
                raise StopRequested("stopped by signal while parsing a batch; rolled back")
            if isinstance(item, Deleted):
                deleted.extend(item.pmids)
            elif item.record_id not in seen:
                seen.add(item.record_id)
                records.append(item.prepared() if prepare else item)
        return records, deleted


def parse_reply_prepared(body: bytes) -> tuple[list[Normalized], list[str]]:
    """``parse_reply(body, prepare=True)``, by a name a parser process can be sent."""
    return parse_reply(body, prepare=True)


def _sliceable(data: bytes) -> int | None:
    """Where the records of ``data`` start, if the reply can take the byte-search path."""
    m = _PROLOG.match(data)
    if m is None:
        return None
    enc = _DECL_ENCODING.search(m.group(1) or b"")
    if enc is not None and enc.group(1).decode("ascii").lower() not in _UTF8_NAMES:
        return None
    end = data.rfind(_END_ROOT)
    if end < m.end() or data[end + len(_END_ROOT):].strip(_XML_SPACE):
        return None  # cut off, or something after the root: the streaming parser says what
    if _has_markup(data, b"!", m.end(), end) or _has_markup(data, b"?", m.end(), end):
        return None
    return m.end()


def _has_markup(data: bytes, mark: bytes, start: int, end: int) -> bool:
    """Whether ``<`` + ``mark`` occurs in ``data[start:end]``.

    Searching for the one rare byte runs at memchr speed; searching for the pair would
    stop at every ``<`` of the reply (twenty times slower on a 6 MB reply).
    """
    i = data.find(mark, start, end)
    while i >= 0:
        if i > start and data[i - 1] == 0x3C:  # "<"
            return True
        i = data.find(mark, i + 1, end)
    return False


def _parse_sliced(data: bytes, pos: int) -> Iterator[Normalized | Deleted]:
    end = data.rfind(_END_ROOT)
    find = data.find
    done = 0
    while True:
        lt = find(b"<", pos, end)
        if data[pos : end if lt < 0 else lt].strip(_XML_SPACE):
            break  # text between records
        if lt < 0:
            return
        open_tag = next((t for t in _TOP_LEVEL if data.startswith(t, lt)), None)
        if open_tag is None:
            break  # another element
        close_tag = _TOP_LEVEL[open_tag]
        stop = find(close_tag, lt, end)
        if stop < 0:
            break
        stop += len(close_tag)
        raw = data[lt:stop]
        try:
            elem = _parse_record(raw, open_tag == b"<PubmedArticle>")
        except ET.ParseError:
            break
        if open_tag == b"<DeleteCitation>":
            yield Deleted(tuple(p for p in (element_text(e) for e in elem.iter("PMID")) if p))
        else:
            yield normalize_element(elem, raw)
        done += 1
        pos = stop
    yield from itertools.islice(parse_efetch(io.BytesIO(data)), done, None)


def _parse_record(raw: bytes, article: bool) -> Element:
    """One record slice, parsed by the C XMLParser (no DOCTYPE: no entities possible).

    An article's trailing reference lists (``PubmedData``'s last children in the DTD, and
    often half a record) are left out of the parse: the normalizer never reads them.
    """
    parser = ET.XMLParser()
    span = _trailing_references(raw) if article else None
    if span is not None:
        parser.feed(raw[: span[0]])
        parser.feed(raw[span[1] :])
    else:
        parser.feed(raw)
    return parser.close()


def _trailing_references(raw: bytes) -> tuple[int, int] | None:
    """The byte span of the ``ReferenceList`` elements that close the record's PubmedData.

    Only whole lists (nested ones balanced) that follow each other with nothing but
    whitespace up to ``</PubmedData></PubmedArticle>``: never a byte the normalizer reads.
    """
    data_end = raw.rfind(b"</PubmedData>", -64)
    if data_end < 0 or raw[data_end + 13 :].strip(_XML_SPACE) != b"</PubmedArticle>":
        return None
    if not raw[max(0, data_end - 64) : data_end].rstrip(_XML_SPACE).endswith(
        b"</ReferenceList>"
    ):
        return None  # no reference list at the end: nothing to leave out
    first = raw.find(b"<ReferenceList")
    spans: list[tuple[int, int]] = []
    depth = start = 0
    for m in _REFERENCE_TAG.finditer(raw, first, data_end):
        if m.group(1):
            depth -= 1
            if depth < 0:
                return None
            if depth == 0:
                spans.append((start, raw.index(b">", m.end() - 1) + 1))
        else:
            if depth == 0:
                start = m.start()
            depth += 1
    if depth or not spans or raw[spans[-1][1] : data_end].strip(_XML_SPACE):
        return None
    cut_start, cut_end = spans[-1]
    for s, e in reversed(spans[:-1]):
        if raw[e:cut_start].strip(_XML_SPACE):
            break
        cut_start = s
    return cut_start, cut_end


# --- streaming parser ---------------------------------------------------------------------


class _Scanner:
    """defusedxml's expat parser, reporting finished top-level elements with byte offsets.

    Stock iterparse hands every element of the tree to Python twice (start and end events);
    only the children of the root matter here, so the element handlers are replaced by two
    closures that build the tree (C ``TreeBuilder``) and track depth, and by two cheaper ones
    while inside an unread subtree. defusedxml's entity and external-reference handlers stay.
    """

    def __init__(self) -> None:
        self._xml = DET.XMLParser(
            target=ET.TreeBuilder(), forbid_dtd=False, forbid_entities=True, forbid_external=True
        )
        parser = self._xml.parser
        target: Any = self._xml.target  # the TreeBuilder given above
        self.root: Element | None = None
        self.finished: list[tuple[Element, int, int]] = []
        self.open_start: int | None = None  # byte offset of the open top-level element
        self.mark = 0  # input before this offset is no longer needed for slices
        self.use_slices = True
        tb_start = target.start
        tb_end = target.end
        tb_data = target.data
        depth = 0
        skipped = 0  # depth inside a subtree that is not being built

        def start(tag: str, attrib: dict[str, str]) -> None:
            nonlocal depth, skipped
            if tag in _UNREAD_SUBTREES and depth >= 2 and self.use_slices:
                skipped = 1
                parser.StartElementHandler = skip_start
                parser.EndElementHandler = skip_end
                parser.CharacterDataHandler = None
                return
            # Namespaced (MathML) names keep expat's 'uri}local' spelling: nothing reads
            # them, and _serialize fixes them up on the rare path that writes XML back.
            elem = tb_start(tag, attrib)
            depth += 1
            if depth == 2:
                self.open_start = self.mark = parser.CurrentByteIndex
            elif depth == 1:
                self.root = elem
                self.mark = parser.CurrentByteIndex

        def end(tag: str) -> None:
            nonlocal depth
            elem = tb_end(tag)
            depth -= 1
            if depth == 1:
                self.mark = parser.CurrentByteIndex
                self.finished.append((elem, self.open_start or 0, self.mark))
                self.open_start = None

        def skip_start(tag: str, attrib: dict[str, str]) -> None:
            nonlocal skipped
            skipped += 1

        def skip_end(tag: str) -> None:
            nonlocal skipped
            skipped -= 1
            if not skipped:
                parser.StartElementHandler = start
                parser.EndElementHandler = end
                parser.CharacterDataHandler = tb_data

        def start_ns(prefix: str | None, uri: str) -> None:
            if depth == 0:  # declared on the root: a record slice would lose it
                self.use_slices = False

        def xml_decl(version: str, encoding: str | None, standalone: int) -> None:
            if encoding and encoding.lower() not in _UTF8_NAMES:  # slices would not be UTF-8
                self.use_slices = False

        def start_doctype(name: str, sysid: Any, pubid: Any, has_internal_subset: int) -> None:
            if has_internal_subset:  # could declare default attributes a slice would lose
                self.use_slices = False

        parser.ordered_attributes = False  # a dict straight from expat, no Python loop
        parser.StartElementHandler = start
        parser.EndElementHandler = end
        parser.StartNamespaceDeclHandler = start_ns
        parser.StartDoctypeDeclHandler = start_doctype
        parser.XmlDeclHandler = xml_decl

    def feed(self, data: bytes) -> None:
        self._xml.feed(data)

    def close(self) -> None:
        self._xml.close()


# Subtrees the normalizer never reads (references, grants, chemicals, ...). While streaming
# with byte-slice raws they are not built at all, which saves a third of the work on records
# with long reference lists; ``normalize_raw`` still sees them in ``raw``. Reading one of
# these in the normalizer? Remove it here (the round-trip tests would catch it).
_UNREAD_SUBTREES = frozenset({
    "ReferenceList", "GrantList", "ChemicalList", "SupplMeshList", "MedlineJournalInfo",
    "InvestigatorList", "PersonalNameSubjectList", "OtherAbstract", "GeneSymbolList",
    "ObjectList", "Sections", "ItemList",
})




def _parse_fault(exc: Exception, head: bytes) -> MalformedResponse:
    snippet = head[:120].decode("utf-8", "replace").strip()
    if isinstance(exc, DefusedXmlException):
        msg = f"EFetch reply refused by the safe XML parser ({type(exc).__name__}: {exc})"
    elif snippet.lstrip("\ufeff").startswith("<"):
        msg = f"EFetch reply is truncated or malformed XML ({exc})"
    else:
        msg = f"EFetch reply is not XML ({exc}); it starts with {snippet!r}"
    err = MalformedResponse(msg, source=SOURCE)
    err.__cause__ = exc
    return err


def _unexpected_root(root: Element, fault: Exception | None) -> MalformedResponse:
    errors = [t for t in (element_text(e) for e in root.iter("ERROR")) if t]
    msg = f"EFetch returned <{EXPAT_NAMES[root.tag]}> instead of <PubmedArticleSet>"
    if errors:
        msg += ": " + "; ".join(errors)
    elif fault is not None:
        msg += f" (and it is malformed: {fault})"
    err = MalformedResponse(msg, source=SOURCE)
    err.__cause__ = fault
    return err


