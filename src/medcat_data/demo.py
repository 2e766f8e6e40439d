"""The offline demo: every replica served on loopback, then the real fetch → verify → normalize → load.

Runs in its own ``MEDCAT_HOME`` and ``HF_HOME`` (a temporary folder); replica credentials are
passed in-process only (nothing is written to netrc or a keyring). Entries without a recipe or a
replica yet are reported as ``no recipe yet``, not as failures.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from medcat_data.catalog.refs import ResolvedDataset, resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.normalize import NormalizeRequest, normalize
from medcat_data.converters.recipe import RecipeOptions, load_recipe
from medcat_data.errors import FetchError, MedcatError, UsageError
from medcat_data.mirror.replicas.base import Replica, load_builder
from medcat_data.mirror.server import MirrorServer

log = logging.getLogger(__name__)

DEMO_REFS: Mapping[str, str] = {"physionet": "physionet:demo-open-project@1.0.0"}
"""Template entries are demonstrated through a concrete reference served by their replica."""


@dataclass
class DemoRow:
    """One line of the demo table: a dataset and source, what happened, and a sample."""

    dataset: str
    source: str
    status: str = "ok"
    files: int = 0
    size_bytes: int = 0
    rows: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0
    sample: str = ""
    out_dir: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in {"ok", "no recipe yet"}


@contextlib.contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of a block, then restore them."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


def _sample_text(out_dir: Path, config: str) -> str:
    """Return a one-line rendering of the first row of a config (image shown by size)."""
    import datasets

    # A private cache: datasets caches a local folder by its name and layout, not its content, so a
    # second source of the same dataset (same folder name, configs and shard names) would be served
    # the first one's cached rows.
    with tempfile.TemporaryDirectory(prefix="medcat-demo-load-") as cache:
        ds = datasets.load_dataset(str(out_dir), config, split=None, cache_dir=cache)
        first_split = next(iter(ds.values()))
        if len(first_split) == 0:
            return ""
        row = first_split[0]
    parts = []
    for name, value in row.items():
        if name in {"source", "split"}:
            continue
        if hasattr(value, "size") and hasattr(value, "mode"):
            parts.append(f"{name}=<{value.mode} {value.size[0]}x{value.size[1]}>")
        elif isinstance(value, (str, int, float)) or value is None:
            text = str(value)
            parts.append(f"{name}={text[:40] + '...' if len(text) > 40 else text}")
        else:
            text = str(value)
            parts.append(f"{name}={text[:60] + '...' if len(text) > 60 else text}")
    return ", ".join(parts[:8])


def _load_counts(out_dir: Path, configs: Sequence[str]) -> dict[str, dict[str, int]]:
    import datasets

    counts = {}
    for config in configs:
        with tempfile.TemporaryDirectory(prefix="medcat-demo-load-") as cache:  # see _sample_text
            ds = datasets.load_dataset(str(out_dir), config, cache_dir=cache)
        counts[config] = {split: len(ds[split]) for split in ds}
    return counts


def run_one(
    resolved: ResolvedDataset,
    replica: Replica,
    server: MirrorServer,
    out_root: Path,
    *,
    default_source: bool,
) -> DemoRow:
    """Fetch, verify, normalize and load one dataset source from the running mirror."""
    from medcat_data.loaders import FetchOptions, fetch, verify

    row = DemoRow(dataset=resolved.entry.id, source=replica.source)
    start = time.perf_counter()
    stage = "fetch"
    try:
        with _environment(dict(replica.env)):
            options = FetchOptions(mirror=server.url, accept_license=True, source=replica.source, jobs=4)
            report = fetch(resolved, options)
            row.files, row.size_bytes = report.selected, report.bytes_transferred
            if not report.ok:
                failed = report.failed
                raise FetchError(f"{len(failed)} file(s) failed; first: {failed[0].path}: {failed[0].reason or failed[0].status}" if failed else "fetch did not verify every file")
            stage = "verify"
            verdict = verify(resolved)
            if not verdict.ok:
                raise FetchError(f"verify found problems: {json.dumps(verdict.to_dict())[:300]}")
        stage = "normalize"
        target = out_root if default_source else out_root / f".sources/{replica.source}"
        result = normalize(
            NormalizeRequest(resolved, target, source=replica.source, jobs=1, options=RecipeOptions())
        )
        row.errors = result.write.errors
        stage = "load"
        configs = [c for c, splits in result.write.rows.items() if any(splits.values())]
        row.rows = _load_counts(result.out_dir, configs)
        row.sample = _sample_text(result.out_dir, configs[0]) if configs else ""
        row.out_dir = str(result.out_dir)
    except MedcatError as err:
        row.status = f"failed at {stage}: {err}"
    except Exception as err:  # noqa: BLE001 - the demo reports every failure in its table
        log.debug("demo %s failed", resolved.entry.id, exc_info=True)
        row.status = f"failed at {stage}: {type(err).__name__}: {err}"
    row.seconds = time.perf_counter() - start
    return row


def run_demo(
    out: Path | None = None,
    only: Sequence[str] = (),
    on_row: Callable[[DemoRow], None] | None = None,
) -> list[DemoRow]:
    """Run the whole demo and return one row per dataset source.

    Raises:
        UsageError: ``only`` names an unknown dataset.
    """
    registry = load_registry()
    ids = list(only) or [e.id for e in registry]
    for dataset_id in ids:
        registry.get(dataset_id)
    work = Path(tempfile.mkdtemp(prefix="medcat-demo-"))
    out_root = out if out is not None else work / "out"
    rows: list[DemoRow] = []
    env = {
        "MEDCAT_HOME": str(work / "home"),
        "HF_HOME": str(work / "hf"),
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
    }
    try:
        import datasets

        datasets.disable_progress_bars()  # the demo prints its own table; one bar per split is noise
        with _environment(env), MirrorServer(work / "mirror") as server:
            for dataset_id in ids:
                for row in _run_entry(dataset_id, server, out_root, registry):
                    rows.append(row)
                    if on_row is not None:
                        on_row(row)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows


def _run_entry(dataset_id: str, server: MirrorServer, out_root: Path, registry: Any) -> list[DemoRow]:
    entry = registry.get(dataset_id)
    builder = load_builder(dataset_id)
    if builder is None or load_recipe(dataset_id) is None:
        return [DemoRow(dataset=dataset_id, source="-", status="no recipe yet")]
    try:
        replicas: list[Replica] = builder.build(server.root, seed=0)
    except Exception as err:  # noqa: BLE001 - reported in the table
        return [DemoRow(dataset=dataset_id, source="-", status=f"failed at replica: {err}")]
    for replica in replicas:
        for protection in replica.protections:
            server.protect(protection.prefix, protection.username, protection.password, user_agents=protection.user_agents)
    ref = DEMO_REFS.get(entry.id, entry.id)
    resolved = resolve(ref, registry)
    default = entry.main_sources[0].name
    return [run_one(resolved, r, server, out_root, default_source=r.source == default) for r in replicas]


def demo_failed(rows: Sequence[DemoRow]) -> list[DemoRow]:
    """Return the rows that failed (``no recipe yet`` is not a failure)."""
    return [r for r in rows if not r.ok]


def check_only(only: Sequence[str]) -> None:
    """Validate ``--only`` ids early.

    Raises:
        UnknownDatasetError: an unknown id.
    """
    registry = load_registry()
    for dataset_id in only:
        registry.get(dataset_id)
    if any(load_registry().get(i).template and i not in DEMO_REFS for i in only):
        raise UsageError("template entries cannot be demonstrated")
