"""The words every layer shares, each defined once: source names, pseudo-topics, formats.

At the very bottom of the import graph (it imports nothing from littrack), so config, the
sources, the store, the reports and the CLI can all name a source or the linked-records
pseudo-topic without importing each other.
"""

from __future__ import annotations

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
