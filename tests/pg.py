"""The real PostgreSQL server the tests use (127.0.0.1:5432, user postgres, trust auth).

Each test session creates its own database and drops it at the end; each test starts from an
empty ``public`` schema in it. Unreachable server: the PostgreSQL tests skip on a developer's
machine, and fail in CI (``CI`` set), where ``.ci/run`` starts the server first.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator

import pytest

ADMIN_URL = os.environ.get("LITTRACK_TEST_PG_ADMIN",
                           "postgresql://postgres@127.0.0.1:5432/postgres")


def _admin():  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


def url_of(dbname: str) -> str:
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{dbname}"


def session_database() -> Iterator[str]:
    """Create a fresh database for this test session; drop it afterwards."""
    try:
        admin = _admin()
    except Exception as exc:  # ImportError, psycopg.OperationalError
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at {ADMIN_URL} is unreachable in CI: {exc}")
        pytest.skip(f"PostgreSQL at {ADMIN_URL} is unreachable: {exc}")
    name = f"littrack_test_{os.getpid()}_{secrets.token_hex(3)}"
    with admin:
        admin.execute(f"CREATE DATABASE {name}")
        try:
            yield url_of(name)
        finally:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def empty_schema(url: str) -> str:
    """Reset the session database to nothing (tables, views, functions) and return its URL."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP SCHEMA IF EXISTS declared CASCADE")
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
    return url
