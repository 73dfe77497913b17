"""An HTTP receiver for webhooks on 127.0.0.1, idempotent like a careful real one.

It keeps every POST it read (``posts``) and, per ``Idempotency-Key``, the first one it
accepted (``accepted``): a repeat of a key is answered 200 and not accepted again. Faults:
``fail_next(status)`` answers an error, ``drop_next()`` accepts the delivery and then drops
the connection without answering (the sender cannot know it arrived).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from dataclasses import dataclass
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Post:
    path: str
    headers: Message
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    server: _Server

    def do_POST(self) -> None:
        receiver = self.server.receiver
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        post = Post(self.path, self.headers, body)
        key = self.headers.get("Idempotency-Key") or ""
        with receiver.lock:
            receiver.posts.append(post)
            fault = receiver.faults.pop(0) if receiver.faults else None
            if fault is None or fault == "drop":
                receiver.accepted.setdefault(key, post)
            receiver.lock.notify_all()
        if fault == "drop":  # accepted, but the answer never arrives: reset the connection
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                       struct.pack("ii", 1, 0))
            return
        status = int(fault) if fault else 200
        payload = b"ok" if status == 200 else b"error"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver


class WebhookReceiver:
    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.posts: list[Post] = []
        self.accepted: dict[str, Post] = {}
        self.faults: list[str] = []
        self._httpd = _Server(("127.0.0.1", 0), _Handler)
        self._httpd.receiver = self
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/hook"

    def fail_next(self, status: int, times: int = 1) -> None:
        with self.lock:
            self.faults += [str(status)] * times

    def drop_next(self) -> None:
        with self.lock:
            self.faults.append("drop")

    def wait_for(self, accepted: int, timeout: float) -> int:
        """Block until ``accepted`` deliveries arrived (or the timeout); return how many."""
        with self.lock:
            self.lock.wait_for(lambda: len(self.accepted) >= accepted, timeout)
            return len(self.accepted)

    def accepted_items(self) -> list[dict[str, Any]]:
        """Every item of every accepted delivery, in order (duplicates would show twice)."""
        with self.lock:
            return [i for p in self.accepted.values() for i in p.json["items"]]

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()
