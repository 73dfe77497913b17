"""What a notification says: the items a channel has not delivered yet, and their digest.

Items are read from the store (new topic matches, trial and article changes, trials due
and unreported), never from report files, so a channel can catch up on any number of
runs. Each item has a stable ``key`` naming its record and event; the deliveries table
records keys per channel, which is what makes delivery exactly-once.

One item per event a reader cares about:

* ``new:<topic>:<source>:<id>``: a record new to a topic (new to a second topic later is news
  again, for that topic);
* ``trial_change:<nct>:<run>`` and ``correction:<pmid>:<run>``: every tracked field a run saw
  change on one record, as one item (was → now);
* ``unreported:<nct>``: a trial overdue with its results, once.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from littrack.config import NotifyEntry
from littrack.store import Store, Unit

KIND_TITLES = {
    "new_articles": ("new article", "new articles"),
    "new_trials": ("new trial", "new trials"),
    "trial_changes": ("trial change", "trial changes"),
    "corrections": ("correction", "corrections"),
    "unreported": ("unreported trial", "unreported trials"),
    "new_preprints": ("new preprint", "new preprints"),
    "preprints_published": ("preprint published", "preprints published"),
}
TOPIC_KINDS = ("new_articles", "new_trials", "trial_changes", "new_preprints",
               "preprints_published")  # grouped under their topic
TITLE_FIRST = ("new_articles", "corrections", "new_preprints", "preprints_published")
# A digest stays readable: longer sections end with "… and N more" (webhook items and
# feeds still carry every item).
MAX_PER_SECTION = 50
ABSTRACT_CHARS = 320

_FIELD_LABELS = {
    "overall_status": "status", "phase": "phase", "enrollment": "enrollment",
    "start_date": "start", "primary_completion_date": "primary completion",
    "completion_date": "completion", "has_results": "results posted",
    "why_stopped": "why stopped", "is_retracted": "retracted", "has_erratum": "erratum",
    "has_concern": "expression of concern", "is_deleted": "withdrawn from PubMed",
}
_FLAGS = {"has_results", "is_retracted", "has_erratum", "has_concern", "is_deleted"}


def pubmed_url(pmid: str) -> str:
    return f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"


def ctgov_url(nct_id: str) -> str:
    return f"https://clinicaltrials.gov/study/{nct_id}"


def europepmc_url(ppr_id: str) -> str:
    return f"https://europepmc.org/article/PPR/{ppr_id}"


def run_time(run_id: str) -> str:
    """A run id's start time ('20261130T143722Z-…' → '2026-11-30T14:37:22Z')."""
    s = run_id.split("-", 1)[0]
    if len(s) != 16:
        return s
    return f"{s[0:4]}-{s[4:6]}-{s[6:8]}T{s[9:11]}:{s[11:13]}:{s[13:15]}Z"


def _flag(value: str | None) -> str | None:
    if value is None:
        return None
    return {"1": "yes", "0": "no"}.get(value, value)


@dataclass(frozen=True)
class Change:
    field: str
    was: str | None
    now: str | None

    @property
    def label(self) -> str:
        return _FIELD_LABELS.get(self.field, self.field)

    def describe(self) -> str:
        was, now = self.was, self.now
        if self.field in _FLAGS:
            was, now = _flag(was), _flag(now)
        return f"{self.label}: {was or '(none)'} → {now or '(none)'}"


