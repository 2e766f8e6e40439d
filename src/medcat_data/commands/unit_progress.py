"""Progress of converting work units on the terminal: a rich bar with items/s, ETA and error count.

Implements ``medcat_data.progress.Progress`` over work units for ``medcat convert`` and ``medcat normalize``.
Draws on stderr only, and only on a TTY; ``make_unit_progress`` returns None otherwise, so
library code never sees a printer.
"""

from __future__ import annotations

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


def make_unit_progress(console: Console, *, quiet: bool, label: str = "converting") -> UnitProgressBar | None:
    """Return a progress bar for a terminal, or None when quiet or when stderr is not a TTY."""
    if quiet or not console.is_terminal:
        return None
    return UnitProgressBar(console, label)
