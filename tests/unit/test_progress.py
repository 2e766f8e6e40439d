"""One progress protocol: fetch's displays, the unit bar of normalize and convert, and the null one."""

from __future__ import annotations

import io

from rich.console import Console

from medcat_data.commands.unit_progress import UnitProgressBar
from medcat_data.loaders.processes import PipeProgress
from medcat_data.loaders.progress import PlainProgress, RichProgress
from medcat_data.progress import NullProgress, Progress


def _terminal(out: io.StringIO) -> Console:
    return Console(file=out, force_terminal=True, width=150, color_system=None)


def test_every_display_of_fetch_normalize_and_convert_is_the_one_progress() -> None:
    displays = [
        NullProgress(),
        PlainProgress(io.StringIO()),
        RichProgress(_terminal(io.StringIO())),
        UnitProgressBar(_terminal(io.StringIO())),
        PipeProgress(lambda message: None),
    ]
    assert all(isinstance(display, Progress) for display in displays)


def test_the_unit_bar_shows_units_done_items_per_second_and_errors() -> None:
    out = io.StringIO()
    bar = UnitProgressBar(_terminal(out), label="normalizing")
    bar.start(3)
    bar.advance(1000)  # bytes mean nothing to a unit bar
    bar.item_done("study-1", items=10)
    bar.item_done("study-2", items=5, errors=2)
    bar.finish()
    text = out.getvalue()
    assert "normalizing" in text and "2/3" in text and "items/s" in text and "2 error(s)" in text


def test_normalize_off_a_terminal_writes_plain_periodic_lines_with_units_items_errors_and_eta() -> None:
    import io

    from rich.console import Console

    from medcat_data.commands.unit_progress import UnitProgressLines, make_unit_progress

    stream = io.StringIO()
    assert isinstance(make_unit_progress(Console(file=stream, force_terminal=False), quiet=False, label="normalizing"), UnitProgressLines)
    assert make_unit_progress(Console(file=stream, force_terminal=False), quiet=True) is None
    lines = UnitProgressLines(stream, "normalizing", interval_s=0.0)
    lines.start(4)
    lines.item_done("a", items=3)
    lines.item_done("b", items=2, errors=1)
    lines.finish()
    written = stream.getvalue().splitlines()
    assert written[0].startswith("normalizing: 1/4 units, 3 items (0 errors), ") and ", ETA " in written[0]
    assert written[-1].startswith("normalizing: 2/4 units, 5 items (1 errors), ")
