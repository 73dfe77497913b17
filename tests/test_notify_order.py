"""Notifications whatever order runs start and commit in: a run that started first but
committed last, and a run still going while a delivery happens, are delivered once each,
never lost (on a SQLite file and on the real PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from littrack.config import load_settings
from littrack.normalize.ctgov import normalize_study
from littrack.notify import Deliverer, deliver
from littrack.pipeline import new_run_id, run
from littrack.store import Store
from tests.builders.ctgov import study
from tests.fakes import CtgovFake, EutilsFake
from tests.fakes.webhook import WebhookReceiver
from tests.test_notify import TOPICS, env_for, expected_keys, setup

DATABASES = ["sqlite", "postgresql"]


def database_env(request: pytest.FixtureRequest, db: str) -> dict[str, str]:
    return {"LITTRACK_DATABASE_URL": request.getfixturevalue("pg_url")} \
        if db == "postgresql" else {}


def keys_per_delivery(hook: WebhookReceiver) -> list[set[str]]:
    return [{i["key"] for i in p.json["items"]} for p in hook.accepted.values()]


@pytest.mark.parametrize("db", DATABASES)
def test_a_run_that_started_first_but_committed_last_is_delivered_once(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake, db: str,
        request: pytest.FixtureRequest) -> None:
    """The ClinicalTrials.gov run is delivered; then a PubMed run whose id sorts before it
    (it started earlier: it waited for the lock, or ran in another worker) commits. Its
    articles arrive at the next delivery, once; nothing arrives twice."""
    with WebhookReceiver() as hook:
        config, _, corpus = setup(tmp_path, eutils_fake, ctgov_fake, None, hook)
        settings = load_settings(config, env={**env_for(tmp_path, eutils_fake, ctgov_fake),
                                              **database_env(request, db)})
        want = expected_keys(corpus)
        start = datetime.now(UTC).replace(microsecond=0)
        later = run(settings, sources=["ctgov"], clock=lambda: start, write_report=False)
        assert [r.status for r in later.results] and all(
            r.status == "ok" for r in later.results)
        (first,) = [r for r in deliver(settings) if r.channel == "webhook"]
        assert first.ok and first.n_items
        earlier = run(settings, sources=["pubmed"], write_report=False,
                      clock=lambda: start - timedelta(seconds=30))
        assert all(r.status == "ok" for r in earlier.results)
        assert earlier.run_id < later.run_id  # sorts below everything delivered so far
        deliver(settings)
        deliver(settings)  # nothing new: nothing sent
        keys = [i["key"] for i in hook.accepted_items()]
        assert len(keys) == len(set(keys))
        assert set(keys) == want
        assert len(hook.accepted) == 2
        second = keys_per_delivery(hook)[1]
        assert second and all(":pubmed:" in k for k in second)


@pytest.mark.parametrize("db", DATABASES)
def test_a_run_still_going_at_a_delivery_arrives_at_the_next_once(
        tmp_path: Path, eutils_fake: EutilsFake, ctgov_fake: CtgovFake, db: str,
        request: pytest.FixtureRequest) -> None:
    """A delivery happens while one run has finished one topic and is still on another
    (another worker delivered meanwhile). The finished topic goes out now; the other's new
    trial and the trial change it saw go out at the next delivery, once each."""
    with WebhookReceiver() as hook:
        _, settings, _ = setup(tmp_path, eutils_fake, ctgov_fake, None, hook)
        where = request.getfixturevalue("pg_url") if db == "postgresql" \
            else str(tmp_path / "data" / "littrack.sqlite")
        entry = settings.notify_entry("ptsd-team")
        t = "2026-11-30T10:00:00Z"
        window = (None, "2026-11-30")

        def unit(store: Store, run_id: str, topic: str, studies: list[dict[str, object]],
                 new: list[str], *, finish: bool = True) -> None:
            store.start_run(run_id, topic, "ctgov", t, window)
            if not finish:
                return
            with store.transaction():  # as pipeline: rows and final status commit together
                store.save_records([normalize_study(s) for s in studies], t, run_id)
                store.match(topic, "ctgov", new, run_id)
                store.finish_run(run_id, topic, "ctgov", t, "ok")

        def delivered(store: Store) -> set[str]:
            before = len(hook.accepted)
            (result,) = [r for r in Deliverer(settings, store).deliver([entry])
                         if r.channel == "webhook"]
            assert result.ok, result.error
            return set().union(*keys_per_delivery(hook)[before:])

        with Store(where) as store:
            r0, r1 = "20261130T100000Z-0000a0", "20261130T110000Z-0000b0"
            unit(store, r0, TOPICS[0], [study("NCT09800001", status="RECRUITING")],
                 ["NCT09800001"])
            assert delivered(store) == {f"new:{TOPICS[0]}:ctgov:NCT09800001"}

            unit(store, r1, TOPICS[0], [study("NCT09800002")], ["NCT09800002"])
            unit(store, r1, TOPICS[1], [], [], finish=False)  # still running
            assert delivered(store) == {f"new:{TOPICS[0]}:ctgov:NCT09800002"}

            with store.transaction():  # the running topic commits, with a trial change
                store.save_records([normalize_study(study("NCT09800001", status="COMPLETED")),
                                    normalize_study(study("NCT09800003"))], t, r1)
                store.match(TOPICS[1], "ctgov", ["NCT09800003"], r1)
                store.finish_run(r1, TOPICS[1], "ctgov", t, "ok")
            assert delivered(store) == {f"new:{TOPICS[1]}:ctgov:NCT09800003",
                                        f"trial_change:NCT09800001:{r1}"}
            assert delivered(store) == set()  # nothing twice
        keys = [i["key"] for i in hook.accepted_items()]
        assert len(keys) == len(set(keys)) == 4


def test_run_ids_of_one_process_sort_by_start_within_a_second() -> None:
    now = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)
    ids = [new_run_id(now) for _ in range(50)] + [new_run_id(now + timedelta(seconds=1))]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)
