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
