"""Output folders that appear whole or not at all: reports and exports.

A folder is built under a temporary name beside its final place and renamed into place when
complete, so a reader (or a run killed mid-write) never sees half of one; what a killed
writer left is recognisable by its name and removed by the next writer.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from littrack.errors import ConfigError

log = logging.getLogger(__name__)

PARTIAL = ".partial"  # suffix of a folder being built (after a leading dot)


@contextmanager
def building(out_dir: Path) -> Iterator[Path]:
    """Yield an empty temporary folder; when the block succeeds it replaces ``out_dir``.

    On an exception the temporary folder is removed and ``out_dir`` stays as it was.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_dir.with_name(f".{out_dir.name}{PARTIAL}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if out_dir.exists():
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)


def remove_stale_partials(folder: Path) -> None:
    """Delete what a killed writer left: ``.<name>.partial`` folders and ``.<name>.tmp`` files.

    Call only while holding the data-directory lock (no other writer can be mid-write).
    """
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        if path.name.startswith(".") and path.name.endswith(PARTIAL) and path.is_dir():
            log.warning("removing %s, left by a run that was killed while writing it", path)
            shutil.rmtree(path, ignore_errors=True)
        elif path.name.startswith(".") and path.name.endswith(".tmp") and path.is_file():
            path.unlink(missing_ok=True)


def ensure_replaceable(folder: Path, marker: str) -> None:
    """Refuse to replace a folder littrack did not write (``--out ~/Documents`` by mistake).

    A folder may be replaced when it does not exist, is empty, or holds ``marker``, the file
    every littrack output of that kind contains.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / marker).is_file():
        raise ConfigError(f"refusing to replace {folder}: it is not empty and holds no "
                          f"{marker}, so littrack did not write it; choose another --out")
