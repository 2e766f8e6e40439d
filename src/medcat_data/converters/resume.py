"""Keep finished work units of an interrupted normalize, so the next run continues instead of starting over.

While a build runs, every unit result the driver receives is also written (atomically) to
``OUT/.<id>.medcat-resume/<build key>/<unit index>.<k>.arrow`` (its record batches, Arrow IPC) with a
``.json`` sidecar written last (name, errors, input hashes, items). A run with the same build key (same
inputs, options, configs, tool version) takes those units from there and sends only the others to
the executor; the writer sees the same results in the same order, so the output is byte-identical
to an uninterrupted run. The folder is removed once the output is published; a run with another
build key removes the folders of earlier keys.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa

from medcat_data.converters.units import ErrorRecord, InputHash, UnitResult

log = logging.getLogger(__name__)

RESUME_MARK = ".medcat-resume"


def resume_root(out_dir: Path) -> Path:
    """Return the folder that holds the kept units of builds of ``out_dir``."""
    return out_dir.parent / f".{out_dir.name}{RESUME_MARK}"


class ResumeStore:
    """The kept unit results of one build key of one output folder."""

    def __init__(self, out_dir: Path, key_json: str) -> None:
        self.root = resume_root(out_dir)
        self.folder = self.root / hashlib.sha256(key_json.encode()).hexdigest()[:24]
        self.kept = 0

    def open(self) -> ResumeStore:
        """Count this key's kept units; drop the folders of other keys (their work cannot be reused)."""
        if self.root.is_dir():
            for other in self.root.iterdir():
                if other != self.folder:
                    shutil.rmtree(other, ignore_errors=True)
            if not any(self.root.iterdir()):
                self.root.rmdir()
        self.kept = sum(1 for p in self.folder.glob("*.json")) if self.folder.is_dir() else 0
        return self

    def discard(self) -> None:
        """Remove every kept unit of this output (after a successful publish)."""
        shutil.rmtree(self.root, ignore_errors=True)

    def _meta(self, index: int) -> Path:
        return self.folder / f"{index:09d}.json"

    def _batch(self, index: int, k: int) -> Path:
        return self.folder / f"{index:09d}.{k}.arrow"

    def has(self, index: int) -> bool:
        return self._meta(index).is_file()

    def load(self, index: int) -> UnitResult:
        """Read a kept unit result back."""
        meta = json.loads(self._meta(index).read_text(encoding="utf-8"))
        batches: list[tuple[str, str, pa.RecordBatch]] = []
        for k, (config, split) in enumerate(meta["places"]):
            with pa.OSFile(str(self._batch(index, k)), "rb") as source:
                batches.append((config, split, pa.ipc.open_file(source).get_batch(0)))
        return UnitResult(
            index=index,
            name=meta["name"],
            batches=tuple(batches),
            errors=tuple(ErrorRecord(**e) for e in meta["errors"]),
            input_hashes=tuple(InputHash(**h) for h in meta["hashes"]),
            items=meta["items"],
        )

    def keep(self, result: UnitResult) -> None:
        """Write a fresh unit result (sidecar last, each through a temporary name: a kill leaves no half unit)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        places = [(config, split) for config, split, _ in result.batches]
        # One Arrow IPC file per batch: a unit's batches may belong to configs of different schemas.
        for k, (_, _, batch) in enumerate(result.batches):
            target = self._batch(result.index, k)
            tmp = target.with_suffix(".arrow.part")
            with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
                writer.write_batch(batch)
            os.replace(tmp, target)
        meta_path = self._meta(result.index)
        meta = {
            "name": result.name,
            "places": places,
            "errors": [asdict(e) for e in result.errors],
            "hashes": [asdict(h) for h in result.input_hashes],
            "items": result.items,
        }
        tmp_meta = meta_path.with_suffix(".json.part")
        tmp_meta.write_text(json.dumps(meta), encoding="utf-8")
        os.replace(tmp_meta, meta_path)


class _Counted:
    def __init__(self, items: Iterable[Any], total: int) -> None:
        self._items, self._total = items, total

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __len__(self) -> int:
        return self._total


def resumed(
    store: ResumeStore,
    units: Iterable[Any],
    run: Callable[[Iterable[Any]], Iterator[UnitResult]],
) -> Iterator[UnitResult]:
    """Yield every unit's result in unit order: kept ones from ``store``, the others from ``run``.

    ``run`` receives only the units not kept (lazily, in order) and yields their results in that
    order; each fresh result is kept before it is passed on.
    """
    slots: deque[int | None] = deque()  # per unit in order: its index when kept, None when it runs
    indices: deque[int] = deque()  # indices of the units handed to ``run``, in order

    def fresh_units() -> Iterator[Any]:
        for index, unit in enumerate(units):
            if store.has(index):
                slots.append(index)
            else:
                slots.append(None)
                indices.append(index)
                yield unit

    fresh: Iterable[Any] = fresh_units()
    if isinstance(units, Sized) and store.kept == 0:
        fresh = _Counted(fresh, len(units))  # nothing kept: every unit runs, progress shows the total
    results = run(fresh)
    held: deque[UnitResult] = deque()
    while True:
        if not slots:
            try:
                held.append(next(results))
            except StopIteration:
                if not slots:
                    return
            continue
        slot = slots.popleft()
        if slot is not None:
            yield store.load(slot)
            continue
        result = held.popleft() if held else next(results)
        index = indices.popleft()
        result = UnitResult(index, result.name, result.batches, result.errors, result.input_hashes, result.items)
        store.keep(result)
        yield result
