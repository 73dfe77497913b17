"""Which worker does which topic×source: a claim held for the duration of one unit of work.

Why: several ``littrack run`` / ``serve`` processes, on one or several machines, may share one
PostgreSQL store. Each topic×source must be fetched by one of them at a time, and a worker
that dies must not leave its claim behind. A PostgreSQL *session* advisory lock does both: it
is held by a connection of its own (not the store's, whose transactions come and go), so it
lasts until released or until the connection ends, which a killed process's does at once.
With SQLite, the data-directory lock already makes a run the only writer, so every claim is
granted.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from littrack.database import PgConnection, Target
from littrack.errors import LockTimeout

_CLASS = 0x4C54  # "LT": the first half of every littrack advisory lock key
VERSION_CLAIM = "(version)"  # the pseudo-topic under which a source's data version is asked
SOURCE_CLAIM = "(source)"  # held while a worker runs a topic of that source


def lock_key(topic: str, source: str) -> int:
    """The second half of the key: a stable 32-bit signed hash of topic and source."""
    value = zlib.crc32(f"{topic}\0{source}".encode())
    return value - (1 << 32) if value >= 1 << 31 else value


class Claims(Protocol):
    def claim(self, topic: str, source: str, wait: float = 0.0) -> bool: ...

    def release(self, topic: str, source: str) -> None: ...

    def round_start(self, own: str) -> str: ...

    def last_worker(self) -> bool: ...

    def close(self) -> None: ...


class LocalClaims:
    """SQLite: the data-directory lock already excludes every other writer."""

    def claim(self, topic: str, source: str, wait: float = 0.0) -> bool:
        return True

    def release(self, topic: str, source: str) -> None:
        pass

    def round_start(self, own: str) -> str:
        return own

    def last_worker(self) -> bool:
        return True

    def close(self) -> None:
        pass


_WORKER = "littrack worker "  # application_name prefix of a worker's claims connection
_WORKERS_KEY = 0  # held shared by every running worker; exclusive by the last one


class AdvisoryClaims:
    """PostgreSQL session advisory locks on a connection of their own.

    Besides one lock per claimed topic×source, every worker holds one lock *shared* for as
    long as it runs; the workers holding it make up the round, and the last of them to
    finish is the one that can take it exclusively.
    """

    def __init__(self, target: Target, run_id: str, *, in_round: bool = True) -> None:
        self.conn = PgConnection(target, name=_WORKER + run_id if in_round else "littrack")
        self.held: set[tuple[str, str]] = set()
        self.in_round = in_round  # False: a claim holder that is not a fetching worker
        if in_round:
            self.conn.execute("SELECT pg_advisory_lock_shared(?, ?)", (_CLASS, _WORKERS_KEY))

    def claim(self, topic: str, source: str, wait: float = 0.0) -> bool:
        """Take the claim; wait up to ``wait`` seconds for another worker to release it."""
        key = lock_key(topic, source)
        if wait <= 0:
            row = self.conn.execute("SELECT pg_try_advisory_lock(?, ?)", (_CLASS, key)).fetchone()
            got = bool(row and row[0])
        else:
            import psycopg

            self.conn.execute(f"SET lock_timeout = {int(wait * 1000)}")
            try:
                self.conn.execute("SELECT pg_advisory_lock(?, ?)", (_CLASS, key))
                got = True
            except psycopg.errors.LockNotAvailable:
                got = False
            finally:
                self.conn.execute("RESET lock_timeout")
        if got:
            self.held.add((topic, source))
        return got

    def release(self, topic: str, source: str) -> None:
        if (topic, source) in self.held:
            self.conn.execute("SELECT pg_advisory_unlock(?, ?)", (_CLASS, lock_key(topic, source)))
            self.held.discard((topic, source))

    def round_start(self, own: str) -> str:
        """When the round began: the earliest start among the workers running now (their
        run ids begin with their start time), so a topic another worker of the round
        finished before this one started is not fetched again."""
        starts = [own]
        for (name,) in self.conn.execute(
                "SELECT application_name FROM pg_stat_activity WHERE datname = "
                "current_database() AND application_name LIKE ?", (_WORKER + "%",)):
            stamp = name[len(_WORKER):].split("-", 1)[0]  # 20261130T060000Z
            if len(stamp) == 16:
                starts.append(f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:"
                              f"{stamp[11:13]}:{stamp[13:15]}Z")
        return min(starts)

    def last_worker(self) -> bool:
        """Leave the round; True when no other worker is still in it (then this one holds
        the round exclusively until it closes, e.g. to resolve links once)."""
        if self.in_round:
            self.conn.execute("SELECT pg_advisory_unlock_shared(?, ?)", (_CLASS, _WORKERS_KEY))
            self.in_round = False
        row = self.conn.execute("SELECT pg_try_advisory_lock(?, ?)",
                                (_CLASS, _WORKERS_KEY)).fetchone()
        return bool(row and row[0])

    def close(self) -> None:
        self.conn.close()  # releases whatever is still held


@contextmanager
def exclusive(target: Target, name: str, wait: float) -> Iterator[None]:
    """Hold one claim (e.g. notification delivery) across workers sharing a PostgreSQL store;
    another process holding it past ``wait`` seconds raises ``LockTimeout``."""
    if target.dialect != "postgresql":
        yield
        return
    claims = AdvisoryClaims(target, "", in_round=False)
    try:
        if not claims.claim(name, "*", wait):
            raise LockTimeout(f"{target}: another littrack holds {name}; waited {wait:g}s")
        yield
    finally:
        claims.close()


def open_claims(target: Target, run_id: str) -> Claims:
    return AdvisoryClaims(target, run_id) if target.dialect == "postgresql" else LocalClaims()
