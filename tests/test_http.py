"""The one retry policy of ``littrack.http.HttpClient``, over real loopback HTTP.

Both services fail in every way the fakes can inject (429 with and without Retry-After,
5xx, resets, stalls, cut-off bodies, 200s whose body is an error page), and littrack must
ride through each of them while never retrying a request the service called *our* mistake.
Backoff waits are recorded instead of slept (``HttpClient(sleep=...)``), so these tests are
fast and can check the delays themselves.
"""

from __future__ import annotations

import email.utils
import random
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from littrack.config import RetrySettings
from littrack.errors import DeadlineExceeded, MalformedResponse, QueryRejected, SourceError
from littrack.http import HttpClient, Pacer, Response, _retry_after
from littrack.sources.ctgov import _check_version
from tests.fakes import CtgovFake, FakeServer, Fault, Reply, RequestRecord

SECRET = "k3y-THAT-must-NEVER-show"


class Recorder:
    """Stands in for ``time.sleep``: remembers each backoff instead of waiting it out."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


class Scripted(FakeServer):
    """Answers from a script of replies, then 200 ``{"ok": true}``: for shapes no fake has."""

    def __init__(self, replies: list[Reply]) -> None:
        super().__init__()
        self.script = list(replies)

    def route(self, rec: RequestRecord, fault: Fault | None) -> Reply:
        if self.script:
            return self.script.pop(0)
        return Reply(200, '{"ok": true}', "application/json")


def make_client(*, tries: int = 8, timeout: float = 2.0, deadline: float = 30.0,
                base: float = 0.5, cap: float = 4.0, seed: int = 5) -> tuple[HttpClient, Recorder]:
    sleep = Recorder()
    retry = RetrySettings(max_tries=tries, backoff_base=base, backoff_cap=cap, timeout=timeout,
                          topic_deadline=deadline)
    client = HttpClient("ctgov", 1000.0, retry, rng=random.Random(seed), sleep=sleep)
    client.topic = "demo-topic"
    client.deadline = time.monotonic() + deadline
    return client, sleep


@pytest.fixture
def ct() -> Iterator[CtgovFake]:
    with CtgovFake(rate_limit_per_minute=None) as fake:
        yield fake
    assert not fake.errors, fake.errors[0]


def test_every_transient_fault_is_retried_until_success(ct: CtgovFake) -> None:
    """429, 5xx, reset, truncated body and a 200 HTML error page each cost one retry."""
    kinds = ["429", "500", "502", "503", "reset", "truncate", "error200"]
    for kind in kinds:
        ct.faults.push(kind, "/version")
    client, sleep = make_client(tries=len(kinds) + 1)
    response = client.get(f"{ct.url}/api/v2/version", check=_check_version)
    assert response.status == 200 and b"dataTimestamp" in response.body
    assert ct.count("/version") == len(kinds) + 1
    assert [r.fault for r in ct.requests()] == [*kinds, None]
    assert client.stats.requests == len(kinds) + 1 and client.stats.retries == len(kinds)
    assert set(client.stats.retry_reasons) >= {"HTTP 429", "HTTP 500", "malformed reply"}
    assert len(sleep.delays) == len(kinds)


def test_backoff_is_exponential_full_jitter_and_capped(ct: CtgovFake) -> None:
    """Retry n waits a uniform draw from [0, min(cap, base * 2**n)]: spread, never above cap."""
    for _ in range(6):
        ct.faults.push("503", "/version")
    client, sleep = make_client(tries=7, base=0.5, cap=4.0, seed=11)
    client.get(f"{ct.url}/api/v2/version")
    ceilings = [min(4.0, 0.5 * 2 ** n) for n in range(6)]
    assert all(0 <= d <= c for d, c in zip(sleep.delays, ceilings, strict=True))
    assert len(set(sleep.delays)) == 6  # jittered, not a fixed ladder
    # the same seed gives the same waits: backoff is reproducible in tests and benchmarks
    ct.faults.clear()
    for _ in range(6):
        ct.faults.push("503", "/version")
    again, sleep_again = make_client(tries=7, base=0.5, cap=4.0, seed=11)
    again.get(f"{ct.url}/api/v2/version")
    assert sleep_again.delays == sleep.delays


def test_retry_after_is_honoured_up_to_the_cap(ct: CtgovFake) -> None:
    """A 429 with Retry-After waits at least that long (but a hostile value cannot stall us)."""
    ct.faults.push("429", "/version", retry_after=3)
    ct.faults.push("429", "/version", retry_after=3600)
    client, sleep = make_client(base=0.01, cap=10.0)
    client.get(f"{ct.url}/api/v2/version")
    assert sleep.delays[0] >= 3.0
    assert sleep.delays[1] == 10.0
    assert _retry_after(_headers(Retry_After="7")) == 7.0
    later = email.utils.formatdate(time.time() + 120, usegmt=True)
    assert 100 < (_retry_after(_headers(Retry_After=later)) or 0) <= 120
    assert _retry_after(_headers()) is None


def _headers(**items: str) -> object:
    import email.message

    msg = email.message.Message()
    for k, v in items.items():
        msg[k.replace("_", "-")] = v
    return msg


def test_our_own_4xx_is_not_retried_and_quotes_the_service(ct: CtgovFake) -> None:
    """A 400 is a bug in our request: retrying cannot help, the user needs the service's words."""
    client, sleep = make_client()
    with pytest.raises(QueryRejected) as info:
        client.get(f"{ct.url}/api/v2/studies", {"filter.phase": "PHASE2"})
    assert ct.count("/studies") == 1 and sleep.delays == []
    message = str(info.value)
    assert "`filter.phase` is unknown parameter" in message
    assert "demo-topic" in message and "HTTP 400" in message
    assert info.value.status == 400


