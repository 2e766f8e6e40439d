"""Progress: plain lines are periodic and carry counts only."""

from __future__ import annotations

import io

from medcat_data.loaders.progress import PlainProgress, human_bytes


def test_plain_progress_prints_files_bytes_rate_and_eta() -> None:
    out = io.StringIO()
    progress = PlainProgress(out, interval_s=0.0)
    progress.advance(10)  # before start: nothing printed
    assert out.getvalue() == ""
    progress.start(2, 2000)
    progress.advance(1000)
    progress.item_done("a")
    progress.item_done("b", errors=1)
    progress.finish()
    last = out.getvalue().strip().splitlines()[-1]
    assert last.startswith("fetch: 2/2 files, 1 failed, ")
    assert "/2.0 kB" in last and "/s, ETA" in last


def test_human_bytes() -> None:
    assert human_bytes(999) == "999 B"
    assert human_bytes(1500) == "1.5 kB"
    assert human_bytes(2_500_000_000) == "2.5 GB"


def test_rich_progress_shows_bytes_rate_eta_and_files_on_a_terminal() -> None:
    from rich.console import Console

    from medcat_data.loaders.progress import RichProgress

    out = io.StringIO()
    progress = RichProgress(Console(file=out, force_terminal=True, width=150, color_system=None))
    progress.start(3, 4_000_000)
    progress.advance(2_000_000)
    progress.item_done("a")
    progress.finish()
    text = out.getvalue()
    assert "1/3 files" in text and "MB" in text and "ETA" in text
