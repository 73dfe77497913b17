"""``littrack export``: every tidy table as one file, plus the data dictionary beside them.

Why: the store is SQLite, which pandas and R read fine, but people share folders of files.
An export is one consistent snapshot (read in a single transaction, so a run writing at the
same time never shows half its topic), built under a temporary name and renamed into place
like a report (``littrack.folders``). CSV follows the report rules (UTF-8 with BOM,
formula-looking cells neutralised); Parquet keeps the column types (nullable integers stay
integers) and needs pyarrow, an optional extra.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from littrack.errors import ConfigError
from littrack.folders import building, ensure_replaceable
from littrack.reports.csv import write_csv
from littrack.schema_doc import exported_tables, render_markdown
from littrack.store import Store
from littrack.tables import BY_NAME

if TYPE_CHECKING:
    import pandas as pd
    from pandas.api.extensions import ExtensionDtype

FORMATS = ("csv", "parquet")
PARQUET_INSTALL = "pip install 'littrack[parquet]'"
DICTIONARY = "schema.md"


def require_pyarrow() -> None:
    """Fail before any work, naming the fix, when Parquet is asked for without pyarrow."""
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        raise ConfigError(f"--format parquet needs pyarrow, which is not installed; "
                          f"install it with: {PARQUET_INSTALL}") from None


def _dtypes() -> dict[str, ExtensionDtype]:
    """Declared type → pandas dtype: nullable integers and floats, strings for text, times."""
    import pandas as pd

    return {"integer": pd.Int64Dtype(), "real": pd.Float64Dtype(), "text": pd.StringDtype(),
            "timestamp": pd.StringDtype()}


def typed(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """Give columns their declared types (``tables.py``; integer → nullable Int64, …).

    Without this an integer column with a NULL comes out as float, and an all-NULL text
    column has no type at all, so the Parquet schema would change with the data.
    """
    out, dtypes = frame.copy(), _dtypes()
    for col in BY_NAME[table].fields:
        if col.name in out.columns and col.type in dtypes:
            out[col.name] = out[col.name].astype(dtypes[col.type])
    return out


def export(store: Store, out_dir: Path, fmt: str = "csv") -> list[Path]:
    """Write every exported table of ``store`` into ``out_dir``; return the files written."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r} (known: {', '.join(FORMATS)})")
    if fmt == "parquet":
        require_pyarrow()
    out_dir = Path(out_dir)
    ensure_replaceable(out_dir, DICTIONARY)
    names: list[str] = []
    with building(out_dir) as tmp:
        with store.snapshot():
            tables = exported_tables()
            for table in tables:
                frame = store.frame(table)
                name = f"{table}.{fmt}"
                if fmt == "csv":
                    write_csv(frame, tmp / name)
                else:
                    typed(frame, table).to_parquet(tmp / name, index=False, engine="pyarrow")
                names.append(name)
            (tmp / DICTIONARY).write_text(render_markdown(tables), encoding="utf-8")
            names.append(DICTIONARY)
    return [out_dir / n for n in names]