def test_a_4xx_marked_transient_is_retried() -> None:
    """NCBI relays backend outages as HTTP 400 <ERROR>: the source can mark those retryable."""
    outage = "<eFetchResult><ERROR>Failed to connect to PubOne service</ERROR></eFetchResult>"
    with Scripted([Reply(400, outage, "text/xml")]) as fake:
        client, _ = make_client()
        client.transient_4xx = (b"Failed to connect to PubOne",)
        assert client.get(f"{fake.url}/x").status == 200
        assert fake.count() == 2 and client.stats.retries == 1


def test_a_stalled_reply_times_out_and_is_retried(ct: CtgovFake) -> None:
    """A server that never answers costs one read timeout, not the run."""
    ct.faults.push("stall", "/version", stall_seconds=30)
    client, _ = make_client(timeout=0.3)
    started = time.monotonic()
    assert client.get(f"{ct.url}/api/v2/version").status == 200
    assert time.monotonic() - started < 5
    assert client.stats.retries == 1
    assert next(iter(client.stats.retry_reasons)) in {"TimeoutError", "URLError"}


def test_the_topic_deadline_bounds_a_server_that_always_stalls(ct: CtgovFake) -> None:
    """Even with retries to spare, a stalled server gives up at the per-topic deadline."""
    ct.faults.random(rate=1.0, kinds=["stall"], seed=1, stall_seconds=30)
    client, _ = make_client(tries=1000, timeout=0.25, deadline=1.0, base=0.001, cap=0.01)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded) as info:
        client.get(f"{ct.url}/api/v2/version")
    assert time.monotonic() - started < 3.0
    assert "demo-topic" in str(info.value) and "deadline" in str(info.value)


def test_a_trickling_body_cannot_outlive_the_deadline() -> None:
    """A byte every 50 ms never trips a 1 s read timeout; the topic deadline still ends it."""
    stop = threading.Event()
    server = socket.create_server(("127.0.0.1", 0))

    def trickle() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: 100000\r\n\r\n")
            while not stop.wait(0.05):
                try:
                    conn.sendall(b" ")
                except OSError:
                    return

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        client, _ = make_client(tries=3, timeout=1.0, deadline=0.8)
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            client.get(f"http://127.0.0.1:{server.getsockname()[1]}/slow")
        assert time.monotonic() - started < 3.0
    finally:
        stop.set()
        server.close()
        thread.join(5)


def test_a_body_shorter_than_its_content_length_is_retried(ct: CtgovFake) -> None:
    """A cut-off body must never pass as a complete (shorter) reply."""
    ct.faults.push("truncate", "/version")
    client, _ = make_client()
    response = client.get(f"{ct.url}/api/v2/version")
    assert response.body.endswith(b"}")
    assert client.stats.retry_reasons == {"IncompleteRead": 1}


class RawServer:
    """Answers connection n with ``replies[n]`` verbatim (the last one again when run out),
    then closes: for wire shapes the fakes never produce, like a cut chunked body."""

    def __init__(self, replies: list[bytes]) -> None:
        self.replies = replies
        self.served = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(self.replies[min(self.served, len(self.replies) - 1)])
                self.served += 1

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not)
        except OSError:
            pass
        self.sock.close()
        self.thread.join(5)


CHUNKED_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nTransfer-Encoding: chunked\r\n\r\n"


