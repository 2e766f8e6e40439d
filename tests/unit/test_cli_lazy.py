"""The CLI loads command modules on demand, and its name table matches what the modules export."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from medcat_data.cli import COMMAND_MODULES, COMMAND_SUMMARIES, main


def test_the_command_table_names_exactly_the_commands_each_module_exports() -> None:
    exported = {}
    for module_name in sorted(set(COMMAND_MODULES.values())):
        module = importlib.import_module(f"medcat_data.commands.{module_name}")
        for command in module.COMMANDS:
            exported[command.name] = module_name
    assert exported == COMMAND_MODULES


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    listed = {line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()}
    assert listed == set(COMMAND_MODULES)


def test_fetch_help_does_not_import_datasets_or_the_normalize_command() -> None:
    code = (
        "import sys\n"
        "from medcat_data.cli import main\n"
        "try:\n"
        "    main(['fetch', '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('datasets' in sys.modules, 'medcat_data.commands.normalize' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False False"


def test_importing_a_submodule_does_not_load_the_catalog() -> None:
    code = "import sys, medcat_data.errors; print('medcat_data.catalog.registry' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def _imported(args: list[str], env: dict[str, str] | None = None) -> set[str]:
    """Run ``python -X importtime`` with ``args`` and return the names of every module it imported."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return {line.split("|")[-1].strip() for line in run.stderr.splitlines() if line.startswith("import time:")}


HEAVY = ("datasets", "pyarrow", "pandas")


@pytest.mark.parametrize("command", ["", *sorted(COMMAND_MODULES)])
def test_help_of_every_command_imports_neither_datasets_nor_pyarrow_nor_pandas(command: str) -> None:
    modules = _imported(["-m", "medcat_data", *command.split(), "--help"])
    assert "medcat_data.cli" in modules
    assert not [m for m in modules if m.split(".")[0] in HEAVY], f"`medcat {command} --help` imports {HEAVY}"


def test_top_level_help_and_completion_import_no_command_module() -> None:
    loaded = _imported(["-m", "medcat_data", "--help"])
    assert not [m for m in loaded if m.startswith("medcat_data.commands")]
    completion = _imported(
        ["-c", "from medcat_data.cli import main; main(prog_name='medcat')"],
        {"_MEDCAT_COMPLETE": "bash_complete", "COMP_WORDS": "medcat ca", "COMP_CWORD": "1"},
    )
    assert not [m for m in completion if m.startswith("medcat_data.commands")]


def test_completion_offers_command_names() -> None:
    env = {**os.environ, "_MEDCAT_COMPLETE": "bash_complete", "COMP_WORDS": "medcat ca", "COMP_CWORD": "1"}
    code = "from medcat_data.cli import main; main(prog_name='medcat')"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env).stdout
    assert out.split() == ["plain,cache"]


def test_the_summaries_medcat_help_lists_are_the_commands_own() -> None:
    ctx = click.Context(main)
    for name in COMMAND_MODULES:
        command = main.get_command(ctx, name)
        assert command is not None and command.help is not None
        assert COMMAND_SUMMARIES[name] == command.help.split("\n")[0], name
    assert set(COMMAND_SUMMARIES) == set(COMMAND_MODULES)


@pytest.mark.parametrize(("command", "says"), [("normalize", "finished work units are kept"), ("convert", "it starts over")])
def test_ctrl_c_says_truthfully_what_the_next_run_does(command: str, says: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """normalize keeps finished units (converters/resume.py); convert keeps nothing and starts over."""
    from click.testing import CliRunner

    from medcat_data import cli
    from medcat_data.converters import convert as convert_module
    from medcat_data.converters import normalize as normalize_module

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(normalize_module, "normalize", interrupted)
    monkeypatch.setattr(convert_module, "convert", interrupted)
    args = ["normalize", "vqa-rad", "--out", "x"] if command == "normalize" else ["convert", ".", "--out", "x"]
    result = CliRunner().invoke(cli.main, args)
    assert result.exit_code == 130 and says in result.stderr, result.output
