"""RowEncoder's plain-schema fast path encodes exactly as ``Features.encode_example`` does."""

from __future__ import annotations

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


def test_configs_with_images_keep_the_generic_path() -> None:
    assert RowEncoder("toy@1", {"i": Features({"image": Image(), "sample_id": Value("string")})})._plain_encoders("i") is None
