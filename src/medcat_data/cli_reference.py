"""The command-line reference (``docs/cli.md``), rendered from the click commands themselves.

Generated rather than written so that it cannot drift: ``medcat docs cli`` rewrites it and a test
fails when the committed file differs from what the code declares.
"""

from __future__ import annotations

import textwrap

import click

HEADER = (
    "# Command-line reference\n\n"
    "Generated from the code by `medcat docs cli`; do not edit by hand. Every command also answers "
    "`--help`. Topics: [fetching](fetching.md), [converting](converting.md), [the mirror](mirror.md), "
    "[the catalog](catalog.md), [the Python API](python.md).\n\n"
    "Shell completion (commands, sub-commands and options) comes from click. Add one line to your "
    "shell's start-up file:\n\n"
    "```bash\n"
    'eval "$(_MEDCAT_COMPLETE=bash_source medcat)"        # ~/.bashrc\n'
    'eval "$(_MEDCAT_COMPLETE=zsh_source medcat)"         # ~/.zshrc\n'
    "_MEDCAT_COMPLETE=fish_source medcat | source          # ~/.config/fish/completions/medcat.fish\n"
    "```\n\n"
    "or, to keep shell start-up instant, write the script once "
    "(`_MEDCAT_COMPLETE=bash_source medcat > ~/.medcat-complete.bash`) and source that file. "
    "Completing a command name imports no command module, so it answers at once.\n"
)


def render(root: click.Group) -> str:
    """Return the Markdown reference of every command and option under ``root``."""
    ctx = click.Context(root, info_name="medcat")
    parts = [HEADER]
    for name, command, command_ctx in _walk(root, ctx):
        parts.append(_command_section(name, command, command_ctx))
    return "\n".join(parts).rstrip() + "\n"


def _walk(group: click.Group, ctx: click.Context) -> list[tuple[str, click.Command, click.Context]]:
    found: list[tuple[str, click.Command, click.Context]] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if command is None or command.hidden:
            continue
        sub_ctx = click.Context(command, info_name=name, parent=ctx)
        if isinstance(command, click.Group):
            found.extend(_walk(command, sub_ctx))
        else:
            found.append((sub_ctx.command_path, command, sub_ctx))
    return found


def _command_section(path: str, command: click.Command, ctx: click.Context) -> str:
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines = [f"## `{path}`", "", f"```text\n{path} {usage}\n```", ""]
    help_text = (command.help or "").split("\f")[0].strip()
    if help_text:
        lines += [_plain(help_text), ""]
    rows = []
    for param in command.get_params(ctx):
        if isinstance(param, click.Option) and not param.hidden and "--help" not in param.opts:
            rows.append(_option_row(param, ctx))
    if rows:
        lines += ["| option | meaning |", "|---|---|", *rows, ""]
    return "\n".join(lines)


def _option_row(option: click.Option, ctx: click.Context) -> str:
    record = option.get_help_record(ctx)
    flags, meaning = record if record is not None else (", ".join(option.opts), "")
    return f"| `{_cell(flags)}` | {_cell(meaning)} |"


def _cell(text: str) -> str:
    """Escape what would split a Markdown table cell (GFM splits on ``|`` even inside code spans)."""
    return text.replace("|", "\\|")


def _plain(text: str) -> str:
    """Drop click's ``\\b`` no-rewrap markers and keep such blocks as literal text."""
    out: list[str] = []
    for block in text.split("\n\n"):
        if block.lstrip().startswith("\b"):
            body = textwrap.dedent("\n".join(line for line in block.splitlines() if line.strip() != "\b"))
            out.append("```text\n" + body.strip("\n") + "\n```")
        else:
            out.append(" ".join(line.strip() for line in block.splitlines()))
    return "\n\n".join(out)
