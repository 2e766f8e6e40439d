"""Progress of a fetch on a terminal (a rich bar) or in logs (plain lines): bytes, rate, ETA, files.

Both implement ``medcat_data.progress.Progress``: the engine calls ``start`` once with the number
of files and their bytes, ``advance`` from any worker thread as bytes arrive, ``item_done`` per
file (``errors=1`` when it failed), and ``finish`` once. Nothing here knows about HTTP or files on
disk; no implementation ever sees a URL or a credential, only relative paths and counts.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TextIO

from rich.console import Console
from rich.progress import BarColumn, ProgressColumn, Task, TextColumn
from rich.progress import Progress as RichProgressBar
from rich.text import Text


class _Counters:
    """Thread-safe totals shared by the rendering implementations."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total_bytes: int | None = None
        self.total_files = 0
        self.done_bytes = 0
        self.done_files = 0
        self.failed_files = 0
        self.started = time.monotonic()
        self.running = False

    def start(self, total: int | None, total_bytes: int | None = None) -> None:
        with self._lock:
            self.total_bytes = total_bytes
            self.total_files = total or 0
            self.done_bytes = 0  # bytes of index files fetched while planning are not counted
            self.started = time.monotonic()
            self.running = True

    def advance(self, n_bytes: int) -> None:
        with self._lock:
            self.done_bytes += n_bytes

    def item_done(self, name: str, items: int = 1, errors: int = 0) -> None:
        with self._lock:
            self.done_files += 1
            if errors:
                self.failed_files += 1

    def eta_s(self) -> float | None:
        """Estimate seconds left from bytes when their total is known, else from files."""
        elapsed = time.monotonic() - self.started
        if elapsed <= 0:
            return None
        if self.total_bytes and self.done_bytes:
            rate = self.done_bytes / elapsed
            return max(0.0, (self.total_bytes - self.done_bytes) / rate)
        if self.total_files and self.done_files:
            return max(0.0, (self.total_files - self.done_files) * elapsed / self.done_files)
        return None


def human_bytes(n: float) -> str:
    """Format a byte count with binary-free SI units as most download tools do (``12.3 MB``)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "-:--:--"
    s = int(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


class PlainProgress(_Counters):
    """Write one summary line every ``interval_s`` seconds (logs, CI, pipes)."""

    def __init__(self, stream: TextIO, interval_s: float = 5.0, label: str = "fetch") -> None:
        super().__init__()
        self.stream = stream
        self.interval_s = interval_s
        self.label = label
        self._last = time.monotonic()

    def start(self, total: int | None, total_bytes: int | None = None) -> None:
        super().start(total, total_bytes)
        self._last = time.monotonic()

    def advance(self, n_bytes: int) -> None:
        super().advance(n_bytes)
        self._maybe_print()

    def item_done(self, name: str, items: int = 1, errors: int = 0) -> None:
        super().item_done(name, items, errors)
        self._maybe_print()

    def _maybe_print(self, force: bool = False) -> None:
        now = time.monotonic()
        if not self.running or (not force and now - self._last < self.interval_s):
            return
        self._last = now
        self.stream.write(self.line() + "\n")
        self.stream.flush()

    def line(self) -> str:
        """Return the current summary line."""
        elapsed = max(time.monotonic() - self.started, 1e-9)
        total = f"/{human_bytes(self.total_bytes)}" if self.total_bytes else ""
        failed = f", {self.failed_files} failed" if self.failed_files else ""
        return (
            f"{self.label}: {self.done_files}/{self.total_files} files{failed}, "
            f"{human_bytes(self.done_bytes)}{total}, {human_bytes(self.done_bytes / elapsed)}/s, "
            f"ETA {_clock(self.eta_s())}"
        )

    def finish(self) -> None:
        if self.total_files or self.done_files:
            self._maybe_print(force=True)


class _CountersColumn(ProgressColumn):
    """A column rendered from the shared counters rather than from rich's task fields."""

    def __init__(self, counters: _Counters, render: Callable[[_Counters], Text]) -> None:
        super().__init__()
        self.counters = counters
        self._render = render

    def render(self, task: Task) -> Text:
        return self._render(self.counters)


def _bytes_text(c: _Counters) -> Text:
    total = f"/{human_bytes(c.total_bytes)}" if c.total_bytes else ""
    return Text(f"{human_bytes(c.done_bytes)}{total}", style="green")


def _rate_text(c: _Counters) -> Text:
    elapsed = max(time.monotonic() - c.started, 1e-9)
    return Text(f"{human_bytes(c.done_bytes / elapsed)}/s", style="red")


def _eta_text(c: _Counters) -> Text:
    return Text(f"ETA {_clock(c.eta_s())}", style="yellow")


def _files_text(c: _Counters) -> Text:
    failed = f" ({c.failed_files} failed)" if c.failed_files else ""
    return Text(f"{c.done_files}/{c.total_files} files{failed}", style="cyan")


class RichProgress(_Counters):
    """A live bar on a terminal: bytes, rate, ETA and files done/total.

    The bar follows bytes when the total size is known up front (Hub repos, pinned lists) and
    files otherwise (PhysioNet's checksum lists carry no sizes).
    """

    def __init__(self, console: Console, label: str = "fetch") -> None:
        super().__init__()
        self._bar = RichProgressBar(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            _CountersColumn(self, _bytes_text),
            _CountersColumn(self, _rate_text),
            _CountersColumn(self, _eta_text),
            _CountersColumn(self, _files_text),
            console=console,
            transient=False,
            refresh_per_second=5,
        )
        self._task = self._bar.add_task(label, total=None, start=False)
        self._by_bytes = False

    def start(self, total: int | None, total_bytes: int | None = None) -> None:
        super().start(total, total_bytes)
        self._by_bytes = bool(total_bytes)
        self._bar.update(self._task, total=total_bytes if self._by_bytes else max(total or 0, 1))
        self._bar.start_task(self._task)
        self._bar.start()

    def advance(self, n_bytes: int) -> None:
        super().advance(n_bytes)
        if self._by_bytes:
            self._bar.update(self._task, advance=n_bytes)

    def item_done(self, name: str, items: int = 1, errors: int = 0) -> None:
        super().item_done(name, items, errors)
        if not self._by_bytes:
            self._bar.update(self._task, advance=1)

    def finish(self) -> None:
        self._bar.stop()
