"""Normalize on a real Dask cluster on loopback gives the same bytes as ``--jobs 1``.

One ``LocalCluster`` (two single-threaded worker processes, scheduler and workers on 127.0.0.1,
no dashboard) serves the whole module; each normalize connects to it as a user's
``--executor tcp://HOST:PORT`` would. Every dataset source of the demo is fetched from the loopback
mirror and normalized twice: shards, ``README.md``, ``errors.jsonl`` and the manifest (seconds
aside) must be byte-identical.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import distributed  # the dask extra is part of the test extra: these tests never skip
import pytest
from click.testing import CliRunner

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.dask_executor import DaskExecutor
from medcat_data.converters.executor import InProcess, convert_units
from medcat_data.converters.normalize import (
    NormalizeRequest,
    context_for,
    dataset_root,
    normalize,
    pick_source,
    recipe_extra,
    run_recipe,
)
from medcat_data.converters.recipe import RecipeOptions
from medcat_data.converters.writer import WriterOptions
from medcat_data.demo import DEMO_REFS
from medcat_data.errors import ConvertError
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import fetch_and_verify, recipe_for, replicas



pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    """One loopback Dask cluster for the module (about 3 s to start)."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
        dashboard_address=None, worker_dashboard_address=None,
    ) as local:
        yield local


def _sources() -> list[tuple[str, str]]:
    return [
        (entry.id, source.name)
        for entry in load_registry()
        if not entry.template or entry.id in DEMO_REFS
        for source in entry.main_sources
        if source.kind not in ("gcs", "s3")
    ]


def _outputs(out_dir: Path) -> dict[str, bytes]:
    """Every file of an output, the manifest without its seconds."""
    files = {}
    for path in sorted(out_dir.rglob("*")):
        if not path.is_file():
            continue
        data = path.read_bytes()
        if path.name == "medcat-manifest.json":
            manifest = json.loads(data)
            manifest.pop("seconds", None)
            data = json.dumps(manifest, sort_keys=True).encode()
        files[path.relative_to(out_dir).as_posix()] = data
    return files


def _fetched(dataset_id: str, source: str, mirror: MirrorServer) -> Any:
    resolved = resolve(DEMO_REFS.get(dataset_id, dataset_id), load_registry())
    replica = next(r for r in replicas(dataset_id, mirror) if r.source == source)
    fetch_and_verify(resolved, replica, mirror)
    return resolved


def test_every_socket_of_the_local_cluster_listens_on_loopback(cluster: Any) -> None:
    addresses = [cluster.scheduler_address, *cluster.scheduler_info["workers"]]
    assert len(addresses) == 3
    assert all(a.startswith("tcp://127.0.0.1:") for a in addresses), addresses


@pytest.mark.parametrize(("dataset_id", "source"), _sources())
def test_dask_gives_the_bytes_of_jobs_1(dataset_id: str, source: str, cluster: Any, mirror: MirrorServer, tmp_path: Path) -> None:
    resolved = _fetched(dataset_id, source, mirror)
    local = normalize(NormalizeRequest(resolved, tmp_path / "local", source=source))
    dask = normalize(NormalizeRequest(resolved, tmp_path / "dask", source=source, executor=cluster.scheduler_address))
    assert _outputs(dask.out_dir) == _outputs(local.out_dir)


@pytest.mark.parametrize("units_per_task", [1, 3])
@pytest.mark.parametrize(
    "writer",
    [WriterOptions(row_group_rows=3, max_shard_rows=7), WriterOptions(row_group_bytes=15_000, max_shard_bytes=40_000)],
    ids=["cut-by-rows", "cut-by-bytes"],
)
@pytest.mark.parametrize(("dataset_id", "source"), [("vindr-mammo", "physionet"), ("medqa", "gdrive")])
def test_small_row_groups_and_shards_cut_the_same_on_dask(
    dataset_id: str, source: str, writer: WriterOptions, units_per_task: int, cluster: Any, mirror: MirrorServer, tmp_path: Path
) -> None:
    resolved = _fetched(dataset_id, source, mirror)
    recipe = recipe_for(resolved)
    options = RecipeOptions()
    ctx = context_for(
        resolved.entry, resolved.version, dataset_root(resolved, None), pick_source(resolved, source),
        replace(options, extra=recipe_extra(recipe, options.extra)),
    )
    local = run_recipe(recipe, resolved.entry, ctx, tmp_path / "local", ref=dataset_id, executor=InProcess(), writer_options=writer)
    executor = DaskExecutor(distributed.Client(cluster), units_per_task=units_per_task)
    try:
        dask = run_recipe(recipe, resolved.entry, ctx, tmp_path / "dask", ref=dataset_id, executor=executor, writer_options=writer)
    finally:
        executor.close()
    shards = [p for p in local.out_dir.rglob("*.parquet")]
    assert len(shards) > 2, "the small limits must cut several shards"
    assert _outputs(dask.out_dir) == _outputs(local.out_dir)


def _die_on(unit: int) -> int:
    if unit == 5:
        os._exit(3)  # a worker killed mid-run (out of memory, pre-empted node)
    return unit


def test_a_worker_killed_mid_run_fails_the_run_naming_the_unit(cluster: Any) -> None:
    import dask

    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):
        executor = DaskExecutor(distributed.Client(cluster), units_per_task=1)
        try:
            # Named: the unit that killed it, alone when the scheduler says so, else among the units lost with it.
            with pytest.raises(ConvertError, match=r"a Dask worker failed while converting (\d+, )*5\b"):
                list(executor.map(_die_on, range(10)))
        finally:
            executor.close()
    cluster.wait_for_workers(2, timeout=60)


def _bad_item(unit: int) -> Iterator[Any]:
    from medcat_data.errors import SampleError

    if unit == 2:
        yield SampleError(f"item{unit}", "decode", "planted")


def test_on_bad_item_fail_stops_at_the_first_bad_item_on_dask(cluster: Any) -> None:
    from medcat_data.converters.units import RowEncoder
    from medcat_data.errors import SampleError

    executor = DaskExecutor(distributed.Client(cluster), units_per_task=2)
    try:
        with pytest.raises(SampleError, match="item2: decode: planted"):
            list(convert_units(range(6), _bad_item, RowEncoder("x@1"), on_bad_item="fail", executor=executor))
    finally:
        executor.close()


def test_without_dask_the_executor_option_exits_2_with_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dask is installed here, so its absence is simulated by hiding the module from imports."""
    from medcat_data.cli import main

    monkeypatch.setitem(sys.modules, "distributed", None)
    result = CliRunner().invoke(main, ["normalize", "vqa-rad", "--out", "x", "--executor", "dask-local:2"])
    assert result.exit_code == 2, result.output
    assert "pip install 'medcat-data[dask]'" in result.output


def test_an_unknown_executor_is_a_usage_error() -> None:
    from medcat_data.cli import main

    result = CliRunner().invoke(main, ["normalize", "vqa-rad", "--out", "x", "--executor", "ray://x"])
    assert result.exit_code == 2 and "unknown executor 'ray://x'" in result.output
