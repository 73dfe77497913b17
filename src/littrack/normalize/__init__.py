"""Pure reshaping of raw API records into tidy rows (no HTTP, no SQL).

Each source module turns what the service sent into ``Normalized`` records: one row for the
main table (``articles`` / ``trials``) plus the rows of its child tables, keyed by the table
names in ``littrack.tables``, and the raw record itself so the store can keep it and
``littrack rebuild`` can re-run the normalizer offline.
"""

from __future__ import annotations

import hashlib
import json
import marshal
import sys
import threading
import zlib
from dataclasses import dataclass, field, replace
from typing import Any

if sys.version_info >= (3, 14):
    from compression import zstd
else:  # the same module, for the Pythons before it joined the standard library
    from backports import zstd

Row = dict[str, Any]
# Zstandard level of the raw records the store keeps. A first run compresses every record
# it stores, and on 12 KB PubMed records level 1 takes a third of zlib level 1's time
# (0.28 vs 0.86 s for 10,000, a compressor reused) and packs them smaller (22.5% vs
# 23.8%). Release 0.1.0 stored zlib; ``unpack_raw`` reads both.
RAW_COMPRESSION = 1
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"  # how every Zstandard frame starts; zlib's never does
_compressors = threading.local()  # a compressor is not for two threads at once


def pack_raw(raw: bytes) -> bytes:
    """A raw record as the store keeps it: one Zstandard frame."""
    compressor = getattr(_compressors, "zstd", None)
    if compressor is None:  # (a fresh one per record would take 70% longer)
        compressor = _compressors.zstd = zstd.ZstdCompressor(level=RAW_COMPRESSION)
    return compressor.compress(raw, zstd.ZstdCompressor.FLUSH_FRAME)


def unpack_raw(blob: bytes) -> bytes:
    """A stored raw record's bytes, from a Zstandard frame or from the zlib stream release
    0.1.0 stored (a store upgraded in place holds both)."""
    if bytes(blob[:4]) == _ZSTD_MAGIC:
        return zstd.decompress(blob)
    return zlib.decompress(blob)


# marshal format of the rows ``Normalized.content_hash`` digests: 2 is the newest that
# writes values only, so equal rows always give equal bytes.
HASH_MARSHAL_VERSION = 2


@dataclass(frozen=True)
class Normalized:
    """One record, reshaped: every table's rows for it, and the raw bytes it came from."""

    source: str  # "pubmed" | "ctgov"
    record_id: str  # PMID or NCT number
    tables: dict[str, list[Row]] = field(default_factory=dict)
    raw: bytes = b""  # UTF-8 XML of one <PubmedArticle>/<PubmedBookArticle>, or study JSON
    # ``content_hash()`` and ``packed_raw()`` computed ahead (``prepared``), where they cost
    # the storing thread nothing: a parser process does them beside the store.
    digest: str = field(default="", compare=False, repr=False)
    packed: bytes = field(default=b"", compare=False, repr=False)

    def content_hash(self) -> str:
        """What the store compares to tell a changed record: a hash of its tidy rows.

        The rows are written out by ``marshal``'s format version 2, which writes values only
        (versions 3 and later also record which objects are shared or interned), in table,
        row and key order: a normalizer's fixed order. Four times faster than sorted JSON,
        and a first run hashes every record. A digest made another way (release 0.1.0
        hashed sorted JSON; marshal may change with Python) costs one comparison
        of the rows themselves, which finds them equal (``Store.save_records``).
        """
        if self.digest:
            return self.digest
        try:
            payload = marshal.dumps(self.tables, HASH_MARSHAL_VERSION)
        except ValueError:  # a value marshal cannot write (no normalizer of ours makes one)
            payload = json.dumps(self.tables, sort_keys=True, default=str,
                                 separators=(",", ":")).encode()
        return hashlib.sha256(payload).hexdigest()

    def packed_raw(self) -> bytes:
        """The raw record as the store keeps it (``pack_raw``)."""
        return self.packed or pack_raw(self.raw)

    def prepared(self) -> Normalized:
        """This record with its hash and packed raw computed now, and the raw bytes dropped.

        For a record that travels from a parser process to the store: the work is done on
        the parser's side, and a quarter of the bytes cross (the packed raw, not the raw).
        """
        return replace(self, raw=b"", digest=self.content_hash(), packed=self.packed_raw())

    @property
    def main(self) -> Row:
        """The single row of the main table (articles or trials)."""
        from littrack.tables import MAIN_TABLE

        return self.tables[MAIN_TABLE[self.source].name][0]


@dataclass(frozen=True)
class Deleted:
    """PubMed told us these PMIDs were withdrawn (``DeleteCitation``)."""

    pmids: tuple[str, ...]
