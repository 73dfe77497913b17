"""Report and export CSVs people open in Excel, pandas or R.

Rules every file keeps: UTF-8 (with a BOM, so Excel detects the encoding), RFC 4180 quoting
with CRLF line ends, cells a spreadsheet would execute (starting with ``= + - @``, tab or
CR) prefixed with an apostrophe, and an atomic write (a temporary file renamed into place).
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

_DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def safe_cell(value: Any) -> Any:
    """Neutralise a cell that a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(_DANGEROUS_START):
        return "'" + value
    return value


def safe_name(name: str) -> str:
    """A file-name component that cannot leave its folder (no '/', '..', NUL)."""
    cleaned = _SAFE_NAME.sub("_", name).strip(".") or "_"
    return cleaned[:100]


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write a DataFrame as a safe CSV; atomic when ``path``'s folder is already final."""
    write_rows(list(frame.columns), frame.itertuples(index=False, name=None), path)


def write_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]], path: Path,
               each: Callable[[Sequence[Any]], None] | None = None) -> None:
    """Write rows as a safe CSV as they come (a store cursor: nothing held whole), handing
    each to ``each`` too; atomic when ``path``'s folder is already final."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")
        writer.writerow([safe_cell(str(c)) for c in columns])
        for row in rows:
            writer.writerow(["" if _isna(v) else safe_cell(_plain(v)) for v in row])
            if each is not None:
                each(row)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _isna(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _plain(value: Any) -> Any:
    # pandas gives floats for nullable integer columns; print 2024, not 2024.0
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
