"""Delivery bookkeeping: each item exactly once per channel, a failing channel retried later.

For each entry and channel, in this order:

1. **Resend what is pending.** A delivery recorded but never confirmed (the send failed, or
   the process died between sending and confirming) is sent again with the same stored
   bytes and the same Message-ID / idempotency key. A channel whose pending delivery still
   fails stops here: its error is recorded (``littrack status`` shows it) and it is retried
   at the next delivery; the other channels go on.
2. **Plan what is new.** The items the channel has not carried (``digest.collect``: rows of
   the finished units of work it has not considered) become one delivery, recorded as
   pending with its key, payload and item keys, in one transaction with the units it
   considered, *before* anything is sent.
3. **Send, then confirm.** Only a confirmed delivery is done; its items are never planned
   again. An empty digest is not sent (its units are still recorded as
   considered).

Nothing secret is ever stored or logged: passwords and webhook secrets stay in the
environment; payloads hold what the recipients will read anyway.
"""

from __future__ import annotations

import logging
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from littrack.claims import exclusive
from littrack.config import NotifyEntry, Settings
from littrack.database import parse
from littrack.errors import DeliveryError, LittrackError, StopRequested
from littrack.lock import DataDirLock
from littrack.notify import atom, email, webhook
from littrack.notify.digest import Item, collect, count_phrase, render_text
from littrack.store import Store
from littrack.vocab import parse_stamp

log = logging.getLogger("littrack.notify")

# Test-only: the name of a channel after whose send (before its confirmation is recorded)
# the process dies, so tests can prove a crash there never duplicates an item.
CRASH_HOOK = "LITTRACK_TEST_CRASH_AFTER_SEND"


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ChannelResult:
    """What one channel of one entry did in one delivery pass."""

    entry: str
    channel: str
    sent: list[str] = field(default_factory=list)  # delivery ids confirmed now
    resent: int = 0  # of which were pending from an earlier pass
    n_items: int = 0  # new items planned and sent now
    summary: str = ""
    error: str | None = None
    preview: str | None = None  # --dry-run: what would be sent

    @property
    def ok(self) -> bool:
        return self.error is None


def new_delivery_id(entry: str, channel: str, now: datetime) -> str:
    """Unique, sortable and stable once stored: the Message-ID / idempotency key."""
    return f"littrack-{entry}-{channel}-{now.strftime('%Y%m%dT%H%M%SZ')}-{secrets.token_hex(4)}"


class Deliverer:
    """Delivers a settings' entries from one store (the caller holds the data-dir lock)."""

    def __init__(self, settings: Settings, store: Store, now: datetime | None = None) -> None:
        self.settings = settings
        self.store = store
        self.now = now or datetime.now(UTC).replace(microsecond=0)

    def deliver(self, entries: Iterable[NotifyEntry], *, dry_run: bool = False
                ) -> list[ChannelResult]:
        results = []
        for entry in entries:
            for channel in entry.channels:
                results.append(self.channel(entry, channel, dry_run=dry_run))
        return results

    def channel(self, entry: NotifyEntry, channel: str, *, dry_run: bool = False
                ) -> ChannelResult:
        """One channel: resend pending, plan and send what is new; never raises a
        LittrackError (the failure is recorded and returned instead)."""
        result = ChannelResult(entry.name, channel)
        stamp = _iso(self.now)
        pending = self.store.pending_deliveries(entry.name, channel)
        items, units = collect(self.store, entry, channel, stamp)
        result.n_items = len(items)
        result.summary = count_phrase(items)
        if dry_run:
            result.preview = self._preview(entry, channel, pending, items)
            return result
        current: str | None = None
        try:
            for row in pending:
                current = row["delivery_id"]
                self._send(entry, channel, row["delivery_id"], row["payload"])
                self.store.confirm_delivery(row["delivery_id"], _iso(self._clock()))
                result.sent.append(row["delivery_id"])
                result.resent += 1
                log.info("notify %s %s: resent %s (%s)", entry.name, channel,
                         row["delivery_id"], row["summary"])
            current = None
            if not items:
                self.store.record_delivery("", entry.name, channel, stamp, [], "", b"", units)
                return result
            delivery_id = new_delivery_id(entry.name, channel, self.now)
            payload = self._payload(entry, channel, items, delivery_id)
            self.store.record_delivery(delivery_id, entry.name, channel, stamp,
                                       [i.key for i in items], result.summary, payload, units)
            current = delivery_id
            self._send(entry, channel, delivery_id, payload)
            self.store.confirm_delivery(delivery_id, _iso(self._clock()))
            result.sent.append(delivery_id)
            log.info("notify %s %s: sent %s (%s)", entry.name, channel, delivery_id,
                     result.summary)
        except StopRequested:
            raise
        except (LittrackError, OSError) as exc:
            result.error = str(exc) if isinstance(exc, LittrackError) else (
                f"notify {entry.name!r} {channel}: {type(exc).__name__}: {exc}")
            if current is not None:
                self.store.delivery_attempted(current, _iso(self._clock()), result.error)
            log.error("%s; will retry at the next delivery", result.error)
        except Exception as exc:  # a bug: record it, keep the other channels going
            result.error = f"notify {entry.name!r} {channel}: internal error: {type(exc).__name__}"
            if current is not None:
                self.store.delivery_attempted(current, _iso(self._clock()), result.error)
            log.exception("notify %s %s: unexpected error", entry.name, channel)
        return result

    def _clock(self) -> datetime:
        return datetime.now(UTC).replace(microsecond=0)

    def _payload(self, entry: NotifyEntry, channel: str, items: list[Item],
                 delivery_id: str) -> bytes:
        if channel == "email":
            assert entry.email is not None
            return email.build(entry, entry.email, items, delivery_id, self.now)
        if channel == "webhook":
            return webhook.build(entry, items, delivery_id)
        return atom.build(entry, items)

    def _send(self, entry: NotifyEntry, channel: str, delivery_id: str, payload: bytes) -> None:
        self.store.delivery_attempted(delivery_id, _iso(self._clock()), None)
        if channel == "email":
            assert entry.email is not None
            email.send(entry.email, payload, entry.name)
        elif channel == "webhook":
            assert entry.webhook is not None
            webhook.send(entry.webhook, payload, delivery_id, entry.name, self.settings.retry)
        else:
            assert entry.atom is not None
            # The feed is rendered from every stored delivery, this pending one included.
            stored = self.store.delivery_payloads(entry.name, "atom", entry.atom.max_entries)
            atom.write(entry.atom.path, atom.render(entry, entry.atom, stored,
                                                    _iso(self.now)), entry.name)
        if os.environ.get(CRASH_HOOK) == channel:
            os._exit(70)

    def _preview(self, entry: NotifyEntry, channel: str, pending: list[dict[str, object]],
                 items: list[Item]) -> str:
        where = {"email": lambda: ", ".join(entry.email.to) if entry.email else "",
                 "webhook": lambda: entry.webhook.safe_url if entry.webhook else "",
                 "atom": lambda: str(entry.atom.path) if entry.atom else ""}[channel]()
        lines = [f"--- {entry.name} {channel} → {where}"]
        if pending:
            lines.append(f"{len(pending)} unconfirmed delivery(ies) would be resent: "
                         + ", ".join(str(p["delivery_id"]) for p in pending))
        lines.append(render_text(entry, items) if items else "nothing new: nothing is sent")
        return "\n".join(lines)