def test_a_chunked_body_cut_mid_chunk_is_retried() -> None:
    """NCBI streams EFetch replies chunked; a connection lost mid-chunk is a cut-off reply."""
    whole = CHUNKED_HEAD + b"5\r\n<a>hi\r\n4\r\n</a>\r\n0\r\n\r\n"
    cut = CHUNKED_HEAD + b"5\r\n<a>hi\r\n40\r\n</a>"  # promises 64 bytes, sends 4, closes
    server = RawServer([cut, whole])
    try:
        client, _ = make_client()
        response = client.get(f"{server.url}/efetch.fcgi")
    finally:
        server.close()
    assert response.body == b"<a>hi</a>"
    assert server.served == 2 and client.stats.retry_reasons == {"IncompleteRead": 1}


def test_gives_up_after_max_tries_with_a_clear_message(ct: CtgovFake) -> None:
    ct.faults.random(rate=1.0, kinds=["502"], seed=3)
    client, sleep = make_client(tries=3)
    with pytest.raises(SourceError) as info:
        client.get(f"{ct.url}/api/v2/version", {"api_key": SECRET})
    assert ct.count() == 3 and len(sleep.delays) == 2
    message = str(info.value)
    assert "gave up after 3 tries: HTTP 502" in message and "demo-topic" in message
    assert "/api/v2/version" in message and SECRET not in message


def test_a_check_failing_every_time_ends_as_a_source_error(ct: CtgovFake) -> None:
    """200s that a caller rejects (here: HTML instead of JSON) are retried, then reported."""
    ct.faults.random(rate=1.0, kinds=["error200"], seed=3)
    client, _ = make_client(tries=2)
    with pytest.raises(SourceError) as info:
        client.get(f"{ct.url}/api/v2/version", check=_check_version)
    assert "malformed reply" in str(info.value) and "text/html" in str(info.value)


def test_secrets_echoed_by_a_service_are_scrubbed() -> None:
    """NCBI's 429 JSON names the api key; any body we quote must not repeat it."""
    body = f'{{"error":"bad request","api-key":"{SECRET}"}}'
    with Scripted([Reply(400, body, "application/json")]) as fake:
        client, _ = make_client()
        client.secrets = (SECRET,)
        with pytest.raises(QueryRejected) as info:
            client.get(f"{fake.url}/esearch.fcgi", {"api_key": SECRET, "term": "x"})
    assert SECRET not in str(info.value) and SECRET not in (info.value.url or "")
    assert '"api-key":"***"' in str(info.value)  # the body quoted, the key scrubbed


def test_pacer_spaces_request_starts() -> None:
    """Request starts (retries included) never exceed the published rate."""
    pacer = Pacer(40.0)
    starts = []
    for _ in range(11):
        pacer.wait()
        starts.append(time.monotonic())
    # Starts are scheduled 25 ms apart; one thread woken late by the OS can shorten the gap
    # *after* it, never the schedule, so the robust checks are the span and the median gap.
    gaps = sorted(b - a for a, b in zip(starts, starts[1:], strict=False))
    assert starts[-1] - starts[0] >= 10 * 0.025 - 0.002
    assert gaps[len(gaps) // 2] >= 0.025 - 0.002


def test_response_type_is_what_checks_receive(ct: CtgovFake) -> None:
    """Checks get the full body, status and URL (they raise MalformedResponse to retry)."""
    seen: list[Response] = []

    def check(response: Response) -> None:
        seen.append(response)
        if len(seen) == 1:
            raise MalformedResponse("first reply rejected", source="ctgov")

    client, _ = make_client()
    client.get(f"{ct.url}/api/v2/version", check=check)
    assert len(seen) == 2 and seen[1].status == 200 and seen[1].url.endswith("/version")
    assert client.stats.retries == 1


def test_a_stop_request_cuts_a_backoff_short_and_sends_nothing_more() -> None:
    """SIGTERM during a long backoff must not wait it out (serve's bounded stop)."""
    retry = RetrySettings(max_tries=5, backoff_base=600.0, backoff_cap=600.0, timeout=2.0)
    client = HttpClient("ctgov", 1000.0, retry, rng=random.Random(1))  # real time.sleep
    client.stop = threading.Event()

    def stop_then_reject(response: Response) -> None:
        client.stop.set()  # the signal arrives while this reply is being judged
        raise MalformedResponse("not what we wanted", source="ctgov")

    from littrack.errors import StopRequested

    with Scripted([]) as server:
        started = time.monotonic()
        with pytest.raises(StopRequested, match="while backing off"):
            client.get(server.url + "/x", check=stop_then_reject)
        assert time.monotonic() - started < 5  # not the up-to-600 s backoff
        assert server.count() == 1
        with pytest.raises(StopRequested, match="before"):
            client.get(server.url + "/x")
        assert server.count() == 1
