"""Notify at scale: what a delivery costs on a big store (bench/store_scale.py's store).

After the same incremental run as store_scale (1,000 new articles over three topics, 100
trials changed), one ``[[notify]]`` entry over all topics finds its items, builds the e-mail
and webhook bodies of them and delivers them on an Atom channel (it had considered every run
before, so the items are the run's, plus every overdue trial on a first delivery); then the
same once more, with nothing new. Prints seconds per phase and the items found.

    python bench/notify_scale.py [--quick] [--articles N] [--trials N]
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import load, table  # noqa: E402
from bench.store_scale import (  # noqa: E402
    TOPICS,
    big_store_args,
    build_big,
    incremental_records,
    incremental_run,
)
from littrack.config import AtomChannel, EmailChannel, NotifyEntry, Settings  # noqa: E402
from littrack.notify import Deliverer  # noqa: E402
from littrack.notify import email as email_channel  # noqa: E402
from littrack.notify import webhook as webhook_channel  # noqa: E402
from littrack.notify.digest import collect  # noqa: E402
from littrack.store import Store  # noqa: E402


def deliveries(path: Path) -> list[list[object]]:
    entry = NotifyEntry(name="bench", topics=TOPICS,
                        atom=AtomChannel(path.parent / "feeds" / "bench.xml"),
                        email=EmailChannel("127.0.0.1", 25, "none", "a@example.org",
                                           ("b@example.org",)))
    settings = Settings(config_path=path, data_dir=path.parent, topics=())
    rows: list[list[object]] = []
    now = datetime.now(UTC).replace(microsecond=0)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    with Store(path) as store:
        runs = sorted({r["run_id"] for r in store.runs()})
        before = runs[-2]  # the last history run: the cursor stood there before the run
        history = [u for u in store.unconsidered_units("bench", "atom") if u.run_id <= before]
        store.record_delivery("", "bench", "atom", stamp, [], "", b"", history)
        for label in ("the run's items", "nothing new"):
            t0 = time.perf_counter()
            items, _ = collect(store, entry, "atom", stamp)
            t1 = time.perf_counter()
            mail = email_channel.build(entry, entry.email, items, "bench-1", now) \
                if entry.email else b""
            hook = webhook_channel.build(entry, items, "bench-1")
            t2 = time.perf_counter()
            (result,) = Deliverer(settings, store, now).deliver(
                [NotifyEntry(name="bench", topics=TOPICS, atom=entry.atom)])  # collects again
            t3 = time.perf_counter()
            rows.append([label, len(items), f"{t1 - t0:.3f}", f"{t2 - t1:.3f}",
                         f"{len(mail) / 1e3:.0f} / {len(hook) / 1e3:.0f}", f"{t3 - t2:.3f}",
                         result.error or "ok"])
    return rows


def main(argv: list[str] | None = None) -> None:
    articles, trials = big_store_args(__doc__ or "", argv)
    print("## Notify at scale\n")
    print(f"{load()} at start\n")
    new, changed = incremental_records()
    with tempfile.TemporaryDirectory(prefix="littrack-bench-") as d:
        big = Path(d) / "big.sqlite"
        built = build_big(big, articles, trials)
        print(f"Store: {built['articles']:,} articles, {built['trials']:,} trials\n")
        incremental_run(big, new, changed)
        print(table(deliveries(big), ["delivery", "items", "collect s", "build e-mail + "
                                      "webhook s", "e-mail / webhook kB", "atom delivery s",
                                      "outcome"]))
    print(f"\n{load()} at end")


if __name__ == "__main__":
    main()
