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


def owned_option(owner: str) -> Callable[[F], F]:
    """``--option KEY=VALUE`` (repeatable): an option of the dataset's ``owner`` (its recipe, its source kind)."""
    return click.option(
        "--option",
        "owned_options",
        multiple=True,
        metavar="KEY=VALUE",
        help=f"An option of the dataset's {owner} (repeatable); `--help` after REF lists them.",
    )


class OwnedOptionsCommand(click.Command):
    """A command whose ``--help`` after a REF also lists the options that REF's owner declares.

    ``describe`` maps a reference to ``(section title, [(--option KEY=METAVAR, help), ...])``;
    nothing is listed when the reference cannot be read.
    """

    def __init__(self, *args: Any, describe: Callable[[str], tuple[str, list[tuple[str, str]]]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.describe = describe

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if any(a in ("--help", "-h") for a in args):
            parser = self.make_parser(ctx)
            parser.ignore_unknown_options = True
            try:
                values, _, _ = parser.parse_args(args=[a for a in args if a not in ("--help", "-h")])
            except click.UsageError:
                values = {}
            ref = values.get("ref")
            if isinstance(ref, str) and ref:  # click's placeholder for a missing argument is not text
                ctx.meta["medcat.help_ref"] = ref
        return super().parse_args(ctx, args)

    def format_help(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        super().format_help(ctx, formatter)
        ref = ctx.meta.get("medcat.help_ref")
        if not ref:
            return
        from medcat_data.errors import MedcatError

        try:
            title, rows = self.describe(ref)
        except MedcatError as err:
            rows, title = [], f"Options of {ref}: cannot tell ({err})"
        with formatter.section(title):
            if rows:
                formatter.write_dl(rows)
            else:
                formatter.write_text("none")
