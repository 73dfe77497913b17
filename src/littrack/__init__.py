"""littrack: track PubMed articles and ClinicalTrials.gov studies per topic in tidy tables.

Data flow: config → windows (since when) → http → sources (pubmed, ctgov, each handing over
records reshaped by its normalize module) → store → reports → pipeline; scheduler and cli on
top. README "Development" lists the modules layer by layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

__version__ = "0.2.0"

__all__ = ["__version__", "load"]


def load(table: str, data_dir: str | None = None, config: str | None = None,
         database_url: str | None = None) -> pd.DataFrame:
    """Read one tidy table from the store as a pandas DataFrame (no network): from
    ``database_url`` (``postgresql://…``), ``data_dir``'s SQLite file, or the config's store."""
    from littrack.store import load_table

    return load_table(table, data_dir=data_dir, config=config, database_url=database_url)
