"""The executor: unit order whatever the scheduling, failures recorded, bounded in-flight work."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from datasets import Features, Value

from medcat_data.converters.executor import convert_units, run_units
from medcat_data.converters.units import InputHash, Row, RowEncoder, UnitResult
from medcat_data.errors import ConvertError, SampleError

FEATURES = Features({"value": Value("int64"), "source": Value("string"), "sample_id": Value("string"), "split": Value("string")})
ENCODER = RowEncoder("toy@1", {"default": FEATURES})


# Units and convert functions live at module level: spawned workers import them by name.
@dataclass(frozen=True)
class ToyUnit:
    name: str
    n: int
    delay_s: float = 0.0
    fail: str = ""
    marker_dir: str = ""
    extra: dict[str, int] = field(default_factory=dict)


def convert_toy(unit: ToyUnit) -> Iterator[Row | SampleError | InputHash]:
    if unit.marker_dir:
        Path(unit.marker_dir, unit.name).touch()
    time.sleep(unit.delay_s)  # makes early units finish last, to prove results come back in unit order
    yield InputHash(unit.name, "0" * 64)
    for i in range(unit.n):
        yield Row("default", "train", {"value": i, "sample_id": f"{unit.name}/{i}"})
    if unit.fail == "yield":
        yield SampleError(unit.name, "decode", "bad pixels")
    elif unit.fail == "raise":
        raise SampleError(unit.name, "read", "truncated")
    elif unit.fail == "bug":
        raise KeyError("missing column")
    elif unit.fail == "die":
        os._exit(3)


def double(x: int) -> int:
    return 2 * x


def where_am_i(_: int) -> tuple[str, str | None]:
    return os.getcwd(), os.environ.get("MEDCAT_EXECUTOR_PROBE")


def _units(count: int, **kwargs: object) -> list[ToyUnit]:
    return [ToyUnit(f"u{i}", n=i % 3 + 1, delay_s=0.05 * (count - i) / count, **kwargs) for i in range(count)]  # type: ignore[arg-type]


def _summary(results: list[UnitResult]) -> list[tuple[str, list[dict[str, object]], list[str]]]:
    return [
        (r.name, [row for _, _, b in r.batches for row in b.to_pylist()], [e.message for e in r.errors]) for r in results
    ]


def test_run_units_yields_in_unit_order_in_process_and_in_a_pool() -> None:
    assert list(run_units(list(range(10)), double, jobs=1)) == [2 * i for i in range(10)]
    assert list(run_units(list(range(10)), double, jobs=2)) == [2 * i for i in range(10)]


def test_results_are_in_unit_order_and_equal_for_one_and_two_jobs() -> None:
    units = _units(8)
    one = list(convert_units(units, convert_toy, ENCODER, jobs=1))
    two = list(convert_units(units, convert_toy, ENCODER, jobs=2))
    assert [r.name for r in two] == [u.name for u in units]
    assert _summary(one) == _summary(two)
    assert [r.index for r in two] == list(range(8))


def test_rows_are_encoded_with_split_and_source_filled_in() -> None:
    (result,) = convert_units([ToyUnit("a", n=2)], convert_toy, ENCODER)
    assert result.rows == 2 and result.items == 2
    assert result.batches[0][2].to_pylist()[1] == {"value": 1, "source": "toy@1", "sample_id": "a/1", "split": "train"}
    assert result.input_hashes == (InputHash("a", "0" * 64),)


@pytest.mark.parametrize(
    ("fail", "stage", "kind"),
    [("yield", "decode", "SampleError"), ("raise", "read", "SampleError"), ("bug", "convert", "KeyError")],
)
def test_a_failed_item_is_recorded_and_the_rows_before_it_are_kept(fail: str, stage: str, kind: str) -> None:
    results = list(convert_units([ToyUnit("a", n=2, fail=fail), ToyUnit("b", n=1)], convert_toy, ENCODER))
    assert [r.rows for r in results] == [2, 1]
    (error,) = results[0].errors
    assert (error.path, error.stage, error.type) == ("a", stage, kind)
    assert results[1].errors == ()


def test_a_row_that_does_not_match_the_features_is_a_sample_error() -> None:
    def convert_bad(unit: ToyUnit) -> Iterator[Row]:
        yield Row("default", "train", {"value": "not a number", "sample_id": "x"})
        yield Row("default", "train", {"value": 1, "sample_id": "y", "surprise": 1})

    (result,) = convert_units([ToyUnit("a", n=0)], convert_bad, ENCODER)
    assert result.rows == 0
    assert [e.stage for e in result.errors] == ["encode", "encode"]
    assert "surprise" in result.errors[1].message


def test_on_bad_item_fail_stops_at_the_first_failed_item() -> None:
    units = [ToyUnit("a", n=1), ToyUnit("b", n=1, fail="raise"), ToyUnit("c", n=1)]
    seen = []
    with pytest.raises(SampleError, match="b: read: truncated"):
        for result in convert_units(units, convert_toy, ENCODER, on_bad_item="fail"):
            seen.append(result.name)
    assert seen == ["a"]


@dataclass
class RecordingProgress:
    """A Progress that remembers every call (a fake of the CLI's progress bar)."""

    calls: list[tuple[object, ...]] = field(default_factory=list)

    def start(self, total: int | None, total_bytes: int | None = None) -> None:
        self.calls.append(("start", total, total_bytes))

    def advance(self, n_bytes: int) -> None:
        self.calls.append(("advance", n_bytes))

    def item_done(self, name: str, items: int = 1, errors: int = 0) -> None:
        self.calls.append(("item_done", name, items, errors))

    def finish(self) -> None:
        self.calls.append(("finish",))


def test_progress_hears_of_every_unit_in_order() -> None:
    progress = RecordingProgress()
    units = [ToyUnit("a", n=2), ToyUnit("b", n=1, fail="yield")]
    list(convert_units(units, convert_toy, ENCODER, jobs=2, progress=progress))
    assert progress.calls == [("start", 2, None), ("item_done", "a", 2, 0), ("item_done", "b", 2, 1), ("finish",)]


def test_no_more_than_max_in_flight_units_are_started_ahead_of_the_consumer(tmp_path: Path) -> None:
    units = [ToyUnit(f"u{i}", n=1, marker_dir=str(tmp_path)) for i in range(20)]
    results = convert_units(units, convert_toy, ENCODER, jobs=2, max_in_flight=3)
    next(results)
    time.sleep(0.5)  # give the pool every chance to run ahead; it must not
    started = len(list(tmp_path.iterdir()))
    results.close()
    assert started <= 1 + 3


def test_a_dead_worker_is_a_convert_error_naming_the_unit() -> None:
    units = [ToyUnit("a", n=1), ToyUnit("b", n=1, fail="die")]
    with pytest.raises(ConvertError, match="worker process died while converting"):
        list(convert_units(units, convert_toy, ENCODER, jobs=2))


def test_workers_see_the_parent_cwd_and_environment_as_they_are_when_the_pool_starts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    list(run_units([1, 2], where_am_i, jobs=2))  # a first pool: starts the forkserver with the old state
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MEDCAT_EXECUTOR_PROBE", "after")
    seen = set(run_units([1, 2, 3], where_am_i, jobs=2))
    assert seen == {(str(tmp_path), "after")}


def test_progress_finishes_when_the_run_stops_at_a_failed_item() -> None:
    progress = RecordingProgress()
    units = [ToyUnit("a", n=1), ToyUnit("b", n=1, fail="raise"), ToyUnit("c", n=1)]
    with pytest.raises(SampleError):
        list(convert_units(units, convert_toy, ENCODER, on_bad_item="fail", progress=progress))
    assert progress.calls[0] == ("start", 3, None) and progress.calls[-1] == ("finish",)
    assert [c[1] for c in progress.calls if c[0] == "item_done"] == ["a", "b"]
