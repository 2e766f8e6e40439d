"""Every option shared by several commands, defined once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option("--json", "as_json", is_flag=True, help="Print one JSON document on stdout.")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="Print nothing but errors.")
jobs_option = click.option(
    "--jobs", "-j", type=click.IntRange(min=1), default=None, help="Parallel workers (default: sized for this machine)."
)
dest_option = click.option(
    "--dest",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Raw cache folder of the dataset (default: $MEDCAT_HOME/raw/<id>/<version>/).",
)
mirror_option = click.option(
    "--mirror",
    envvar="MEDCAT_MIRROR",
    default=None,
    metavar="URL",
    help="Replace scheme, host and port of every upstream URL (http(s):// or file://); also $MEDCAT_MIRROR.",
)
dry_run_option = click.option("--dry-run", is_flag=True, help="Show what would be done, do nothing.")
limit_option = click.option(
    "--limit", type=click.IntRange(min=1), default=None, help="Only the first N items in a stable order."
)
source_option = click.option("--source", "source_name", default=None, metavar="NAME", help="Pick one of the entry's sources.")
ref_argument = click.argument("ref", metavar="REF")

# Converter options shared by `medcat convert` and `medcat normalize`.
max_size_option = click.option(
    "--max-size",
    type=click.IntRange(min=1),
    default=None,
    metavar="PX",
    help="Longest image side in output pixels; aspect ratio kept, never enlarged, scale recorded.",
)
bit_depth_option = click.option(
    "--bit-depth", type=click.Choice(["8", "16"]), default="8", show_default=True, help="Bits per sample of decoded PNGs."
)
window_option = click.option(
    "--window",
    default="auto",
    show_default=True,
    metavar="MODE",
    help="DICOM intensity window: auto|minmax|percentile|none. Volumes also take a CT window name "
    "(ct-soft-tissue, ct-lung, ct-bone, ct-brain) or CENTER,WIDTH in HU.",
)
frames_option = click.option(
    "--frames", type=click.Choice(["first", "all"]), default="first", show_default=True, help="Multi-frame DICOM: first frame or one row per frame."
)
max_errors_option = click.option(
    "--max-errors",
    default=None,
    metavar="N|P%",
    help="Failed items tolerated before the exit code is 1 (default: any failure; the run always finishes).",
)
on_bad_item_option = click.option(
    "--on-bad-item",
    type=click.Choice(["record", "fail"]),
    default="record",
    show_default=True,
    help="record: list a bad item in errors.jsonl and go on; fail: stop at the first one.",
)


def converter_options(func: F) -> F:
    """Apply the image options every converting command shares (--max-size --bit-depth --window --frames)."""
    for option in (frames_option, window_option, bit_depth_option, max_size_option):
        func = option(func)
    return func
