"""Run work units in this process or in a process pool, yielding results in unit order.

A *work unit* is a picklable value naming its inputs by path (a file, a study, a shard); it holds
no open handle. A recipe's ``convert_unit(unit)`` yields ``Row``s (or ``Columns`` blocks), ``SampleError``s and
``InputHash``es (or raises ``SampleError`` for the whole unit). ``convert_units`` runs it for every
unit, encodes the rows into Arrow batches (in the parent: workers stay free of ``datasets`` and
start twice as fast), records per-item failures as
``ErrorRecord``s (never fatal unless ``on_bad_item="fail"``) and yields one ``UnitResult`` per
unit **in the order of the units**, whatever the scheduling, so the writer's output does not
depend on ``jobs``. At most ``max_in_flight`` units are pending at once, so memory stays flat.

Worker processes never inherit a copy of the parent (no ``fork`` of a process that may run
threads): on Linux they come from a ``forkserver`` that imported the recipe module and its heavy
dependencies once per process lifetime, so the second pool of a run (every further config, every
dataset of ``medcat demo``) starts its workers in milliseconds instead of re-importing
``datasets``; elsewhere they are ``spawn``ed. Either way each worker adopts the parent's current
directory, environment and ``sys.path`` when it starts, so it behaves as a fresh child would. The
``convert_unit`` callable must be importable (a module-level function, or a ``functools.partial``
of one with picklable arguments), and a script that calls this with ``jobs > 1`` needs the usual
``if __name__ == "__main__":`` guard. This module schedules work only; it never writes output.

Normalize gives every executor a ``Staging`` folder: each worker writes its unit's record batches
there itself and sends back only their paths, and the writer has workers write the shards
(``submit``), so the driver never receives or writes the rows (``resume.stage_result``,
``parquet_shards.SplitSink``). In process, the driver is that worker.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import os
import sys
import threading
from collections import deque
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence, Sized
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, replace
from typing import Any, Literal, Protocol, TypeVar, Union

from medcat_data.converters.resume import Staging, stage_result
from medcat_data.converters.units import Columns, ErrorRecord, ErrorUnit, IndexedUnit, InputHash, Row, RowEncoder, UnitResult
from medcat_data.errors import ConvertError, SampleError, UsageError
from medcat_data.progress import NullProgress, Progress

log = logging.getLogger(__name__)

U = TypeVar("U")
R = TypeVar("R")

OnBadItem = Literal["record", "fail"]
"""``record``: a failed item goes to ``errors.jsonl`` and the run goes on; ``fail``: stop at the first."""

UnitOutput = Union[Row, Columns, SampleError, InputHash]
ConvertUnit = Callable[[Any], Iterable[UnitOutput]]

__all__ = [
    "ConvertUnit", "Executor", "InProcess", "LocalPool", "OnBadItem", "UnitOutput", "convert_units", "make_executor",
    "run_units", "unit_name", "unit_place",
]


def unit_name(unit: object) -> str:
    """Return a unit's display name: its ``name`` attribute, else ``str(unit)``."""
    name = getattr(unit, "name", None)
    return name if isinstance(name, str) and name else str(unit)


def unit_place(unit: object) -> tuple[str | None, str | None]:
    """Return the ``config`` and ``split`` a unit declares (as fields), each ``None`` when it has none.

    They name the config and split of the unit's failed items in ``errors.jsonl``.
    """
    config, split = getattr(unit, "config", None), getattr(unit, "split", None)
    return (config if isinstance(config, str) else None, split if isinstance(split, str) else None)


#: Imported by the forkserver before its first worker: what every recipe's workers need anyway.
BASE_PRELOAD = ("numpy", "pyarrow", "PIL.Image", "pydicom", "datasets", "medcat_data.converters.units")


def _pool_context(preload: Sequence[str]) -> multiprocessing.context.BaseContext:
    """Return the start method context: a preloaded forkserver where available, else spawn.

    The preload list only takes effect when this process starts its forkserver (its first pool);
    modules of later pools are imported by their workers on first use, which is cheap once the
    common dependencies are loaded.
    """
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["__main__", *BASE_PRELOAD, *preload])
    return context


