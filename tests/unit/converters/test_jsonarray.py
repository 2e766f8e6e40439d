"""The incremental JSON-array reader: element ranges from one streaming pass, elements parsed per range."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from medcat_data.converters import jsonarray
from medcat_data.converters.jsonarray import (
    ElementRange,
    JsonArrayError,
    MalformedElementError,
    element_ranges,
    read_elements,
)
from medcat_data.errors import SampleError


def _write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "data.json"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return path


def _read_all(path: Path, target_bytes: int = 64) -> list[tuple[int, Any]]:
    out: list[tuple[int, Any]] = []
    for rng in element_ranges(path, target_bytes=target_bytes):
        out.extend(read_elements(path, rng))
    return out


_TRICKY = [
    {"id": "a", "text": "brackets ] } [ { and commas , inside a string"},
    {"id": "b", "text": 'escaped quote \\" and backslash \\\\ then "quote"'},
    {"id": "c", "text": "unicode \u00e9\u4e2d\U0001f600 and \\u escapes", "n": [1, 2.5, -3e2, True, None]},
    "a bare string element",
    12345,
    [],
    {},
    [[{"deep": [[["x"]]]}]],
    None,
    {"text": "ends with a backslash \\"},
]


@pytest.mark.parametrize("indent", [None, 2])
@pytest.mark.parametrize("target_bytes", [1, 40, 10**9])
def test_elements_round_trip_whatever_the_layout_and_run_size(tmp_path: Path, indent: int | None, target_bytes: int) -> None:
    path = _write(tmp_path, json.dumps(_TRICKY, indent=indent, ensure_ascii=False))
    assert _read_all(path, target_bytes) == list(enumerate(_TRICKY))


def test_ranges_are_consecutive_runs_of_about_target_bytes(tmp_path: Path) -> None:
    items = [{"id": i, "pad": "x" * (i % 7 * 10)} for i in range(200)]
    path = _write(tmp_path, json.dumps(items))
    ranges = element_ranges(path, target_bytes=500)
    assert sum(r.count for r in ranges) == 200
    assert [r.first_index for r in ranges] == [sum(r.count for r in ranges[:k]) for k in range(len(ranges))]
    data = path.read_bytes()
    for rng in ranges[:-1]:
        assert 500 <= rng.size_bytes < 500 + 200  # closes right after crossing the target
    for prev, nxt in zip(ranges, ranges[1:]):
        assert data[prev.end:nxt.start].strip() == b","  # nothing between runs but a comma
    # each range's bytes are exactly its elements: parseable as an array
    for rng in ranges:
        assert json.loads(b"[" + data[rng.start:rng.end] + b"]") == items[rng.first_index:rng.first_index + rng.count]


def test_one_element_larger_than_the_target_is_a_run_of_its_own(tmp_path: Path) -> None:
    path = _write(tmp_path, json.dumps([{"big": "y" * 1000}, 1, 2]))
    ranges = element_ranges(path, target_bytes=100)
    assert [r.count for r in ranges] == [1, 2]


def test_empty_array_has_no_ranges(tmp_path: Path) -> None:
    assert element_ranges(_write(tmp_path, " [ \n ] \n")) == []


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = _write(tmp_path, b"\xef\xbb\xbf" + json.dumps([{"a": 1}]).encode())
    assert _read_all(path) == [(0, {"a": 1})]


def test_scan_crosses_read_chunks_inside_strings_escapes_and_literals(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny read chunks put a chunk boundary at every byte position of tokens and escapes."""
    rnd = random.Random(7)
    items = [
        {"s": "".join(rnd.choice('ab"\\]}[{,: \u00e9') for _ in range(rnd.randint(0, 12))), "n": rnd.randint(-10**6, 10**6)}
        for _ in range(60)
    ] + [123456789, 1.5e-7, True, False, None, "tail"]
    path = _write(tmp_path, json.dumps(items, ensure_ascii=False))
    for chunk in (1, 2, 3, 5, 17):
        monkeypatch.setattr(jsonarray, "_CHUNK_BYTES", chunk)
        assert _read_all(path, target_bytes=50) == list(enumerate(items)), chunk


@pytest.mark.parametrize(
    ("text", "offset", "words"),
    [
        ("", 0, "no '['"),
        ("  ", 2, "no '['"),
        ('{"a": 1}', 0, "object, not an array"),
        ('[{"a": 1}, {"b": 2}', 19, "truncated"),
        ('[{"a": "unterminated}]', 7, "unterminated string"),
        ('[{"a": 1}}]', 9, "unbalanced '}'"),
        ('[{"a": [1}]', 9, "unbalanced '}'"),
        ('[{"a": 1} {"b": 2}]', 10, "missing ','"),
        ('[1 2]', 3, "missing ','"),
        ('[1,,2]', 3, "empty element"),
        ('[1,]', 3, "trailing comma"),
        ('[,1]', 1, "empty element"),
        ('[1] [2]', 4, "after the closing"),
        ('[1] x', 4, "after the closing"),
        ('x [1]', 0, "expected '['"),
    ],
)
def test_malformed_structure_is_a_clear_error_with_file_and_byte_offset(tmp_path: Path, text: str, offset: int, words: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(JsonArrayError) as info:
        element_ranges(path)
    assert info.value.offset == offset
    assert words in str(info.value)
    assert str(path) in str(info.value) and f"byte {offset}" in str(info.value)


def test_malformed_element_is_yielded_as_a_sample_error_and_reading_goes_on(tmp_path: Path) -> None:
    text = '[{"a": 1}, {"b": tru}, {"c": "\\q"}, {"d": 4}]'
    path = _write(tmp_path, text)
    (rng,) = element_ranges(path)
    out = list(read_elements(path, rng, name="data.json"))
    assert [i for i, _ in out] == [0, 1, 2, 3]
    assert out[0][1] == {"a": 1} and out[3][1] == {"d": 4}
    for index, bad in (out[1], out[2]):
        assert isinstance(bad, MalformedElementError) and isinstance(bad, SampleError)
        assert bad.path == "data.json" and bad.stage == "parse" and bad.index == index
        assert f"element {index} (byte {bad.offset})" in bad.reason
    assert text[out[1][1].offset:].startswith("tru")


def test_invalid_utf8_in_an_element_is_one_malformed_element(tmp_path: Path) -> None:
    path = _write(tmp_path, b'[{"a": "\xff\xfe"}, 2]')
    (rng,) = element_ranges(path)
    out = list(read_elements(path, rng))
    assert isinstance(out[0][1], MalformedElementError) and out[1] == (1, 2)


def test_a_range_that_no_longer_matches_the_file_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "[1, 2, 3]")
    (rng,) = element_ranges(path)
    with pytest.raises(JsonArrayError, match="changed since it was scanned"):
        list(read_elements(path, ElementRange(rng.start, rng.end, 0, 2)))
    path.write_text("[1, 2")
    with pytest.raises(JsonArrayError):
        list(read_elements(path, rng))


def test_non_positive_target_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        element_ranges(_write(tmp_path, "[]"), target_bytes=0)
