"""Loopback fakes of NCBI E-utilities, ClinicalTrials.gov API v2 and Europe PMC for tests."""

from .ctgov import CtgovFake
from .europepmc import EuropePmcFake
from .eutils import EutilsFake
from .server import FakeServer, Fault, Reply, RequestRecord, serve_forever_in_foreground

__all__ = [
    "CtgovFake",
    "EuropePmcFake",
    "EutilsFake",
    "FakeServer",
    "Fault",
    "Reply",
    "RequestRecord",
    "serve_forever_in_foreground",
]
