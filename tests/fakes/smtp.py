"""A real SMTP server on 127.0.0.1 (aiosmtpd) with STARTTLS or implicit TLS and AUTH.

The certificate comes from a throw-away CA made in the test (trustme); the client trusts it
through the channel's ``ca_file``, exactly as a deployment with a private CA would.
"""

from __future__ import annotations

import email
import email.policy
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes
    auth_user: str | None
    tls: bool

    @property
    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None, f"no text/{subtype} part"
        return str(body.get_content())


class _Handler:
    def __init__(self, fake: SmtpFake) -> None:
        self.fake = fake

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        user = session.auth_data if session.authenticated else None
        with self.fake.lock:
            self.fake.received.append(Received(
                envelope.mail_from, list(envelope.rcpt_tos), bytes(envelope.original_content),
                user, session.ssl is not None))
        return "250 OK"


class _Controller(Controller):
    def _trigger_server(self) -> None:
        self.port = self.server.sockets[0].getsockname()[1]  # bound to port 0
        super()._trigger_server()


@dataclass
class SmtpFake:
    """``security``: "starttls" (required before AUTH), "ssl" (implicit TLS) or "none"."""

    tmp: Path
    security: str = "starttls"
    username: str | None = "littrack"
    password: str | None = None
    received: list[Received] = field(default_factory=list)
    failed_logins: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        self.ca_file = self.tmp / "smtp-ca.pem"
        ca.cert_pem.write_to_path(str(self.ca_file))
        self.server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self.server_context)
        kwargs: dict[str, Any] = {}
        if self.security == "starttls":
            kwargs |= {"tls_context": self.server_context, "require_starttls": True}
        elif self.security == "ssl":
            # aiosmtpd only counts STARTTLS as TLS for AUTH; implicit TLS is TLS from the start.
            # (It warns about this on every connection: tests in ssl mode filter it.)
            kwargs |= {"ssl_context": self.server_context, "auth_require_tls": False}
        if self.username:
            kwargs |= {"authenticator": self._authenticate, "auth_required": True}
        self.controller = _Controller(_Handler(self), hostname="127.0.0.1", port=0, **kwargs)

    def _authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str,
                      auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword)
              and auth_data.login.decode() == self.username
              and auth_data.password.decode() == self.password)
        if not ok:
            with self.lock:
                self.failed_logins += 1
        return AuthResult(success=ok, handled=False, auth_data=self.username if ok else None)

    @property
    def port(self) -> int:
        return int(self.controller.port)

    def __enter__(self) -> SmtpFake:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)
