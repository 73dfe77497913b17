"""Names and formats that several modules must spell the same way, defined once."""

from __future__ import annotations

from datetime import UTC, datetime

# --- store
DATABASE_FILE = "littrack.sqlite"  # the SQLite store inside the data directory
TIMESTAMP_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # every stored time: UTC, ISO 8601, whole seconds


def utc_stamp(moment: datetime) -> str:
    """A stored timestamp for an aware ``moment`` (converted to UTC)."""
    return moment.astimezone(UTC).strftime(TIMESTAMP_FORMAT)


def utc_now() -> str:
    return utc_stamp(datetime.now(UTC))
