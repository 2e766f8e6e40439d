"""Where medcat keeps things on disk: ``MEDCAT_HOME``, its raw and normalized layout, and their upkeep.

``$MEDCAT_HOME/raw/<id>/<version>/`` holds fetched files, ``$MEDCAT_HOME/normalized/<id>/`` the
datasets ``medcat_data.load`` builds. This module knows folders and bytes only: what a folder's
manifests say is read by the callers.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import platformdirs

from medcat_data.errors import UsageError

HOME_ENV = "MEDCAT_HOME"


def medcat_home() -> Path:
    """Return ``$MEDCAT_HOME``, defaulting to the platform's user cache dir."""
    value = os.environ.get(HOME_ENV)
    if value:
        return Path(value).expanduser()
    return Path(platformdirs.user_cache_dir("medcat", appauthor=False))


def raw_dir(dataset_id: str, version: str) -> Path:
    """Return the default cache folder of one dataset version: ``$MEDCAT_HOME/raw/<id>/<version>``."""
    return medcat_home() / "raw" / dataset_id / version


def normalized_dir() -> Path:
    """Return where ``medcat_data.normalize`` and ``load`` put datasets by default: ``$MEDCAT_HOME/normalized``."""
    return medcat_home() / "normalized"


def _subfolders(folder: Path) -> list[Path]:
    """Return the sub-folders of ``folder`` by name, symlinks to folders included (a version kept on
    another disk); none when ``folder`` is absent."""
    try:
        return sorted(Path(e.path) for e in os.scandir(folder) if e.is_dir())
    except (FileNotFoundError, NotADirectoryError):
        return []


def raw_folders() -> Iterator[tuple[str, str, Path]]:
    """Yield ``(id, version, folder)`` for every raw cache folder under ``$MEDCAT_HOME/raw``."""
    for dataset in _subfolders(medcat_home() / "raw"):
        for version in _subfolders(dataset):
            yield dataset.name, version.name, version


def normalized_folders() -> Iterator[tuple[str, Path]]:
    """Yield ``(id, folder)`` for every dataset folder under ``$MEDCAT_HOME/normalized``."""
    for folder in _subfolders(normalized_dir()):
        yield folder.name, folder


def tree_size(folder: Path, *, skip_top: str | None = None) -> tuple[int, int]:
    """Return ``(bytes on disk, files)`` under ``folder``, never following a symlink.

    Bytes count everything (what removing the folder frees); files leave out the top-level
    sub-folder ``skip_top`` (the fetch state of a raw folder is not data).
    """
    size = files = 0
    stack: list[tuple[str, bool]] = [(str(folder), True)]
    while stack:
        path, counted = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((entry.path, counted and not (path == str(folder) and entry.name == skip_top)))
                    continue
                size += entry.stat(follow_symlinks=False).st_size
            except OSError:
                continue
            files += counted
    return size, files


def remove_inside_home(path: Path) -> None:
    """Remove a folder of ``MEDCAT_HOME``; a symlink is unlinked, never followed.

    Raises:
        UsageError: the folder (after resolving symlinks on the way) lies outside ``MEDCAT_HOME``.
    """
    if path.is_symlink():
        path.unlink()  # the link is ours; what it points at is not
        return
    home = medcat_home().resolve()
    real = path.resolve()
    if real == home or not real.is_relative_to(home):
        raise UsageError(f"refusing to remove {path}: it resolves to {real}, outside MEDCAT_HOME ({home}).")
    shutil.rmtree(real)  # rmtree unlinks the symlinks it meets inside; it never descends into them
