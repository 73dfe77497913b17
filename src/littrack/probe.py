"""``littrack check --online``: ask each topic's queries for their hit count, nothing else.

Sits beside the pipeline (it opens the sources, stores nothing), so a user learns before a
first backfill how big each topic is, and whether a service rejects a query, without
waiting for a run.
"""

from __future__ import annotations

from dataclasses import dataclass

from littrack.config import Settings
from littrack.errors import ConfigError, QueryRejected
from littrack.sources import Source, open_source
from littrack.vocab import SOURCES

SERVICE = {"pubmed": "PubMed", "ctgov": "ClinicalTrials.gov", "europepmc": "Europe PMC"}


@dataclass(frozen=True)
class HitCount:
    topic: str
    source: str
    count: int


def count_hits(settings: Settings, sources: tuple[str, ...] = SOURCES) -> list[HitCount]:
    """Each topic's hit count per source, from one count-only request each.

    A query the service refuses is the config's fault: ``ConfigError`` naming the topic.
    """
    out: list[HitCount] = []
    opened: dict[str, Source] = {}
    try:
        for topic in settings.topics:
            for name in sources:
                if not topic.has(name):
                    continue
                source = opened.get(name) or opened.setdefault(name,
                                                               open_source(name, settings))
                source.client.topic = topic.name
                try:
                    n = source.count(topic)
                except QueryRejected as exc:
                    raise ConfigError(f"{settings.config_path}: topic {topic.name!r}: "
                                      f"{SERVICE.get(name, name)} rejects the query: {exc}"
                                      ) from None
                out.append(HitCount(topic.name, name, n))
    finally:
        for source in opened.values():
            source.close()
    return out
