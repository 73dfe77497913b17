"""An unreachable service fails fast and says why (issue 11, point 3).

Connection refused comes from a loopback port nobody listens on; a DNS failure from a name
under ``.invalid`` (RFC 2606: never resolves). A failure after the service has answered once
is transient and keeps the retry policy. Log lines at INFO and above carry no query string.
"""

from __future__ import annotations

import logging
import random
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from littrack.config import RetrySettings, load_settings
from littrack.errors import SourceError, Unreachable
from littrack.http import HttpClient
from littrack.pipeline import run
from tests.corpus import populate, settings_for, write_test_config
from tests.fakes import CtgovFake, EutilsFake


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def settings_at(tmp_path: Path, eutils: str, ctgov: str):  # noqa: ANN201
    config = write_test_config(tmp_path, backoff=1.0)  # the shipped backoff: no shortcut
    return load_settings(config, env={"LITTRACK_DATA_DIR": str(tmp_path / "data"),
                                      "LITTRACK_EUTILS_URL": eutils,
                                      "LITTRACK_CTGOV_URL": ctgov})


@pytest.mark.parametrize("where", ["refused", "dns"])
def test_both_services_unreachable_skip_their_topics_at_once(tmp_path: Path,
                                                             where: str) -> None:
    if where == "refused":
        eutils = f"http://127.0.0.1:{closed_port()}/entrez/eutils"
        ctgov = f"http://127.0.0.1:{closed_port()}/api/v2"
    else:
        eutils, ctgov = "http://eutils.littrack.invalid/e", "http://ctgov.littrack.invalid/v2"
    settings = settings_at(tmp_path, eutils, ctgov)
    result = run(settings, write_report=False)
    assert result.exit_code == 1
    by_source = {s: [r for r in result.results if r.source == s] for s in ("pubmed", "ctgov")}
    for source, setting in (("pubmed", "LITTRACK_EUTILS_URL"), ("ctgov", "LITTRACK_CTGOV_URL")):
        first, *rest = by_source[source]
        assert first.status == "failed" and first.n_retries == 0
        assert f"{source} unreachable" in (first.error or "") and setting in (first.error or "")
        assert rest and all("skipped:" in (r.error or "") for r in rest)
    # one request for ClinicalTrials.gov; PubMed's searches start side by side, one each
    assert sum(r.n_requests for r in by_source["ctgov"]) == 1
    assert sum(r.n_requests for r in by_source["pubmed"]) <= len(by_source["pubmed"])


class _Once(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        body = b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server_then_gone() -> Iterator[tuple[str, HTTPServer]]:
    server = HTTPServer(("127.0.0.1", 0), _Once)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v", server
    server.shutdown()
    server.server_close()


def test_a_refusal_after_the_service_answered_is_retried(
        server_then_gone: tuple[str, HTTPServer]) -> None:
    url, server = server_then_gone
    delays: list[float] = []
    client = HttpClient("ctgov", 1000.0, RetrySettings(max_tries=3, backoff_base=0.01),
                        rng=random.Random(1), sleep=delays.append)
    assert client.get(url).status == 200
    server.shutdown()
    server.server_close()  # the port now refuses: a restart, say; worth retrying
    with pytest.raises(SourceError) as info:
        client.get(url)
    assert not isinstance(info.value, Unreachable)
    assert client.stats.retries == 2 and len(delays) == 2


def test_info_lines_carry_no_query_strings(tmp_path: Path, eutils_fake: EutilsFake,
                                           ctgov_fake: CtgovFake,
                                           caplog: pytest.LogCaptureFixture) -> None:
    settings = settings_for(tmp_path, eutils_fake, ctgov_fake)
    populate(settings, eutils_fake, ctgov_fake, articles=6, trials=3)
    eutils_fake.faults.push("503", "esearch.fcgi")
    ctgov_fake.faults.push("503", "/studies")
    with caplog.at_level(logging.DEBUG, logger="littrack"):
        assert run(settings, write_report=False).exit_code == 0
    loud = [r.getMessage() for r in caplog.records if r.levelno >= logging.INFO]
    assert any("retry 1/" in m for m in loud)
    assert not [m for m in loud if "?" in m or "term=" in m or "query." in m], loud
    quiet = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert any("esearch.fcgi" in m and "term=" in m for m in quiet)  # -v: every request