def _adopt_parent(cwd: str, environ: dict[str, str], path: list[str]) -> None:
    """Worker initializer: take the parent's cwd, environment and import path as they are now."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environ)
    sys.path[:] = path


def module_of(fn: Callable[..., Any]) -> str | None:
    """Return the module that defines a callable (through ``functools.partial`` and task wrappers)."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    for wrapped in ("task", "convert_unit"):  # _StagingTask -> _ConvertTask -> the recipe's function
        inner = getattr(fn, wrapped, None)
        if inner is not None and inner is not fn:
            return module_of(inner)
    module = getattr(fn, "__module__", None)
    return module if isinstance(module, str) and module != "__main__" else None


class Executor(Protocol):
    """Runs a function over work units and yields the results **in unit order**, with a bounded window.

    Three implementations: ``InProcess`` (``--jobs 1``), ``LocalPool`` (``--jobs N``) and
    ``DaskExecutor`` (``--executor dask-local:N``, ``tcp://HOST:PORT`` or a scheduler file). Units
    are consumed lazily: at most ``window`` of them are submitted or finished-but-unyielded at once,
    whatever the length of the plan. Closing the result generator cancels pending work.
    ``submit`` runs one call where the units run and returns a future (``result()``). ``prestart``
    starts the workers and has them import what ``fn`` needs while the driver is still planning.
    """

    def prestart(self, fn: Callable[..., Any]) -> None: ...

    def map(self, fn: Callable[[U], R], units: Iterable[U]) -> Iterator[R]: ...

    def submit(self, fn: Callable[..., R], *args: Any) -> Any: ...

    def close(self) -> None: ...


class InProcess:
    """Run every unit in this process (no pickling, easiest to debug)."""

    def prestart(self, fn: Callable[..., Any]) -> None:
        pass

    def map(self, fn: Callable[[U], R], units: Iterable[U]) -> Iterator[R]:
        return (fn(unit) for unit in units)

    def submit(self, fn: Callable[..., R], *args: Any) -> Future[R]:
        future: Future[R] = Future()
        try:
            future.set_result(fn(*args))
        except Exception as err:  # noqa: BLE001 - handed to the caller through the future, as a pool would
            future.set_exception(err)
        return future

    def close(self) -> None:
        pass


class LocalPool:
    """Run units in ``jobs`` worker processes of this machine (a preloaded forkserver on Linux).

    The pool starts with the first unit and lives until ``close``, so shard writes (``submit``)
    run in the same workers after the units.
    """

    def __init__(self, jobs: int, window: int | None = None) -> None:
        self.jobs = max(1, jobs)
        self.window = max(1, window or 8 * self.jobs)
        self._pool: ProcessPoolExecutor | None = None
        self._starting: threading.Thread | None = None

    def _started(self, fn: Callable[..., Any]) -> ProcessPoolExecutor:
        starting = self._starting
        if starting is not None and starting is not threading.current_thread():
            starting.join()
            self._starting = None
        if self._pool is None:
            module = module_of(fn)
            self._pool = ProcessPoolExecutor(
                max_workers=self.jobs,
                mp_context=_pool_context([module] if module else []),
                initializer=_adopt_parent,
                initargs=(os.getcwd(), dict(os.environ), list(sys.path)),
            )
        return self._pool

    def prestart(self, fn: Callable[..., Any]) -> None:
        """Start the forkserver (preloading ``fn``'s module) and the workers in a background thread.

        Starting a worker waits until the forkserver has imported its preload list (about a second):
        the driver surveys and plans meanwhile. ``map`` and ``submit`` wait for the thread.
        """

        def start() -> None:
            pool = self._started(fn)
            for _ in range(self.jobs):
                pool.submit(os.getpid)

        self._starting = threading.Thread(target=start, name="medcat-pool-start", daemon=True)
        self._starting.start()

    def map(self, fn: Callable[[U], R], units: Iterable[U]) -> Iterator[R]:
        """Yield ``fn(unit)`` in unit order.

        Raises:
            ConvertError: a worker process died (killed, out of memory) while converting a unit.
        """
        todo = iter(units)
        head = list(itertools.islice(todo, 2))
        if len(head) <= 1 and self._pool is None and self._starting is None:  # one unit is not worth a pool
            yield from (fn(unit) for unit in head)
            return
        pool = self._started(fn)
        pending: deque[tuple[U, Future[R]]] = deque()
        todo = itertools.chain(head, todo)
        try:
            for unit in itertools.islice(todo, self.window):
                pending.append((unit, pool.submit(fn, unit)))
            while pending:
                unit, future = pending.popleft()
                try:
                    result = future.result()
                except BrokenProcessPool as err:
                    raise ConvertError(
                        f"a worker process died while converting {unit_name(unit)} (out of memory or killed). "
                        "Run again with fewer --jobs, or --jobs 1 to see the failing item."
                    ) from err
                for nxt in itertools.islice(todo, 1):
                    pending.append((nxt, pool.submit(fn, nxt)))
                yield result
        finally:
            for _, future in pending:
                future.cancel()

    def submit(self, fn: Callable[..., R], *args: Any) -> Future[R]:
        return self._started(fn).submit(fn, *args)

    def close(self) -> None:
        """Stop the worker processes (waiting for running work; queued work is cancelled)."""
        if self._starting is not None:
            self._starting.join()
            self._starting = None
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def make_executor(spec: str | None = None, jobs: int = 1, units_per_task: int | None = None) -> Executor:
    """Return the executor a ``--executor`` value (or ``--jobs`` alone) asks for.

    ``None``: in-process for ``jobs`` 1, else a local pool. ``dask-local:N``: a local Dask cluster of
    ``N`` single-threaded worker processes bound to 127.0.0.1. ``tcp://HOST:PORT``: an existing
    Dask scheduler. A path to a ``.json`` scheduler file: the cluster it names.

    Raises:
        UsageError: an executor spec medcat does not know, or a Dask executor without the ``dask`` extra.
    """
    if spec is None or spec in ("", "local"):
        return InProcess() if jobs <= 1 else LocalPool(jobs)
    check_executor(spec)
    from medcat_data.converters.dask_executor import DaskExecutor

    return DaskExecutor.from_spec(spec, units_per_task=units_per_task)


