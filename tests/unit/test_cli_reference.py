"""docs/cli.md is the command-line reference rendered from the code, and stays current."""

from __future__ import annotations

from pathlib import Path

from medcat_data.cli import COMMAND_MODULES, main
from medcat_data.cli_reference import render

REFERENCE = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def test_docs_cli_md_is_what_the_code_declares() -> None:
    assert REFERENCE.read_text(encoding="utf-8") == render(main), "docs/cli.md is stale: run `medcat docs cli`"


def test_every_command_and_every_option_appears_in_the_reference() -> None:
    text = render(main)
    for name in COMMAND_MODULES:
        assert f"## `medcat {name}" in text
    import click

    ctx = click.Context(main)
    for name in COMMAND_MODULES:
        command = main.get_command(ctx, name)
        assert command is not None
        commands = command.commands.values() if isinstance(command, click.Group) else [command]
        for sub in commands:
            for param in sub.params:
                if isinstance(param, click.Option) and not param.hidden:
                    assert any(f"`{opt}" in text or f" {opt}" in text for opt in param.opts), (sub.name, param.opts)
