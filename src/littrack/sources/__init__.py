"""The one interface every upstream service implements, and how a run opens one.

The pipeline knows no source by name: for each topic it asks ``search`` what matches in the
window, then stores the batches ``fetch`` yields; for the records tracked ones link to it
stores the batches ``by_id`` yields. A source hides its service's paging, batching and
quirks, and hands back records already reshaped by its ``littrack.normalize`` module.

Two shapes of service fit the one interface:

* **id-listing** services (PubMed's ESearch) name every matching id up front: ``Hits.ids``
  is that list, and the pipeline chooses which of them to ``fetch`` (not those fetched
  earlier in the run, plus ids an earlier run missed); an id asked for but not returned is
  reported in ``Batch.missing``;
* **streaming** services (ClinicalTrials.gov, Europe PMC) send the records with the search
  itself, page by page: ``Hits.ids`` is None, ``fetch`` walks the pages, and a batch that
  carries the count the service announced (``Batch.announced``) lets the pipeline refuse
  to advance the watermark when fewer records arrived.

A new source is a module ``littrack.sources.<name>`` (its name listed in
``littrack.vocab.SOURCES``) with a function ``open_source(settings) -> Source``; nothing in
the pipeline changes.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Sequence
from copy import copy
from dataclasses import dataclass, field
from typing import Any, Protocol, Self, runtime_checkable

from littrack.config import Settings, Topic
from littrack.http import HttpClient
from littrack.normalize import Normalized
from littrack.windows import Window


@dataclass
class Hits:
    """What a topic's search found, before any record is downloaded."""

    ids: list[str] | None  # every matching id (id-listing services); None when streamed
    # The service's data version (ClinicalTrials.gov's dataTimestamp): kept with the
    # watermark; when the next run finds it unchanged, nothing can have changed.
    version: str | None = None
    notes: list[str] = field(default_factory=list)  # the service's warnings about the query
    handle: Any = None  # the source's own state between search and fetch (a query, a WebEnv)


@dataclass
class Batch:
    """Records a source fetched in one go, reconciled against what was asked for."""

    records: list[Normalized]
    deleted: list[str] = field(default_factory=list)  # ids the service says were withdrawn
    missing: list[str] = field(default_factory=list)  # ids asked for but not returned
    # The count the service announced with this batch (the first page of a walk, or of a
    # walk restarted from page 1); the pipeline compares it with what arrived.
    announced: int | None = None
    aliases: dict[str, str] = field(default_factory=dict)  # id asked for -> canonical id
    # Results that are records of another source, by source name (a Europe PMC journal
    # article is the PubMed record with that PMID: stored once, by PubMed), or of a
    # collection littrack does not track (a name that is no source): received, not stored.
    elsewhere: dict[str, list[str]] = field(default_factory=dict)
    # (nct_id, pmid, evidence) links between a trial and an article the batch states.
    links: list[tuple[str, str, str]] = field(default_factory=list)
    # (nct_id, ppr_id, evidence) links between a trial and a preprint of this batch (a
    # preprint has no PMID, so it cannot be one of ``links``).
    preprint_links: list[tuple[str, str, str]] = field(default_factory=list)


class SourceBase:
    """What every source does the same way: ``with_client`` is a shallow copy sending
    through the other client, and ``close`` has nothing to let go of (a source that keeps
    something between topics overrides it)."""

    client: HttpClient

    def with_client(self, client: HttpClient) -> Self:
        other = copy(self)
        other.client = client
        return other

    def close(self) -> None:
        """Nothing kept between topics."""


class Source(Protocol):
    """What the pipeline needs of a service; see the module docstring for the contract."""

    name: str
    client: HttpClient
    # Days a window reaches back before the watermark (late-indexed records).
    overlap_days: int
    # Searches are independent, cheap requests worth starting ahead of their topics on side
    # threads (``with_client`` gives each its own request counts).
    search_ahead: bool

    def search(self, topic: Topic, window: Window) -> Hits: ...

    def count(self, topic: Topic) -> int:
        """The topic's total hits, asked with the smallest request (``check --online``)."""
        ...

    def fetch(self, hits: Hits, ids: Sequence[str] | None = None) -> Iterator[Batch]:
        """The topic's records: ``ids`` of ``hits.ids`` (id-listing), or the whole walk."""
        ...

    def by_id(self, ids: Sequence[str]) -> Iterator[Batch]:
        """Records by id, whatever topic (the records tracked ones link to)."""
        ...

    def with_client(self, client: HttpClient) -> Self:
        """This source sending through another client (a search run ahead on a side thread)."""
        ...

    def close(self) -> None:
        """The run is over: let go of what the source kept between topics (a process)."""
        ...


@runtime_checkable
class Fetching(Protocol):
    """Batches that can tell when all their requests are sent (``Prefetch``)."""

    def __iter__(self) -> Iterator[Batch]: ...

    def __next__(self) -> Batch: ...

    @property
    def all_sent(self) -> bool:
        """Every request of the fetch has been sent (or is under way)."""
        ...

    def close(self) -> None:
        """Not wanted after all: stop, sending nothing more."""
        ...


@runtime_checkable
class Prefetch(Protocol):
    """A source whose fetch can start downloading before its batches are wanted, so the
    pipeline can have a topic's first replies arrive while the topic before it is stored."""

    def prefetch(self, hits: Hits, ids: Sequence[str] | None = None) -> Fetching:
        """``fetch``, with its first requests sent now."""
        ...


@runtime_checkable
class TrialMentions(Protocol):
    """A source that can find works naming a trial (an NCT number) in their text."""

    def trial_mentions(self, nct_ids: Sequence[str], window: Window) -> Iterator[Batch]:
        """Works indexed or updated in ``window`` that name one of ``nct_ids``; each batch's
        ``links`` say which trial each article names."""
        ...


def open_source(name: str, settings: Settings) -> Source:
    """The source ``name`` of one run, with its own HTTP client (pacer, retries, counts)."""
    module = importlib.import_module(f"littrack.sources.{name}")
    source: Source = module.open_source(settings)
    return source
