"""Webhooks: one JSON POST per delivery, through littrack's HTTP client.

The body has a human-readable ``text`` (Slack, Mattermost and Teams incoming webhooks post
it as is) and the structured ``items``. ``Idempotency-Key`` carries the delivery id, the
same on every resend, so a receiver that saw a delivery before can drop the repeat; with a
``secret_env``, ``X-Littrack-Signature: sha256=<hex>`` is the HMAC-SHA256 of the body under
that secret (the scheme GitHub uses), so the receiver can tell the POST came from us.
Retries follow the sources' policy (429, 5xx, connection errors, timeouts; Retry-After).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.request

from littrack.config import NotifyEntry, RetrySettings, WebhookChannel
from littrack.errors import DeliveryError, SourceError, StopRequested
from littrack.http import HttpClient
from littrack.notify.digest import Item, count_phrase, counts, render_text

SIGNATURE_HEADER = "X-Littrack-Signature"
IDEMPOTENCY_HEADER = "Idempotency-Key"


def build(entry: NotifyEntry, items: list[Item], delivery_id: str) -> bytes:
    body = {
        "text": render_text(entry, items),
        "entry": entry.name,
        "delivery_id": delivery_id,
        "summary": count_phrase(items),
        "counts": {k: n for k, n in counts(items).items() if n},
        "items": [i.as_json() for i in items],
    }
    return json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8")


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def send(channel: WebhookChannel, payload: bytes, delivery_id: str, entry: str,
         retry: RetrySettings) -> None:
    """POST one stored body; a DeliveryError once the retry policy gives up or a 4xx."""
    client = HttpClient("webhook", 10.0, retry)
    client.topic = entry
    # Never repeat the HMAC key, nor a URL's path (Slack and Teams put the token there).
    path = channel.url.split("://", 1)[-1].partition("/")[2]
    client.secrets = tuple(s for s in (channel.secret, path and "/" + path) if s)
    request = urllib.request.Request(channel.url, data=payload, method="POST")
    request.add_header("Content-Type", "application/json; charset=utf-8")
    request.add_header(IDEMPOTENCY_HEADER, delivery_id)
    if channel.secret:
        request.add_header(SIGNATURE_HEADER, signature(channel.secret, payload))
    try:
        client.send(request)
    except StopRequested:
        raise
    except SourceError as exc:
        raise DeliveryError(f"notify {entry!r} webhook: {exc}") from None
