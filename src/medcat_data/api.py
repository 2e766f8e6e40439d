"""The public Python API: ``fetch``, ``normalize``, ``load`` and ``info``, as the command line does them.

Every function takes a dataset reference, ``ID[@VERSION]``, ``physionet:SLUG[@VERSION]``,
``hf:OWNER/NAME[@REVISION]`` or ``kaggle:OWNER/SLUG``, and raises ``MedcatError`` subclasses
(``medcat_data.errors``) for anything the user can fix. Nothing here prints or configures logging;
``datasets`` and pyarrow load only when a function needs them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from medcat_data.errors import FetchError, NotFetchedError, UsageError
from medcat_data.paths import normalized_dir, raw_dir, tree_size

if TYPE_CHECKING:
    from datasets import Dataset, DatasetDict

    from medcat_data.catalog.refs import ResolvedDataset
    from medcat_data.catalog.schema import Entry
    from medcat_data.loaders import FetchReport
    from medcat_data.progress import Progress

__all__ = ["DatasetInfo", "NormalizedCopy", "RawCopy", "fetch", "info", "load", "normalize"]

_SHOWN_FAILURES = 3


def _resolve(ref: str) -> ResolvedDataset:
    from medcat_data.catalog.refs import resolve
    from medcat_data.catalog.registry import load_registry

    return resolve(ref, load_registry())


def fetch(
    ref: str,
    *,
    dest: str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    mirror: str | None = None,
    only: Sequence[str] = (),
    limit: int | None = None,
    accept_license: bool = False,
    source: str | None = None,
    options: Mapping[str, str] | None = None,
    force: bool = False,
    progress: Progress | None = None,
) -> Path:
    """Fetch a dataset's files, verified, into its raw cache folder and return that folder.

    Safe to call again: files already present and verified are not transferred again, and an
    interrupted transfer resumes. Same knobs as ``medcat fetch``.

    Args:
        ref: the dataset reference.
        dest: the raw folder; default ``$MEDCAT_HOME/raw/<id>/<version>/``.
        jobs: parallel transfers (default sized for this machine).
        mirror: replaces scheme, host and port of every upstream URL (default ``$MEDCAT_MIRROR``).
        only: globs on relative paths; a file is fetched when any matches.
        limit: only the first N files in path order.
        accept_license: accept the licence / DUA of a credentialed dataset (remembered).
        source: one of the entry's sources by name (default: its default source).
        options: options of the source's kind, as ``medcat fetch --option KEY=VALUE`` takes them.
        force: transfer again files that are already verified.
        progress: a ``medcat_data.progress.Progress`` to hear about files and bytes.

    Raises:
        LicenseNotAcceptedError: a credentialed / DUA dataset without ``accept_license``.
        AccessDeniedError: the server refused the credentials; the message says how to get access.
        FetchError: some selected files are not present and verified after the fetch.
    """
    from medcat_data.loaders import FetchOptions
    from medcat_data.loaders import fetch as fetch_dataset

    request = FetchOptions(
        dest=Path(dest) if dest is not None else None, jobs=jobs, mirror=mirror, only=tuple(only), limit=limit,
        accept_license=accept_license, force=force, source=source, source_options=dict(options or {}),
    )
    report = fetch_dataset(_resolve(ref), request, progress)
    if not report.ok:
        raise FetchError(_fetch_failure(report, ref))
    return report.dest


def _fetch_failure(report: FetchReport, ref: str) -> str:
    """Say how many files are not there, name the first failures, and what to do."""
    missing = report.selected - report.downloaded - report.present + report.unverified
    shown = "; ".join(f"{f.path}: {f.reason or f.status}" for f in report.failed[:_SHOWN_FAILURES])
    more = f" (and {len(report.failed) - _SHOWN_FAILURES} more)" if len(report.failed) > _SHOWN_FAILURES else ""
    return (
        f"{report.dataset_id}: {missing} of {report.selected} file(s) not present and verified in {report.dest}"
        + (f": {shown}{more}" if shown else "")
        + f". Fetch {ref} again to resume; verified files are not transferred again."
    )


def normalize(
    ref: str,
    *,
    out: str | os.PathLike[str] | None = None,
    config: str | Sequence[str] | None = None,
    source: str | None = None,
    dest: str | os.PathLike[str] | None = None,
    jobs: int = 1,
    options: Mapping[str, str] | None = None,
    limit: int | None = None,
    max_size: int | None = None,
    bit_depth: Literal[8, 16] = 8,
    window: str = "auto",
    frames: Literal["first", "all"] = "first",
    seed: int | None = None,
    split_by: str | None = None,
    on_bad_item: Literal["record", "fail"] = "record",
    progress: Progress | None = None,
    overwrite: bool = False,
) -> Path:
    """Normalize a fetched dataset into a Hugging Face dataset folder and return it (``<out>/<id>``).

    Reads the raw cache only (never the network): fetch first. A re-run with the same inputs and
    options is a no-op. A bad item is a line in ``<out>/<id>/errors.jsonl``, never the end of the
    run (unless ``on_bad_item="fail"``). Same knobs as ``medcat normalize``.

    Args:
        ref: the dataset reference.
        out: parent folder of the output; default ``$MEDCAT_HOME/normalized`` (where ``load`` looks).
        config: one config name or several; default every config.
        source: which fetched source to read (default: the entry's default source).
        dest: the raw folder, if the fetch used ``dest``.
        jobs: worker processes.
        options: the recipe's own options (``medcat normalize REF --help`` lists them), as text.
        limit: only the first N items per config, in a stable order.
        max_size: longest image side in output pixels (aspect ratio kept, never enlarged).
        bit_depth: 8 or 16 bits per sample of decoded DICOM PNGs.
        window: DICOM intensity window: ``auto``, ``minmax``, ``percentile`` or ``none``.
        frames: multi-frame DICOM: the ``first`` frame or ``all`` (one row per frame).
        seed: seed of grouped splits where upstream has none (default: medcat's fixed seed).
        split_by: make a seeded grouped split on this column where the registry declares one split.
        on_bad_item: ``record`` a bad item in ``errors.jsonl`` and go on, or ``fail`` at the first.
        progress: a ``medcat_data.progress.Progress`` to hear about work units.
        overwrite: replace an output at ``<out>/<id>`` built with other options or inputs (else
            ``OutputExistsError`` names what differs and nothing changes).

    Raises:
        NotFetchedError: nothing fetched for this dataset (call ``fetch`` first).
        FetchError: fetched files are missing or truncated (fetch again to repair).
        UsageError: no recipe, an unknown config, source or option.
        OutputExistsError: ``<out>/<id>`` holds an output built otherwise and ``overwrite`` is False.
        ConvertError: damaged input met while planning, or the output cannot be written.
    """
    from medcat_data.converters.codecs.image import ImageOptions
    from medcat_data.converters.normalize import NormalizeRequest
    from medcat_data.converters.normalize import normalize as normalize_dataset
    from medcat_data.converters.recipe import RecipeOptions
    from medcat_data.converters.splits import DEFAULT_SEED

    configs = (config,) if isinstance(config, str) else tuple(config or ())
    recipe_options = RecipeOptions(
        image=ImageOptions(window=window, bit_depth=bit_depth, max_size=max_size, frames=frames),  # type: ignore[arg-type]
        limit=limit,
        seed=DEFAULT_SEED if seed is None else seed,
        split_by=split_by,
        extra=dict(options or {}),
    )
    request = NormalizeRequest(
        resolved=_resolve(ref),
        out=Path(out) if out is not None else normalized_dir(),
        configs=configs,
        source=source,
        dest=Path(dest) if dest is not None else None,
        jobs=jobs,
        options=recipe_options,
        on_bad_item=on_bad_item,
        overwrite=overwrite,
    )
    return normalize_dataset(request, progress).out_dir


def load(
    ref: str,
    config: str | None = None,
    split: str | None = None,
    *,
    fetch_if_missing: bool = True,
    mirror: str | None = None,
    accept_license: bool = False,
    source: str | None = None,
    jobs: int | None = None,
) -> Dataset | DatasetDict:
    """Return a normalized dataset as ``datasets`` objects, fetching and normalizing it first when needed.

    Like ``tfds.load``: the first call fetches the raw files into ``$MEDCAT_HOME/raw`` (unless
    they are there and verified) and normalizes every config into ``$MEDCAT_HOME/normalized/<id>``;
    later calls read that folder. Credentialed datasets still need ``accept_license=True`` and your
    credentials, as ``medcat fetch`` does.

    Args:
        ref: the dataset reference.
        config: the config to load; may be left out when the dataset has only one.
        split: a split (``"train"``, ``"test[:10%]"``...); default every split, as a ``DatasetDict``.
        fetch_if_missing: fetch when the raw files are not there; ``False`` raises instead.
        mirror: passed to ``fetch``.
        accept_license: passed to ``fetch``.
        source: the source to fetch and normalize (default: the entry's default source).
        jobs: parallel transfers and worker processes.

    Raises:
        UsageError: no ``config`` for a dataset with several, or an unknown one.
        NotFetchedError: not fetched and ``fetch_if_missing`` is ``False``.
        LicenseNotAcceptedError: a credentialed dataset without ``accept_license``.
        FetchError, ConvertError: as ``fetch`` and ``normalize``.
    """
    import datasets

    resolved = _resolve(ref)
    out_dir = normalized_dir() / resolved.entry.id
    built = _built_configs(out_dir, resolved)
    if not built or (config is not None and config not in built):
        raw = raw_dir(resolved.entry.id, resolved.version)
        if not _fetched_and_verified(resolved, raw):
            if not fetch_if_missing:
                raise NotFetchedError(resolved.entry.id, resolved.version, raw, f"medcat fetch {ref}")
            fetch(ref, jobs=jobs, mirror=mirror, accept_license=accept_license, source=source)
        # The cache under $MEDCAT_HOME/normalized is load's own: a build of another version is replaced.
        normalize(ref, source=source, jobs=jobs or 1, overwrite=True)
        built = _built_configs(out_dir, resolved)
    if config is None:
        if len(built) != 1:
            raise UsageError(f"{resolved.entry.id} has configs {', '.join(built)}: name one, e.g. load({ref!r}, {built[0]!r}).")
        config = built[0]
    elif config not in built:
        raise UsageError(f"{resolved.entry.id} has no config {config!r}; its configs are: {', '.join(built)}.")
    return datasets.load_dataset(str(out_dir), config, split=split)


def _built_configs(out_dir: Path, resolved: ResolvedDataset) -> list[str]:
    """Return the configs of a normalized folder built from this dataset version (none otherwise)."""
    from medcat_data.converters.build_manifest import read_manifest

    manifest = read_manifest(out_dir) if out_dir.is_dir() else None
    if manifest is None or manifest.source != f"{resolved.entry.id}@{resolved.version}":
        return []
    return list(manifest.configs)


def _fetched_and_verified(resolved: ResolvedDataset, folder: Path) -> bool:
    from medcat_data.loaders.verify import verify_dest

    return verify_dest(resolved.entry.id, resolved.version, folder, full=False).ok


# ---------------------------------------------------------------------------------------------
# info: the entry's facts and what of it is on this machine


@dataclass(frozen=True)
class RawCopy:
    """The raw cache folder of one dataset version (``$MEDCAT_HOME/raw/<id>/<version>``).

    Attributes:
        dataset_id: the entry id.
        version: the dataset version.
        path: the folder (where a fetch puts the files, fetched or not).
        fetched: whether a fetch left a manifest there.
        verified: whether every file the manifest records is present at its verified size
            (stat only; ``medcat verify --full`` rehashes).
        files: upstream files in the folder (the fetch state under ``.medcat`` left out).
        size_bytes: bytes on disk, fetch state included (what removing the folder frees).
        sources: the entry's sources with files in the folder; sources that share one folder
            (copies of the same files, e.g. ``physionet/s3``) are joined by ``/``.
        last_used: latest access or change of the fetch state (access times are often updated
            at most daily); ``None`` when not fetched.
    """

    dataset_id: str
    version: str
    path: Path
    fetched: bool
    verified: bool
    files: int
    size_bytes: int
    sources: tuple[str, ...]
    last_used: datetime | None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {**_plain(self), "path": str(self.path), "sources": list(self.sources), "last_used": _iso(self.last_used)}


@dataclass(frozen=True)
class NormalizedCopy:
    """A normalized dataset folder (``load``'s cache is ``$MEDCAT_HOME/normalized/<id>``).

    Attributes:
        dataset_id: the folder's name, the entry id.
        path: the folder; ``datasets.load_dataset(str(path), config)`` reads it.
        source: what it was built from, ``<id>@<version>`` (empty when its manifest is unreadable).
        rows: row counts as ``{config: {split: rows}}``.
        files: files in the folder.
        size_bytes: bytes on disk.
        last_used: latest access or change of its card and manifest.
    """

    dataset_id: str
    path: Path
    source: str
    rows: Mapping[str, Mapping[str, int]]
    files: int
    size_bytes: int
    last_used: datetime | None

    @property
    def configs(self) -> tuple[str, ...]:
        """Return the configs the folder holds."""
        return tuple(self.rows)

    @property
    def version(self) -> str | None:
        """Return the dataset version it was built from, when its manifest says."""
        return self.source.rpartition("@")[2] if "@" in self.source else None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            **_plain(self), "path": str(self.path), "version": self.version, "configs": list(self.configs),
            "rows": {c: dict(s) for c, s in self.rows.items()}, "last_used": _iso(self.last_used),
        }


@dataclass(frozen=True)
class DatasetInfo:
    """What the catalog says about a dataset version, and what of it is on this machine.

    Attributes:
        id: the entry id. version: the resolved version. name, description, homepage: as the
        registry has them. access: ``open``, ``registration``, ``gated`` or ``credentialed``.
        license: SPDX id or licence name. modalities, tasks: as in ``medcat list``.
        configs: the normalized configs the recipe produces. citation: BibTeX.
        entry: the full registry entry (sources, access steps, sizes, splits...).
        raw: the raw cache folder of this version, fetched or not.
        normalized: the normalized folder ``load`` reads, when one was built from this version.
    """

    id: str
    version: str
    name: str
    description: str
    homepage: str
    access: str
    license: str
    modalities: tuple[str, ...]
    tasks: tuple[str, ...]
    configs: tuple[str, ...]
    citation: str
    entry: Entry
    raw: RawCopy
    normalized: NormalizedCopy | None

    @property
    def fetched(self) -> bool:
        """Tell whether the raw files of this version are in the cache."""
        return self.raw.fetched

    def local_dict(self) -> dict[str, Any]:
        """Return what is on this machine, JSON-ready (``medcat info --json`` adds it as ``local``)."""
        return {"raw": self.raw.to_dict(), "normalized": self.normalized.to_dict() if self.normalized else None}


def info(ref: str) -> DatasetInfo:
    """Describe a dataset version: the registry's facts plus whether and where it is fetched and normalized.

    Offline and read-only: it looks at ``$MEDCAT_HOME`` (no hashing; ``medcat verify --full``
    rehashes).

    Raises:
        UnknownDatasetError: no such entry (the message suggests close ids).
        UsageError: a version the entry does not have, or an unreadable reference.
    """
    resolved = _resolve(ref)
    entry = resolved.entry
    normalized = normalized_copy(normalized_dir() / entry.id)
    if normalized is not None and normalized.source != f"{entry.id}@{resolved.version}":
        normalized = None
    return DatasetInfo(
        id=entry.id,
        version=resolved.version,
        name=entry.name,
        description=entry.description,
        homepage=str(entry.homepage),
        access=entry.access.value,
        license=entry.license.short,
        modalities=tuple(entry.modalities),
        tasks=tuple(t.value for t in entry.tasks),
        configs=tuple(c.name for c in entry.configs),
        citation=entry.citation,
        entry=entry,
        raw=raw_copy(entry.id, resolved.version, raw_dir(entry.id, resolved.version), entry),
        normalized=normalized,
    )


def raw_copy(dataset_id: str, version: str, folder: Path, entry: Entry | None = None) -> RawCopy:
    """Describe a raw cache folder; ``entry`` (when known) names the sources found in it."""
    from medcat_data.loaders.cache import META_DIR
    from medcat_data.loaders.verify import verify_dest

    size, files = tree_size(folder, skip_top=META_DIR)  # before the manifest is opened (and its journal grows)
    report = verify_dest(dataset_id, version, folder, full=False)
    return RawCopy(
        dataset_id=dataset_id,
        version=version,
        path=folder,
        fetched=report.manifest_found,
        verified=report.ok,
        files=files,
        size_bytes=size,
        sources=_sources_in(entry, folder) if entry is not None and report.manifest_found else (),
        last_used=_last_used(folder / META_DIR, None) if report.manifest_found else None,
    )


def normalized_copy(folder: Path) -> NormalizedCopy | None:
    """Describe a normalized dataset folder; ``None`` when there is none."""
    from medcat_data.converters.build_manifest import MANIFEST_NAME, read_manifest

    if not folder.is_dir():
        return None
    manifest = read_manifest(folder)
    size, files = tree_size(folder)
    return NormalizedCopy(
        dataset_id=folder.name,
        path=folder,
        source=manifest.source if manifest else "",
        rows=manifest.rows() if manifest else {},
        files=files,
        size_bytes=size,
        last_used=_last_used(folder, ("README.md", MANIFEST_NAME)),
    )


def _sources_in(entry: Entry, folder: Path) -> tuple[str, ...]:
    """Return the names of the entry's sources with files in a raw folder (a root source: any file).

    Sources sharing a folder hold the same files from other hosts: which one delivered them is
    not told by the folder, so they are named together (``physionet/s3``).
    """
    from medcat_data.loaders.cache import META_DIR

    subdirs = {s.subdir.strip("/").split("/")[0] for s in entry.sources if s.subdir}
    try:
        top = {p.name for p in folder.iterdir()} - {META_DIR}
    except OSError:
        return ()
    by_folder: dict[str, list[str]] = {}
    for src in entry.sources:
        by_folder.setdefault(src.subdir.strip("/"), []).append(src.name)
    return tuple(
        "/".join(names) for sub, names in by_folder.items() if ((folder / sub).is_dir() if sub else bool(top - subdirs))
    )


def _last_used(folder: Path, names: Sequence[str] | None) -> datetime | None:
    """Return the latest access or modification time of the named files of ``folder`` (all its files)."""
    try:
        paths = [folder / n for n in names] if names is not None else [p for p in folder.iterdir() if p.is_file()]
        stamps = [max(st.st_atime, st.st_mtime) for st in (p.stat() for p in paths if p.is_file())]
    except OSError:
        return None
    return datetime.fromtimestamp(max(stamps), tz=timezone.utc) if stamps else None


def _plain(obj: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(obj).items()}


def _iso(stamp: datetime | None) -> str | None:
    return stamp.isoformat(timespec="seconds") if stamp else None
