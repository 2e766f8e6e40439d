"""The human turn of image-text rows: a small template with ``{caption}``, ``{inline_mentions}``, ``{figure_label}``.

Image-text rows (a figure and its caption) carry no question, so the exporter asks one from a
template; the caption is the answer. Templates use Python's ``str.format`` syntax restricted to
three placeholders (``{{`` and ``}}`` write literal braces). This module parses and renders
templates only; it never reads datasets.
"""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medcat_data.errors import UsageError

__all__ = ["DEFAULT_TEMPLATE", "PLACEHOLDERS", "PromptTemplate"]

PLACEHOLDERS = ("caption", "inline_mentions", "figure_label")
"""The columns of the image-text schema a template may name."""

DEFAULT_TEMPLATE = "Write the caption of this figure."
"""The human turn when no ``--prompt-template`` is given (documented in docs/conversations.md)."""


@dataclass(frozen=True)
class PromptTemplate:
    """A validated template; ``origin`` names where it came from, for error messages."""

    text: str = DEFAULT_TEMPLATE
    origin: str = "the default template"

    def __post_init__(self) -> None:
        _check(self.text, self.origin)

    @classmethod
    def from_file(cls, path: Path) -> PromptTemplate:
        """Read a UTF-8 template file; one trailing newline (the file's last line end) is dropped.

        Raises:
            UsageError: the file cannot be read, is empty, or names an unknown placeholder.
        """
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise UsageError(f"cannot read the prompt template {path}: {err}. Pass a UTF-8 text file.") from err
        if text.endswith("\n"):
            text = text[:-1]
        return cls(text, str(path))

    def render(self, row: Mapping[str, Any]) -> str:
        """Fill the template from an image-text row; a null value is empty, mentions one per line."""
        values = {name: _text(row.get(name)) for name in PLACEHOLDERS}
        return self.text.format_map(values)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Sequence) and not isinstance(value, str):
        return "\n".join(str(v) for v in value if v is not None)
    return str(value)


def _check(text: str, origin: str) -> None:
    """Refuse an empty template or one naming anything but the three placeholders.

    Raises:
        UsageError: what is wrong, in which template, and how to fix it.
    """
    allowed = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
    if not text.strip():
        raise UsageError(f"prompt template {origin} is empty; write the question to ask, optionally with {allowed}.")
    try:
        fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(text) if name is not None]
    except ValueError as err:
        raise UsageError(f"prompt template {origin}: {err}. Write {{{{ and }}}} for literal braces.") from err
    for name, spec, conv in fields:
        if name not in PLACEHOLDERS or spec or conv:
            shown = "{" + name + ("!" + conv if conv else "") + (":" + spec if spec else "") + "}"
            raise UsageError(
                f"prompt template {origin}: unknown placeholder {shown}; use {allowed} "
                "(write {{ and }} for literal braces)."
            )