@dataclass(frozen=True)
class Item:
    """One thing to tell, with everything every channel shows of it."""

    key: str
    kind: str
    topics: tuple[str, ...]
    record_id: str
    title: str
    url: str
    observed_at: str  # when littrack saw the event (UTC, ISO 8601)
    details: dict[str, Any] = field(default_factory=dict)
    changes: tuple[Change, ...] = ()

    def links(self) -> list[tuple[str, str]]:
        """(label, url) pairs: PubMed, DOI and PMC for articles; ClinicalTrials.gov."""
        if self.kind in ("new_articles", "corrections"):
            out = [("PubMed", pubmed_url(self.record_id))]
            if self.details.get("doi"):
                out.append(("DOI", f"https://doi.org/{self.details['doi']}"))
            if self.details.get("pmcid"):
                out.append(("PMC", f"https://pmc.ncbi.nlm.nih.gov/articles/"
                                   f"{self.details['pmcid']}/"))
            return out
        if self.kind in ("new_preprints", "preprints_published"):
            out = [("Europe PMC", europepmc_url(self.record_id))]
            if self.details.get("published_pmid"):
                out.append(("PubMed", pubmed_url(self.details["published_pmid"])))
            if self.details.get("doi"):
                out.append(("DOI", f"https://doi.org/{self.details['doi']}"))
            return out
        return [("ClinicalTrials.gov", ctgov_url(self.record_id))]

    def as_json(self) -> dict[str, Any]:
        """The structured form webhooks carry (stable names, no None values)."""
        out: dict[str, Any] = {"key": self.key, "kind": self.kind, "topics": list(self.topics),
                               "id": self.record_id, "title": self.title, "url": self.url,
                               "observed_at": self.observed_at}
        out.update({k: v for k, v in self.details.items() if v is not None})
        if self.changes:
            out["changes"] = [{"field": c.field, "was": c.was, "now": c.now}
                              for c in self.changes]
        out["links"] = {label: url for label, url in self.links()}
        return out

    def byline(self) -> str:
        """The second line of an item: who and where (articles), status and phase (trials)."""
        d = self.details
        if self.kind == "new_articles":
            authors = d.get("authors") or []
            who = ", ".join(authors[:3]) + (", et al." if len(authors) > 3 else "")
            where = " ".join(p for p in (d.get("journal") or "",
                                         f"({d['year']})" if d.get("year") else "") if p)
            return " — ".join(p for p in (who, where) if p)
        if self.kind == "corrections":
            return " ".join(p for p in (d.get("journal") or "",
                                        f"({d['year']})" if d.get("year") else "") if p)
        if self.kind == "new_preprints":
            authors = d.get("authors") or []
            who = ", ".join(authors[:3]) + (", et al." if len(authors) > 3 else "")
            where = " ".join(p for p in (d.get("server") or "", d.get("posted") or "") if p)
            return " — ".join(p for p in (who, where) if p)
        if self.kind == "preprints_published":
            journal = " ".join(p for p in (d.get("journal") or "",
                                           f"({d['year']})" if d.get("year") else "") if p)
            return (f"{d.get('server') or 'preprint'}, now published as PMID "
                    f"{d.get('published_pmid')}" + (f" in {journal}" if journal else ""))
        parts = [d.get("status"), d.get("phase")]
        if self.kind == "unreported":
            parts += [f"primary completion {d.get('primary_completion_date') or '?'}",
                      f"results due {d.get('due_date')} ({d.get('days_overdue')} days overdue)"]
        return ", ".join(str(p) for p in parts if p)


def _first_lines(text: str | None) -> str | None:
    if not text:
        return None
    flat = " ".join(text.split())
    if len(flat) <= ABSTRACT_CHARS:
        return flat
    cut = flat[:ABSTRACT_CHARS].rsplit(" ", 1)[0]
    return cut + " …"


def _topics(value: str | None, wanted: tuple[str, ...]) -> tuple[str, ...]:
    have = {t.strip() for t in (value or "").split(";") if t.strip()}
    return tuple(t for t in wanted if t in have)


def _grouped(rows: list[dict[str, Any]], key: str) -> list[list[dict[str, Any]]]:
    """Rows of one record and run together (one item per event)."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r[key], r["run_id"]), []).append(r)
    return list(groups.values())


def _authors(value: str | None) -> list[str]:
    return [a for a in (value or "").split("; ") if a]


# One item per row: kind -> (row, its topics the entry follows, now) -> Item.
_ROW_ITEMS: dict[str, Callable[[dict[str, Any], tuple[str, ...], str], Item]] = {
    "new_articles": lambda r, topics, now: Item(
        key=f"new:{r['topic']}:pubmed:{r['pmid']}", kind="new_articles", topics=topics,
        record_id=r["pmid"], title=r["title"] or f"PMID {r['pmid']}",
        url=pubmed_url(r["pmid"]), observed_at=run_time(r["run_id"]),
        details={"authors": _authors(r["authors"]),
                 "journal": r["journal"], "year": r["year"], "doi": r["doi"],
                 "pmcid": r["pmcid"], "abstract": _first_lines(r["abstract"]),
                 "retracted": bool(r["is_retracted"]) or None}),
    "new_trials": lambda r, topics, now: Item(
        key=f"new:{r['topic']}:ctgov:{r['nct_id']}", kind="new_trials", topics=topics,
        record_id=r["nct_id"], title=r["title"] or r["nct_id"],
        url=ctgov_url(r["nct_id"]), observed_at=run_time(r["run_id"]),
        details={"status": r["status"], "phase": r["phase"],
                 "enrollment": r["enrollment"], "sponsor": r["sponsor"],
                 "primary_completion_date": r["primary_completion_date"]}),
    "new_preprints": lambda r, topics, now: Item(
        key=f"new:{r['topic']}:europepmc:{r['ppr_id']}", kind="new_preprints",
        topics=topics, record_id=r["ppr_id"], title=r["title"] or r["ppr_id"],
        url=europepmc_url(r["ppr_id"]), observed_at=run_time(r["run_id"]),
        details={"authors": _authors(r["authors"]),
                 "server": r["server"], "posted": r["first_publication_date"],
                 "doi": r["doi"], "published_pmid": r["published_pmid"],
                 "abstract": _first_lines(r["abstract"])}),
    "preprints_published": lambda r, topics, now: Item(
        key=f"published:{r['ppr_id']}:{r['pmid']}", kind="preprints_published",
        topics=topics, record_id=r["ppr_id"], title=r["title"] or r["ppr_id"],
        url=europepmc_url(r["ppr_id"]), observed_at=r["observed_at"],
        details={"server": r["server"], "doi": r["doi"], "published_pmid": r["pmid"],
                 "article_title": r["article_title"], "journal": r["journal"],
                 "year": r["year"]}),
    "unreported": lambda r, topics, now: Item(
        key=f"unreported:{r['nct_id']}", kind="unreported", topics=topics,
        record_id=r["nct_id"], title=r["title"] or r["nct_id"],
        url=ctgov_url(r["nct_id"]), observed_at=now,
        details={"status": r["status"], "phase": r["phase"], "sponsor": r["sponsor"],
                 "primary_completion_date": r["primary_completion_date"],
                 "due_date": r["due_date"], "days_overdue": r["days_overdue"]}),
}


# Kinds whose rows are one (record, topic) pair; the others list a record's topics.
_ONE_TOPIC = frozenset({"new_articles", "new_trials", "new_preprints"})


def _row_topics(kind: str, row: dict[str, Any], wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The entry's topics among a row's: its one ``topic``, or its ``topics`` list."""
    if kind in _ONE_TOPIC:
        return (row["topic"],) if row["topic"] in wanted else ()
    return _topics(row["topics"], wanted)


