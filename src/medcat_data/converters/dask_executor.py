"""Run work units on a Dask cluster (``--executor dask-local:N | tcp://HOST:PORT | SCHEDULER.json``).

The same ``_ConvertTask`` the local pool runs, submitted through Dask's futures API: several small
units per task (``units_per_task``), results (Arrow record batches, error records, input hashes)
gathered back **in unit order** with at most ``window`` tasks in flight, so the driver holds a
bounded number of results whatever the length of the plan, and the writer on the driver cuts row
groups and shards exactly as for ``--jobs 1``: the output is byte-identical.

``dask-local:N`` starts a ``LocalCluster`` of ``N`` single-threaded worker processes whose
scheduler, workers and nannies listen on 127.0.0.1 only (the scheduler's HTTP status server on a
free port), and stops it when the run ends. The task function (the recipe's ``convert_unit`` with
the config's features) is sent to the workers once, not with every task. ``tcp://HOST:PORT`` (or a scheduler file written by ``dask scheduler
--scheduler-file``) uses a running cluster, whose workers need the same medcat version and read
access to the raw cache at the same path (e.g. a shared filesystem): ``docs/scaling.md``.

Needs the optional extra: ``pip install 'medcat-data[dask]'``.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from medcat_data.converters.executor import unit_name
from medcat_data.errors import ConvertError, UsageError

log = logging.getLogger(__name__)

U = TypeVar("U")
R = TypeVar("R")

INSTALL_HINT = "pip install 'medcat-data[dask]'"
DEFAULT_UNITS_PER_TASK = 4


def import_distributed() -> Any:
    """Return the ``distributed`` module.

    Raises:
        UsageError: it is not installed (exit 2, with the install command).
    """
    try:
        import distributed
    except ImportError as err:
        raise UsageError(f"--executor dask... needs Dask distributed, which is not installed: {INSTALL_HINT}") from err
    return distributed


@contextlib.contextmanager
def _forked_workers(distributed: Any) -> Iterator[None]:
    """Start local Dask workers from a forkserver that imported the heavy modules once.

    Dask spawns each worker process fresh by default, and each then imports numpy, pyarrow, pydicom
    and ``datasets`` itself (about a second of CPU each). Forked from a preloaded forkserver, they
    share those imports, as the local pool's workers do.
    """
    import multiprocessing

    import dask

    from medcat_data.converters.executor import BASE_PRELOAD

    # Dask's statistical profiler samples every worker thread every 10 ms: CPU a batch job does not need.
    quiet: dict[str, Any] = {"distributed.worker.profile.enabled": False}
    # Dask's default MALLOC_TRIM_THRESHOLD_ turns off glibc's adaptive mmap threshold: every
    # large temporary array (a decoded image) is then a fresh mmap and page faults. The thread limits stay.
    environ = dict(dask.config.get("distributed.nanny.pre-spawn-environ", {}))
    environ.pop("MALLOC_TRIM_THRESHOLD_", None)
    quiet["distributed.nanny.pre-spawn-environ"] = environ
    if "forkserver" not in multiprocessing.get_all_start_methods():
        with dask.config.set(quiet):
            yield
        return
    with dask.config.set({**quiet, "distributed.worker.multiprocessing-method": "forkserver"}):
        context = distributed.utils.get_mp_context()  # Dask sets its own preload list the first time
        context.set_forkserver_preload(["distributed", *BASE_PRELOAD])
        yield


def _import_all(modules: list[str]) -> None:
    """Run on each worker by ``prestart``: import what the units will need."""
    import importlib

    for name in modules:
        importlib.import_module(name)


def _run_chunk(fn: Callable[[Any], Any], units: list[Any]) -> list[Any]:
    """The task body: ``fn`` (scattered to the workers once) over several units, results in their order."""
    return [fn(unit) for unit in units]


def _culprit(batch: list[Any], err: BaseException, pending: Iterable[tuple[list[Any], Any]]) -> tuple[list[Any], BaseException]:
    """Return the units to name for a failed task, and its error.

    A killed worker also takes the tasks queued on it (and its copy of the function): the task that
    failed first in unit order may be a bystander. Name the units whose task killed the worker when
    the scheduler says which (``KilledWorker``); else every unit of the window that was lost.
    """
    if type(err).__name__ == "KilledWorker":
        return batch, err
    pending = list(pending)
    try:  # the task that killed the worker may not be marked yet: let the in-flight window settle
        import_distributed().wait([future for _, future in pending], timeout=10)
    except Exception:  # noqa: BLE001 - best effort: the message then names the units known lost so far
        pass
    lost = list(batch)
    for units, future in pending:
        status = getattr(future, "status", None)
        if status == "error" and type(future.exception()).__name__ == "KilledWorker":
            return units, future.exception()
        if status in ("error", "cancelled"):
            lost += units
    return lost, err


class DaskExecutor:
    """Run units as Dask tasks, ``units_per_task`` units per task, in unit order, bounded window."""

    def __init__(self, client: Any, *, cluster: Any = None, units_per_task: int | None = None, window: int | None = None) -> None:
        self.client = client
        self.cluster = cluster
        self.units_per_task = max(1, units_per_task or DEFAULT_UNITS_PER_TASK)
        workers = max(1, len(client.scheduler_info().get("workers", {})) or 1)
        self.window = max(1, window or 4 * workers)
        self._warming: list[Any] = []

    @classmethod
    def from_spec(cls, spec: str, *, units_per_task: int | None = None) -> DaskExecutor:
        """Connect to (or start) the cluster a ``--executor`` value names.

        Raises:
            UsageError: a malformed ``dask-local:N``.
            UsageError: Dask distributed is not installed (exit 2, with the install command).
            ConvertError: the scheduler cannot be reached.
        """
        distributed = import_distributed()
        if spec.startswith("dask-local"):
            _, _, count = spec.partition(":")
            try:
                n = int(count) if count else 2
            except ValueError:
                raise UsageError(f"--executor {spec}: expected dask-local:N with N worker processes, e.g. dask-local:2.") from None
            if n < 1:
                raise UsageError(f"--executor {spec}: N must be at least 1.")
            with _forked_workers(distributed):
                cluster = distributed.LocalCluster(
                    n_workers=n,
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    # The scheduler always serves HTTP (status, metrics): on a free loopback port, never
                    # the fixed 8787 a second run would collide with.
                    dashboard_address="127.0.0.1:0",
                    worker_dashboard_address=None,
                    silence_logs=logging.ERROR,
                )
            return cls(distributed.Client(cluster), cluster=cluster, units_per_task=units_per_task)
        try:
            if spec.endswith(".json"):
                client = distributed.Client(scheduler_file=spec, timeout="30s")
            else:
                client = distributed.Client(spec, timeout="30s")
        except (OSError, TimeoutError, ValueError) as err:
            raise ConvertError(f"cannot reach the Dask scheduler {spec}: {err}. Is the cluster running?") from err
        return cls(client, units_per_task=units_per_task)

    def map(self, fn: Callable[[U], R], units: Iterable[U]) -> Iterator[R]:
        """Yield ``fn(unit)`` in unit order.

        Raises:
            ConvertError: a worker died (killed, out of memory) while converting a task's units.
        """
        shared = self.client.scatter(fn, broadcast=True, hash=False)  # sent once, not with every task
        todo = iter(units)
        batches = iter(lambda: list(itertools.islice(todo, self.units_per_task)), [])
        pending: deque[tuple[list[U], Any]] = deque()
        try:
            for batch in itertools.islice(batches, self.window):
                pending.append((batch, self.client.submit(_run_chunk, shared, batch, pure=False)))
            while pending:
                batch, future = pending.popleft()
                try:
                    results = future.result()
                except Exception as err:  # noqa: BLE001 - any task failure here is infrastructure (units catch their own)
                    # A killed worker also takes the tasks queued on it (and the copy of the function it held):
                    # name the units whose task killed it, when the scheduler already says which.
                    batch, cause = _culprit(batch, err, pending)
                    names = ", ".join(unit_name(u) for u in batch[:8]) + (", ..." if len(batch) > 8 else "")
                    raise ConvertError(
                        f"a Dask worker failed while converting {names} ({type(cause).__name__}: {cause}). "
                        "Nothing was published; run again (finished units are reused), or with --jobs 1 to see the failing item."
                    ) from cause
                for nxt in itertools.islice(batches, 1):
                    pending.append((nxt, self.client.submit(_run_chunk, shared, nxt, pure=False)))
                yield from results
        finally:
            for _, future in pending:
                future.cancel()

    def prestart(self, fn: Callable[..., Any]) -> None:
        """Have every worker import the heavy modules and ``fn``'s module now, without waiting for it."""
        from medcat_data.converters.executor import BASE_PRELOAD, module_of

        module = module_of(fn)
        modules = [*BASE_PRELOAD, *([module] if module else [])]
        # One task per worker, not waited for (held, so it is not released before it runs).
        self._warming = [
            self.client.submit(_import_all, modules, workers=[address], allow_other_workers=False, pure=False)
            for address in self.client.scheduler_info().get("workers", {})
        ]

    def submit(self, fn: Callable[..., R], *args: Any) -> Any:
        """Run one call on a worker (a shard write); the Dask future has ``result()``."""
        return self.client.submit(fn, *args, pure=False)

    def close(self) -> None:
        """Disconnect; stop the cluster this executor started."""
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()
