"""Keep finished work units of an interrupted normalize, so the next run continues instead of starting over.

While a build runs, every unit result the driver receives is also written (atomically) to
``OUT/.<id>.medcat-resume/<build key>/<unit index>.<k>.arrow`` (its record batches, Arrow IPC) with a
``.json`` sidecar written last (name, errors, input hashes, items). A run with the same build key (same
inputs, options, configs, tool version) takes those units from there and sends only the others to
the executor; the writer sees the same results in the same order, so the output is byte-identical
to an uninterrupted run. The folder is removed once the output is published; a run with another
build key removes the folders of earlier keys.

The same folder is the *staging location* of executors that run units in other processes (a local
pool, a Dask cluster): there each worker writes its unit's files itself (``stage_result``) and sends
back only their paths (``StagedBatch``), so no record batch crosses to the driver; the writer then
has workers write the shards from those files. A worker first checks that it sees the folder the
driver prepared (``Staging.check``): a cluster whose workers do not share the output's filesystem
fails at once with a message saying so, instead of writing where the driver cannot read.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sized
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from medcat_data.converters.units import ErrorRecord, IndexedUnit, InputHash, StagedBatch, UnitResult
from medcat_data.errors import ConvertError

log = logging.getLogger(__name__)

RESUME_MARK = ".medcat-resume"
_STAGING_MARK = ".medcat-staging"


@dataclass(frozen=True)
class Staging:
    """Where workers stage unit results: a folder and the token the driver wrote into it."""

    folder: str
    token: str

    def check(self) -> None:
        """Refuse to stage unless this process sees the driver's folder (same path, same filesystem).

        Raises:
            ConvertError: the folder or its token is not there (a worker on another machine without the shared filesystem).
        """
        try:
            seen = (Path(self.folder) / _STAGING_MARK).read_text(encoding="utf-8")
        except OSError:
            seen = ""
        if seen != self.token:
            raise ConvertError(
                f"this worker cannot see {self.folder}, where the driver stages work: workers write the output's "
                "shards themselves, so --out must be on a filesystem every worker mounts at the same path "
                "(docs/scaling.md)."
            )


def resume_root(out_dir: Path) -> Path:
    """Return the folder that holds the kept units of builds of ``out_dir``."""
    return out_dir.parent / f".{out_dir.name}{RESUME_MARK}"


class ResumeStore:
    """The kept unit results of one build key of one output folder."""

    def __init__(self, out_dir: Path, key_json: str | Iterable[str]) -> None:
        """Name this key's folder by the sha256 of ``key_json``, given whole or as pieces of text (hashed as they come)."""
        self.root = resume_root(out_dir)
        digest = hashlib.sha256()
        for piece in (key_json,) if isinstance(key_json, str) else key_json:
            digest.update(piece.encode())
        self.folder = self.root / digest.hexdigest()[:24]
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

    def staging(self) -> Staging:
        """Prepare the folder for workers to stage into; return what they need to find it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        token = secrets.token_hex(16)
        (self.folder / _STAGING_MARK).write_text(token, encoding="utf-8")
        return Staging(str(self.folder), token)

    def load(self, index: int) -> UnitResult:
        """Read a kept unit result back into memory."""
        result = self.ref(index)
        batches = tuple((config, split, batch.open() if isinstance(batch, StagedBatch) else batch) for config, split, batch in result.batches)
        return UnitResult(result.index, result.name, batches, result.errors, result.input_hashes, result.items)

    def ref(self, index: int) -> UnitResult:
        """Read a kept unit result's sidecar; its batches stay in their files (``StagedBatch``)."""
        meta = json.loads(self._meta(index).read_text(encoding="utf-8"))
        batches = tuple(
            (place[0], place[1], StagedBatch(str(self._batch(index, k)), place[2], place[3] if len(place) > 3 else None))
            for k, place in enumerate(meta["places"])
        )
        return UnitResult(
            index=index,
            name=meta["name"],
            batches=batches,
            errors=tuple(ErrorRecord(**e) for e in meta["errors"]),
            input_hashes=tuple(InputHash(**h) for h in meta["hashes"]),
            items=meta["items"],
        )

    def keep(self, result: UnitResult) -> None:
        """Write a fresh unit result (sidecar last, each through a temporary name: a kill leaves no half unit)."""
        stage_result(self.folder, result)


def stage_result(folder: Path | str, result: UnitResult) -> UnitResult:
    """Write a unit result into ``folder`` as the resume store keeps it; return it with ``StagedBatch`` references.

    One Arrow IPC file per batch (a unit's batches may belong to configs of different schemas),
    then the sidecar, each through a temporary name: a kill leaves no half unit.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    staged = []
    for k, (config, split, batch) in enumerate(result.batches):
        target = folder / f"{result.index:09d}.{k}.arrow"
        if isinstance(batch, StagedBatch):
            staged.append((config, split, batch))
            continue
        tmp = target.with_suffix(".arrow.part")
        with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, batch.schema) as writer:
            writer.write_batch(batch)
        os.replace(tmp, target)
        ref = StagedBatch(str(target), batch.num_rows)
        # The bytes as read back (the writer drops empty validity buffers), so the driver's planner need
        # not open the file for a batch it does not split.
        staged.append((config, split, StagedBatch(ref.path, ref.num_rows, ref.open().nbytes)))
    meta_path = folder / f"{result.index:09d}.json"
    meta = {
        "name": result.name,
        "places": [(config, split, batch.num_rows, batch.nbytes) for config, split, batch in staged],
        "errors": [asdict(e) for e in result.errors],
        "hashes": [asdict(h) for h in result.input_hashes],
        "items": result.items,
    }
    tmp_meta = meta_path.with_suffix(".json.part")
    tmp_meta.write_text(json.dumps(meta), encoding="utf-8")
    os.replace(tmp_meta, meta_path)
    return UnitResult(result.index, result.name, tuple(staged), result.errors, result.input_hashes, result.items)


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
    *,
    staged: bool = False,
) -> Iterator[UnitResult]:
    """Yield every unit's result in unit order: kept ones from ``store``, the others from ``run``.

    ``run`` receives only the units not kept (lazily, in order) and yields their results in that
    order; each fresh result is kept before it is passed on. With ``staged``, ``run`` receives
    ``IndexedUnit``s, its workers keep their results themselves (``stage_result``), and every result,
    kept or fresh, is yielded with ``StagedBatch`` references instead of record batches.
    """
    slots: deque[int | None] = deque()  # per unit in order: its index when kept, None when it runs
    indices: deque[int] = deque()  # indices of the units handed to ``run``, in order

    def fresh_units() -> Iterator[Any]:
        for index, unit in enumerate(units):
            if store.kept and store.has(index):  # nothing kept at the start: no unit can be
                slots.append(index)
            else:
                slots.append(None)
                indices.append(index)
                yield IndexedUnit(index, unit) if staged else unit

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
            yield store.ref(slot) if staged else store.load(slot)
            continue
        result = held.popleft() if held else next(results)
        index = indices.popleft()
        result = UnitResult(index, result.name, result.batches, result.errors, result.input_hashes, result.items)
        if not staged:
            store.keep(result)
        yield result