def items_from_rows(kind: str, rows: list[dict[str, Any]], entry: NotifyEntry,
                    now: str) -> list[Item]:
    """Build the items of one kind from the store's rows, keeping the entry's topics."""
    out: list[Item] = []
    if kind in _ROW_ITEMS:
        build = _ROW_ITEMS[kind]
        for r in rows:
            topics = _row_topics(kind, r, entry.topics)
            if topics:
                out.append(build(r, topics, now))
    elif kind in ("trial_changes", "corrections"):
        rid = "nct_id" if kind == "trial_changes" else "pmid"
        for group in _grouped(rows, rid):
            first = group[0]
            topics = _topics(first["topics"], entry.topics)
            if not topics:
                continue
            record = first[rid]
            prefix = "trial_change" if kind == "trial_changes" else "correction"
            details = ({"status": first["status"], "phase": first["phase"]}
                       if kind == "trial_changes" else
                       {"journal": first["journal"], "year": first["year"], "doi": first["doi"]})
            out.append(Item(
                key=f"{prefix}:{record}:{first['run_id']}", kind=kind, topics=topics,
                record_id=record, title=first["title"] or record,
                url=ctgov_url(record) if kind == "trial_changes" else pubmed_url(record),
                observed_at=first["observed_at"], details=details,
                changes=tuple(Change(r["field"], r["old_value"], r["new_value"])
                              for r in group)))
    return out


def collect(store: Store, entry: NotifyEntry, channel: str, now: str
            ) -> tuple[list[Item], list[Unit]]:
    """Items this channel has not carried yet, and the units of work they come from.

    The units are every finished (run, topic, source) the channel has not considered, in
    whatever order they started or committed; a unit still running waits for the next
    delivery. Keys already in a delivery of the channel are dropped (an item is never
    planned twice, also when two units of one run made it)."""
    units = store.unconsidered_units(entry.name, channel)
    items: list[Item] = []
    for kind in entry.include:
        if kind == "unreported":
            rows = store.notify_rows(kind, entry.name, channel, today=now[:10])
        elif not units:
            continue
        else:
            rows = store.notify_rows(kind, entry.name, channel)
        items += items_from_rows(kind, rows, entry, now)
    done = store.delivered_keys(entry.name, channel, (i.key for i in items))
    seen: set[str] = set()
    fresh = []
    for item in items:
        if item.key not in done and item.key not in seen:
            seen.add(item.key)
            fresh.append(item)
    return fresh, units


def counts(items: Iterable[Item]) -> dict[str, int]:
    out = dict.fromkeys(KIND_TITLES, 0)
    for item in items:
        out[item.kind] += 1
    return out


def count_phrase(items: list[Item]) -> str:
    """'2 new articles, 1 trial change' (kinds with none left out)."""
    parts = []
    for kind, n in counts(items).items():
        if n:
            one, many = KIND_TITLES[kind]
            parts.append(f"{n} {one if n == 1 else many}")
    return ", ".join(parts) or "nothing new"


