"""Shared base of the loopback fakes.

A `FakeServer` is a threaded HTTP/1.0 server on 127.0.0.1 (port 0 by default) that logs every
request, optionally adds latency, enforces a sliding-window rate limit and injects faults before
handing the request to the subclass's `route()`. All mutable state sits behind `self.lock`.
"""

from __future__ import annotations

import random
import signal
import socket
import struct
import sys
import threading
import time
import traceback
from collections import Counter, defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import Message
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

HTTP_FAULTS = ("429", "500", "502", "503")
FAULT_KINDS = (*HTTP_FAULTS, "reset", "stall", "truncate", "error200", "short")
RANDOM_DEFAULT_KINDS = (*HTTP_FAULTS, "reset", "truncate")


@dataclass
class Reply:
    status: int
    body: bytes | str
    content_type: str = "text/plain; charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RequestRecord:
    method: str
    path: str  # URL path without the query string
    target: str  # raw request target (path + query) as sent
    params: dict[str, str]  # GET query merged with the POST form body; repeated keys keep the last
    headers: Message  # case-insensitive: rec.headers.get("user-agent")
    client: str  # client IP
    time: float  # time.monotonic() at arrival
    status: int | None = None  # None until answered, and for "reset"
    fault: str | None = None  # kind of the fault injected into this request, if any


@dataclass
class Fault:
    kind: str
    path_suffix: str | None = None
    opts: dict = field(default_factory=dict)


class Faults:
    """Deterministic fault injection: a FIFO of one-shot faults plus an optional seeded mode."""

    def __init__(self, fake: FakeServer):
        self._fake = fake
        self._queue: list[Fault] = []
        self._random: tuple[random.Random, float, tuple[str, ...], str | None, dict] | None = None
        self.injected: Counter[str] = Counter()

    def _check(self, kinds) -> None:
        for kind in kinds:
            if kind not in self._fake.fault_kinds:
                raise ValueError(f"{type(self._fake).__name__} does not support fault {kind!r}")

    def push(self, kind: str, path_suffix: str | None = None, **opts) -> None:
        """Queue a one-shot fault for the next request whose path ends with `path_suffix`.

        opts: retry_after (seconds, "429"), stall_seconds (default 5, "stall"),
        share (default 0.5, "short"), message ("error200").
        """
        self._check([kind])
        with self._fake.lock:
            self._queue.append(Fault(kind, path_suffix, opts))

    def random(
        self,
        rate: float = 0.2,
        kinds=RANDOM_DEFAULT_KINDS,
        seed: int = 1234,
        path_suffix: str | None = None,
        **opts,
    ) -> None:
        """Fail a seeded share `rate` of matching requests with a kind drawn from `kinds`."""
        kinds = tuple(kinds)
        self._check(kinds)
        with self._fake.lock:
            self._random = (random.Random(seed), rate, kinds, path_suffix, opts)

    def clear(self) -> None:
        with self._fake.lock:
            self._queue.clear()
            self._random = None

    def take(self, path: str) -> Fault | None:
        """Called under the fake's lock: the fault to apply to this request, if any."""
        applies = self._fake.fault_applies
        for i, fault in enumerate(self._queue):
            if _suffix(path, fault.path_suffix) and applies(fault.kind, path):
                self.injected[fault.kind] += 1
                return self._queue.pop(i)
        if self._random is not None:
            rng, rate, kinds, suffix, opts = self._random
            if _suffix(path, suffix) and rng.random() < rate:
                kind = rng.choice(kinds)
                if applies(kind, path):
                    self.injected[kind] += 1
                    return Fault(kind, suffix, opts)
        return None


def _suffix(path: str, suffix: str | None) -> bool:
    return suffix is None or path.endswith(suffix)


class SlidingWindow:
    """Per-identity sliding-window counter of accepted requests."""

    def __init__(self, window: float):
        self.window = window
        self._hits: defaultdict[str, deque[float]] = defaultdict(deque)

    def hit(self, key: str, limit: int, now: float) -> tuple[bool, int]:
        """(accepted, requests in the window including this one)."""
        hits = self._hits[key]
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= limit:
            return False, len(hits) + 1
        hits.append(now)
        return True, len(hits)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"  # one request per connection: nothing lingers after stop()

    def do_GET(self) -> None:
        self.server.fake._serve(self)

    do_POST = do_GET

    def log_message(self, format, *args) -> None:  # noqa: A002 - stdlib signature
        pass


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def handle_error(self, request, client_address) -> None:
        exc = sys.exc_info()[1]
        if isinstance(exc, ConnectionError | TimeoutError):
            return  # the client went away (timed out, reset): nothing to report
        self.fake.errors.append(traceback.format_exc())
        traceback.print_exc()


