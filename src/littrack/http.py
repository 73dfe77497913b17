"""HTTP for both services: pacing, timeouts, one retry policy, request counting.

Neither upstream can be trusted to fail cleanly: NCBI answers 429 without Retry-After,
relays 5xx, cuts bodies off and returns 200s whose body is an ``<ERROR>``;
ClinicalTrials.gov rate-limits and 5xxs. So every request goes through ``HttpClient.send``:

* a pacer keeps request *starts* at least ``1/rate`` seconds apart (retries included), so the
  process never exceeds the service's published rate;
* connect/read timeouts on every request, and a deadline per topic so a stalled server cannot
  hold a run forever;
* retries with exponential backoff and full jitter on 429, 5xx, connection errors, timeouts,
  truncated bodies and bodies that a caller's ``check`` rejects, honouring ``Retry-After``;
* any other 4xx is our own mistake and raises ``QueryRejected`` at once with the service's
  words (except replies a source marks transient in ``transient_4xx``, such as NCBI's 400
  relaying a backend outage);
* a body shorter than its Content-Length is a truncated reply (``http.client`` does not say
  so when a body is read in chunks), and the topic deadline also bounds a server that
  trickles its body slowly enough to dodge the per-read timeout;
* sources that find a reply unusable only after parsing it (``retry_later``) spend the same
  budget with the same backoff, so there is one retry policy for everything.
"""

from __future__ import annotations

import copy
import email.message
import email.utils
import http.client
import logging
import random
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from littrack import __version__
from littrack.config import RetrySettings
from littrack.errors import (
    DeadlineExceeded,
    MalformedResponse,
    QueryRejected,
    SourceError,
    StopRequested,
    Unreachable,
    redact,
)

log = logging.getLogger(__name__)

RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_READ_CHUNK = 64 * 1024
USER_AGENT = f"littrack/{__version__} (+https://pypi.org/project/littrack/)"


@dataclass
class Response:
    status: int
    headers: email.message.Message
    body: bytes
    url: str
    seconds: float = 0.0  # from sending to the whole body read (no pacing, no retries)


class Pacer:
    """Spaces request starts at least ``interval`` seconds apart, across threads."""

    def __init__(self, rate_per_second: float) -> None:
        self.interval = 1.0 / rate_per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        if start > now:
            time.sleep(start - now)


@dataclass
class Stats:
    requests: int = 0
    retries: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count_request(self) -> None:
        with self._lock:  # the EFetch prefetch thread and the main thread share a client
            self.requests += 1

    def count_retry(self, reason: str) -> None:
        with self._lock:
            self.retries += 1
            self.retry_reasons[reason] = self.retry_reasons.get(reason, 0) + 1

    def absorb(self, other: Stats) -> None:
        """Add another client's counts (a search run ahead on its own client)."""
        with self._lock:
            self.requests += other.requests
            self.retries += other.retries
            for reason, n in other.retry_reasons.items():
                self.retry_reasons[reason] = self.retry_reasons.get(reason, 0) + n


