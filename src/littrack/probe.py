"""``littrack check --online``: ask each topic's queries for their hit count, nothing else.

Sits beside the pipeline (it uses the sources and the HTTP client, stores nothing), so a
user learns before a first backfill how big each topic is, and whether a service rejects a
query, without waiting for a run.
"""

from __future__ import annotations

from dataclasses import dataclass

from littrack.config import Settings
from littrack.errors import ConfigError, QueryRejected
from littrack.http import HttpClient
from littrack.sources.ctgov import ClinicalTrials
from littrack.sources.pubmed import PubMed

SERVICE = {"pubmed": "PubMed", "ctgov": "ClinicalTrials.gov"}


@dataclass(frozen=True)
class Hits:
    topic: str
    source: str
    count: int


def count_hits(settings: Settings, sources: tuple[str, ...] = ("pubmed", "ctgov")
               ) -> list[Hits]:
    """Each topic's hit count per source, from one count-only request each.

    A query the service refuses is the config's fault: ``ConfigError`` naming the topic.
    """
    out: list[Hits] = []
    pubmed = ctgov = None
    for topic in settings.topics:
        for source in sources:
            if not topic.has(source):
                continue
            try:
                if source == "pubmed":
                    if pubmed is None:
                        pubmed = PubMed(settings.ncbi, HttpClient(
                            "pubmed", settings.ncbi.rate, settings.retry))
                    pubmed.client.topic = topic.name
                    n = pubmed.count(topic)
                else:
                    if ctgov is None:
                        ctgov = ClinicalTrials(settings.ctgov, HttpClient(
                            "ctgov", settings.ctgov.requests_per_minute / 60.0,
                            settings.retry))
                    ctgov.client.topic = topic.name
                    n = ctgov.count(topic)
            except QueryRejected as exc:
                raise ConfigError(f"{settings.config_path}: topic {topic.name!r}: "
                                  f"{SERVICE[source]} rejects the query: {exc}") from None
            out.append(Hits(topic.name, source, n))
    return out
