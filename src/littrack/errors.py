"""The one exception tree of littrack.

Every failure a user can cause or meet is a ``LittrackError``; anything else is a bug.

    LittrackError
    ├── ConfigError            bad config file, env var or CLI choice (names file, topic, key)
    │   └── DatabaseUnreachable  bad database URL, or its server refused (names host, database)
    ├── SourceError            an upstream service failed for a topic (names source, topic, url)
    │   ├── QueryRejected      the service refused our query (4xx, ESearch ErrorList): not retried
    │   ├── MalformedResponse  the reply was not what the API promises (non-XML, cut off,
    │   │                      200 with <ERROR>, bad JSON) and stayed so after retries
    │   ├── Incomplete         records promised by the service never arrived (completeness check)
    │   ├── Unreachable        nothing answers at the service's address (DNS, refused): the
    │   │                      source's remaining topics are skipped, not retried
    │   └── DeadlineExceeded   the topic's overall time budget ran out (stalled server)
    ├── DeliveryError          a notification channel failed (names entry, channel, server);
    │                          retried at the next delivery, the other channels go on
    ├── LockTimeout            another littrack process holds the data directory
    ├── DataDirError           the data directory cannot be written (a file, read-only)
    └── StoreError             the database cannot be used (e.g. written by a newer littrack)

    StopRequested              not an error: SIGTERM/SIGINT asked the run to stop; the
                               current topic rolls back and no further topic starts

The CLI maps ``ConfigError`` and ``DataDirError`` to exit code 2 and any other
``LittrackError`` of a topic to exit code 1 after the other topics ran. Messages never
contain API keys: ``redact`` is applied to every URL and text that comes from a request.
"""

from __future__ import annotations

import re

_SECRET_PARAM = re.compile(r"((?:api_key|password)=)[^&\s'\"]+", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"(\w+://[^:/@\s]*:)[^@\s]*@")


def redact(text: str) -> str:
    """Remove API keys and database passwords from URLs and messages before they reach logs,
    tables or reports."""
    return _URL_PASSWORD.sub(r"\1***@", _SECRET_PARAM.sub(r"\1***", text))


class LittrackError(Exception):
    """Base class: a failure with a message meant for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


class ConfigError(LittrackError):
    """The configuration (file, environment or command line) is invalid."""


class SourceError(LittrackError):
    """An upstream service (``pubmed`` or ``ctgov``) failed for a topic."""

    def __init__(
        self,
        message: str,
        *,
        source: str,
        topic: str | None = None,
        url: str | None = None,
        status: int | None = None,
    ) -> None:
        self.source = source
        self.topic = topic
        self.url = redact(url) if url else None
        self.status = status
        where = f"[{source}" + (f" topic {topic!r}" if topic else "") + "]"
        super().__init__(f"{where} {message}")


class QueryRejected(SourceError):
    """The service refused the request as ours to fix (bad query, unknown parameter)."""


class MalformedResponse(SourceError):
    """The reply could not be parsed or carried an in-band error, even after retries."""


class Incomplete(SourceError):
    """Some records the service announced were not received; the watermark must not move."""


class Unreachable(SourceError):
    """The service's address does not resolve or refuses connections on first contact."""


class DeadlineExceeded(SourceError):
    """The per-topic time budget ran out before the source finished."""


class DeliveryError(LittrackError):
    """A notify channel (e-mail, webhook, feed) could not deliver; it is tried again later."""


class LockTimeout(LittrackError):
    """Another littrack process holds the data directory lock."""


class DatabaseUnreachable(ConfigError):
    """The configured database URL is malformed, or its server refused the connection."""


class DataDirError(LittrackError):
    """The data directory is missing write permission, read-only, or a file (CLI exit 2)."""


class StoreError(LittrackError):
    """The store cannot be opened or migrated."""


class StopRequested(Exception):
    """A signal asked the run to stop (deliberately outside the LittrackError tree)."""
