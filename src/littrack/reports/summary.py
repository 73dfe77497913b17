"""The at-a-glance part of a report: ``summary.md`` and ``summary.html``.

Why it is shaped this way: the summary is built once as a small list of blocks (headings,
paragraphs, tables, images) and then rendered twice, so the Markdown and the HTML always say
the same thing, and escaping happens in exactly one place per format. Record text (titles,
sponsors, error messages) is data from the services, never markup: the HTML escapes all of
it and the Markdown backslash-escapes the characters that would turn it into links, HTML or
table breaks. Charts (``littrack.reports.charts``) are referenced by relative path, so a
report folder can be moved or zipped whole.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from littrack.reports.blocks import Block, Cell, DataTable, Heading, Image, Link, Para
from littrack.reports.charts import draw_charts
from littrack.store import Store
from littrack.tables import LIST_SEP
from littrack.vocab import LINKED_TOPIC

if TYPE_CHECKING:
    import pandas as pd

MAX_ROWS = 50  # per table in the summary; the CSVs next to it hold everything


class Rows:
    """Some rows of a report table: how many there are, and the first ``MAX_ROWS`` of them."""

    def __init__(self) -> None:
        self.count = 0
        self.first: list[dict[str, Any]] = []

    def add(self, row: dict[str, Any]) -> None:
        self.count += 1
        if len(self.first) < MAX_ROWS:
            self.first.append(row)

    def __len__(self) -> int:
        return self.count

    @property
    def empty(self) -> bool:
        return self.count == 0


class Excerpt:
    """What the summary needs of a report table it never holds whole: its row count and
    first rows, overall and per topic (by its ``topic`` column, or its ``topics`` list).

    Filled row by row while the table's CSV is written from the store, so a report's
    memory does not grow with the run it reports on.
    """

    def __init__(self, columns: Sequence[str]) -> None:
        self.columns = list(columns)
        self.rows = Rows()
        self.topics: dict[str, Rows] = {}
        self._single = "topic" in self.columns
        self._listed = not self._single and "topics" in self.columns

    def add(self, values: Sequence[Any]) -> None:
        row = dict(zip(self.columns, values, strict=True))
        self.rows.add(row)
        if self._single:
            names = [row["topic"]] if row["topic"] else []
        elif self._listed:
            names = [t for t in str(row["topics"] or "").split(LIST_SEP) if t]
        else:
            return
        for name in dict.fromkeys(names):
            self.topics.setdefault(name, Rows()).add(row)

    def for_topic(self, topic: str) -> Rows:
        return self.topics.get(topic, Rows())

# ---- content -----------------------------------------------------------------------------
def build(store: Store, run_ids: Sequence[str], title: str, frames: dict[str, Excerpt],
          charts: list[Image], today: date, now: datetime) -> list[Block]:
    """The summary's blocks: runs, counts per topic, then each topic's new items and changes."""
    runs = store.query("report_runs", run_ids=list(run_ids))
    counts = store.query("topic_counts", run_ids=list(run_ids))
    topics = sorted(set(counts["topic"]) | (set(runs["topic"]) - {LINKED_TOPIC}))
    blocks: list[Block] = [Heading(1, title)]
    window = (f"{len(run_ids)} run(s), {run_ids[0]} … {run_ids[-1]}" if len(run_ids) > 1
              else f"run {run_ids[0]}" if run_ids else "no runs")
    blocks.append(Para(f"Generated {now.strftime('%Y-%m-%d %H:%M')} UTC from {window}. "
                       f"Unreported trials are as of {today.isoformat()}. Every table here is "
                       f"cut at {MAX_ROWS} rows; the CSV files beside this summary hold all."))
    blocks += _runs_section(runs)
    blocks += _glance_section(topics, counts, frames)
    if charts:
        blocks.append(Heading(2, "Charts (all tracked records)"))
        blocks += charts
    for topic in topics:
        blocks += _topic_section(topic, counts, frames)
    blocks += _links_section(frames["links"].rows)
    blocks += _preprint_links_section(frames["preprint_links"].rows)
    return blocks


def _runs_section(runs: pd.DataFrame) -> list[Block]:
    out: list[Block] = [Heading(2, "Runs")]
    if runs.empty:
        return out + [Para("No runs in this window.")]
    # Run by run, each source's topics in the order they ran; with several runs, a column
    # says which run a row belongs to. The error's "[source topic 'x']" prefix repeats the
    # row's own cells, so it is left out here (the log and `littrack status` keep it).
    several = runs["run_id"].nunique() > 1
    table = DataTable((["run started (UTC)"] if several else [])
                      + ["topic", "source", "status", "window", "found", "new", "updated",
                         "requests", "error"], css_class="runs")
    for r in _records(runs):
        window = f"{r['window_start'] or 'everything'} … {r['window_end'] or ''}"
        status = "ok" if r["status"] == "ok" else str(r["status"]).upper()
        error = re.sub(r"^\[[^\]]*\] ", "", str(r["error"])) if r["error"] else r["error"]
        started: list[Cell] = [str(r["started_at"])[:16].replace("T", " ")] if several else []
        table.rows.append(started + [r["topic"], r["source"], status, window,
                                     _num(r["n_found"]), _num(r["n_new"]),
                                     _num(r["n_updated"]), _num(r["n_requests"]), error])
    failed = int((runs["status"] != "ok").sum())
    out.append(table)
    if failed:
        out.append(Para(f"{failed} topic run(s) did not finish; their records are not in this "
                        "report and the next run asks for them again."))
    return out


def _for_topic(table: Excerpt, topic: str) -> Rows:
    """Rows of a report table that concern ``topic``."""
    return table.for_topic(topic)


def _count(counts: pd.DataFrame, topic: str, source: str, column: str) -> int:
    hit = counts[(counts["topic"] == topic) & (counts["source"] == source)]
    return int(hit[column].iloc[0]) if not hit.empty else 0


def _glance_section(topics: list[str], counts: pd.DataFrame,
                    frames: dict[str, Excerpt]) -> list[Block]:
    out: list[Block] = [Heading(2, "At a glance")]
    if not topics:
        return out + [Para("No topic has tracked anything yet.")]
    table = DataTable(["topic", "new articles", "updated articles", "new trials",
                       "updated trials", "new preprints", "preprints published",
                       "trial changes", "article corrections", "unreported trials"])
    for t in topics:
        table.rows.append([
            Link(t, f"#topic-{t}"),
            str(_count(counts, t, "pubmed", "new")), str(_count(counts, t, "pubmed", "updated")),
            str(_count(counts, t, "ctgov", "new")), str(_count(counts, t, "ctgov", "updated")),
            str(_count(counts, t, "europepmc", "new")),
            str(len(_for_topic(frames["preprints_published"], t))),
            str(len(_for_topic(frames["trial_changes"], t))),
            str(len(_for_topic(frames["article_changes"], t))),
            str(len(_for_topic(frames["unreported_trials"], t))),
        ])
    return out + [table]


def _topic_section(topic: str, counts: pd.DataFrame,
                   frames: dict[str, Excerpt]) -> list[Block]:
    out: list[Block] = [Heading(2, f"Topic {topic}")]
    out.append(Para(
        f"Tracked: {_count(counts, topic, 'pubmed', 'tracked')} articles, "
        f"{_count(counts, topic, 'ctgov', 'tracked')} trials and "
        f"{_count(counts, topic, 'europepmc', 'tracked')} preprints. In this window: "
        f"{_count(counts, topic, 'pubmed', 'new')} new and "
        f"{_count(counts, topic, 'pubmed', 'updated')} updated articles, "
        f"{_count(counts, topic, 'ctgov', 'new')} new and "
        f"{_count(counts, topic, 'ctgov', 'updated')} updated trials, "
        f"{_count(counts, topic, 'europepmc', 'new')} new preprints."))

    arts = _for_topic(frames["new_articles"], topic)
    out += _table_section(
        "New articles", arts, "new_articles.csv",
        ["PMID", "title", "journal", "year", "first author", "retracted"],
        lambda r: [Link(r["pmid"], r["url"]), r["title"], r["journal"], _num(r["year"]),
                   r["first_author"], _yes_no(r["is_retracted"])])
    trials = _for_topic(frames["new_trials"], topic)
    out += _table_section(
        "New trials", trials, "new_trials.csv",
        ["NCT", "title", "status", "phase", "sponsor", "start", "has results"],
        lambda r: [Link(r["nct_id"], r["url"]), r["title"], r["status"], r["phase"],
                   r["sponsor"], r["start_date"], _yes_no(r["has_results"])])
    updated = _for_topic(frames["updated_articles"], topic)
    out += _table_section(
        "Updated articles", updated, "updated_articles.csv",
        ["PMID", "title", "journal", "changed", "retracted"],
        lambda r: [Link(r["pmid"], r["url"]), r["title"], r["journal"],
                   str(r["changed_fields"] or "").replace(LIST_SEP, ", "),
                   _yes_no(r["is_retracted"])])
    preprints = _for_topic(frames["new_preprints"], topic)
    out += _table_section(
        "New preprints", preprints, "new_preprints.csv",
        ["preprint", "title", "server", "first author", "posted", "published as"],
        lambda r: [Link(r["ppr_id"], r["url"]), r["title"], r["server"], r["first_author"],
                   r["first_publication_date"],
                   _pmid_link(r["published_pmid"]) if r["published_pmid"] else ""])
    published = _for_topic(frames["preprints_published"], topic)
    out += _table_section(
        "Preprints newly published", published, "preprints_published.csv",
        ["preprint", "title", "server", "published as", "journal", "how linked"],
        lambda r: [_ppr_link(r["ppr_id"]), r["title"], r["server"], Link(r["pmid"], r["url"]),
                   r["journal"], r["evidence_note"]])
    changes = _for_topic(frames["trial_changes"], topic)
    out += _table_section(
        "Trial changes (status, phase, enrollment, dates, results)", changes,
        "trial_changes.csv", ["NCT", "title", "field", "was", "now", "seen"],
        lambda r: [_nct_link(r["nct_id"]), r["title"], r["field"],
                   _flag_value(r["field"], r["old_value"]),
                   _flag_value(r["field"], r["new_value"]), str(r["observed_at"])[:10]])
    corrections = _for_topic(frames["article_changes"], topic)
    out += _table_section(
        "Article corrections (retractions, errata, concerns, deletions)", corrections,
        "article_changes.csv", ["PMID", "title", "field", "was", "now", "seen"],
        lambda r: [_pmid_link(r["pmid"]), r["title"], r["field"],
                   _flag_value(r["field"], r["old_value"]),
                   _flag_value(r["field"], r["new_value"]), str(r["observed_at"])[:10]])
    due = _for_topic(frames["unreported_trials"], topic)
    out += _table_section(
        "Unreported trials (results due, none posted or linked)", due,
        "unreported_trials.csv",
        ["NCT", "title", "status", "primary completion", "due since", "days overdue",
         "rule", "check"],
        lambda r: [Link(r["nct_id"], r["url"]), r["title"], r["status"],
                   r["primary_completion_date"], r["due_date"], _num(r["days_overdue"]),
                   r["rule"], r["verification"]])
    stale = _for_topic(frames["status_not_updated"], topic)
    out += _table_section(
        "Status not updated (completion date past, record still says it is going)", stale,
        "status_not_updated.csv",
        ["NCT", "title", "status", "completion", "last update", "sponsor"],
        lambda r: [Link(r["nct_id"], r["url"]), r["title"], r["status"],
                   r["completion_date"] or r["primary_completion_date"],
                   r["last_update_posted"], r["sponsor"]])
    return out


def _links_section(links: Rows) -> list[Block]:
    return _table_section(
        "Trial–publication links found in this window", links, "links.csv",
        ["NCT", "PMID", "evidence", "trial", "article"],
        lambda r: [_nct_link(r["nct_id"]), _pmid_link(r["pmid"]), r["evidence"],
                   r["trial_title"], r["article_title"]], level=2)


def _preprint_links_section(links: Rows) -> list[Block]:
    return _table_section(
        "Trial–preprint links found in this window", links, "preprint_links.csv",
        ["NCT", "preprint", "evidence", "trial", "preprint title"],
        lambda r: [_nct_link(r["nct_id"]), Link(r["ppr_id"], r["url"]), r["evidence"],
                   r["trial_title"], r["preprint_title"]], level=2)


def _table_section(heading: str, frame: Rows, csv_name: str, headers: list[str],
                   row: Any, level: int = 3) -> list[Block]:
    out: list[Block] = [Heading(level, f"{heading}: {len(frame)}")]
    if frame.empty:
        return out + [Para("None.")]
    table = DataTable(headers, [row(r) for r in frame.first])
    out.append(table)
    if len(frame) > MAX_ROWS:
        out.append(Para(f"… and {len(frame) - MAX_ROWS} more in {csv_name}."))
    return out


def _records(frame: pd.DataFrame) -> Iterable[dict[str, Any]]:
    for rec in frame.to_dict("records"):
        yield {str(k): (None if _isna(v) else v) for k, v in rec.items()}


def _isna(v: Any) -> bool:
    import pandas as pd

    return v is None or (not isinstance(v, str) and bool(pd.isna(v)))


def _num(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _yes_no(v: Any) -> str:
    """A 0/1 flag as a reader says it."""
    text = _num(v)
    return "yes" if text == "1" else "no" if text == "0" else ""


def _flag_value(field: str, v: Any) -> str:
    """A changed value; 0/1 flags (``has_results``, ``is_retracted`` …) as no/yes."""
    if field.startswith(("has_", "is_")) and _num(v) in ("0", "1"):
        return _yes_no(v)
    return _value(v)


def _value(v: Any) -> str:
    return "—" if v is None or v == "" else str(v)


def _ppr_link(ppr: str) -> Link:
    return Link(ppr, f"https://europepmc.org/article/PPR/{ppr}")


def _nct_link(nct: str) -> Link:
    return Link(nct, f"https://clinicaltrials.gov/study/{nct}")


def _pmid_link(pmid: str) -> Link:
    return Link(pmid, f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/")


# ---- rendering ---------------------------------------------------------------------------
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|&~#])")


def md_escape(text: Any) -> str:
    """Record text as literal Markdown: no links, HTML, emphasis or table breaks."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).split()))


