"""Commands of this job; see cli.py for how they are registered."""

from __future__ import annotations

import click

COMMANDS: tuple[click.Command, ...] = ()
