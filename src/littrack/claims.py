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
from typing import Protocol

from littrack.database import PgConnection, Target

_CLASS = 0x4C54  # "LT": the first half of every littrack advisory lock key


def lock_key(topic: str, source: str) -> int:
    """The second half of the key: a stable 32-bit signed hash of topic and source."""
    value = zlib.crc32(f"{topic}\0{source}".encode())
    return value - (1 << 32) if value >= 1 << 31 else value


class Claims(Protocol):
    def claim(self, topic: str, source: str, wait: float = 0.0) -> bool: ...

    def release(self, topic: str, source: str) -> None: ...

    def held_elsewhere(self, topic: str, source: str) -> bool: ...

    def close(self) -> None: ...


class LocalClaims:
    """SQLite: the data-directory lock already excludes every other writer."""

    def claim(self, topic: str, source: str, wait: float = 0.0) -> bool:
        return True

    def release(self, topic: str, source: str) -> None:
        pass

    def held_elsewhere(self, topic: str, source: str) -> bool:
        return False

    def close(self) -> None:
        pass


class AdvisoryClaims:
    """PostgreSQL session advisory locks on a connection of their own."""

    def __init__(self, target: Target) -> None:
        self.conn = PgConnection(target)
        self.held: set[tuple[str, str]] = set()

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

    def held_elsewhere(self, topic: str, source: str) -> bool:
        """Whether another worker holds the claim right now. Read from ``pg_locks``, never by
        taking the lock, so the probe cannot make a worker that wants it skip it."""
        row = self.conn.execute(
            "SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted AND classid = ? "
            "AND objid = ? AND objsubid = 2 AND pid <> pg_backend_pid() LIMIT 1",
            (_CLASS, lock_key(topic, source) % (1 << 32))).fetchone()
        return row is not None

    def close(self) -> None:
        self.conn.close()  # releases whatever is still held


def open_claims(target: Target) -> Claims:
    return AdvisoryClaims(target) if target.dialect == "postgresql" else LocalClaims()
