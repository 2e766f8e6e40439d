"""Grouped splits are deterministic, never split a group, and reach every split."""

from __future__ import annotations

import pytest

from medcat_data.converters.splits import grouped_split, map_upstream_split
from medcat_data.errors import SampleError, UsageError


def test_same_inputs_same_assignment_whatever_the_order() -> None:
    groups = [f"PAT_{i}" for i in range(50)]
    a = grouped_split(groups, seed=7).assignment
    b = grouped_split(list(reversed(groups)) + groups[:5], seed=7).assignment
    assert a == b


def test_other_seed_other_assignment() -> None:
    groups = [f"PAT_{i}" for i in range(50)]
    assert grouped_split(groups, seed=1).assignment != grouped_split(groups, seed=2).assignment


def test_fractions_are_respected_and_every_split_is_used() -> None:
    split = grouped_split([f"p{i}" for i in range(100)], seed=3)
    counts = split.describe()["groups_per_split"]
    assert counts == {"train": 70, "validation": 15, "test": 15}


def test_stratified_split_puts_each_class_in_every_split() -> None:
    groups = [f"p{i}" for i in range(30)]
    labels = {g: ("MEL" if i < 4 else "BCC") for i, g in enumerate(groups)}
    split = grouped_split(groups, labels=labels, seed=5)
    mel_splits = {split.of(g) for g in groups if labels[g] == "MEL"}
    assert mel_splits == {"train", "validation", "test"}


def test_bad_fractions_are_a_usage_error() -> None:
    with pytest.raises(UsageError):
        grouped_split(["a"], fractions=(0.5, 0.5, 0.5))


def test_upstream_split_names_are_mapped() -> None:
    mapping = {"training": "train", "validate": "validation"}
    assert map_upstream_split("training", mapping, item="x") == "train"
    assert map_upstream_split("test", mapping, item="x") == "test"
    with pytest.raises(SampleError, match="unknown upstream split 'dev'"):
        map_upstream_split("dev", mapping, item="x")