def check_executor(spec: str | None) -> None:
    """Refuse an executor spec before any work: unknown, or Dask without the extra installed.

    Raises:
        UsageError: with what to type or install instead.
    """
    if spec is None or spec in ("", "local"):
        return
    if spec.startswith(("dask-local", "tcp://", "tls://")) or spec.endswith(".json"):
        from medcat_data.converters.dask_executor import import_distributed

        import_distributed()
        return
    raise UsageError(
        f"unknown executor {spec!r}: use dask-local:N (a local Dask cluster on 127.0.0.1), tcp://HOST:PORT "
        "(a running Dask scheduler) or the path of a Dask scheduler file (.json); without --executor, --jobs N "
        "runs a local process pool."
    )


def run_units(
    units: Iterable[U], fn: Callable[[U], R], *, jobs: int = 1, max_in_flight: int | None = None
) -> Iterator[R]:
    """Yield ``fn(unit)`` for each unit, in unit order: in this process for ``jobs`` 1, else a local pool."""
    executor: Executor = InProcess() if jobs <= 1 else LocalPool(jobs, max_in_flight)
    try:
        yield from executor.map(fn, units)
    finally:
        executor.close()


def convert_units(
    units: Iterable[Any],
    convert_unit: ConvertUnit,
    encoder: RowEncoder,
    *,
    jobs: int = 1,
    on_bad_item: OnBadItem = "record",
    progress: Progress | None = None,
    max_in_flight: int | None = None,
    executor: Executor | None = None,
    staging: Staging | None = None,
) -> Iterator[UnitResult]:
    """Convert every unit with ``convert_unit`` and yield its ``UnitResult`` in unit order.

    Workers run the unit *and* encode its rows with the config's features (``encoder``), so what
    crosses to this process is Arrow record batches, error records and input hashes. Per-item
    failures (yielded or raised ``SampleError``s, and any other exception escaping a unit, recorded
    with its type) become ``ErrorRecord``s on the result; rows a unit yielded before failing are
    kept. The output is the same for every executor. ``progress`` hears the number of units (when
    ``units`` has a length; a streamed plan does not), then each unit with its items (rows +
    errors) and errors, then ``finish``, also when the run stops early.

    Raises:
        SampleError: with ``on_bad_item="fail"``, the first failed item.
        ConvertError: a worker process died.
    """
    task: Callable[[Any], UnitResult] = _ConvertTask(convert_unit, encoder)
    if staging is not None:
        task = _StagingTask(task, staging)  # type: ignore[arg-type]
    runner = executor or (InProcess() if jobs <= 1 else LocalPool(jobs, max_in_flight))
    shown = progress or NullProgress()
    shown.start(len(units) if isinstance(units, Sized) else None)
    try:
        for index, result in enumerate(runner.map(task, units)):
            result = replace(result, index=index)
            shown.item_done(result.name, result.items, len(result.errors))
            if on_bad_item == "fail" and result.errors:
                raise result.errors[0].to_exception()
            yield result
    finally:
        shown.finish()
        if executor is None:
            runner.close()


