"""The one harness every dataset test module uses; it runs the real ``normalize``, never a copy of it.

* ``run_chain``: the dataset's replica served on loopback → the real fetch → verify → ``normalize``
  with ``--jobs 1`` and ``--jobs 2`` → ``datasets.load_dataset``. It asserts the invariants every
  dataset keeps (STYLE.md §8): counts per split from the replica's own ``expected``, loaded features
  equal to the recipe's declared ones, no group (patient, study) in two splits, unique
  ``sample_id``s, byte-identical parquet for both job counts, and the planted bad item in
  ``errors.jsonl`` and nowhere else.
* ``normalize_folder``: ``converters.normalize.run_recipe`` (the body of ``normalize``) on a folder
  laid out as a fetch leaves it, without a fetch manifest: for recipe tests on hand-made or
  damaged trees.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import datasets

from medcat_data.catalog.refs import ResolvedDataset, resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.normalize import (
    NormalizeRequest,
    NormalizeResult,
    context_for,
    dataset_root,
    normalize,
    pick_source,
    recipe_extra,
    run_recipe,
)
from medcat_data.converters.recipe import AnyRecipe, RecipeContext, RecipeOptions, require_recipe
from medcat_data.mirror.replicas.base import Replica, load_builder
from medcat_data.mirror.server import MirrorServer

_BUILT: dict[tuple[str, str], list[Replica]] = {}


@dataclass(frozen=True)
class ChainResult:
    """What one run of the chain produced, for extra, dataset-specific assertions."""

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


def recipe_for(resolved: ResolvedDataset) -> AnyRecipe:
    """Return the recipe normalize uses for an entry (its template's for a resolved template)."""
    return require_recipe(resolved.entry.id, resolved.entry.template_of)


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


def parquet_bytes(out_dir: Path) -> dict[str, bytes]:
    """Return every parquet file of an output, by relative path."""
    return {p.relative_to(out_dir).as_posix(): p.read_bytes() for p in sorted(out_dir.rglob("*.parquet"))}


def read_errors(out_dir: Path) -> list[dict[str, Any]]:
    """Return the records of ``errors.jsonl`` (none when the file is absent)."""
    path = out_dir / "errors.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def declared_features(recipe: AnyRecipe, ctx: RecipeContext, configs: Sequence[str]) -> dict[str, datasets.Features]:
    """Return the features the recipe declares for each config, surveyed once as normalize does."""
    survey = recipe.survey(ctx)
    return {config: recipe.features(config, ctx, survey) for config in configs}


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
    options = options or RecipeOptions()

    outs = {}
    for jobs in (1, 2):
        result = normalize(NormalizeRequest(resolved, tmp_path / f"jobs{jobs}", source=replica.source, jobs=jobs, options=options))
        outs[jobs] = result.out_dir
    assert parquet_bytes(outs[1]), "no parquet written"
    assert parquet_bytes(outs[1]) == parquet_bytes(outs[2]), "parquet differs between --jobs 1 and --jobs 2"
    out_dir = outs[1]

    recipe = recipe_for(resolved)
    expected = replica.expected
    ctx = context_for(
        resolved.entry, resolved.version, dataset_root(resolved, None), pick_source(resolved, replica.source),
        replace(options, extra=recipe_extra(recipe, options.extra)),
    )
    declared = declared_features(recipe, ctx, list(expected["configs"]))
    loaded: dict[str, datasets.DatasetDict] = {}
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
            assert ds[split].features == declared[config], f"{config}/{split}: loaded features differ from the recipe's"
        first = next(iter(ds.values()))
        assert set(first.features) >= {"source", "sample_id", "split"}
        ids = [sid for split in ds for sid in ds[split]["sample_id"]]
        assert len(ids) == len(set(ids)), f"{config}: duplicate sample_id"
        for column in replica.group_columns:
            if column not in first.features:
                continue
            seen: dict[Any, str] = {}
            for split in ds:
                for value in ds[split][column]:
                    if value is None:
                        continue
                    assert seen.setdefault(value, split) == split, f"{config}: {column}={value!r} in two splits"

    errors = read_errors(out_dir)
    planted = expected.get("errors", [])
    assert len(errors) == len(planted), f"errors.jsonl has {errors}, expected {planted}"
    for want in planted:
        assert any(e["path"].endswith(want["path"]) for e in errors), f"{want} not in errors.jsonl: {errors}"
    return ChainResult(resolved, replica, out_dir, loaded)


def normalize_folder(
    dataset_id: str,
    folder: Path,
    out: Path,
    *,
    source: str | None = None,
    configs: Sequence[str] = (),
    options: RecipeOptions | None = None,
    jobs: int = 1,
    on_bad_item: str = "record",
    overwrite: bool = False,
) -> NormalizeResult:
    """Normalize a folder laid out as a fetch of ``source`` leaves it (``folder`` is the dataset root).

    Runs ``run_recipe``, the body of ``normalize``, with the fetch-state check left out: the folder
    has no fetch manifest. The output is ``out / <id>``.
    """
    resolved = resolve(dataset_id, load_registry())
    recipe = recipe_for(resolved)
    options = options or RecipeOptions()
    ctx = context_for(
        resolved.entry, resolved.version, folder, pick_source(resolved, source),
        replace(options, extra=recipe_extra(recipe, options.extra)),
    )
    return run_recipe(
        recipe, resolved.entry, ctx, out, ref=dataset_id, configs=configs, jobs=jobs, on_bad_item=on_bad_item, overwrite=overwrite
    )


def load(out_dir: Path, config: str) -> datasets.DatasetDict:
    """Load one config of a normalized output with the real ``datasets.load_dataset``."""
    return datasets.load_dataset(str(out_dir), config)
