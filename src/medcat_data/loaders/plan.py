"""Turn a resolved registry entry into the files to fetch: ``RemoteFile`` values in a stable order.

Planning holds no per-dataset code: each source kind's transport lists its files (fetching small
index files such as ``SHA256SUMS.txt`` first when the kind needs them); this module picks the
sources, applies ``include`` and ``--only`` (``plan_store`` sorts and applies ``--limit`` on disk)
and maps URLs onto a mirror.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from medcat_data.catalog.refs import ResolvedDataset
from medcat_data.catalog.schema import Source
from medcat_data.errors import UsageError
from medcat_data.loaders.options import FetchOptions
from medcat_data.paths import raw_dir

HashAlgorithm = Literal["sha256", "md5", "sha1", "git-sha1"]
VerifiedBy = Literal[
    "sha256sums", "pinned", "md5-list", "zenodo-md5", "hf-lfs", "hf-git", "osf-meta", "magic", "tofu", "unverified"
]

#: Verification sources that compare against a hash published or pinned upstream.
STRONG: frozenset[str] = frozenset({"sha256sums", "pinned", "md5-list", "zenodo-md5", "hf-lfs", "hf-git", "osf-meta"})


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One upstream file and everything known about it before transfer.

    Attributes:
        path: POSIX path relative to the dataset folder (the source's ``subdir`` included).
        url: where to get it, mirror applied, never carrying credentials.
        source: name of the registry source it belongs to.
        size: expected size in bytes, when known up front.
        hash: expected hex digest, when published or pinned.
        algorithm: algorithm of ``hash`` (and of the digest recorded for trust-on-first-use).
        verified_by: how the file will be verified (see ``VerifiedBy``).
        magic: expected leading bytes (at ``magic_offset``) for files checked by content.
        extract: extract the archive after verification.
        key: transport-specific name (the path inside a Hub repo).
        index: a planning input (``SHA256SUMS.txt``, a file index), fetched before the others.
    """

    path: str
    url: str
    source: str
    size: int | None = None
    hash: str | None = None
    algorithm: HashAlgorithm = "sha256"
    verified_by: VerifiedBy = "tofu"
    magic: bytes | None = None
    magic_offset: int = 0
    extract: bool = False
    key: str | None = None
    index: bool = False


def dataset_dest(resolved: ResolvedDataset, options: FetchOptions) -> Path:
    """Return the dataset folder: ``--dest`` or ``$MEDCAT_HOME/raw/<id>/<version>/``."""
    if options.dest is not None:
        return Path(options.dest).expanduser()
    return raw_dir(resolved.entry.id, resolved.version)


def select_sources(resolved: ResolvedDataset, name: str | None) -> tuple[Source, ...]:
    """Pick the sources to fetch: the named (or default) main source plus its companions.

    Companions and sources with ``default_fetch: false`` come along only when they are the
    named source or, for companions, when they are fetched by default.

    Raises:
        UnknownSourceError: no source of that name; the message lists the names there are.
        UsageError: no source is fetched by default.
    """
    entry = resolved.entry
    if name is not None:
        chosen = entry.source(name)
        if chosen.companion:
            return (chosen,)
    else:
        defaults = [s for s in entry.main_sources if s.default_fetch]
        if not defaults:
            names = ", ".join(s.name for s in entry.main_sources)
            raise UsageError(f"{entry.id} has no source fetched by default; pick one with --source ({names}).")
        chosen = defaults[0]
    companions = [s for s in entry.companion_sources if s.default_fetch]
    return (chosen, *companions)


def join_subdir(subdir: str, path: str) -> str:
    """Join a source's ``subdir`` and a source-relative path into a dataset-relative POSIX path."""
    return posixpath.join(subdir.strip("/"), path) if subdir.strip("/") else path


def matches_any(path: str, patterns: Sequence[str]) -> bool:
    """Tell whether ``path`` matches one of the glob ``patterns`` (``*`` also crosses ``/``)."""
    return any(fnmatch.fnmatchcase(path, p) for p in patterns)


def keep_included(source: Source, relative: str) -> bool:
    """Apply a source's ``include`` globs to a source-relative path (no globs keeps everything)."""
    return not source.include or matches_any(relative, source.include)


def wanted_by_only(f: RemoteFile, only: Sequence[str]) -> bool:
    """Tell whether ``--only`` globs keep a file: its dataset path or its source-relative name matches."""
    return matches_any(f.path, only) or matches_any(f.key if f.key is not None else f.path, only)


def apply_mirror(url: str, mirror: str | None) -> str:
    """Replace scheme, host and port of ``url`` by the mirror's, keeping path and query.

    ``https://physionet.org/files/x/1.0/a.dcm`` with mirror ``http://127.0.0.1:8123`` becomes
    ``http://127.0.0.1:8123/files/x/1.0/a.dcm``. A mirror with a path prefix (``file:///data``
    or ``http://host/prefix``) keeps that prefix in front of the upstream path.
    """
    if not mirror:
        return url
    up = urlsplit(url)
    mi = urlsplit(mirror)
    path = mi.path.rstrip("/") + (up.path if up.path.startswith("/") else "/" + up.path)
    return urlunsplit((mi.scheme, mi.netloc, path, up.query, ""))


def mirror_is_local(mirror: str | None) -> bool:
    """Tell whether the mirror is a ``file://`` directory."""
    return bool(mirror) and urlsplit(mirror or "").scheme == "file"
