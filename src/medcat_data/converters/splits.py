"""Deterministic splits: upstream names mapped to ours, or seeded group-wise splits.

A grouped split never puts one group (a patient, a study, a linked question) in two splits. It is a
pure function of the group keys, their labels, the fractions and the seed, so it is recorded in the
manifest by those four values and reproduced anywhere.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from typing import Any
from dataclasses import dataclass

from medcat_data.errors import UsageError

SPLITS = ("train", "validation", "test")
DEFAULT_FRACTIONS: tuple[float, float, float] = (0.7, 0.15, 0.15)
DEFAULT_SEED = 20240101


def map_upstream_split(value: str, mapping: Mapping[str, str], *, item: str) -> str:
    """Return our split name for an upstream one (``training`` -> ``train``, ``validate`` -> ``validation``).

    Raises:
        SampleError: an upstream split value that the registry does not map.
    """
    from medcat_data.errors import SampleError

    key = value.strip()
    if key in SPLITS and key not in mapping:
        return key
    try:
        return mapping[key]
    except KeyError:
        raise SampleError(item, "split", f"unknown upstream split {key!r} (known: {sorted(mapping)})") from None


@dataclass(frozen=True)
class GroupedSplit:
    """The recorded parameters and result of a grouped split."""

    fractions: tuple[float, float, float]
    seed: int
    assignment: Mapping[Hashable, str]
    stratified: bool

    def of(self, group: Hashable) -> str:
        return self.assignment[group]

    def describe(self) -> dict[str, object]:
        """Return what the manifest and card record about the split."""
        counts = Counter(self.assignment.values())
        return {
            "method": "grouped" + (" + stratified" if self.stratified else ""),
            "fractions": dict(zip(SPLITS, self.fractions)),
            "seed": self.seed,
            "groups_per_split": {s: counts.get(s, 0) for s in SPLITS},
        }


def grouped_split(
    groups: Sequence[Hashable],
    *,
    labels: Mapping[Any, Any] | None = None,
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS,
    seed: int = DEFAULT_SEED,
) -> GroupedSplit:
    """Assign each distinct group to train/validation/test, optionally stratified by a per-group label.

    Groups are sorted before shuffling with ``random.Random(seed)``, so the result does not depend on
    input order. With ``labels`` (e.g. a patient's majority class) each label's groups are split in
    the given fractions separately, so rare classes reach every split when they have >= 3 groups.

    Raises:
        UsageError: fractions that do not sum to 1 or are negative.
    """
    if any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-9:
        raise UsageError(f"split fractions must be >= 0 and sum to 1, got {fractions}")
    distinct = sorted(set(groups), key=repr)
    buckets: dict[Hashable, list[Hashable]] = defaultdict(list)
    for group in distinct:
        buckets[labels[group] if labels is not None else None].append(group)
    rng = random.Random(seed)
    assignment: dict[Hashable, str] = {}
    for key in sorted(buckets, key=repr):
        members = buckets[key]
        rng.shuffle(members)
        n = len(members)
        n_val = round(n * fractions[1])
        n_test = round(n * fractions[2])
        if n >= 3:
            n_val = max(n_val, 1 if fractions[1] > 0 else 0)
            n_test = max(n_test, 1 if fractions[2] > 0 else 0)
        n_train = max(n - n_val - n_test, 0)
        for i, group in enumerate(members):
            assignment[group] = "train" if i < n_train else "validation" if i < n_train + n_val else "test"
    return GroupedSplit(tuple(fractions), seed, assignment, labels is not None)  # type: ignore[arg-type]
