"""``medcat demo``: the whole chain offline, on miniature replicas served over loopback."""

from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from medcat_data.cli_options import json_option
from medcat_data.cli_output import Output
if TYPE_CHECKING:  # the demo runs the whole chain (`datasets` included): `--help` must not load it
    from medcat_data.demo import DemoRow


def _rows_text(row: DemoRow) -> str:
    return "\n".join(f"{cfg}: " + " ".join(f"{s}={n}" for s, n in splits.items()) for cfg, splits in row.rows.items())


def _table(rows: list[DemoRow]) -> Table:
    table = Table(title="medcat demo")
    # Names and numbers keep their width; the free text columns share what is left (80 columns
    # when the output is not a terminal).
    for col in ("dataset", "source"):
        table.add_column(col, no_wrap=True)
    for col in ("files", "bytes"):
        table.add_column(col, no_wrap=True, justify="right")
    table.add_column("rows", overflow="fold", ratio=3, min_width=24)
    for col in ("errors", "seconds"):
        table.add_column(col, no_wrap=True, justify="right")
    table.add_column("status", overflow="fold", ratio=1, min_width=6)
    for r in rows:
        style = "green" if r.status == "ok" else "dim" if r.ok else "red"
        table.add_row(
            r.dataset, r.source, str(r.files), f"{r.size_bytes:,}", _rows_text(r), str(r.errors),
            f"{r.seconds:.1f}", f"[{style}]{r.status}[/]",
        )
    return table


@click.command("demo")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Keep each normalized dataset at OUT/<id>/.")
@click.option("--only", multiple=True, metavar="ID", help="Only this dataset (repeatable).")
@json_option
def demo_cmd(out: Path | None, only: tuple[str, ...], as_json: bool) -> None:
    """Build, serve, fetch, verify, normalize and load every dataset offline, on synthetic replicas."""
    from medcat_data.demo import check_only, demo_failed, run_demo

    # A piped or logged run has no terminal width: give the table room instead of rich's 80 columns.
    output = Output(json_mode=as_json, stdout=Console(width=None if sys.stdout.isatty() else 140))
    check_only(only)

    def progress(row: DemoRow) -> None:
        output.info(f"{row.dataset} [{row.source}]: {row.status} ({row.seconds:.1f} s)")
        if row.sample and not as_json:
            output.info(f"  sample: {row.sample}")

    rows = run_demo(out, only, on_row=progress)
    failed = demo_failed(rows)
    if as_json:
        output.result({"ok": not failed, "rows": [asdict(r) for r in rows]})
    else:
        output.print(_table(rows))
        if out is not None:
            output.info(f"normalized datasets are in {out}/<id>/ (datasets.load_dataset(path, config))")
    if failed:
        for row in failed:
            output.error(f"{row.dataset} [{row.source}]: {row.status}")
        sys.exit(1)


COMMANDS: tuple[click.Command, ...] = (demo_cmd,)
