"""Workers stage their results and write shards: the driver never receives rows, and failures stay clear.

The pool here is the real local process pool (forkserver workers); nothing is mocked.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest

from medcat_data.converters.executor import InProcess, LocalPool, convert_units
from medcat_data.converters.parquet_shards import SplitSink
from medcat_data.converters.resume import ResumeStore
from medcat_data.converters.units import IndexedUnit, StagedBatch
from medcat_data.converters.writer import WriterOptions
from medcat_data.errors import ConvertError
from tests.unit.converters.test_executor import ENCODER, convert_toy, _units


def test_pool_workers_stage_their_rows_and_send_back_only_references(tmp_path: Path) -> None:
    store = ResumeStore(tmp_path / "out", "key").open()
    staging = store.staging()
    units = [IndexedUnit(i, u) for i, u in enumerate(_units(6))]
    pool = LocalPool(2)
    try:
        results = list(convert_units(units, convert_toy, ENCODER, executor=pool, staging=staging))
    finally:
        pool.close()
    batches = [batch for result in results for _, _, batch in result.batches]
    assert batches and all(isinstance(b, StagedBatch) for b in batches)
    assert all(Path(b.path).parent == Path(staging.folder) for b in batches)
    assert [sum(b.num_rows for _, _, b in r.batches) for r in results] == [u.unit.n for u in units]
    # What the driver reads back is what the workers encoded, in unit order.
    in_memory = list(convert_units([u.unit for u in units], convert_toy, ENCODER))
    for kept, fresh in zip(results, in_memory):
        assert store.load(kept.index).batches == fresh.batches


def test_a_worker_that_cannot_see_the_staging_folder_fails_the_run_saying_why(tmp_path: Path) -> None:
    """A worker on another machine without the shared filesystem is stood in for by a token the driver never wrote."""
    staging = ResumeStore(tmp_path / "out", "key").open().staging()
    elsewhere = replace(staging, token="not-the-drivers")
    pool = LocalPool(2)
    try:
        with pytest.raises(ConvertError, match="cannot see .* --out must be on a filesystem every worker mounts"):
            list(convert_units([IndexedUnit(i, u) for i, u in enumerate(_units(4))], convert_toy, ENCODER, executor=pool, staging=elsewhere))
    finally:
        pool.close()


def _boom(*_: object) -> str:
    raise RuntimeError("worker lost")


def test_a_shard_write_that_fails_on_a_worker_names_the_split(tmp_path: Path) -> None:
    executor = InProcess()
    sink = SplitSink(tmp_path / "c", "train", pa.schema([("i", pa.int64())]), WriterOptions(row_group_rows=2), lambda task: executor.submit(_boom))
    store = ResumeStore(tmp_path / "out", "key").open()
    from medcat_data.converters.resume import stage_result
    from medcat_data.converters.units import UnitResult

    batch = pa.record_batch([pa.array([1, 2, 3])], names=["i"])
    ((_, _, ref),) = stage_result(store.folder, UnitResult(0, "u0", (("c", "train", batch),))).batches
    sink.add(ref)
    with pytest.raises(ConvertError, match=r"writing a shard of c/train failed on a worker \(RuntimeError: worker lost\)"):
        sink.finish()
