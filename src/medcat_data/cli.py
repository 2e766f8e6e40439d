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

#: Command name -> the ``medcat_data.commands`` module exporting it. Commands load on first use so
#: that ``medcat fetch`` does not pay for importing ``datasets`` (``normalize``) or the docs site.
#: ``tests/unit/test_cli_lazy.py`` checks this table against each module's ``COMMANDS``.
COMMAND_MODULES: dict[str, str] = {
    "list": "catalog",
    "info": "catalog",
    "search": "catalog",
    "registry": "catalog",
    "fetch": "fetch",
    "verify": "fetch",
    "mirror": "mirror",
    "convert": "convert",
    "normalize": "normalize",
    "export": "export",
    "demo": "demo",
    "docs": "docs",
}


class _MedcatGroup(click.Group):
    """A click group that loads its commands lazily and reports ``MedcatError`` without a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(COMMAND_MODULES) | set(self.commands))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in COMMAND_MODULES:
            module = importlib.import_module(f"medcat_data.commands.{COMMAND_MODULES[cmd_name]}")
            for command in module.COMMANDS:
                self.add_command(command)
        return self.commands.get(cmd_name)

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

