"""A stop request is honoured inside a batch, not only between batches (issue 11, point 4):
parsing an EFetch reply and storing a batch each look at it every few records."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from littrack.errors import StopRequested
from littrack.normalize import Normalized
from littrack.normalize.pubmed_efetch import parse_efetch
from littrack.sources import Batch
from littrack.sources.pubmed import parse_into
from littrack.store import Store
from tests.builders.pubmed import article_xml, efetch_xml

BODY = efetch_xml([article_xml(str(5000 + i)) for i in range(200)])


def test_parsing_a_batch_stops_when_asked() -> None:
    stop = threading.Event()
    whole = Batch([])
    parse_into(BODY, whole, stop)  # not set: the whole batch
    assert len(whole.records) == 200
    stop.set()
    part = Batch([])
    with pytest.raises(StopRequested, match="while parsing a batch"):
        parse_into(BODY, part, stop)
    assert len(part.records) < 200


def test_storing_a_batch_stops_when_asked_and_rolls_back(tmp_path: Path) -> None:
    records = [r for r in parse_efetch(BODY) if isinstance(r, Normalized)]
    stop = threading.Event()
    with Store(tmp_path / "s.sqlite") as store:
        stop.set()
        with pytest.raises(StopRequested, match="while storing a batch"):
            with store.transaction():
                store.save_records(records, "2026-01-01T00:00:00Z", "r1", stop)
        assert store.counts()["articles"] == 0
        stop.clear()
        with store.transaction():
            assert len(store.save_records(records, "2026-01-01T00:00:00Z", "r1", stop).new
                       ) == 200
