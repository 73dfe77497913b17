"""Which database holds the store, and a connection to it that speaks the store's SQL.

Why a small hand-written layer and not SQLAlchemy: the store's SQL is plain text in the
common subset of SQLite and PostgreSQL (``INSERT … ON CONFLICT``, ``COALESCE``, ``CAST``;
``group_concat`` is created on PostgreSQL by its first migration), so the only translation
needed is the parameter marker (``?`` and ``:name`` → ``%s`` and ``%(name)s``) and the rows'
shape. SQLAlchemy Core would not translate text SQL either; using it would mean rewriting
every statement as expressions, for no gain here. SQLite stays the standard library's
``sqlite3`` exactly as before; PostgreSQL goes through psycopg 3, whose libpq takes the
``postgresql://`` URL and its options (``sslmode``, ``passfile``, …) as they are.

Credentials: a password may come from ``LITTRACK_DATABASE_URL`` or a libpq password file,
never from the config file, and every message goes through ``errors.redact``.
"""

from __future__ import annotations

import itertools
import logging
import re
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from littrack.errors import ConfigError, DatabaseUnreachable, StoreError, redact

if TYPE_CHECKING:
    import psycopg

log = logging.getLogger(__name__)

SQLITE, POSTGRESQL = "sqlite", "postgresql"
INSTALL_HINT = "pip install 'littrack[postgresql]'"


@dataclass(frozen=True)
class Target:
    """A parsed database setting: the SQLite file, or a PostgreSQL URL and what to call it."""

    dialect: str
    path: Path | None = None  # SQLite
    url: str = ""  # PostgreSQL: the libpq URL, options included (never logged as is)
    host: str = ""
    dbname: str = ""

    def __str__(self) -> str:
        if self.dialect == SQLITE:
            return str(self.path)
        return f"PostgreSQL database {self.dbname!r} on {self.host}"


def parse(url: str, *, key: str = "LITTRACK_DATABASE_URL") -> Target:
    """``sqlite:///path`` (or a plain path) or ``postgresql://[user[:pw]@]host[:port]/db``."""
    if url.startswith("sqlite:///"):  # sqlite:///relative/path, sqlite:////absolute/path
        return Target(SQLITE, path=Path(url[len("sqlite:///"):]))
    if "://" not in url:
        return Target(SQLITE, path=Path(url))
    scheme = url.split("://", 1)[0]
    if scheme not in ("postgresql", "postgres"):
        raise ConfigError(f"{key}: unknown database URL scheme {scheme!r} in {redact(url)!r} "
                          f"(use sqlite:///path or postgresql://user@host:port/dbname)")
    try:
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        raise ConfigError(f"{key}: a PostgreSQL store needs psycopg; install it with: "
                          f"{INSTALL_HINT}") from None
    try:
        info = conninfo_to_dict(url)
    except Exception as exc:  # psycopg.ProgrammingError: libpq could not parse it
        raise DatabaseUnreachable(f"{key}: malformed database URL {redact(url)!r}: "
                                  f"{redact(str(exc).strip())}") from None
    host = str(info.get("host") or "localhost")
    dbname = str(info.get("dbname") or info.get("user") or "")
    if not dbname:
        raise DatabaseUnreachable(f"{key}: database URL {redact(url)!r} names no database")
    return Target(POSTGRESQL, url=url, host=f"{host}:{info.get('port') or 5432}",
                  dbname=dbname)


# ---- PostgreSQL ---------------------------------------------------------------------------

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")
_DERIVED = re.compile(r"\b(?:FROM|JOIN)\s*\(\s*SELECT\b", re.IGNORECASE)
_AFTER_TABLE = {"where", "order", "group", "union", "join", "left", "right", "inner", "cross",
                "full", "on", "limit", "having", "except", "intersect", "window", "natural"}


def add_aliases(sql: str) -> str:
    """Name every unnamed subquery in FROM (``FROM (SELECT …) AS _q1``): SQLite allows them
    unnamed, PostgreSQL before 16 does not, and the store's SQL is written once for both."""
    spans = []
    for match in _DERIVED.finditer(sql):
        start = sql.index("(", match.start())
        depth, i, quoted = 0, start, False
        while i < len(sql):
            ch = sql[i]
            if ch == "'":
                quoted = not quoted
            elif not quoted and ch == "(":
                depth += 1
            elif not quoted and ch == ")":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        rest = sql[i + 1:].lstrip()
        word = re.match(r"[A-Za-z_]\w*", rest)
        if word is None or word[0].lower() in _AFTER_TABLE:
            spans.append(i + 1)
    for n, at in enumerate(sorted(spans, reverse=True), 1):
        sql = f"{sql[:at]} AS _q{n}{sql[at:]}"
    return sql


# date('now'): a bare literal would pick PostgreSQL's own date(timestamp); typed as text it
# reaches littrack's date(text, …), which behaves as SQLite's (tables.SUPPORT_SQL).
_DATE_LITERAL = re.compile(r"\bdate\(\s*'", re.IGNORECASE)


def to_pyformat(sql: str) -> str:
    """The store's SQL as PostgreSQL takes it through psycopg: ``?`` / ``:name`` markers as
    ``%s`` / ``%(name)s``, every subquery in FROM named, date literals typed as text."""
    sql = _DATE_LITERAL.sub("date(TEXT '", add_aliases(sql))
    return _NAMED.sub(r"%(\1)s", sql.replace("%", "%%").replace("?", "%s"))


class Row(tuple[Any, ...]):
    """A result row read by position or by column name, like ``sqlite3.Row``."""

    _names: tuple[str, ...]

    def __new__(cls, names: tuple[str, ...], values: Sequence[Any]) -> Row:
        row = super().__new__(cls, values)
        row._names = names
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return super().__getitem__(self._names.index(key))
        return super().__getitem__(key)

    def keys(self) -> tuple[str, ...]:
        return self._names


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], Row]:
    names = tuple(d.name for d in cursor.description or ())
    return lambda values: Row(names, values)


