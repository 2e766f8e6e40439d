"""Publish a folder built aside in one rename, and clear staging folders left by killed runs.

Shared by the dataset writer and the conversation export: nothing half-written ever appears at a
final path, and an interrupted run leaves only folders whose names carry its (dead) pid.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)


def publish(staging: Path, target: Path, old: Path) -> None:
    """Move ``staging`` to ``target``; an existing ``target`` is moved to ``old`` first and removed after.

    If the final rename fails, the previous ``target`` is put back.
    """
    if not target.exists():
        os.rename(staging, target)
        return
    shutil.rmtree(old, ignore_errors=True)
    os.rename(target, old)
    try:
        os.rename(staging, target)
    except OSError:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def remove_stale(folder: Path, prefixes: Sequence[str], what: str) -> None:
    """Remove entries of ``folder`` named ``<prefix><pid>...`` whose process is gone."""
    for prefix in prefixes:
        for path in folder.glob(f"{prefix}*"):
            pid = path.name[len(prefix) :].split("-")[0]
            if pid.isdigit() and not pid_alive(int(pid)):
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
