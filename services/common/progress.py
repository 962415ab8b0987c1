"""Progress with an ETA for long operator commands (replay, retention, restore, backfill).

On a terminal, one line on stderr is rewritten at most twice a second: done / total,
percent, rate and the time left at that rate. Not on a terminal (CI, pipes) or in JSON-log
mode (the caller passes ``quiet=settings.log_format == "json"``), it stays quiet: the
commands print their own summary lines, and log collectors do not want carriage returns.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO

MIN_INTERVAL_S = 0.5


def enabled(stream: TextIO, quiet: bool) -> bool:
    return not quiet and bool(getattr(stream, "isatty", lambda: False)())


def eta_text(done: int, total: int | None, elapsed_s: float) -> str:
    """``1,200/5,000 (24%) 310/s ETA 0:12`` (pure, for tests and for the line)."""
    rate = done / elapsed_s if elapsed_s > 0 else 0.0
    if total is None or total <= 0:
        return f"{done:,} {rate:,.0f}/s"
    pct = min(100.0, 100.0 * done / total)
    left = (total - done) / rate if rate > 0 else None
    eta = "?" if left is None else _clock(max(0.0, left))
    return f"{done:,}/{total:,} ({pct:.0f}%) {rate:,.0f}/s ETA {eta}"


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class Progress:
    """``advance(n)`` as work gets done; ``finish()`` ends the line."""

    def __init__(
        self, total: int | None, label: str, *, quiet: bool = False, stream: TextIO | None = None
    ) -> None:
        self.total = total
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.active = enabled(self.stream, quiet)
        self.done = 0
        self._started = time.monotonic()
        self._shown = 0.0

    def advance(self, n: int = 1) -> None:
        self.done += n
        if not self.active:
            return
        now = time.monotonic()
        if now - self._shown >= MIN_INTERVAL_S:
            self._shown = now
            self._write()

    def _write(self) -> None:
        text = eta_text(self.done, self.total, time.monotonic() - self._started)
        self.stream.write(f"\r{self.label}: {text}\033[K")
        self.stream.flush()

    def finish(self) -> None:
        if self.active:
            self._write()
            self.stream.write("\n")
            self.stream.flush()
