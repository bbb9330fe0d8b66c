"""Progress of a batch run, on stderr when it is a terminal.

It shows the models done out of the total, models per second so far and the
slowest model so far.  With ``rich`` installed (it comes with TensorFlow's
Keras) it is a rich progress bar; otherwise a one-line bar redrawn with
``\\r``.  Nothing is drawn when the stream is not a terminal.  rich is
imported only when a bar is drawn.
"""
from __future__ import annotations

import shutil
import sys
import time

from graphfix.render.console import is_terminal

try:  # optional: without rich the bar is drawn as plain text
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        TextColumn,
        TimeElapsedColumn,
    )
    from rich.progress import Progress as RichProgress
    from rich.table import Column
except ImportError:
    RichProgress = None


class _Stats:
    def __init__(self, total: int):
        self.total = total
        self.done = 0
        self.t0 = time.perf_counter()
        self.slowest: tuple[float, str] | None = None

    def add(self, path: str, seconds: float) -> None:
        self.done += 1
        if self.slowest is None or seconds > self.slowest[0]:
            self.slowest = (seconds, path)

    def rate(self) -> float:
        elapsed = time.perf_counter() - self.t0
        return self.done / elapsed if elapsed > 0 else 0.0

    def text(self) -> str:
        parts = [f"{self.rate():.1f} models/s"]
        if self.slowest:
            parts.append(f"slowest {self.slowest[1]} {self.slowest[0]:.2f}s")
        return "  ".join(parts)


class Progress:
    """``advance(path, seconds)`` after each model, ``close()`` at the end."""

    def __init__(self, total: int, stream=None, enabled: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        if enabled is None:
            enabled = is_terminal(self.stream)
        self.enabled = enabled and total > 0
        self.stats = _Stats(total)
        self._rich = self._task = None
        self.width = 0
        if self.enabled:
            self._rich_start()
            self._draw()

    def _rich_start(self) -> None:
        if RichProgress is None:
            return
        console = Console(file=self.stream, stderr=self.stream is sys.stderr)
        # the fixed columns keep their width; a long "slowest" path is cut, not the counts
        described = TextColumn("{task.description}", table_column=Column(no_wrap=True, overflow="ellipsis", ratio=1))
        self._rich = RichProgress(TextColumn("graphfix"), BarColumn(bar_width=20), MofNCompleteColumn(),
                                  TimeElapsedColumn(), described, console=console, transient=True, expand=True)
        self._task = self._rich.add_task("", total=self.stats.total)
        self._rich.start()

    def advance(self, path: str, seconds: float) -> None:
        self.stats.add(path, seconds)
        if self.enabled:
            self._draw()

    def _draw(self) -> None:
        s = self.stats
        if self._rich is not None:
            self._rich.update(self._task, completed=s.done, description=s.text())
            return
        cols = shutil.get_terminal_size((80, 24)).columns
        bar_len = 24
        filled = bar_len * s.done // max(s.total, 1)
        line = f"[{'#' * filled}{'.' * (bar_len - filled)}] {s.done}/{s.total}  {s.text()}"
        line = line[:max(cols - 1, 10)]
        self.stream.write("\r" + line.ljust(self.width))
        self.width = len(line)
        self.stream.flush()

    def close(self) -> None:
        if self._rich is not None:
            self._rich.stop()
            self._rich = None
        elif self.enabled and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()
            self.width = 0
