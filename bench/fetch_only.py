"""``littrack run`` without its report, for memory figures: ``python bench/fetch_only.py
CONFIG [--topic NAME]`` runs the PubMed source of the config's topics (or one) and stores
what it fetched, like ``littrack run --source pubmed`` minus the report folder, whose size
(pandas frames of every new row) does grow with the run.
"""

from __future__ import annotations

import sys

from littrack.config import load_settings
from littrack.pipeline import run

if __name__ == "__main__":
    config, *rest = sys.argv[1:]
    topics = [rest[rest.index("--topic") + 1]] if "--topic" in rest else None
    result = run(load_settings(config), topics=topics, sources=["pubmed"], write_report=False)
    sys.exit(result.exit_code)
