"""Time one ``littrack.pipeline.run`` in this process and print the figures as JSON.

    python bench/timed_run.py CONFIG [--source S]... [--topic T]... [--no-report]

Run by any release's interpreter (``bench/previous.py``): it imports only the installed
``littrack`` and the standard library, and uses the API every release has kept
(``config.load_settings``, ``pipeline.run``). Wall time is measured around ``run`` only,
so interpreter start-up and imports are not counted against the pipeline; the per-topic
seconds are littrack's own. Runs under ``bench/peak_rss.py`` for the peak RSS.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("config")
    ap.add_argument("--source", action="append")
    ap.add_argument("--topic", action="append")
    ap.add_argument("--no-report", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from littrack.config import load_settings
    from littrack.pipeline import run

    settings = load_settings(args.config)
    started = time.perf_counter()
    result = run(settings, topics=args.topic, sources=args.source,
                 write_report=not args.no_report)
    seconds = time.perf_counter() - started
    print(json.dumps({
        "seconds": seconds, "exit_code": result.exit_code,
        "topics": [{"topic": r.topic, "source": r.source, "status": r.status,
                    "found": r.n_found, "new": r.n_new, "requests": r.n_requests,
                    "seconds": r.seconds} for r in result.results],
    }))
    return int(result.exit_code)


if __name__ == "__main__":
    sys.exit(main())
