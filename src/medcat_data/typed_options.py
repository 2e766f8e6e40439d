"""Options that one recipe or one source kind owns, declared as a typed frozen dataclass.

The generic commands name no dataset's flags: ``medcat normalize ID --option KEY=VALUE`` and
``medcat fetch ID --option KEY=VALUE`` hand the pairs to the owner's options class, which
converts and validates them here. A field's type says how its text is read; its metadata's
``help`` is what ``--help`` prints::

    @dataclass(frozen=True)
    class PmcOptions:
        articles: Path | None = field(default=None, metadata={"help": "only the articles listed in FILE"})
        subset: Literal["commercial", "noncommercial"] | None = None

Supported field types: ``str``, ``int``, ``float``, ``bool``, ``Path`` (an existing file),
``Literal[...]`` of strings, each optionally ``| None``. An unknown key, a repeated key or a value
that does not convert is a ``UsageError`` naming the key and what was expected.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from medcat_data.errors import UsageError

T = TypeVar("T")

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class NoOptions:
    """The options class of an owner that takes none."""


@dataclass(frozen=True)
class OptionField:
    """One declared option: its key, the type it converts to, the text ``--help`` shows."""

    name: str
    kind: Any
    help: str
    default: Any

    @property
    def choices(self) -> tuple[str, ...]:
        """Return the allowed values of a ``Literal`` option (empty for any other type)."""
        return tuple(typing.get_args(self.kind)) if typing.get_origin(self.kind) is typing.Literal else ()

    @property
    def metavar(self) -> str:
        if self.choices:
            return "|".join(self.choices)
        return {Path: "FILE", int: "N", float: "X", bool: "yes|no"}.get(self.kind, "TEXT")


def option_fields(cls: type) -> list[OptionField]:
    """Return the declared options of an options class, in declaration order."""
    hints = typing.get_type_hints(cls)
    out = []
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        if typing.get_origin(kind) in (typing.Union, types.UnionType):
            kind = next(a for a in typing.get_args(kind) if a is not type(None))
        out.append(OptionField(f.name, kind, str(f.metadata.get("help", "")), f.default))
    return out


def split_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """Turn ``KEY=VALUE`` texts into a mapping (``-`` in keys read as ``_``).

    Raises:
        UsageError: a text without ``=`` or a key given twice.
    """
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise UsageError(f"--option {pair!r}: expected KEY=VALUE.")
        if key in out:
            raise UsageError(f"--option {key} is given twice.")
        out[key] = value
    return out


def parse_options(cls: type[T], given: Mapping[str, str], owner: str) -> T:
    """Build an options instance from ``KEY=VALUE`` texts, converting each by its declared type.

    Raises:
        UsageError: an unknown key (naming the accepted ones) or a value that does not convert.
    """
    fields = {f.name: f for f in option_fields(cls)}
    unknown = sorted(set(given) - set(fields))
    if unknown:
        accepted = ", ".join(sorted(fields)) or "none"
        raise UsageError(f"{owner} does not take the option(s) {', '.join(unknown)}; it takes: {accepted}.")
    return cls(**{name: _convert(fields[name], text, owner) for name, text in given.items()})


def _convert(option: OptionField, text: str, owner: str) -> Any:
    kind, name = option.kind, option.name
    if option.choices:
        if text not in option.choices:
            raise UsageError(f"{owner}: option {name} must be one of {', '.join(option.choices)}, not {text!r}.")
        return text
    if kind is bool:
        if text.lower() in _TRUE | _FALSE:
            return text.lower() in _TRUE
        raise UsageError(f"{owner}: option {name} takes yes or no, not {text!r}.")
    if kind is Path:
        path = Path(text).expanduser()
        if not path.is_file():
            raise UsageError(f"{owner}: option {name}: {text!r} is not a file.")
        return path.resolve()
    if kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            raise UsageError(f"{owner}: option {name} takes a number, not {text!r}.") from None
    return text


def given_options(options: object) -> dict[str, Any]:
    """Return the fields of an options instance that differ from their defaults, JSON-safe.

    A mapping (options not yet parsed) is returned as it is, paths as text.
    """
    if isinstance(options, Mapping):
        return {str(k): str(v) if isinstance(v, Path) else v for k, v in options.items() if v is not None}
    if not dataclasses.is_dataclass(options):
        return {}
    return {
        f.name: str(value) if isinstance(value, Path) else value
        for f in dataclasses.fields(options)
        if (value := getattr(options, f.name)) != f.default
    }


def describe_options(cls: type) -> list[tuple[str, str]]:
    """Return ``(--option KEY=METAVAR, help)`` lines for ``--help`` pages."""
    return [(f"--option {f.name}={f.metavar}", f.help) for f in option_fields(cls)]