class HttpClient:
    """One client per service; ``stats`` counts what a run spent."""

    def __init__(self, source: str, rate_per_second: float, retry: RetrySettings,
                 *, rng: random.Random | None = None,
                 sleep: Callable[[float], None] = time.sleep, setting: str = "") -> None:
        self.source = source
        self.retry = retry
        self.pacer = Pacer(rate_per_second)
        self.stats = Stats()
        self.deadline: float | None = None  # time.monotonic() value set per topic
        self.topic: str | None = None
        # Set by the pipeline: a stop request cuts a backoff wait short instead of sitting
        # out the whole delay (and then the next request's timeout).
        self.stop: threading.Event | None = None
        # Values never to repeat in a message or log line (the NCBI API key), even when a
        # service echoes them in an error body.
        self.secrets: tuple[str, ...] = ()
        # Substrings of a 4xx body that mean "our backend failed, try again" rather than
        # "your request is wrong" (NCBI relays PubOne outages as HTTP 400 <ERROR>s).
        self.transient_4xx: tuple[bytes, ...] = ()
        # Where the user sets this service's address (named in the unreachable hint).
        self.setting = setting
        # Set once any reply arrived: from then on a refused connection is transient.
        self.reached = False
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._sleep_fn = sleep
        # Loopback fakes must never be reached through a proxy from the environment.
        self._direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._default = urllib.request.build_opener()

    def for_topic(self, topic: str) -> HttpClient:
        """A client with its own request counts and deadline that shares this one's pacer.

        For a search run ahead of its topic on another thread: its requests are counted for
        that topic, and the one pacer keeps the process under the service's rate.
        """
        client = copy.copy(self)  # same pacer, retry policy, secrets and openers
        client.stats, client.topic, client.deadline = Stats(), topic, None
        return client

    def get(self, url: str, params: dict[str, str] | None = None,
            check: Callable[[Response], None] | None = None) -> Response:
        if params:
            from urllib.parse import urlencode

            url = f"{url}?{urlencode(params)}"
        return self.send(urllib.request.Request(url, method="GET"), check)

    def send(self, request: urllib.request.Request,
             check: Callable[[Response], None] | None = None) -> Response:
        """Send with pacing and retries; return a 2xx response that passed ``check``."""
        request.add_header("User-Agent", USER_AGENT)
        safe_url = self.scrub(request.full_url)
        short = endpoint(safe_url)
        last: str = "no attempt"
        for attempt in range(self.retry.max_tries):
            if self.stop is not None and self.stop.is_set():
                raise StopRequested(f"stop requested before {short}")
            self._check_deadline(short, last)
            self.pacer.wait()
            self.stats.count_request()
            retry_after: float | None = None
            started = time.monotonic()
            try:
                response = self._open(request)
                response.seconds = time.monotonic() - started
                self.reached = True
                log.debug("%s %s %s%s: %d in %.2fs", self.source, request.get_method(), short,
                          _short_params(request, safe_url), response.status,
                          time.monotonic() - started)
                if check is not None:
                    check(response)
                return response
            except urllib.error.HTTPError as exc:
                self.reached = True
                log.debug("%s %s %s%s: %d in %.2fs", self.source, request.get_method(), short,
                          _short_params(request, safe_url), exc.code,
                          time.monotonic() - started)
                body = _read_quietly(exc)
                transient = any(marker in body for marker in self.transient_4xx)
                if exc.code not in RETRY_STATUS and not transient:
                    text = self.scrub(body.decode("utf-8", "replace").strip()[:500])
                    raise QueryRejected(
                        f"HTTP {exc.code} from {short}: {text or exc.reason}",
                        source=self.source, topic=self.topic, url=safe_url, status=exc.code,
                    ) from None
                last = f"HTTP {exc.code}"
                retry_after = _retry_after(exc.headers)
            except MalformedResponse as exc:
                last = f"malformed reply ({exc})"
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                reason = getattr(exc, "reason", exc)
                last = f"{type(exc).__name__}: {reason}"
                if not self.reached and isinstance(reason, (socket.gaierror,
                                                            ConnectionRefusedError)):
                    # Nothing ever answered at this address: a wrong URL or no network,
                    # which waiting and retrying will not fix.
                    what = ("the name does not resolve" if isinstance(reason, socket.gaierror)
                            else "the connection was refused")
                    hint = f"; check the network or {self.setting}" if self.setting else ""
                    raise Unreachable(f"{self.source} unreachable at "
                                      f"{endpoint(safe_url, path=False)}: {what}{hint}",
                                      source=self.source, topic=self.topic,
                                      url=short) from None
            if attempt + 1 >= self.retry.max_tries:
                break
            self.retry_later(attempt, last, safe_url, retry_after)
        raise SourceError(f"gave up after {self.retry.max_tries} tries: {self.scrub(last)} "
                          f"({short})", source=self.source, topic=self.topic, url=short)

    def retry_later(self, attempt: int, last: str, url: str,
                    retry_after: float | None = None) -> None:
        """Count, log and wait out retry number ``attempt + 1`` (backoff, deadline-bounded).

        ``send`` calls it for transport failures; a source calls it when a reply passed the
        transport but failed to parse, so both spend one budget under one policy.
        """
        url, last = self.scrub(url), self.scrub(last)
        delay = self._backoff(attempt, retry_after)
        self.stats.count_retry(last.split(":")[0].split(" (")[0])
        # INFO: a retry that then succeeds is the policy working, not a problem to mail
        # about; the failure after the last one is logged as an error by the pipeline.
        log.info("%s: %s from %s; retry %d/%d in %.1fs", self.source, last, endpoint(url),
                 attempt + 1, self.retry.max_tries - 1, delay)
        log.debug("%s: the request retried was %s", self.source, url)
        self._sleep(delay, url, last)

    def scrub(self, text: str) -> str:
        """``redact`` plus removal of this client's secrets wherever they appear."""
        text = redact(text)
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def _open(self, request: urllib.request.Request) -> Response:
        opener = self._direct if _is_loopback(request.full_url) else self._default
        # urllib applies one timeout to the connect and to each socket read.
        timeout = self.retry.timeout
        if self.deadline is not None:
            timeout = max(0.1, min(timeout, self.deadline - time.monotonic()))
        with opener.open(request, timeout=timeout) as resp:
            expected = resp.length  # Content-Length, when the server sent one
            parts: list[bytes] = []
            received = 0
            while True:
                # At most one recv per read (read() would block until 64 KiB arrived), so
                # the topic deadline also bounds a server that trickles its body.
                chunk = resp.read1(_READ_CHUNK)
                if not chunk:
                    break
                parts.append(chunk)
                received += len(chunk)
                if self.deadline is not None and time.monotonic() >= self.deadline:
                    raise DeadlineExceeded(
                        f"topic deadline of {self.retry.topic_deadline:g}s passed while "
                        f"reading a reply ({received} bytes so far) from "
                        f"{self.scrub(request.full_url)}", source=self.source,
                        topic=self.topic, url=self.scrub(request.full_url))
            body = b"".join(parts)
            if expected is not None and received < expected:
                # http.client only notices a cut-off body on an unbounded read().
                raise http.client.IncompleteRead(body, expected - received)
            return Response(resp.status, resp.headers, body, resp.url)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        ceiling = min(self.retry.backoff_cap, self.retry.backoff_base * (2 ** attempt))
        with self._rng_lock:
            delay = self._rng.uniform(0, ceiling)  # full jitter
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.retry.backoff_cap))
        return delay

    def _check_deadline(self, url: str, last: str) -> None:
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise DeadlineExceeded(f"topic deadline of {self.retry.topic_deadline:g}s passed "
                                   f"(last: {last}) at {url}",
                                   source=self.source, topic=self.topic, url=url)

    def _sleep(self, delay: float, url: str, last: str) -> None:
        if self.deadline is not None and time.monotonic() + delay >= self.deadline:
            raise DeadlineExceeded(f"topic deadline of {self.retry.topic_deadline:g}s would "
                                   f"pass while backing off (last: {last}) at {url}",
                                   source=self.source, topic=self.topic, url=url)
        if self.stop is not None and self._sleep_fn is time.sleep:
            if self.stop.wait(delay):
                raise StopRequested(f"stop requested while backing off ({last})")
            return
        self._sleep_fn(delay)


def endpoint(url: str, path: bool = True) -> str:
    """A URL without its query (``https://host/path``): what a log line at INFO and above
    names, so it stays one short line (the full URL is logged at DEBUG)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" + (parts.path if path else "")


def _short_params(request: urllib.request.Request, url: str) -> str:
    """The request's parameters for a -v line, each value cut to 40 characters."""
    from urllib.parse import parse_qsl

    query = urlsplit(url).query
    if not query and isinstance(request.data, bytes):
        query = request.data.decode("utf-8", "replace")
    pairs = parse_qsl(query)
    if not pairs:
        return ""
    shown = [f"{k}={v if len(v) <= 40 else v[:37] + '...'}" for k, v in pairs
             if k not in ("tool", "email", "api_key")]
    return " " + " ".join(shown)


def _read_quietly(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read()
    except (OSError, http.client.HTTPException):
        return b""
    finally:
        exc.close()


def _retry_after(headers: email.message.Message | None) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value)
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return socket.inet_aton(host)[0] == 127 if "." in host else host == "::1"
    except OSError:
        return False
