"""The NBIA REST API subset that ``loaders.transports.tcia`` uses, answered from a replica tree.

Routes (any API version ``v1`` .. ``v4``, all public and unauthenticated, as TCIA's search API is
today; v2 once required a bearer token, which TCIA dropped with its move to v4):

* ``GET /nbia-api/services/v<n>/getSeries?Collection=<name>``: the JSON list of series
  objects the replica builder wrote to ``root/tcia/<Collection>/series.json``;
* ``GET /nbia-api/services/v<n>/getImage?SeriesInstanceUID=<uid>``: the zip of the series'
  DICOMs, ``root/tcia/<Collection>/<uid>.zip`` (built by the replica builder, served as bytes);
* ``GET /nbia-api/services/v<n>/getSeriesSize?SeriesInstanceUID=<uid>``:
  ``[{"TotalSizeInBytes": "<n>", "ObjectCount": <k>}]`` computed from that zip's members.

An unknown collection gives ``[]`` (as the real API answers an empty query), an unknown series a
404. Holds no dataset knowledge: the builder writes the JSON and zips.
"""

from __future__ import annotations

import logging
import re
import zipfile
from pathlib import Path

from medcat_data.mirror.exchange import Exchange
from medcat_data.mirror.files import send_file

log = logging.getLogger(__name__)

PREFIX = "/nbia-api/services/"
TREE = "tcia"
SERIES_JSON = "series.json"
_ROUTE = re.compile(r"^/nbia-api/services/v[1-4]/(?P<endpoint>getSeries|getImage|getSeriesSize)$")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._-]*$")


def claims(ex: Exchange) -> bool:
    """Tell whether a request is one of the NBIA API calls served here."""
    return ex.path.startswith(PREFIX)


def serve(ex: Exchange, root: Path) -> None:
    """Answer an NBIA API call from ``root/tcia/``."""
    route = _ROUTE.match(ex.path)
    if route is None:
        ex.error(404, f"no such NBIA endpoint: {ex.path}")
        return
    endpoint = route["endpoint"]
    if endpoint == "getSeries":
        _series(ex, root)
        return
    uid = ex.query.get("SeriesInstanceUID", "")
    archive = _series_zip(root, uid)
    if archive is None:
        ex.error(404, f"series {uid!r} not found")
        return
    if endpoint == "getImage":
        send_file(ex, archive, content_type="application/zip",
                  headers={"Content-Disposition": f"attachment; filename={uid}.zip"})
        return
    with zipfile.ZipFile(archive) as zf:
        members = [i for i in zf.infolist() if not i.is_dir()]
    ex.json(200, [{"TotalSizeInBytes": str(sum(i.file_size for i in members)), "ObjectCount": len(members)}])


def _series(ex: Exchange, root: Path) -> None:
    collection = ex.query.get("Collection", "")
    listing = root / TREE / collection / SERIES_JSON if _NAME.match(collection) else None
    if listing is None or not listing.is_file():
        ex.json(200, [])
        return
    send_file(ex, listing, content_type="application/json")


def _series_zip(root: Path, uid: str) -> Path | None:
    """Find ``root/tcia/<any collection>/<uid>.zip``; a malformed UID finds nothing."""
    if not _UID.match(uid):
        return None
    for folder in sorted((root / TREE).glob("*")):
        candidate = folder / f"{uid}.zip"
        if candidate.is_file():
            return candidate
    return None
