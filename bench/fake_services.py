"""The loopback fakes of all three services, filled with a corpus, in one process: for trying
`littrack run` and `littrack serve` without the real services.

Writes ``<dir>/littrack.toml`` (the shipped topics, tuned for loopback, with ``--cron`` as
both sources' schedule) and ``<dir>/env.sh`` (the variables pointing littrack at the fakes
and at ``<dir>/data``), then serves until SIGTERM or SIGINT. With ``--grow`` a new article
and a changed trial appear every so often, so each scheduled run has something to find.

    python bench/fake_services.py --dir /tmp/lt --cron '* * * * *' --grow 50 &
    . /tmp/lt/env.sh && littrack serve        # another shell; SIGTERM stops it
    littrack status
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from littrack.config import load_settings  # noqa: E402
from tests.builders.ctgov import study  # noqa: E402
from tests.builders.europepmc import preprint  # noqa: E402
from tests.builders.pubmed import article_xml  # noqa: E402
from tests.corpus import fake_env, populate, write_test_config  # noqa: E402
from tests.fakes import CtgovFake, EutilsFake  # noqa: E402
from tests.fakes.europepmc import EuropePmcFake  # noqa: E402


def write_config(folder: Path, cron: str, timezone: str) -> Path:
    """The test config with every [schedule.<source>] set to ``cron``."""
    path = write_test_config(folder, europepmc=True)
    text = re.sub(r'(?m)^(\[schedule\.(?:pubmed|ctgov)\]\n)cron = "[^"]*"\ntimezone = "[^"]*"',
                  rf'\1cron = "{cron}"\ntimezone = "{timezone}"', path.read_text("utf-8"))
    path.write_text(text, encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True, help="where config, env and data go")
    parser.add_argument("--cron", default="* * * * *", help="schedule of both sources")
    parser.add_argument("--timezone", default="UTC")
    parser.add_argument("--articles", type=int, default=40)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--preprints", type=int, default=6, help="Europe PMC preprints")
    parser.add_argument("--grow", type=float, default=0.0, metavar="SECONDS",
                        help="add an article and change a trial this often (0: never)")
    args = parser.parse_args()

    args.dir.mkdir(parents=True, exist_ok=True)
    config = write_config(args.dir, args.cron, args.timezone)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    with EutilsFake() as eutils, CtgovFake() as ctgov, EuropePmcFake() as europepmc:
        env = {"LITTRACK_CONFIG": str(config), **fake_env(args.dir, eutils, ctgov, europepmc)}
        settings = load_settings(config, env=env)
        populate(settings, eutils, ctgov, articles=args.articles, trials=args.trials,
                 today=date.today())
        for i in range(args.preprints):  # without them the shipped config's Europe PMC
            topic = settings.topics[i % len(settings.topics)]  # topics find nothing
            europepmc.add(preprint(f"PPR{900000 + i}", title=f"Synthetic preprint {i}",
                                   doi=f"10.1101/2026.01.{i:02d}"),
                          queries=[topic.europepmc_query or ""])
        lines = [f"export {k}='{v}'" for k, v in env.items()]
        (args.dir / "env.sh").write_text("\n".join(lines) + "\n", encoding="utf-8")
        print("\n".join(lines), flush=True)
        n = 0
        while not done.wait(args.grow or None):
            n += 1
            today = date.today()
            topic = settings.topics[n % len(settings.topics)]
            pmid = str(39000000 + n)
            eutils.add_article(pmid, article_xml(pmid, title=f"New finding {n}",
                                                 entrez_date=today),
                               edat=today, mdat=today, queries=[topic.pubmed_query or ""])
            nct = f"NCT{9000000 + n % max(args.trials, 1):08d}"
            ctgov.update_study(study(nct, title=f"Synthetic trial {n}", status="COMPLETED",
                                     last_update=today.isoformat()))
            ctgov.bump()
            print(f"grew: PMID {pmid} for {topic.name}; {nct} changed", flush=True)


if __name__ == "__main__":
    main()
