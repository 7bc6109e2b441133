"""Progress of a long build: passages per second and time left, fit for a terminal or a log.

On a terminal this is a tqdm bar. Written to a file or a pipe (CI logs, `nohup`, the app's
log), a bar's carriage returns become one enormous line, so there it prints a plain line at
most every LOG_EVERY_S seconds (and at the end) instead.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import TextIO

LOG_EVERY_S = 15.0


def eta_text(seconds: float) -> str:
    """'42 s', '3 min 05 s', '1 h 02 min': short, and stable in width while it counts down."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class Progress:
    """Counts `total` items of `unit` in steps; does nothing when `enabled` is false."""

    def __init__(self, total: int, desc: str, unit: str, enabled: bool = True, stream: TextIO | None = None,
                 clock: Callable[[], float] | None = None) -> None:
        self.total, self.desc, self.unit = total, desc, unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled and total > 0
        self.done = 0
        self._clock = clock or time.perf_counter
        self._started = self._clock()
        self._last_line = self._started
        self._bar = None
        if self.enabled and getattr(self.stream, "isatty", lambda: False)():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, file=self.stream)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None) -> None:
        self.close(finished=kind is None)

    def line(self) -> str:
        """'embedding: 2,848/5,555 passages (51%), 52 passages/s, about 51 s left'."""
        elapsed = max(self._clock() - self._started, 1e-9)
        rate = self.done / elapsed
        text = f"{self.desc}: {self.done:,}/{self.total:,} {self.unit}s ({100 * self.done // max(self.total, 1)}%), {rate:,.0f} {self.unit}s/s"
        if self.done < self.total and rate > 0:
            text += f", about {eta_text((self.total - self.done) / rate)} left"
        elif self.done >= self.total:
            text += f", {eta_text(elapsed)} in all"
        return text

    def update(self, n: int) -> None:
        if not self.enabled:
            return
        self.done += n
        if self._bar is not None:
            self._bar.update(n)
            return
        now = self._clock()
        if now - self._last_line >= LOG_EVERY_S and self.done < self.total:
            self._last_line = now
            print(self.line(), file=self.stream, flush=True)

    def close(self, finished: bool = True) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
        elif finished:
            print(self.line(), file=self.stream, flush=True)
        self.enabled = False
