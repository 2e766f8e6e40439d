"""Which figures of which PMC articles a set of records needs (a pmc source's ``figures`` list).

LLaVA-Med publishes records (``id``/``pair_id``) and a URL list, JSON Lines of
``{"pmc_tar_url", "image_file_path": "PMC7236913/nihms-1587931-f0001.jpg", "pair_id"}``: the
figure as a member of the article's legacy package. In the per-article cloud layout that member
is a file of its own, ``PMC7236913.<version>/nihms-1587931-f0001.jpg``, listed with its md5 in the
article's metadata record; so the records' figures are fetched one by one, never the packages.

This module reads local files only: record ids (``read_record_ids``) and the list lines they pick
(``wanted_figures``). The transport does the listing and transfers.
"""

from __future__ import annotations

import json
import mmap
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from medcat_data.errors import FetchError

__all__ = ["WantedFigures", "read_record_ids", "split_figure_path", "wanted_figures"]

_PROBE_BYTES = 1 << 20
_FIGURE_PATH = re.compile(r"^(PMC\d+)/([^/]+)$")


def _key_pattern(key: str) -> re.Pattern[bytes]:
    # An unescaped quote cannot occur inside a JSON string, so `"key": "value"` in the raw text is a key.
    return re.compile(rb'"' + re.escape(key.encode()) + rb'"\s*:\s*"((?:[^"\\]|\\.)*)"')


def read_record_ids(path: Path, keys: Iterable[str], limit: int | None = None) -> list[str]:
    """Return the ids of a record file's records in file order (the first ``limit`` of them).

    The file is any JSON holding records (an array, JSON Lines, an object of arrays); it is scanned,
    never loaded: the first of ``keys`` found in its first MiB names the id, and each of its
    string values is one record. Memory does not grow with the file.
    """
    if path.stat().st_size == 0:
        return []
    with path.open("rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
        probe = data[:_PROBE_BYTES]
        pattern = next((p for p in map(_key_pattern, keys) if p.search(probe)), None)
        if pattern is None:
            return []
        ids: list[str] = []
        for match in pattern.finditer(data):  # type: ignore[call-overload]
            if limit is not None and len(ids) >= limit:
                break
            ids.append(json.loads(b'"' + match[1] + b'"'))
        return ids


def split_figure_path(value: str) -> tuple[str, str] | None:
    """Split ``PMC123/name.jpg`` into ``("PMC123", "name.jpg")``; None for any other shape."""
    match = _FIGURE_PATH.match(value.strip())
    return (match[1], match[2]) if match else None


@dataclass
class WantedFigures:
    """Figure file names per article (``PMC<id>``), and the record file that asked first for each."""

    by_article: dict[str, dict[str, str]] = field(default_factory=dict)
    unlisted: int = 0
    malformed: int = 0

    def add(self, pmcid: str, name: str, origin: str) -> None:
        self.by_article.setdefault(pmcid, {}).setdefault(name, origin)

    def articles(self) -> list[str]:
        """Return the articles in PMCID order."""
        return sorted(self.by_article, key=lambda p: int(p[3:]))


def _lines(path: Path) -> Iterator[tuple[int, dict[str, object]]]:
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except ValueError as err:
                raise FetchError(f"{path.name}:{number}: not a JSON line ({err}); delete the file and fetch again.") from err
            if isinstance(value, dict):
                yield number, value


def wanted_figures(
    list_path: Path, path_key: str, id_key: str, records: Mapping[str, str] | None
) -> WantedFigures:
    """Read the URL list once; return the figures of the records in ``records`` (id -> record file).

    ``records`` None wants every line (origin: the list itself).

    Raises:
        FetchError: a line is not JSON.
    """
    wanted = WantedFigures()
    found: set[str] = set()
    for _, line in _lines(list_path):
        record_id, figure = line.get(id_key), line.get(path_key)
        if not isinstance(record_id, str):
            continue
        if records is not None and record_id not in records:
            continue
        parts = split_figure_path(figure) if isinstance(figure, str) else None
        if parts is None:
            wanted.malformed += 1
            continue
        found.add(record_id)
        wanted.add(parts[0], parts[1], records[record_id] if records is not None else list_path.name)
    if records is not None:
        wanted.unlisted = sum(1 for r in records if r not in found)
    return wanted
