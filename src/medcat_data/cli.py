"""The ``medcat`` command line: a click group and the only place that prints errors or picks exit codes.

Commands live in ``medcat_data.commands.<job>`` modules, each exporting ``COMMANDS``; this module
registers them, configures logging and turns ``MedcatError`` into a message and an exit code
(no traceback unless ``--debug``).
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

from medcat_data import __version__
from medcat_data.errors import MedcatError

log = logging.getLogger(__name__)

_COMMAND_MODULES = ("catalog", "fetch", "mirror", "convert", "normalize", "demo", "docs")


class _MedcatGroup(click.Group):
    """A click group that reports ``MedcatError`` without a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MedcatError as err:
            if ctx.meta.get("medcat.debug"):
                raise
            click.echo(f"error: {err}", err=True)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted; run the command again to resume.", err=True)
            sys.exit(130)


def _configure_logging(verbose: int, debug: bool) -> None:
    level = logging.DEBUG if debug or verbose >= 2 else logging.INFO if verbose == 1 else logging.WARNING
    root = logging.getLogger("medcat_data")
    root.setLevel(level)
    if not root.handlers:
        if sys.stderr.isatty():
            from rich.logging import RichHandler

            handler: logging.Handler = RichHandler(show_path=False, rich_tracebacks=debug)
        else:
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)


@click.group(cls=_MedcatGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="medcat")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.option("--debug", is_flag=True, help="Show full tracebacks for every error.")
@click.pass_context
def main(ctx: click.Context, verbose: int, debug: bool) -> None:
    """medcat: find, fetch, verify and normalize medical datasets.

    \b
    Dataset references:  ID[@VERSION]   physionet:SLUG[@VERSION]
                         hf:OWNER/NAME[@REVISION]   kaggle:OWNER/SLUG
    """
    ctx.meta["medcat.debug"] = debug
    _configure_logging(verbose, debug)


for _name in _COMMAND_MODULES:
    _module = importlib.import_module(f"medcat_data.commands.{_name}")
    for _command in _module.COMMANDS:
        main.add_command(_command)
