"""E-mail digests: one multipart (text + HTML) message per delivery, over SMTP.

The message is built once, with its Message-ID, and stored before it is sent; a resend
after a crash sends the very same bytes, so a mail client that saw the first copy treats
the second as the same message.
"""

from __future__ import annotations

import base64
import logging
import smtplib
import ssl
from datetime import datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime

from littrack.config import EmailChannel, NotifyEntry
from littrack.errors import DeliveryError
from littrack.notify.digest import Item, render_html, render_text, subject

log = logging.getLogger(__name__)


def message_id(delivery_id: str, channel: EmailChannel) -> str:
    return f"<{delivery_id}@{channel.sender.rsplit('@', 1)[1]}>"


def build(entry: NotifyEntry, channel: EmailChannel, items: list[Item], delivery_id: str,
          now: datetime) -> bytes:
    """The whole message as it goes on the wire (CRLF line ends)."""
    msg = EmailMessage(policy=SMTP)
    msg["Subject"] = subject(entry, items)
    msg["From"] = channel.sender
    msg["To"] = ", ".join(channel.to)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id(delivery_id, channel)
    msg["X-Littrack-Entry"] = entry.name
    msg["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to this
    msg.set_content(render_text(entry, items))
    msg.add_alternative(render_html(entry, items), subtype="html")
    return msg.as_bytes()


def _login(smtp: smtplib.SMTP, username: str, password: str) -> None:
    """AUTH; smtplib encodes credentials as ASCII, so a non-ASCII one goes as AUTH PLAIN,
    whose RFC 4616 encoding is UTF-8."""
    if (username + password).isascii():
        smtp.login(username, password)
        return
    smtp.ehlo_or_helo_if_needed()
    if "plain" not in smtp.esmtp_features.get("auth", "").lower().split():
        raise smtplib.SMTPException("the password is not ASCII and the server offers no "
                                    "AUTH PLAIN to send it in UTF-8")
    token = base64.b64encode(b"\0" + username.encode() + b"\0" + password.encode()).decode()
    code, resp = smtp.docmd("AUTH", "PLAIN " + token)
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, resp)


def send(channel: EmailChannel, payload: bytes, entry: str) -> None:
    """Send one stored message; any failure is a DeliveryError naming server and entry."""
    where = f"notify {entry!r} email via {channel.smtp_host}:{channel.smtp_port}"
    context = ssl.create_default_context(
        cafile=str(channel.ca_file) if channel.ca_file else None)
    try:
        smtp: smtplib.SMTP
        if channel.security == "ssl":
            smtp = smtplib.SMTP_SSL(channel.smtp_host, channel.smtp_port,
                                    timeout=channel.timeout, context=context)
        else:
            smtp = smtplib.SMTP(channel.smtp_host, channel.smtp_port, timeout=channel.timeout)
        with smtp:
            if channel.security == "starttls":
                smtp.starttls(context=context)
            if channel.username:
                _login(smtp, channel.username, channel.password or "")
            refused = smtp.sendmail(channel.sender, list(channel.to), payload)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"{where}: login as {channel.username!r} refused "
                            f"({exc.smtp_code}); check ${channel.password_env}") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}") from None
    if refused:
        # Sent to the others: resending would only duplicate it for them, and a recipient
        # the server refuses now will be refused again.
        log.warning("%s: recipients refused: %s", where, ", ".join(sorted(refused)))
