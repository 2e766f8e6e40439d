"""RowEncoder's plain-schema fast path encodes exactly as ``Features.encode_example`` does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datasets import ClassLabel, Features, Image, List, Value

from medcat_data.converters.schemas import variant_calling_features
from medcat_data.converters.units import Row, RowEncoder
from medcat_data.errors import SampleError

PLAIN = variant_calling_features({"qual": Value("float64"), "alt_index": Value("int32"), "tags": List(ClassLabel(names=["a", "b"]))})
ROWS = [
    {"chrom": "chr1", "pos": 5, "ref": "A", "alt": "G", "genotype": "0/1", "genotype_class": "het", "in_confident_region": True,
     "stratifications": ["x", "y"], "qual": 50, "alt_index": np.int64(1), "tags": ["b", "a"], "sample_id": "s1"},
    {"chrom": "chr2", "pos": np.int64(7), "ref": "AT", "alt": "A", "genotype": "1|1", "genotype_class": 2, "in_confident_region": None,
     "stratifications": [], "qual": None, "alt_index": 2, "tags": None, "sample_id": "s2"},
]


@pytest.mark.parametrize("values", ROWS)
def test_plain_fast_path_equals_the_generic_encoding(values: dict[str, object]) -> None:
    encoder = RowEncoder("toy@1", {"c": PLAIN})
    assert encoder._plain_encoders("c") is not None
    fast = encoder.encode_row(Row("c", "train", values))
    generic = PLAIN.encode_example({**{k: None for k in PLAIN}, **values, "split": "train", "source": "toy@1"})
    assert fast == generic and list(fast) == list(generic)
    assert [type(v) for v in fast.values()] == [type(v) for v in generic.values()]


def test_an_unknown_class_name_is_still_a_sample_error() -> None:
    encoder = RowEncoder("toy@1", {"c": PLAIN})
    with pytest.raises(SampleError, match="s1"):
        encoder.encode_row(Row("c", "train", {**ROWS[0], "genotype_class": "triploid"}))


def test_image_bytes_are_kept_even_when_their_name_is_a_file_in_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(b"another file")
    features = Features({"image": Image(), "images": List(Image()), "sample_id": Value("string"), "split": Value("string"), "source": Value("string")})
    encoder = RowEncoder("toy@1", {"i": features})
    image = {"bytes": b"\xff\xd8 the row's own bytes", "path": "images/a.jpg"}
    encoded = encoder.encode_row(Row("i", "train", {"image": image, "images": [image, image], "sample_id": "s1"}))
    assert encoded["image"] == image and encoded["images"] == [image, image]
    # What datasets alone would have stored: the path only, valid in this folder and nowhere else.
    assert Image().encode_example(image) == {"bytes": None, "path": "images/a.jpg"}
    assert encoder.encode_row(Row("i", "train", {"image": "images/a.jpg", "images": [], "sample_id": "s2"}))["image"] == {
        "path": "images/a.jpg", "bytes": None
    }


def _block(rows: list[dict[str, object]]) -> dict[str, list[object]]:
    names = sorted({k for r in rows for k in r})
    return {n: [r.get(n) for r in rows] for n in names}


def test_a_columns_block_becomes_the_batch_the_same_rows_would() -> None:
    from medcat_data.converters.units import Columns

    encoder = RowEncoder("toy@1", {"c": PLAIN})
    rows = [{**ROWS[0], "alt_index": 1}, {**ROWS[1], "pos": 7, "genotype_class": "hom-alt"}]
    by_rows = encoder.batches([("c", "train", encoder.encode_row(Row("c", "train", r))) for r in rows])[0][2]
    by_block = encoder.encode_columns(Columns("c", "train", _block(rows)))
    assert by_block.equals(by_rows) and by_block.schema == by_rows.schema


def test_a_bad_columns_block_is_a_sample_error_naming_its_first_row() -> None:
    from medcat_data.converters.units import Columns

    encoder = RowEncoder("toy@1", {"c": PLAIN})
    with pytest.raises(SampleError, match="s1.*unknown class 'triploid'"):
        encoder.encode_columns(Columns("c", "train", _block([{**ROWS[0], "genotype_class": "triploid"}])))
    with pytest.raises(SampleError, match="not 2 long"):
        encoder.encode_columns(Columns("c", "train", {"sample_id": ["a", "b"], "chrom": ["chr1"]}))


def _mixed(unit: int) -> object:
    from medcat_data.converters.units import Columns

    yield Row("c", "train", {**ROWS[0], "sample_id": f"{unit}-a"})
    yield Columns("c", "train", {"sample_id": [f"{unit}-b", f"{unit}-c"], "pos": [1, 2]})
    yield SampleError(f"{unit}-x", "parse", "planted")
    yield Row("c", "train", {**ROWS[1], "sample_id": f"{unit}-d"})


def test_the_executor_keeps_rows_and_blocks_in_the_order_they_were_yielded() -> None:
    from medcat_data.converters.executor import convert_units

    results = list(convert_units([1, 2], _mixed, RowEncoder("toy@1", {"c": PLAIN})))
    ids = [sid for r in results for _, _, batch in r.batches for sid in batch.column("sample_id").to_pylist()]
    assert ids == ["1-a", "1-b", "1-c", "1-d", "2-a", "2-b", "2-c", "2-d"]
    assert [r.items for r in results] == [5, 5] and [e.path for r in results for e in r.errors] == ["1-x", "2-x"]
