"""The CLI loads command modules on demand, and its name table matches what the modules export."""

from __future__ import annotations

import importlib
import subprocess
import sys

from click.testing import CliRunner

from medcat_data.cli import COMMAND_MODULES, main


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
