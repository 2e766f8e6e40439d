"""Fetching: bytes in, verified files out. Never decodes an image.

Public API::

    from medcat_data import load_registry, resolve
    from medcat_data.loaders import FetchOptions, fetch, verify

    resolved = resolve("physionet:mimic-iv-demo@2.2", load_registry())
    report = fetch(resolved, FetchOptions(mirror="http://127.0.0.1:8123"))
    assert report.ok
    assert verify(resolved).ok
"""

from __future__ import annotations

from pathlib import Path

from medcat_data.catalog.refs import ResolvedDataset
from medcat_data.loaders.engine import FetchReport, FileOutcome, fetch_dataset
from medcat_data.loaders.options import FetchOptions, RetryPolicy, Timeouts
from medcat_data.loaders.plan import RemoteFile, dataset_dest
from medcat_data.loaders.progress import PlainProgress, RichProgress
from medcat_data.loaders.verify import VerifyReport, verify_dest
from medcat_data.progress import NullProgress, Progress

__all__ = [
    "FetchOptions",
    "FetchReport",
    "FileOutcome",
    "NullProgress",
    "PlainProgress",
    "Progress",
    "RemoteFile",
    "RetryPolicy",
    "RichProgress",
    "Timeouts",
    "VerifyReport",
    "fetch",
    "verify",
]


def fetch(resolved: ResolvedDataset, options: FetchOptions | None = None, progress: Progress | None = None) -> FetchReport:
    """Fetch a dataset into its folder: every selected file present and verified, or reported.

    ``progress`` (``medcat_data.progress.Progress``) hears the number of files and their bytes,
    the bytes as they arrive and every file done (``errors=1`` when it failed); the engine calls
    its ``finish``.

    Raises:
        LicenseNotAcceptedError: a credentialed / DUA dataset without ``accept_license``.
        AccessDeniedError: the server refused access; the message says how to obtain it.
        FetchError: a source cannot be listed.
    """
    return fetch_dataset(resolved, options or FetchOptions(), progress)


def verify(
    resolved: ResolvedDataset, dest: Path | None = None, *, full: bool = False, prefix: str | None = None
) -> VerifyReport:
    """Check a dataset folder against its manifest (size; with ``full`` also the hash). Offline.

    ``prefix`` limits the check to one source's sub-folder.
    """
    folder = dataset_dest(resolved, FetchOptions(dest=dest))
    return verify_dest(resolved.entry.id, resolved.version, folder, full=full, prefix=prefix)
