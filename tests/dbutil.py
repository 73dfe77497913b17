"""Reading a littrack database from tests, the way an outside reader would."""

from __future__ import annotations

import sqlite3
from pathlib import Path


def db_rows(path: Path, sql: str, args: tuple = ()) -> list[tuple]:
    """Rows of a query on a read-only connection; [] while the database or its schema is
    not there yet (tests poll it while a run in another process creates it)."""
    if not path.exists():
        return []
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return [tuple(r) for r in con.execute(sql, args)]
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        con.close()
