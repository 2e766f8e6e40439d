"""What a replica builder returns, and how the demo and tests find builders.

A replica builder is a module ``medcat_data.mirror.replicas.<module_name(id)>`` exporting
``DATASET_ID`` and ``build(root: Path, *, seed: int = 0) -> list[Replica]``. ``build`` writes a
miniature, synthetic copy of every upstream source of the dataset under ``root`` at the URL paths
the real hosts use (PhysioNet ``root/files/<slug>/<version>/...``, Kaggle
``root/kaggle/<owner>/<slug>.zip``, Hub repos ``root/datasets/<owner>/<name>/...``), so the
loopback server serves it exactly as upstream does. A seed gives a byte-identical tree.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib
import io
import json
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from medcat_data.catalog.schema import module_name

REPLICA_PASSWORD = "replica-Pa55word"
"""Password of every replica account: the demo passes it in-process, never to netrc or a keyring."""


@dataclass(frozen=True)
class Protection:
    """A URL prefix the server must protect as upstream does."""

    prefix: str
    username: str
    password: str
    user_agents: tuple[str, ...] | None = ("Wget/", "libwfdb/")


@dataclass(frozen=True)
class Replica:
    """One served source of a dataset and what normalizing it must give.

    ``expected`` is written by the builder from its own bookkeeping::

        {"configs": {"<config>": {"<split>": rows}}, "errors": [{"path": "<suffix>", "stage": "..."}]}

    ``env`` holds the credentials a fetch needs (e.g. ``PHYSIONET_USERNAME``/``PHYSIONET_PASSWORD``).
    """

    dataset_id: str
    source: str
    protections: tuple[Protection, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    expected: Mapping[str, Any] = field(default_factory=dict)
    group_columns: Sequence[str] = ("patient_id",)
    """Columns that must never appear in two splits (a null column is skipped)."""

    def write_expected(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.expected, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def zip_bytes(
    members: Sequence[tuple[str, bytes]],
    *,
    date_time: tuple[int, int, int, int, int, int],
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """Return a zip of ``(name, data)`` members with fixed times and modes: same input, same bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=date_time)
            info.compress_type = compression
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def physionet_protection(slug: str, version: str) -> Protection:
    """Return the Basic-auth protection of a PhysioNet project, with the Wget/libwfdb UA rule."""
    return Protection(prefix=f"/files/{slug}/{version}/", username="replica-user", password=REPLICA_PASSWORD)


def physionet_env() -> dict[str, str]:
    return {"PHYSIONET_USERNAME": "replica-user", "PHYSIONET_PASSWORD": REPLICA_PASSWORD}


def gzip_bytes(data: bytes) -> bytes:
    """Return ``data`` gzipped deterministically (mtime 0, no file name)."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buffer, mtime=0) as handle:
        handle.write(data)
    return buffer.getvalue()


def csv_bytes(header: Sequence[str], rows: Sequence[Sequence[object]]) -> bytes:
    """Return a CSV (``\\n`` line ends, minimal quoting); ``None`` is an empty cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return buffer.getvalue().encode("utf-8")


def project_dir(root: Path, slug: str, version: str) -> Path:
    """Return ``root/files/<slug>/<version>``, the path PhysioNet serves a project version at."""
    return root / "files" / slug / version


def write_sha256sums(project: Path) -> Path:
    """Write ``SHA256SUMS.txt`` as PhysioNet does: ``<sha256> <relpath>``, byte-sorted, not itself."""
    lines = []
    for path in project.rglob("*"):
        if path.is_file() and not (path.parent == project and path.name == "SHA256SUMS.txt"):
            rel = path.relative_to(project).as_posix()
            lines.append((rel.encode("utf-8"), f"{hashlib.sha256(path.read_bytes()).hexdigest()} {rel}\n"))
    target = project / "SHA256SUMS.txt"
    target.write_text("".join(line for _, line in sorted(lines)), encoding="utf-8")
    return target


def load_builder(dataset_id: str) -> ModuleType | None:
    """Import the replica builder of a dataset id (its kit's ``replica.py``), or None when none exists yet."""
    for name in (f"medcat_data.datasets.{module_name(dataset_id)}.replica", f"medcat_data.mirror.replicas.{module_name(dataset_id)}"):
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name is None or not name.startswith(err.name):
                raise
    return None
