"""Parse EFetch reply files with the installed littrack and print records, seconds as JSON.

    python bench/parse_child.py FILE...

The parse-only reference of ``bench/throughput.py``: each file is one EFetch reply, parsed
into tidy rows and raw bytes the way the release's pipeline parses a downloaded batch. Run
by any release's interpreter, so it finds that release's parser by the names it had.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path


def parser() -> Callable[[bytes], int]:
    """The installed release's "one EFetch reply -> records" function."""
    from littrack.sources.pubmed import Batch, parse_into

    def parse(body: bytes) -> int:
        batch = Batch([], [], [])
        parse_into(body, batch)
        return len(batch.records)

    return parse


def main() -> None:
    bodies = [Path(p).read_bytes() for p in sys.argv[1:]]
    parse = parser()
    started = time.perf_counter()
    n = 0
    for body in bodies:
        n += parse(body)
    print(json.dumps({"records": n, "seconds": time.perf_counter() - started}))


if __name__ == "__main__":
    main()
