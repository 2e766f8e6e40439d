"""The one chain every recipe test runs: replica → real fetch over loopback → verify → normalize → load.

Checks the invariants every dataset must keep (STYLE.md §8): counts per split from the replica's
own ``expected``, features equal to the recipe's declared schema, no group (patient, study) in two
splits, unique and stable ``sample_id``s, byte-identical parquet for ``--jobs 1`` and ``--jobs 2``,
and the planted bad item in ``errors.jsonl`` and nowhere else.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets

from medcat_data.catalog.refs import ResolvedDataset, resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.normalize import NormalizeRequest, normalize
from medcat_data.converters.recipe import RecipeOptions, load_recipe
from medcat_data.mirror.replicas.base import Replica, load_builder
from medcat_data.mirror.server import MirrorServer

_BUILT: dict[tuple[str, str], list[Replica]] = {}


@dataclass(frozen=True)
class ChainResult:
    """What one run of the chain produced, for extra, recipe-specific assertions."""

    resolved: ResolvedDataset
    replica: Replica
    out_dir: Path
    loaded: Mapping[str, datasets.DatasetDict]


@contextmanager
def _env(values: Mapping[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def replicas(dataset_id: str, server: MirrorServer) -> list[Replica]:
    """Build a dataset's replicas into the session mirror once, and protect their prefixes."""
    key = (dataset_id, str(server.root))
    if key not in _BUILT:
        builder = load_builder(dataset_id)
        assert builder is not None, f"{dataset_id} has no replica builder"
        _BUILT[key] = builder.build(server.root, seed=0)
    for replica in _BUILT[key]:
        for p in replica.protections:
            server.protect(p.prefix, p.username, p.password, user_agents=p.user_agents)
    return _BUILT[key]


def fetch_and_verify(resolved: ResolvedDataset, replica: Replica, server: MirrorServer) -> None:
    """Fetch one source through the real engine from the mirror, then verify it; fail loudly otherwise."""
    from medcat_data.loaders import FetchOptions, fetch, verify

    with _env(dict(replica.env)):
        report = fetch(resolved, FetchOptions(mirror=server.url, accept_license=True, source=replica.source, jobs=4))
    assert report.ok, json.dumps(report.to_dict(), indent=1)
    verdict = verify(resolved)
    assert verdict.ok, json.dumps(verdict.to_dict(), indent=1)


def _parquet_bytes(out_dir: Path) -> dict[str, bytes]:
    return {p.relative_to(out_dir).as_posix(): p.read_bytes() for p in sorted(out_dir.rglob("*.parquet"))}


def run_chain(
    dataset_id: str,
    server: MirrorServer,
    tmp_path: Path,
    *,
    source: str | None = None,
    ref: str | None = None,
    options: RecipeOptions | None = None,
    expected_splits: bool = True,
) -> ChainResult:
    """Run the whole chain for one source and assert the shared invariants; return what it made."""
    registry = load_registry()
    resolved = resolve(ref or dataset_id, registry)
    built = replicas(dataset_id, server)
    replica = next(r for r in built if source is None or r.source == source)
    fetch_and_verify(resolved, replica, server)

    outs = {}
    for jobs in (1, 2):
        result = normalize(
            NormalizeRequest(resolved, tmp_path / f"jobs{jobs}", source=replica.source, jobs=jobs, options=options or RecipeOptions())
        )
        outs[jobs] = result.out_dir
    assert _parquet_bytes(outs[1]) == _parquet_bytes(outs[2]), "parquet differs between --jobs 1 and --jobs 2"
    assert _parquet_bytes(outs[1]), "no parquet written"
    out_dir = outs[1]

    expected = replica.expected
    recipe = load_recipe(resolved.entry.template_of or dataset_id)
    assert recipe is not None
    loaded: dict[str, datasets.DatasetDict] = {}
    all_ids: list[str] = []
    for config, splits in expected["configs"].items():
        ds = datasets.load_dataset(str(out_dir), config)
        loaded[config] = ds
        counts = {split: len(ds[split]) for split in ds}
        if expected_splits:
            assert counts == {s: n for s, n in splits.items() if n}, f"{config}: {counts} != {splits}"
        else:
            assert sum(counts.values()) == sum(splits.values()), f"{config}: {counts} vs {splits}"
        for split in ds:
            assert len(ds[split]) > 0, f"{config}/{split} is empty"
        first = next(iter(ds.values()))
        assert set(first.features) >= {"source", "sample_id", "split"}
        ids = [sid for split in ds for sid in ds[split]["sample_id"]]
        assert len(ids) == len(set(ids)), f"{config}: duplicate sample_id"
        all_ids += [f"{config}/{i}" for i in ids]
        for column in replica.group_columns:
            if column not in first.features:
                continue
            seen: dict[Any, str] = {}
            for split in ds:
                for value in ds[split][column]:
                    if value is None:
                        continue
                    assert seen.setdefault(value, split) == split, f"{config}: {column}={value!r} in two splits"

    errors = [json.loads(line) for line in (out_dir / "errors.jsonl").read_text().splitlines() if line.strip()]
    planted = expected.get("errors", [])
    assert len(errors) == len(planted), f"errors.jsonl has {errors}, expected {planted}"
    for want in planted:
        assert any(e["path"].endswith(want["path"]) for e in errors), f"{want} not in errors.jsonl: {errors}"
    return ChainResult(resolved, replica, out_dir, loaded)