@dataclass(frozen=True)
class _RawResult:
    """A unit's output as the worker sends it back: rows not yet encoded."""

    name: str
    outputs: tuple[Row | Columns | ErrorRecord, ...]
    hashes: tuple[InputHash, ...]

    def encode(self, index: int, encoder: RowEncoder) -> UnitResult:
        """Encode the rows and column blocks in order; what the features refuse becomes an error record."""
        batches: list[tuple[str, str, Any]] = []
        encoded: list[tuple[str, str, dict[str, Any]]] = []
        errors: list[ErrorRecord] = []
        rows = 0
        for item in self.outputs:
            if isinstance(item, ErrorRecord):
                errors.append(item)
                continue
            try:
                if isinstance(item, Columns):
                    batches.extend(encoder.batches(encoded))
                    encoded.clear()
                    batches.append((item.config, item.split, encoder.encode_columns(item)))
                    rows += len(item)
                else:
                    encoded.append((item.config, item.split, encoder.encode_row(item)))
                    rows += 1
            except SampleError as err:
                errors.append(ErrorRecord.from_exception(err, self.name, config=item.config, split=item.split))
        batches.extend(encoder.batches(encoded))
        return UnitResult(
            index=index,
            name=self.name,
            batches=tuple(batches),
            errors=tuple(errors),
            input_hashes=self.hashes,
            items=rows + len(errors),
        )


@dataclass(frozen=True)
class _ConvertTask:
    """The picklable callable a worker runs: convert one unit, encode its rows, catch its failures."""

    convert_unit: ConvertUnit
    encoder: RowEncoder

    def __call__(self, unit: Any) -> UnitResult:
        """Return the unit's encoded result (its ``index`` is set by the caller, in unit order)."""
        return self.raw(unit).encode(-1, self.encoder)

    def raw(self, unit: Any) -> _RawResult:
        name = unit_name(unit)
        config, split = unit_place(unit)
        outputs: list[Row | Columns | ErrorRecord] = []
        hashes: list[InputHash] = []
        # An ErrorUnit carries the items a recipe found broken while planning: reported, not converted.
        items = iter(unit.errors) if isinstance(unit, ErrorUnit) else self.convert_unit(unit)
        try:
            for item in items:
                if isinstance(item, (Row, Columns)):
                    outputs.append(item)
                elif isinstance(item, SampleError):
                    outputs.append(ErrorRecord.from_exception(item, name, config=item.config or config, split=item.split or split))
                elif isinstance(item, InputHash):
                    hashes.append(item)
                else:
                    raise TypeError(f"convert_unit yielded {type(item).__name__}; expected Row, Columns, SampleError or InputHash")
        except SampleError as err:
            outputs.append(ErrorRecord.from_exception(err, name, config=err.config or config, split=err.split or split))
        except Exception as err:  # noqa: BLE001 - one bad unit must not end a 377k-unit run; recorded with its type
            log.debug("unit %s failed", name, exc_info=True)
            outputs.append(ErrorRecord.from_exception(err, name, stage="convert", config=config, split=split))
        return _RawResult(name=name, outputs=tuple(outputs), hashes=tuple(hashes))


@dataclass(frozen=True)
class _StagingTask:
    """Convert an ``IndexedUnit`` and stage its result in the driver's folder; return the references only."""

    task: _ConvertTask
    staging: Staging

    def __call__(self, indexed: IndexedUnit) -> UnitResult:
        self.staging.check()  # outside the unit's own error handling: a worker that cannot stage fails the run
        return stage_result(self.staging.folder, replace(self.task(indexed.unit), index=indexed.index))
