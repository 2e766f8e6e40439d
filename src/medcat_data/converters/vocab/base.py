"""The vocabulary type: ordered label names plus per-source mapping tables from upstream spellings.

A vocabulary never guesses: a value missing from a source's table is a ``SampleError`` naming the
column and the value. The tables are data, rendered verbatim into ``docs/labels.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from medcat_data.errors import SampleError


@dataclass(frozen=True)
class Vocabulary:
    """A closed label set shared across datasets, with the upstream spellings that map onto it."""

    name: str
    title: str
    labels: tuple[str, ...]
    description: str
    mappings: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    """``source -> {upstream value: label}``; a source is ``"<dataset id> <column>"``."""
    label_notes: Mapping[str, str] = field(default_factory=dict)
    references: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for source, table in self.mappings.items():
            bad = sorted(set(table.values()) - set(self.labels))
            assert not bad, f"{self.name}: {source} maps to unknown labels {bad}"

    def index(self, label: str) -> int:
        """Return the ClassLabel integer of a label name."""
        return self.labels.index(label)

    def map(self, source: str, value: object, *, item: str, column: str) -> str:
        """Return the label for an upstream ``value`` of ``source``.

        Raises:
            SampleError: the value is not in the source's table (reported, never guessed).
        """
        table = self.mappings[source]
        key = "" if value is None else str(value).strip()
        try:
            return table[key]
        except KeyError:
            known = ", ".join(repr(k) for k in table)
            raise SampleError(
                item, "labels", f"{column}: unknown value {key!r} for {self.title} (known: {known})"
            ) from None
