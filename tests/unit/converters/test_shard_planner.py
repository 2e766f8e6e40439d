"""One shard planner: the driver writing in memory and workers writing staged shards cut identically.

Properties over generated batch sequences (empty batches, batches larger than a row group or a
shard, byte limits smaller than one row) and writer options: ``CutPlanner`` covers every row once
and in order within its limits, and ``SplitSink`` gives the same files, byte for byte, whether the
batches arrive in memory (``--jobs 1``) or as staged Arrow IPC files written into shards by a
runner (here the in-process executor's ``submit``, the same call a pool or Dask worker runs).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from medcat_data.converters.executor import InProcess
from medcat_data.converters.parquet_shards import CutPlanner, SplitSink, write_shard
from medcat_data.converters.resume import stage_result
from medcat_data.converters.units import UnitResult
from medcat_data.converters.writer import WriterOptions

SCHEMA = pa.schema([("i", pa.int64()), ("blob", pa.binary()), ("text", pa.string())])

options_strategy = st.builds(
    WriterOptions,
    row_group_rows=st.integers(1, 9),
    row_group_bytes=st.sampled_from([1, 200, 1_000, 64 * 2**20]),
    max_shard_rows=st.integers(1, 30),
    max_shard_bytes=st.sampled_from([1, 500, 3_000, 500 * 2**20]),
)
# Row counts of the batches, then the byte length of each row's blob.
batches_strategy = st.lists(st.lists(st.integers(0, 300), min_size=0, max_size=25), min_size=0, max_size=12)


def _batches(shapes: list[list[int]]) -> list[pa.RecordBatch]:
    out, n = [], 0
    for sizes in shapes:
        rows = range(n, n + len(sizes))
        n += len(sizes)
        out.append(
            pa.record_batch(
                [pa.array(list(rows), pa.int64()), pa.array([bytes([i % 251]) * s for i, s in zip(rows, sizes)]),
                 pa.array([None if i % 5 == 0 else f"row {i}" for i in rows])],
                schema=SCHEMA,
            )
        )
    return out


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.parquet"))}


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes=batches_strategy, options=options_strategy)
def test_the_planner_covers_every_row_once_in_order_within_its_limits(shapes: list[list[int]], options: WriterOptions) -> None:
    batches = _batches(shapes)
    planner = CutPlanner(options)
    groups = []
    for batch in batches:
        groups += planner.add(batch.num_rows, lambda o, n, b=batch: b.slice(o, n).nbytes)
    groups += planner.finish()

    covered = [(p.batch, p.offset + k) for g in groups for p in g.pieces for k in range(p.length)]
    assert covered == [(b, r) for b, batch in enumerate(batches) for r in range(batch.num_rows)]
    assert all(0 < g.rows <= options.row_group_rows for g in groups)
    assert [g.shard for g in groups] == sorted(g.shard for g in groups)
    for before, group in zip(groups, groups[1:]):
        if before is not groups[-1] and before.rows < options.row_group_rows:  # closed early: only by bytes
            assert before.nbytes >= options.row_group_bytes
    shards: dict[int, list[int]] = {}
    for g in groups:
        shards.setdefault(g.shard, []).append(g.rows)
    assert sorted(shards) == list(range(len(shards)))
    for rows in shards.values():  # a shard over the row limit holds exactly one row group
        assert sum(rows) <= options.max_shard_rows or len(rows) == 1


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shapes=batches_strategy, options=options_strategy)
def test_in_memory_and_staged_sinks_write_the_same_bytes(shapes: list[list[int]], options: WriterOptions) -> None:
    batches = _batches(shapes)
    executor = InProcess()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        local = SplitSink(root / "local" / "c", "train", SCHEMA, options)
        for batch in batches:
            local.add(batch)
        local_record = local.finish()

        staged = SplitSink(root / "staged" / "c", "train", SCHEMA, options, lambda task: executor.submit(write_shard, *task))
        for index, batch in enumerate(batches):
            (_, _, ref), = stage_result(root / "staging", UnitResult(index, f"u{index}", (("c", "train", batch),))).batches
            staged.add(ref)
        staged_record = staged.finish()

        assert staged_record == local_record
        assert _files(root / "staged" / "c") == _files(root / "local" / "c")
        assert len(staged.digests) == len(staged_record.shards)
        rows = [pq.read_table(root / "local" / name).column("i").to_pylist() for name in local_record.shards]
        assert [r for shard in rows for r in shard] == list(range(sum(b.num_rows for b in batches)))
