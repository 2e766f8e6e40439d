"""The one output object of the command line: results to stdout, everything else to stderr.

With ``--json`` stdout is exactly one JSON document. Library code never prints; commands hand
their results to an ``Output``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "model_dump"):
        return obj.model_dump(mode="json")
    if hasattr(obj, "__fspath__"):
        return str(obj)
    if hasattr(obj, "value"):
        return obj.value
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


@dataclass
class Output:
    """Route results and messages; ``json_mode`` makes stdout one JSON document."""

    json_mode: bool = False
    quiet: bool = False
    stdout: Console = field(default_factory=Console)
    stderr: Console = field(default_factory=lambda: Console(stderr=True, soft_wrap=True))

    def result(self, payload: Any) -> None:
        """Emit the command's result: one JSON document, or rich renderables/strings."""
        if self.json_mode:
            sys.stdout.write(json.dumps(payload, indent=2, default=_json_default, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            _mark_result_written()
        else:
            self.stdout.print(payload)

    def print(self, *renderables: Any, markup: bool = True, highlight: bool = False) -> None:
        """Print human-readable results to stdout (ignored in JSON mode)."""
        if not self.json_mode:
            self.stdout.print(*renderables, markup=markup, highlight=highlight)

    def raw(self, text: str) -> None:
        """Write text to stdout verbatim (e.g. BibTeX, JSON Schema)."""
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()

    def info(self, message: str) -> None:
        """Tell the user something on stderr unless ``--quiet``."""
        if not self.quiet:
            self.stderr.print(message, markup=False, highlight=False)

    def warn(self, message: str) -> None:
        self.stderr.print(f"warning: {message}", markup=False, highlight=False, style="yellow")

    def error(self, message: str) -> None:
        self.stderr.print(f"error: {message}", markup=False, highlight=False, style="bold red")


def _mark_result_written() -> None:
    """Note on the click context that stdout holds the JSON result, so a later error adds no second document."""
    import click

    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta["medcat.result_written"] = True
