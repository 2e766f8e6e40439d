"""What ``medcat fetch`` left in a dataset cache, as normalize needs it: present, verified, or not.

Reads the fetch manifest (``loaders.fetch_manifest``) and stats files; never touches the network and
never rehashes (that is ``medcat verify --full``).
"""

from __future__ import annotations

import logging
from pathlib import Path

from medcat_data.catalog.refs import ResolvedDataset
from medcat_data.catalog.schema import Source
from medcat_data.errors import FetchError, NotFetchedError

log = logging.getLogger(__name__)

SHOWN_MISSING = 10


def _has_files(folder: Path) -> bool:
    if not folder.is_dir():
        return False
    return any(p.is_file() and ".medcat" not in p.parts for p in folder.rglob("*"))


def check_fetched(
    resolved: ResolvedDataset, source: Source, root: Path, *, explicit_source: str | None = None
) -> frozenset[str] | None:
    """Return the verified relative paths under ``root`` a recipe may read (None = all on disk).

    Raises:
        NotFetchedError: nothing fetched (names id, version, cache path and the fetch command).
        FetchError: files recorded as fetched are missing, truncated or unverified (names the
            first ten, the count and the verify command), as ``medcat verify`` reports them.
    """
    from medcat_data.loaders.status import fetched_files

    entry = resolved.entry
    folder = root / source.subdir if source.subdir else root
    fetch_cmd = f"medcat fetch {resolved.ref}" + (f" --source {explicit_source}" if explicit_source else "")
    if not _has_files(folder):
        raise NotFetchedError(entry.id, resolved.version, folder, fetch_cmd)
    state = fetched_files(root, [source, *entry.companion_sources])
    if state.bad:
        shown = "\n  ".join(state.bad[:SHOWN_MISSING])
        more = f"\n  ... and {len(state.bad) - SHOWN_MISSING} more" if len(state.bad) > SHOWN_MISSING else ""
        raise FetchError(
            f"{entry.id} {resolved.version}: {len(state.bad)} fetched file(s) are missing, truncated or "
            f"unverified in {root}:\n  {shown}{more}\nRun `medcat verify {resolved.ref}` to see why, "
            f"then `{fetch_cmd}` to repair."
        )
    return state.available