# Rows a server-side cursor brings over per round trip (``PgConnection.stream``): a report
# row is up to a few KB (abstracts), so a slice stays under a few MB.
STREAM_ROWS = 500


class PgConnection:
    """A psycopg connection in autocommit mode, used like the store's ``sqlite3`` one:
    ``execute`` returns a cursor, ``BEGIN`` / ``COMMIT`` are the store's own statements."""

    def __init__(self, target: Target, name: str = "littrack") -> None:
        import psycopg

        self.target = target
        self._cursors = itertools.count(1)  # names of ``stream``'s server-side cursors
        try:
            self.raw: psycopg.Connection[Row] = psycopg.connect(
                target.url, autocommit=True, row_factory=_row_factory,
                application_name=name, connect_timeout=10)
        except psycopg.Error as exc:
            reason = redact(str(exc).strip().splitlines()[0] if str(exc).strip() else
                            type(exc).__name__)
            raise DatabaseUnreachable(f"cannot connect to {target}: {reason}") from None

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return bool(self.raw.info.transaction_status != TransactionStatus.IDLE)

    def execute(self, sql: str, params: Any = ()) -> psycopg.Cursor[Row]:
        with self._lost():
            return self.raw.execute(to_pyformat(sql), params)

    def executemany(self, sql: str, rows: Any) -> None:
        with self._lost(), self.raw.cursor() as cur:
            cur.executemany(to_pyformat(sql), list(rows))

    @contextmanager
    def _lost(self) -> Iterator[None]:
        """A connection lost mid-run (server restarted, network gone) is a StoreError naming
        the database, not a traceback; the open transaction is rolled back by the server."""
        import psycopg

        try:
            yield
        except psycopg.errors.LockNotAvailable:
            raise  # a lock_timeout: the caller's to handle
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            text = str(exc).strip().splitlines()
            raise StoreError(f"{self.target}: {redact(text[0] if text else repr(exc))}"
                             ) from None

    def query(self, sql: str, params: Any = ()) -> Iterator[Row]:
        yield from self.execute(sql, params)

    def stream(self, sql: str, params: Any = ()) -> tuple[list[str], Iterator[Row]]:
        """Column names, and rows that come from the server ``STREAM_ROWS`` at a time, for
        reading more rows than should sit in memory at once.

        ``execute`` reads a whole result into the client before returning (libpq): a
        report of a big first run would hold every new article, abstracts and all. A
        server-side cursor (``DECLARE``) lives only in a transaction, as in
        ``Store.snapshot``; outside one this is ``execute``. Unlike ``Cursor.stream``,
        the connection stays usable for other statements while the rows are read.
        """
        if not self.in_transaction:
            cur: psycopg.Cursor[Row] = self.execute(sql, params)
            return [d.name for d in cur.description or ()], iter(cur)
        with self._lost():
            server: psycopg.ServerCursor[Row] = self.raw.cursor(
                name=f"littrack_rows_{next(self._cursors)}")
            server.itersize = STREAM_ROWS
            server.execute(to_pyformat(sql), params)
        return [d.name for d in server.description or ()], self._drain(server)

    def _drain(self, cur: psycopg.ServerCursor[Row]) -> Iterator[Row]:
        """The cursor's rows, then the cursor closed (also when the reader stops early)."""
        with self._lost(), cur:
            yield from cur

    def close(self) -> None:
        self.raw.close()


class BackgroundCheckpoint:
    """Copies a SQLite store's write-ahead log into the database file on a thread of its own.

    SQLite checkpoints in the committing connection once the log passes 1,000 pages: at the
    end of a topic that writes the whole topic's pages a second time (0.9 s for 10,000
    PubMed records), while nothing else runs. The writer's automatic checkpoint is off
    instead (``PRAGMA wal_autocheckpoint=0``, set by the caller), and after a commit that
    left more than that in the log, a PASSIVE checkpoint runs here, on this thread's own
    connection, beside the next topic's downloads and parsing (sqlite3 lets go of the GIL
    while it works). A PASSIVE checkpoint never blocks the writer or a reader; whatever it
    could not copy is copied by the next one, or by SQLite itself when the store closes.
    """

    LOG_PAGES = 1000  # SQLite's own threshold

    def __init__(self, path: Path) -> None:
        self.path = path
        self.wal = path.with_name(path.name + "-wal")
        self._wanted = threading.Event()
        self._pending = False  # a commit asked for a checkpoint
        self._closing = False
        self._thread: threading.Thread | None = None
        self.done = 0  # checkpoints run, for tests and figures

    def after_commit(self, page_size: int) -> None:
        """A commit happened: checkpoint soon when the log holds more than the threshold."""
        try:
            if self.wal.stat().st_size <= self.LOG_PAGES * page_size:
                return
        except OSError:
            return
        self._pending = True
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, daemon=True,
                                            name="sqlite-checkpoint")
            self._thread.start()
        self._wanted.set()

    def _run(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, timeout=60,
                             check_same_thread=False)
        try:
            db.execute("PRAGMA synchronous=NORMAL")
            while True:
                self._wanted.wait()
                self._wanted.clear()
                if self._pending:
                    self._pending = False
                    try:
                        db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                        self.done += 1
                    except sqlite3.Error as exc:  # a saving, never a failure
                        log.debug("%s: background checkpoint failed: %s", self.path, exc)
                if self._closing:
                    return
        finally:
            db.close()

    def close(self) -> None:
        """Finish the checkpoint asked for, if any; no new one starts."""
        self._closing = True
        self._wanted.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