class FakeServer:
    """Base of the fakes. Use as a context manager or call start()/stop()."""

    prefix = ""  # path prefix of the service, e.g. "/api/v2"
    window = 1.0  # rate-limit window in seconds
    fault_kinds = frozenset(FAULT_KINDS) - {"short"}

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0):
        self.host, self.port = host, port
        self.lock = threading.RLock()
        self.latency = 0.0  # seconds added to every request, server-side
        # Called with each request (logged, within the rate limit) on its handler thread
        # before it is answered: a test may hold it there, or return the Reply to send.
        self.before_reply: Callable[[RequestRecord], Reply | None] | None = None
        self.log: list[RequestRecord] = []
        self.faults = Faults(self)
        self.rate_limited = 0  # 429s sent by the rate limiter (not by injected faults)
        self.errors: list[str] = []  # tracebacks of bugs inside the fake
        self._limiter = SlidingWindow(self.window)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # lifecycle -----------------------------------------------------------------------------

    def start(self):
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer((self.host, self.port), _Handler)
        self._httpd.fake = self
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name=f"{type(self).__name__}:{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # wakes stalled handlers, which then drop their connection
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("fake not started")
        return f"http://{self.host}:{self.port}"

    # request log ---------------------------------------------------------------------------

    def requests(self, path_suffix: str | None = None) -> list[RequestRecord]:
        with self.lock:
            return [r for r in self.log if _suffix(r.path, path_suffix)]

    def count(self, path_suffix: str | None = None) -> int:
        return len(self.requests(path_suffix))

    # hooks for subclasses ------------------------------------------------------------------

    def route(self, rec: RequestRecord, fault: Fault | None) -> Reply:
        return Reply(404, "Not Found\n")

    def rate_check(self, rec: RequestRecord) -> Reply | dict[str, str]:
        """Under the lock: a 429 Reply, or headers to add to a successful reply."""
        return {}

    def too_many_requests(self, rec: RequestRecord) -> Reply:
        return Reply(429, "Too Many Requests\n")

    def error200(self, rec: RequestRecord, fault: Fault) -> Reply:
        return Reply(200, "<html><body>Service unavailable</body></html>", "text/html")

    def fault_applies(self, kind: str, path: str) -> bool:
        return True

    # the request pipeline ------------------------------------------------------------------

    def _serve(self, h: _Handler) -> None:
        url = urlsplit(h.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        if h.command == "POST":
            body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
            params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        rec = RequestRecord(
            h.command, url.path, h.path, params, h.headers, h.client_address[0], time.monotonic()
        )
        with self.lock:
            self.log.append(rec)
            extra = self.rate_check(rec)
            fault = None if isinstance(extra, Reply) else self.faults.take(rec.path)
        hook = self.before_reply
        override = hook(rec) if hook is not None and not isinstance(extra, Reply) else None
        if override is not None:
            return self._send(h, rec, override)
        if self.latency:
            self._stopping.wait(self.latency)
        if isinstance(extra, Reply):
            return self._send(h, rec, extra)
        reply = None
        if fault is not None:
            rec.fault = fault.kind
            if fault.kind == "reset" or (
                fault.kind == "stall" and self._stopping.wait(fault.opts.get("stall_seconds", 5))
            ):
                return self._reset(h)
            if fault.kind == "429":
                reply = self.too_many_requests(rec)
                if "retry_after" in fault.opts:
                    reply.headers["Retry-After"] = str(fault.opts["retry_after"])
            elif fault.kind in HTTP_FAULTS:
                reply = _html_error(int(fault.kind))
            elif fault.kind == "error200":
                with self.lock:
                    reply = self.error200(rec, fault)
        if reply is None:
            with self.lock:
                try:
                    reply = self.route(rec, fault)
                except Exception:  # a bug in the fake: answer 500 and keep the traceback
                    self.errors.append(traceback.format_exc())
                    reply = Reply(500, self.errors[-1])
            if 200 <= reply.status < 300:
                reply.headers.update(extra)
        self._send(h, rec, reply, truncate=rec.fault == "truncate")

    def _send(self, h: _Handler, rec: RequestRecord, reply: Reply, truncate: bool = False) -> None:
        body = reply.body.encode("utf-8") if isinstance(reply.body, str) else reply.body
        rec.status = reply.status
        h.send_response(reply.status)
        h.send_header("Content-Type", reply.content_type)
        h.send_header("Content-Length", str(len(body)))
        for name, value in reply.headers.items():
            h.send_header(name, value)
        h.end_headers()
        h.wfile.write(body[: len(body) // 2] if truncate else body)

    def _reset(self, h: _Handler) -> None:
        """Drop the connection without a response (RST via SO_LINGER 0)."""
        h.close_connection = True
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def _html_error(status: int) -> Reply:
    title = f"{status} {HTTPStatus(status).phrase}"
    body = f"<html><head><title>{title}</title></head><body><h1>{title}</h1></body></html>\n"
    return Reply(status, body, "text/html")


def serve_forever_in_foreground(fake: FakeServer) -> None:
    """Run `fake` until SIGINT/SIGTERM; print its URL on stdout once it accepts requests."""
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    with fake:
        print(fake.url, flush=True)
        try:
            done.wait()
        except KeyboardInterrupt:
            pass
