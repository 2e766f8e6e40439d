"""Progress of converting work units on the terminal: a rich bar with items/s, ETA and error count.

Implements ``medcat_data.progress.Progress`` over work units for ``medcat convert`` and ``medcat normalize``.
Draws on stderr only: a bar on a TTY, plain periodic lines otherwise (logs, CI); library code never
sees a printer.
"""

from __future__ import annotations

import time
from typing import IO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class _ItemRateColumn(ProgressColumn):
    """Items (images, rows) per second since the start, and the error count."""

    def render(self, task: Task) -> Text:
        items = task.fields.get("items", 0)
        errors = task.fields.get("errors", 0)
        elapsed = task.elapsed or 0.0
        rate = f"{items / elapsed:.1f} items/s" if elapsed > 0 else "- items/s"
        return Text(f"{rate}, {errors} error(s)", style="red" if errors else "progress.data.speed")


class UnitProgressBar:
    """A rich progress bar over units (files, studies) that reports items/s and an ETA."""

    def __init__(self, console: Console, label: str = "converting") -> None:
        self._bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            _ItemRateColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._label = label
        self._task: TaskID | None = None
        self._items = 0
        self._errors = 0

    def start(self, total: int | None, total_bytes: int | None = None) -> None:
        self._bar.start()
        self._task = self._bar.add_task(self._label, total=total, items=0, errors=0)

    def advance(self, n_bytes: int) -> None:
        pass  # units are counted by items, not bytes

    def item_done(self, name: str, items: int = 1, errors: int = 0) -> None:
        self._items += items
        self._errors += errors
        if self._task is not None:
            self._bar.update(self._task, advance=1, items=self._items, errors=self._errors)

    def finish(self) -> None:
        self._bar.stop()


class UnitProgressLines:
    """Plain progress lines over units for logs, CI and pipes: one line every ``interval_s`` seconds.

    ``normalizing: 120/480 units, 960 items (2 errors), 12.3 items/s, ETA 0:00:30``, then a last
    line when the run finishes.
    """

    def __init__(self, stream: IO[str], label: str = "converting", interval_s: float = 10.0) -> None:
        self._stream, self._label, self._interval = stream, label, interval_s
        self._total: int | None = None
        self._units = self._items = self._errors = 0
        self._started = self._last = time.monotonic()

    def start(self, total: int | None, total_bytes: int | None = None) -> None:
        self._total = total
        self._started = self._last = time.monotonic()

    def advance(self, n_bytes: int) -> None:
        pass  # units are counted by items, not bytes

    def item_done(self, name: str, items: int = 1, errors: int = 0) -> None:
        self._units += 1
        self._items += items
        self._errors += errors
        if time.monotonic() - self._last >= self._interval:
            self._write()

    def finish(self) -> None:
        if self._units:
            self._write()

    def line(self) -> str:
        """Return the current line."""
        elapsed = max(time.monotonic() - self._started, 1e-9)
        units = f"{self._units}/{self._total}" if self._total is not None else str(self._units)
        eta = ""
        if self._total and self._units:
            left = (self._total - self._units) * elapsed / self._units
            eta = f", ETA {int(left // 3600)}:{int(left % 3600 // 60):02d}:{int(left % 60):02d}"
        return (f"{self._label}: {units} units, {self._items} items ({self._errors} errors), "
                f"{self._items / elapsed:.1f} items/s{eta}")

    def _write(self) -> None:
        self._last = time.monotonic()
        self._stream.write(self.line() + "\n")
        self._stream.flush()


def make_unit_progress(
    console: Console, *, quiet: bool, label: str = "converting"
) -> UnitProgressBar | UnitProgressLines | None:
    """Return a progress bar on a terminal, plain periodic lines on stderr otherwise, None when quiet."""
    if quiet:
        return None
    if not console.is_terminal:
        return UnitProgressLines(console.file, label)
    return UnitProgressBar(console, label)
