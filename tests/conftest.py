import pytest

from tests import pg
from tests.fakes import CtgovFake, EutilsFake


@pytest.fixture
def eutils_fake():
    """A started EutilsFake; client base URL: eutils_fake.url + "/entrez/eutils"."""
    with EutilsFake() as fake:
        yield fake
    assert not fake.errors, fake.errors[0]  # a bug inside the fake itself


@pytest.fixture
def ctgov_fake():
    """A started CtgovFake; client base URL: ctgov_fake.url + "/api/v2"."""
    with CtgovFake() as fake:
        yield fake
    assert not fake.errors, fake.errors[0]


@pytest.fixture(scope="session")
def pg_database():
    """A database of its own for this test session on the real PostgreSQL (tests/pg.py)."""
    yield from pg.session_database()


@pytest.fixture
def pg_url(pg_database: str) -> str:
    """The session's PostgreSQL database, emptied for this test: its URL."""
    return pg.empty_schema(pg_database)
