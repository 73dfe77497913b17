"""Progress a user can read during a long run: per topic, records stored of those expected.

On a terminal, one tqdm bar per topic and source (count, total from the search, rate, ETA),
with log lines routed around it. Off a terminal (cron, systemd), a log line at least every
``every`` seconds while a topic is still storing, so a long backfill is never silent.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger("littrack.progress")


class Progress:
    """``start`` a topic with its expected total, ``advance`` as batches are stored, ``done``."""

    def __init__(self, *, terminal: bool, every: float = 10.0,
                 clock: Callable[[], float] = time.monotonic, file: Any = None,
                 mininterval: float = 0.5) -> None:
        self.terminal = terminal
        self.every = every
        self.clock = clock
        self.file = file  # a terminal bar's stream (default: tqdm's, stderr)
        self.mininterval = mininterval  # a bar redraws at most this often
        self._bar: Any = None
        self._label = ""
        self._total: int | None = None
        self._n = 0
        self._started = 0.0
        self._last = 0.0

    def start(self, label: str, total: int | None) -> None:
        """A topic begins storing ``total`` records (None: not known yet)."""
        self.done()
        self._label, self._total, self._n = label, total, 0
        self._started = self._last = self.clock()
        if self.terminal:
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=label, unit="rec", leave=False,
                             dynamic_ncols=True, file=self.file,
                             mininterval=self.mininterval, miniters=1)

    def total(self, total: int) -> None:
        """The expected total, once a service announced it."""
        self._total = total
        if self._bar is not None:
            self._bar.total = total
            self._bar.refresh()

    def advance(self, n: int) -> None:
        self._n += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = self.clock()
        if now - self._last >= self.every:
            self._last = now
            log.info("%s", self.line(now))

    def line(self, now: float) -> str:
        """``pubmed mdma-ptsd: 1,500 of 7,573 records stored (120/s, about 51 s left)``."""
        elapsed = max(now - self._started, 1e-9)
        rate = self._n / elapsed
        of = f" of {self._total:,}" if self._total is not None else ""
        eta = ""
        if self._total is not None and rate > 0 and self._total > self._n:
            eta = f", about {(self._total - self._n) / rate:.0f} s left"
        return f"{self._label}: {self._n:,}{of} records stored ({rate:.0f}/s{eta})"

    def done(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def routed_logging(enabled: bool) -> Any:
    """Log lines printed around the bars on a terminal (a no-op context otherwise)."""
    from contextlib import nullcontext

    if not enabled:
        return nullcontext()
    from tqdm.contrib.logging import logging_redirect_tqdm

    return logging_redirect_tqdm()
