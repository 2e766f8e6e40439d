"""Publish a folder built aside in one rename, and clear staging folders left by killed runs.

Shared by the dataset writer and the conversation export: nothing half-written ever appears at a
final path, and an interrupted run leaves only folders whose names carry its (dead) pid. A run
killed between moving the old output aside and moving the new one in leaves the final path empty
for an instant; the next run puts the old output back (``restore_interrupted``) before it clears
stale folders.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def staging_dir(parent: Path, prefix: str) -> Path:
    """Create a private-named staging folder in ``parent`` whose mode follows the user's umask.

    ``tempfile.mkdtemp`` makes ``0700`` folders; published outputs must be shareable the way any
    folder the user makes is (a lab's ``data/`` read by the group), so the mode is reset to
    ``0777 & ~umask`` before anything is written into it.
    """
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    folder.chmod(0o777 & ~current_umask())
    return folder


def current_umask() -> int:
    """Return the process umask (read from ``/proc`` where possible: setting it to read it races threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def publish(staging: Path, target: Path, old: Path) -> None:
    """Move ``staging`` to ``target``; an existing ``target`` is moved to ``old`` first and removed after.

    If the final rename fails, the previous ``target`` is put back and the rename's error is
    raised (a failure to put it back is logged, never raised in its place). A process killed
    between the two renames leaves ``target`` absent and the previous output whole at ``old``;
    ``restore_interrupted`` (run by the next writer) moves it back.

    Raises:
        OSError: a rename failed (the previous ``target`` is in place again where possible).
    """
    if not target.exists():
        os.rename(staging, target)
        return
    shutil.rmtree(old, ignore_errors=True)
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except OSError:
        try:
            os.rename(old, target)
        except OSError as second:
            log.error("could not move the previous output back from %s to %s: %s", old, target, second)
        raise
    shutil.rmtree(old, ignore_errors=True)


def restore_interrupted(target: Path, old_prefix: str) -> bool:
    """Put back a previous output that a killed ``publish`` left aside; return whether one was restored.

    Only when ``target`` is absent and a folder ``<old_prefix><pid>`` of a dead process exists
    beside it: that is the instant between ``publish``'s two renames. The most recent such folder
    wins; any others are left to ``remove_stale``.
    """
    if target.exists() or target.is_symlink():
        return False
    aside = [
        path
        for path in target.parent.glob(f"{old_prefix}*")
        if path.is_dir() and _dead_pid(path.name[len(old_prefix) :])
    ]
    if not aside:
        return False
    latest = max(aside, key=lambda path: path.stat().st_mtime_ns)
    os.rename(latest, target)
    log.warning("restored the previous output %s that an interrupted run had moved aside", target)
    return True


def _dead_pid(tail: str) -> bool:
    pid = tail.split("-")[0]
    return pid.isdigit() and not pid_alive(int(pid))


def remove_stale(folder: Path, prefixes: Sequence[str], what: str) -> None:
    """Remove entries of ``folder`` named ``<prefix><pid>...`` whose process is gone."""
    for prefix in prefixes:
        for path in folder.glob(f"{prefix}*"):
            if _dead_pid(path.name[len(prefix) :]):
                log.info("removing %s left by an interrupted %s", path, what)
                shutil.rmtree(path, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """Tell whether a process with this pid exists (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
