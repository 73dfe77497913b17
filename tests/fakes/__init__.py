"""Loopback fakes of NCBI E-utilities and ClinicalTrials.gov API v2 for tests and benchmarks."""

from .ctgov import CtgovFake
from .eutils import EutilsFake
from .server import FakeServer, Fault, Reply, RequestRecord, serve_forever_in_foreground

__all__ = [
    "CtgovFake",
    "EutilsFake",
    "FakeServer",
    "Fault",
    "Reply",
    "RequestRecord",
    "serve_forever_in_foreground",
]
