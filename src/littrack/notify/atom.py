"""Atom 1.0 feeds: one file per entry that has one, rewritten atomically in place.

Each delivery stores its feed entries; the file is rendered from the latest of them,
newest first and at most ``max_entries`` long, written to a temporary file beside the feed,
flushed to disk and renamed over it, so a feed reader never sees half a feed. Entry ids
are tag URIs built from the item key (record and event), so a re-rendered feed, or a
delivery resent after a crash, never shows an item as new twice.
"""

from __future__ import annotations

import json
import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from littrack import __version__
from littrack.config import AtomChannel, NotifyEntry
from littrack.errors import DeliveryError
from littrack.notify.digest import Item

ATOM_NS = "http://www.w3.org/2005/Atom"


def entry_id(entry: str, key: str) -> str:
    return f"tag:littrack.invalid,2026:{entry}/{key}"


def build(entry: NotifyEntry, items: list[Item]) -> bytes:
    """The stored form of a delivery's feed entries (JSON)."""
    rows = []
    for item in items:
        lines = [item.byline()] if item.byline() else []
        lines += [c.describe() for c in item.changes]
        if item.details.get("abstract"):
            lines.append(item.details["abstract"])
        lines += [f"{label}: {url}" for label, url in item.links()]
        label = {"new_articles": "New article", "new_trials": "New trial",
                 "trial_changes": "Trial changed", "corrections": "Correction",
                 "unreported": "Results overdue", "new_preprints": "New preprint",
                 "preprints_published": "Preprint published"}[item.kind]
        rows.append({"id": entry_id(entry.name, item.key), "kind": item.kind,
                     "title": f"{label}: {item.title}", "link": item.url,
                     "updated": item.observed_at, "summary": "\n".join(lines),
                     "topics": list(item.topics)})
    return json.dumps(rows, ensure_ascii=False).encode("utf-8")


def render(entry: NotifyEntry, channel: AtomChannel, stored: list[bytes], now: str) -> bytes:
    """The feed document from stored deliveries (newest delivery first)."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for payload in stored:
        for row in json.loads(payload):
            if row["id"] not in seen:
                seen.add(row["id"])
                rows.append(row)
    rows.sort(key=lambda r: (r["updated"], r["id"]), reverse=True)
    rows = rows[:channel.max_entries]
    ET.register_namespace("", ATOM_NS)

    def sub(parent: ET.Element, tag: str, text: str | None = None,
            **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, f"{{{ATOM_NS}}}{tag}", attrs)
        if text is not None:
            el.text = text
        return el

    feed = ET.Element(f"{{{ATOM_NS}}}feed")
    sub(feed, "id", f"tag:littrack.invalid,2026:{entry.name}")
    sub(feed, "title", channel.title or f"littrack: {entry.name}")
    sub(feed, "updated", rows[0]["updated"] if rows else now)
    author = sub(feed, "author")
    sub(author, "name", "littrack")
    sub(feed, "generator", "littrack", version=__version__)
    for row in rows:
        el = sub(feed, "entry")
        sub(el, "id", row["id"])
        sub(el, "title", row["title"])
        sub(el, "updated", row["updated"])
        sub(el, "link", href=row["link"], rel="alternate")
        for topic in row["topics"]:
            sub(el, "category", term=topic)
        sub(el, "category", term=row["kind"], scheme="https://littrack.invalid/kind")
        sub(el, "summary", row["summary"], type="text")
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document


def write(path: Path, document: bytes, entry: str) -> None:
    """Replace the feed atomically (temporary file in the same folder, fsync, rename)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(document)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o644)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise DeliveryError(f"notify {entry!r} atom: cannot write {path}: {exc}") from None