def subject(entry: NotifyEntry, items: list[Item]) -> str:
    return f"littrack {entry.name}: {count_phrase(items)}"


@dataclass
class Section:
    title: str
    items: list[Item]


def sections(entry: NotifyEntry, items: list[Item]) -> list[tuple[str, list[Section]]]:
    """Topic by topic (new articles, new trials, trial changes), then corrections and
    unreported trials in their own sections. An item of several topics shows under the
    first of the entry's topics that it belongs to."""
    out: list[tuple[str, list[Section]]] = []
    for topic in entry.topics:
        secs = []
        for kind in TOPIC_KINDS:
            mine = [i for i in items if i.kind == kind and i.topics and i.topics[0] == topic]
            if mine:
                secs.append(Section(KIND_TITLES[kind][1].capitalize(), mine))
        if secs:
            out.append((topic, secs))
    for kind in ("corrections", "unreported"):
        mine = [i for i in items if i.kind == kind]
        if mine:
            out.append(("", [Section(KIND_TITLES[kind][1].capitalize(), mine)]))
    return out


def _item_text(item: Item) -> list[str]:
    lines = [f"* {item.title}" if item.kind in TITLE_FIRST
             else f"* {item.record_id} {item.title}"]
    if item.byline():
        lines.append(f"  {item.byline()}")
    if len(item.topics) > 1 or item.kind in ("corrections", "unreported"):
        lines.append(f"  topics: {', '.join(item.topics)}")
    for change in item.changes:
        lines.append(f"  {change.describe()}")
    if item.details.get("abstract"):
        lines.append(f"  {item.details['abstract']}")
    lines.append("  " + " | ".join(f"{label} {url}" for label, url in item.links()))
    return lines


def render_text(entry: NotifyEntry, items: list[Item]) -> str:
    """The plain-text digest (the e-mail's text part, the webhook's ``text``)."""
    out = [f"littrack digest {entry.name!r}: {count_phrase(items)}"]
    for topic, secs in sections(entry, items):
        out += ["", f"== {topic} ==" if topic else f"== {secs[0].title} =="]
        for sec in secs:
            if topic:
                out += ["", f"{sec.title} ({len(sec.items)})"]
            for item in sec.items[:MAX_PER_SECTION]:
                out += [""] + _item_text(item)
            if len(sec.items) > MAX_PER_SECTION:
                out += ["", f"… and {len(sec.items) - MAX_PER_SECTION} more"]
    return "\n".join(out) + "\n"


def _item_html(item: Item) -> str:
    e = html.escape
    head = (f"<a href=\"{e(item.url)}\">{e(item.title)}</a>"
            if item.kind in TITLE_FIRST else
            f"<a href=\"{e(item.url)}\">{e(item.record_id)}</a> {e(item.title)}")
    parts = [f"<li><strong>{head}</strong>"]
    if item.byline():
        parts.append(f"<br><span style=\"color:#555\">{e(item.byline())}</span>")
    if len(item.topics) > 1 or item.kind in ("corrections", "unreported"):
        parts.append(f"<br><em>topics: {e(', '.join(item.topics))}</em>")
    if item.changes:
        parts.append("<ul>" + "".join(f"<li>{e(c.describe())}</li>" for c in item.changes)
                     + "</ul>")
    if item.details.get("abstract"):
        parts.append(f"<br><span>{e(item.details['abstract'])}</span>")
    parts.append("<br>" + " · ".join(f"<a href=\"{e(url)}\">{e(label)}</a>"
                                     for label, url in item.links()))
    return "".join(parts) + "</li>"


def render_html(entry: NotifyEntry, items: list[Item]) -> str:
    """The HTML digest: the same sections, with links."""
    e = html.escape
    out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">",
           f"<title>{e(subject(entry, items))}</title></head>",
           "<body style=\"font-family:sans-serif;max-width:46em\">",
           f"<h1 style=\"font-size:1.3em\">littrack digest {e(entry.name)}: "
           f"{e(count_phrase(items))}</h1>"]
    for topic, secs in sections(entry, items):
        if topic:
            out.append(f"<h2 style=\"font-size:1.15em\">{e(topic)}</h2>")
        for sec in secs:
            tag = "h3" if topic else "h2"
            out.append(f"<{tag}>{e(sec.title)} ({len(sec.items)})</{tag}><ul>")
            out += [_item_html(i) for i in sec.items[:MAX_PER_SECTION]]
            if len(sec.items) > MAX_PER_SECTION:
                out.append(f"<li>… and {len(sec.items) - MAX_PER_SECTION} more</li>")
            out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"
