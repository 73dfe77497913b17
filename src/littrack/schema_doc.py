"""The data dictionary: ``docs/schema.md`` and the ``schema.md`` beside every export.

Why generated: every table, column, type and meaning is declared once in ``tables.py``; this
module only renders that declaration as Markdown, so the documentation cannot fall behind the
schema (a test compares the committed copy with the rendering). Regenerate it with::

    python -m littrack.schema_doc docs/schema.md
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from littrack.migrations import STEPS
from littrack.tables import GROUPS, RELATIONS, View
from littrack.vocab import DATABASE_FILE


def exported_tables() -> list[str]:
    """Tables and views ``littrack export`` writes: all of the store's but bookkeeping blobs."""
    return [r.name for r in RELATIONS if r.exported]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(names: Sequence[str] | None = None) -> str:
    """The data dictionary of the declared schema (or of the relations ``names``)."""
    chosen = [r for r in RELATIONS if names is None or r.name in names]
    groups = [g for g in GROUPS if any(r.group == g for r in chosen)]
    out = [
        "# littrack data dictionary",
        "",
        f"Schema after migration `{STEPS[-1].name}`. Generated from the declaration in "
        "`littrack/tables.py` by `python -m littrack.schema_doc`; do not edit by hand.",
        "",
        f"The store is the SQLite file `<data_dir>/{DATABASE_FILE}`; read any table with "
        "`littrack.load(\"articles\", data_dir=\"data\")` or write them all with "
        "`littrack export`. Conventions: times (type `timestamp`) are UTC ISO 8601 text "
        "(`2026-05-01T06:00:00Z`); dates are as precise as the source gives them "
        "(`2024`, `2024-05`, `2024-05-17`); flags are integers 0/1; a cell holding several "
        "values joins them with `|`; ClinicalTrials.gov enumerations keep the API's spelling "
        "(`RECRUITING`, `PHASE2`). Key columns are marked **bold**.",
        "",
        "## Contents",
        "",
    ]
    for group in groups:
        links = ", ".join(f"[`{r.name}`](#{r.name})" for r in chosen if r.group == group)
        out.append(f"* {group}: {links}")
    for group in groups:
        out += ["", f"## {group}"]
        for rel in (r for r in chosen if r.group == group):
            kind = "view" if isinstance(rel, View) else "table"
            key = () if isinstance(rel, View) else rel.key
            about = rel.description + "".join(
                f" Foreign key: `{', '.join(fk.columns)}` → `{fk.table}`."
                for fk in (() if isinstance(rel, View) else rel.foreign_keys))
            out += ["", f"### {rel.name}", "", f"*{kind}*. {about}", "",
                    "| column | type | description |", "|---|---|---|"]
            for col in rel.fields:
                label = f"**{col.name}**" if col.name in key else col.name
                out.append(f"| {label} | {col.type} | {_cell(col.description)} |")
    return "\n".join(out) + "\n"


def main() -> None:
    """``python -m littrack.schema_doc [PATH]``: print (or write) the data dictionary."""
    text = render_markdown()
    if len(sys.argv) > 1:
        Path(sys.argv[1]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


if __name__ == "__main__":
    main()
