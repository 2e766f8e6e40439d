"""Typed cells of text tables (CSV): a cell's kind, the widening of a column's type, a cell's value.

Column types are ``bool`` (``True``/``False``), ``int64``, ``float64`` and ``string``. A recipe
either infers them in a first pass over the table (``cell_kind`` of every non-empty cell,
combined with ``widen``, starting from ``NULL``; ``column_dtype`` once the pass is done) or
declares them, and converts each cell with ``parse_cell``. An empty cell is null in every type.

Inference: an integer is ``int64`` unless written with a leading zero (``007`` stays a string, so
identifiers keep their digits) or out of the int64 range (then ``float64``); other numbers are
``float64``; anything else ``string``. A conflict widens: int64 → float64 → string, and ``bool``
with anything else → string.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["BOOLS", "NULL", "cell_kind", "column_dtype", "parse_cell", "widen"]

NULL = "null"
"""The kind of a column no value has been seen in yet."""
BOOLS = {"True": True, "False": False}
"""The spellings of a ``bool`` cell."""

_INT = re.compile(r"[+-]?(0|[1-9][0-9]*)")
_ZERO_PADDED = re.compile(r"[+-]?0[0-9]+")
_FLOAT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
_INT64 = (-(2**63), 2**63 - 1)
_ORDER = {NULL: 0, "int64": 1, "float64": 2, "string": 3}
"""Kinds ordered for widening."""


def cell_kind(text: str) -> str:
    """Return the narrowest type that holds one non-empty text cell."""
    if text in BOOLS:
        return "bool"
    if _ZERO_PADDED.fullmatch(text):
        return "string"
    if _INT.fullmatch(text):
        return "int64" if _INT64[0] <= int(text) <= _INT64[1] else "float64"
    if _FLOAT.fullmatch(text):
        return "float64"
    return "string"


def widen(current: str, kind: str) -> str:
    """Return the type of a column of type ``current`` after a cell of ``kind``."""
    if current == NULL or current == kind:
        return kind
    if "bool" in (current, kind) or "string" in (current, kind):
        return "string"
    return current if _ORDER[current] >= _ORDER[kind] else kind


def column_dtype(kind: str) -> str:
    """Return the type a column is written with once inferred (a column of empty cells is ``string``)."""
    return "string" if kind == NULL else kind


def parse_cell(text: str, dtype: str, *, integral_floats: bool = False) -> Any:
    """Return a text cell as a value of ``dtype`` (``""`` is None).

    ``integral_floats`` accepts a number with an integral value (``3.0``, ``1e2``) in an ``int64``
    column; without it an ``int64`` cell must be written as an integer.

    Raises:
        ValueError: a number column's cell is not such a number.
        KeyError: a ``bool`` cell is neither ``True`` nor ``False``.
    """
    if text == "":
        return None
    if dtype == "int64":
        if not integral_floats:
            return int(text)
        number = float(text)
        if not number.is_integer():
            raise ValueError(text)
        return int(number)
    if dtype == "float64":
        return float(text)
    if dtype == "bool":
        return BOOLS[text]
    return text