def _md_cell(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, Link):
        return f"[{md_escape(cell.text)}]({cell.url.replace(')', '%29').replace(' ', '%20')})"
    return md_escape(cell)


def render_markdown(blocks: list[Block]) -> str:
    out: list[str] = []
    for b in blocks:
        if isinstance(b, Heading):  # "## Topic x" gets the anchor #topic-x on GitHub too
            out += ["#" * b.level + " " + md_escape(b.text), ""]
        elif isinstance(b, Para):
            out += [md_escape(b.text), ""]
        elif isinstance(b, DataTable):
            out.append("| " + " | ".join(md_escape(h) for h in b.headers) + " |")
            out.append("|" + "---|" * len(b.headers))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in b.rows]
            out.append("")
        else:
            out += [f"![{md_escape(b.alt)}]({b.src})", ""]
    return "\n".join(out)


def _h(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _html_cell(cell: Cell) -> str:
    if cell is None:
        return ""
    if isinstance(cell, Link):
        return f'<a href="{_h(cell.url)}">{_h(cell.text)}</a>'
    return _h(cell)


_CSS = """
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222;
       max-width: 80rem; margin: 2rem auto; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: .25rem .5rem; text-align: left;
         vertical-align: top; }
th { background: #f3f3f3; } tr:nth-child(even) td { background: #fafafa; }
td:first-child { white-space: nowrap; }  /* topic names, PMIDs, NCT ids: never split */
table.runs td:not(:last-child) { white-space: nowrap; }  /* the error column wraps */
table.runs td:last-child { min-width: 12rem; }
img { max-width: 100%; display: block; margin: 1rem 0; }
a { color: #1f5fa8; }
"""


def render_html(blocks: list[Block], title: str) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           '<meta name="viewport" content="width=device-width, initial-scale=1">',
           f"<title>{_h(title)}</title>", f"<style>{_CSS}</style>", "</head>", "<body>"]
    for b in blocks:
        if isinstance(b, Heading):
            anchor = (f' id="topic-{_h(b.text[6:])}"'
                      if b.level == 2 and b.text.startswith("Topic ") else "")
            out.append(f"<h{b.level}{anchor}>{_h(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            out.append(f"<p>{_h(b.text)}</p>")
        elif isinstance(b, DataTable):
            css = f' class="{_h(b.css_class)}"' if b.css_class else ""
            out.append(f"<table{css}><thead><tr>"
                       + "".join(f"<th>{_h(h)}</th>" for h in b.headers)
                       + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{_html_cell(c)}</td>" for c in row) + "</tr>"
                    for row in b.rows]
            out.append("</tbody></table>")
        else:
            out.append(f'<img src="{_h(b.src)}" alt="{_h(b.alt)}">')
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


# ---- entry point -------------------------------------------------------------------------
def write_summary(store: Store, folder: Path, run_ids: Sequence[str], title: str,
                  frames: dict[str, Excerpt], today: date,
                  now: datetime | None = None) -> None:
    """Write summary.md, summary.html and charts/*.png into a report folder being built."""
    now = now or datetime.now(UTC)
    charts = draw_charts(store, folder)
    blocks = build(store, run_ids, title, frames, charts, today, now)
    (folder / "summary.md").write_text(render_markdown(blocks), encoding="utf-8")
    (folder / "summary.html").write_text(render_html(blocks, title), encoding="utf-8")
