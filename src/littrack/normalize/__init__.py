"""Pure reshaping of raw API records into tidy rows (no HTTP, no SQL).

Each source module turns what the service sent into ``Normalized`` records: one row for the
main table (``articles`` / ``trials``) plus the rows of its child tables, keyed by the table
names in ``littrack.tables``, and the raw record itself so the store can keep it and
``littrack rebuild`` can re-run the normalizer offline.
"""

from __future__ import annotations

import hashlib
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

Row = dict[str, Any]
# zlib level of the raw records the store keeps: 1 compresses 12 KB of PubMed XML to 24% in
# half the time level 6 takes (22%), and a first run compresses every record it stores.
RAW_COMPRESSION = 1


@dataclass(frozen=True)
class Normalized:
    """One record, reshaped: every table's rows for it, and the raw bytes it came from."""

    source: str  # "pubmed" | "ctgov"
    record_id: str  # PMID or NCT number
    tables: dict[str, list[Row]] = field(default_factory=dict)
    raw: bytes = b""  # UTF-8 XML of one <PubmedArticle>/<PubmedBookArticle>, or study JSON

    def content_hash(self) -> str:
        """What the store compares to tell a changed record: a hash of its tidy rows."""
        payload = json.dumps(self.tables, sort_keys=True, default=str, separators=(",", ":"))
        return hashlib.sha256(payload.encode()).hexdigest()

    def packed_raw(self) -> bytes:
        """The raw record as the store keeps it (zlib)."""
        return zlib.compress(self.raw, RAW_COMPRESSION)

    @property
    def main(self) -> Row:
        """The single row of the main table (articles or trials)."""
        from littrack.tables import MAIN_TABLE

        return self.tables[MAIN_TABLE[self.source].name][0]


@dataclass(frozen=True)
class Deleted:
    """PubMed told us these PMIDs were withdrawn (``DeleteCitation``)."""

    pmids: tuple[str, ...]
