"""The words every layer shares, each defined once: source names, pseudo-topics, formats.

Sources and pseudo-topics at the top; the store's file name and timestamp format below.

At the very bottom of the import graph (it imports nothing from littrack), so config, the
sources, the store, the reports and the CLI can all name a source or the linked-records
pseudo-topic without importing each other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

# --- sources --------------------------------------------------------------------------------
PUBMED: Final = "pubmed"
CTGOV: Final = "ctgov"
# Every source littrack knows, in the order a run visits them (and `status` lists them).
# A source named here has a module of the same name under ``littrack.sources`` (and one
# under ``littrack.normalize``).
SOURCES: Final[tuple[str, ...]] = (PUBMED, CTGOV)

# The ``runs.topic`` of a run's linked-record fetch (records tracked ones link to but no
# topic matched). Config topic names cannot look like it: they cannot start with "(".
LINKED_TOPIC: Final = "(linked)"

# --- store
DATABASE_FILE = "littrack.sqlite"  # the SQLite store inside the data directory
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # every stored time: UTC, ISO 8601, whole seconds


def utc_stamp(moment: datetime) -> str:
    """A stored timestamp for an aware ``moment`` (converted to UTC)."""
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def utc_now() -> str:
    return utc_stamp(datetime.now(UTC))


def parse_stamp(text: str | None) -> datetime | None:
    """A stored timestamp ('2026-01-05T06:00:12Z') as an aware datetime; None stays None."""
    if not text:
        return None
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
