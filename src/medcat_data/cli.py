"""The ``medcat`` command line: a click group and the only place that prints errors or picks exit codes.

Commands live in ``medcat_data.commands.<job>`` modules, each exporting ``COMMANDS``; this module
registers them, configures logging and turns ``MedcatError`` into a message and an exit code
(no traceback unless ``--debug``).
"""

from __future__ import annotations

import importlib
import json
import logging
import sys
from typing import TYPE_CHECKING, Any

import click

from medcat_data import __version__
from medcat_data.errors import MedcatError

if TYPE_CHECKING:
    from click.shell_completion import CompletionItem

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
    "cache": "cache",
}

#: Command name -> the first line of its help, so that ``medcat --help`` and shell completion list
#: the commands without importing one module (each is 0.1 to 1 s). ``tests/unit/test_cli_lazy.py``
#: checks these against the commands' own docstrings.
COMMAND_SUMMARIES: dict[str, str] = {
    "cache": "List, measure and remove what medcat keeps in $MEDCAT_HOME (raw and normalized).",
    "convert": "Convert DICOM, PNG/JPEG/TIFF/BMP and NIfTI/NRRD/MHA files under PATH... into OUT.",
    "demo": "Build, serve, fetch, verify, normalize and load every dataset offline, on synthetic replicas.",
    "docs": "Generate the catalog documentation from the registry.",
    "export": "Export a normalized dataset folder (OUT/<id>) as conversation files for MLLM training.",
    "fetch": "Download a dataset's files, verified, into its cache folder (resumable, safe to run twice).",
    "info": "Show everything needed to decide on and obtain a dataset.",
    "list": "List the datasets of the catalog, optionally filtered.",
    "mirror": "Serve replica trees on loopback with the upstream hosts' URL shapes.",
    "normalize": "Normalize a fetched dataset into OUT/<id>/ (parquet, card, manifest, errors.jsonl).",
    "registry": "Check registry files and export the entry schema.",
    "search": "Search ids, names, descriptions, modalities and tasks; best matches first.",
    "verify": "Check a fetched dataset against its manifest: missing, extra, truncated and corrupt files.",
}


#: What Ctrl-C leaves, per command, as the next run will find it.
INTERRUPTED: dict[str, str] = {
    "fetch": "interrupted; verified files are kept and partial ones resume: run the same command again to continue.",
    "normalize": "interrupted; finished work units are kept: run the same command again to continue where it stopped.",
    "": "interrupted; nothing was published: run the command again (it starts over).",
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

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """List the commands from ``COMMAND_SUMMARIES``: ``medcat --help`` imports no command module."""
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)
        rows = [(name, self._summary(ctx, name, limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        """Complete command names (with their summaries) and options without importing a command module."""
        from click.shell_completion import CompletionItem

        items = [
            CompletionItem(name, help=self._summary(ctx, name, 45))
            for name in self.list_commands(ctx)
            if name.startswith(incomplete)
        ]
        return items + click.Command.shell_complete(self, ctx, incomplete)

    def _summary(self, ctx: click.Context, name: str, limit: int) -> str:
        command = self.commands.get(name)
        if command is not None or name not in COMMAND_SUMMARIES:
            command = command or self.get_command(ctx, name)
            return command.get_short_help_str(limit) if command is not None else ""
        return click.Command(name, help=COMMAND_SUMMARIES[name]).get_short_help_str(limit)

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        ctx.meta["medcat.args"] = list(args)  # the command line after the group's options, for _json_error
        return super().resolve_command(ctx, args)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MedcatError as err:
            if ctx.meta.get("medcat.debug"):
                raise
            self._json_error(ctx, type(err).__name__, str(err), err.exit_code)
            click.echo(f"error: {err}", err=True)
            sys.exit(err.exit_code)
        except click.ClickException as err:  # a bad option of a --json command: JSON on stdout, usage on stderr
            self._json_error(ctx, type(err).__name__, err.format_message(), err.exit_code)
            raise
        except KeyboardInterrupt:
            click.echo(INTERRUPTED.get(ctx.invoked_subcommand or "", INTERRUPTED[""]), err=True)
            sys.exit(130)

    def _json_error(self, ctx: click.Context, kind: str, message: str, exit_code: int) -> None:
        """Print ``{"error": {...}}`` on stdout when the failed command was run with ``--json``.

        A script reading stdout then always gets one JSON document, on success and on failure; a
        command that printed its result before failing (a fetch report with ``"ok": false``) keeps it.
        """
        words: list[str] = list(ctx.meta.get("medcat.args", []))
        words = words[: words.index("--")] if "--" in words else words
        command: click.Command | None = self
        while isinstance(command, click.Group) and words and not words[0].startswith("-"):
            command = command.get_command(ctx, words.pop(0))
        takes_json = command is not None and any(p.name == "as_json" for p in command.params)
        if takes_json and "--json" in words and not ctx.meta.get("medcat.result_written"):
            click.echo(json.dumps({"error": {"type": kind, "message": message, "exit_code": exit_code}}, indent=2))


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