def is_due(store: Store, entry: NotifyEntry, now: datetime) -> bool:
    """A daily/weekly digest is due when a slot passed since its channels last looked."""
    if entry.when == "after-run":
        return True
    from littrack.crontab import cron_trigger
    from littrack.crontab import is_due as slot_passed

    stamps = [parse_stamp(store.notify_cursor(entry.name, c)[1]) for c in entry.channels]
    last = None if any(s is None for s in stamps) else min(s for s in stamps if s)
    schedule = entry.schedule()
    return slot_passed(cron_trigger(schedule.cron, schedule.timezone), last, now)


def deliver(settings: Settings, *, names: Iterable[str] | None = None,
            after_run: bool = False, dry_run: bool = False, lock_timeout: float = 60.0,
            now: datetime | None = None) -> list[ChannelResult]:
    """Deliver the chosen entries (default: all) under the data-dir lock.

    ``after_run``: what ``littrack run`` and ``serve`` call after each run: the
    ``after-run`` entries, and the daily/weekly digests whose slot has passed.
    """
    chosen = ([settings.notify_entry(n) for n in names] if names
              else list(settings.notify))
    if not chosen:
        return []
    if not settings.shared_store and not settings.db_path.exists():
        log.info("notify: no database yet, nothing to deliver")
        return []
    now = now or datetime.now(UTC).replace(microsecond=0)
    if dry_run:  # reads only: no lock, nothing recorded
        with Store(settings.store_location) as store, store.snapshot():
            return Deliverer(settings, store, now).deliver(chosen, dry_run=True)
    # SQLite: the data-directory lock; PostgreSQL: one delivering worker at a time.
    lock = exclusive(parse(settings.store_location), "(notify)", lock_timeout) \
        if settings.shared_store else DataDirLock(settings.data_dir, lock_timeout)
    with lock, Store(settings.store_location) as store:
        if after_run:
            chosen = [e for e in chosen if is_due(store, e, now)]
        return Deliverer(settings, store, now).deliver(chosen)


def after_run(settings: Settings, lock_timeout: float = 60.0) -> list[ChannelResult]:
    """The hook of ``littrack run`` and ``serve``: never raises a LittrackError (a busy
    data directory or a failing channel is logged; the run's outcome stands)."""
    if not settings.notify:
        return []
    try:
        return deliver(settings, after_run=True, lock_timeout=lock_timeout)
    except LittrackError as exc:
        log.error("notify: not delivered now (%s); the next delivery catches up", exc)
        return []


__all__ = ["ChannelResult", "DeliveryError", "Deliverer", "after_run", "deliver", "is_due"]
