"""The table codec: the kind of a text cell, the widening of a column's type, a cell's typed value."""

from __future__ import annotations

from functools import reduce

import pytest

from medcat_data.converters.codecs.table import NULL, cell_kind, column_dtype, parse_cell, widen


@pytest.mark.parametrize(
    ("text", "kind"),
    [("True", "bool"), ("false", "string"), ("0", "int64"), ("-12", "int64"), ("007", "string"), ("+07", "string"),
     ("9223372036854775807", "int64"), ("9223372036854775808", "float64"), ("2.5", "float64"), (".5", "float64"),
     ("1e3", "float64"), ("n/a", "string"), ("1 000", "string")],
)
def test_cell_kind(text: str, kind: str) -> None:
    assert cell_kind(text) == kind


@pytest.mark.parametrize(
    ("cells", "dtype"),
    [((), "string"), (("1", "2"), "int64"), (("1", "2.5"), "float64"), (("2.5", "3"), "float64"),
     (("True", "False"), "bool"), (("True", "1"), "string"), (("1", "x", "2"), "string")],
)
def test_a_column_widens_to_hold_every_cell(cells: tuple[str, ...], dtype: str) -> None:
    assert column_dtype(reduce(widen, map(cell_kind, cells), NULL)) == dtype


def test_parse_cell_by_type_and_integral_floats_only_when_asked() -> None:
    assert [parse_cell(t, d) for t, d in (("", "int64"), ("7", "int64"), ("2.5", "float64"), ("False", "bool"), ("007", "string"))] == [
        None, 7, 2.5, False, "007"
    ]
    with pytest.raises(ValueError):
        parse_cell("3.0", "int64")
    assert parse_cell("3.0", "int64", integral_floats=True) == 3
    with pytest.raises(ValueError):
        parse_cell("3.5", "int64", integral_floats=True)
    with pytest.raises(KeyError):
        parse_cell("yes", "bool")
