"""TCIA collections over loopback: NBIA API listing, series zips laid out as the Data Retriever, checks."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.loaders import FetchOptions, fetch
from medcat_data.loaders.options import RetryPolicy
from medcat_data.mirror.server import Fault, MirrorServer
from tests.fixtures.loopback import mirror_root
from tests.unit.loaders.entries import dataset_id, entry, payload, run_cli, use_registry

pytestmark = pytest.mark.integration

API = "https://nbia.cancerimagingarchive.net/nbia-api/services/v4"
STUDY = "1.3.6.1.4.1.9590.100.1.2.11111111111111"
SERIES_A = "1.3.6.1.4.1.9590.100.1.2.22222222222201"
SERIES_B = "1.3.6.1.4.1.9590.100.1.2.33333333333302"


def _dicom(seed: int) -> bytes:
    return b"\0" * 128 + b"DICM" + payload(seed, 3000)


def _zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _series(uid: str, subject: str, description: str, members: dict[str, bytes], **changes: Any) -> dict[str, Any]:
    info: dict[str, Any] = {
        "SeriesInstanceUID": uid, "StudyInstanceUID": STUDY, "PatientID": subject, "Modality": "MG",
        "SeriesDescription": description, "SeriesNumber": "1", "StudyDate": "07-20-2016", "StudyDesc": "DDSM",
        "ImageCount": len(members), "FileSize": sum(len(d) for d in members.values()),
    }
    info.update(changes)
    return info


def _collection(mirror: MirrorServer, name: str, series: list[tuple[dict[str, Any], dict[str, bytes]]]) -> None:
    """Write what mirror.tcia serves for a collection: series.json and one zip per series."""
    folder = mirror_root(mirror, f"tcia/{name}")
    (folder / "series.json").write_text(json.dumps([info for info, _ in series]))
    for info, members in series:
        (folder / f"{info['SeriesInstanceUID']}.zip").write_bytes(_zip(members))


def _source(collection: str, **changes: Any) -> dict[str, Any]:
    src: dict[str, Any] = {
        "name": "tcia", "kind": "tcia", "collection": collection, "subdir": "tcia", "api_url": API,
        "files": [{"url": f"https://www.cancerimagingarchive.net/wp-content/uploads/{collection}/cases.csv", "path": "cases.csv"}],
    }
    src.update(changes)
    return src


def _cases(mirror: MirrorServer, collection: str) -> bytes:
    data = b"patient_id,image file path\nP_00001,x/y/z/000000.dcm\n"
    mirror_root(mirror, f"wp-content/uploads/{collection}")
    (mirror.root / f"wp-content/uploads/{collection}/cases.csv").write_bytes(data)
    return data


TWO = {"1-1.dcm": _dicom(1), "1-2.dcm": _dicom(2)}
ONE = {"1-1.dcm": _dicom(3)}


def test_collection_is_laid_out_as_the_data_retriever_does_and_a_rerun_fetches_nothing(
    mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ident = dataset_id(mirror_slug)
    cases = _cases(mirror, mirror_slug)
    _collection(mirror, mirror_slug, [
        (_series(SERIES_A, "Calc-Test_P_00001_LEFT_CC_1", "cropped images", TWO), TWO),
        # Hostile names from the API must not escape the dataset folder.
        (_series(SERIES_B, "../../escape/P_2", "ROI/../../mask", ONE, StudyDesc="..", SeriesNumber="2"), ONE),
    ])
    use_registry(monkeypatch, tmp_path, entry(ident, [_source(mirror_slug)]))
    dest = tmp_path / "d"
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code == 0, err
    assert json.loads(out)["extracted_archives"] == 2
    root = dest / "tcia"
    assert (root / "cases.csv").read_bytes() == cases
    rows = list(csv.DictReader((root / "metadata.csv").read_text().splitlines()))
    assert [r["Series UID"] for r in rows] == [SERIES_A, SERIES_B]
    first = root / rows[0]["File Location"]
    assert first.relative_to(root).as_posix() == (
        f"{mirror_slug}/Calc-Test_P_00001_LEFT_CC_1/07-20-2016-DDSM-11111/1.000000-cropped images-22201"
    )
    assert {p.name: p.read_bytes() for p in first.glob("*.dcm")} == TWO
    assert rows[0]["Number of Images"] == "2" and rows[0]["Study Date"] == "07-20-2016"
    second = (root / rows[1]["File Location"]).resolve()
    assert second.is_relative_to(root.resolve()) and (second / "1-1.dcm").read_bytes() == ONE["1-1.dcm"]
    assert not (tmp_path / "escape").exists() and not (dest / "escape").exists()
    assert mirror.count("/nbia-api/services/v4/getImage") == 2

    mirror.clear_log()
    code, out, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code == 0, err
    assert mirror.count("/nbia-api/services/v4/getImage") == 0
    code, out, _ = run_cli("verify", ident, "--dest", str(dest), "--json")
    assert code == 0, out


def test_a_series_zip_that_disagrees_with_the_listing_is_named_and_never_extracted(
    mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ident = dataset_id(mirror_slug)
    _cases(mirror, mirror_slug)
    _collection(mirror, mirror_slug, [
        (_series(SERIES_A, "Mass-Training_P_00007_LEFT_MLO", "full mammogram images", ONE), ONE),
        # The API says three images; the zip holds two (a truncated series upstream).
        (_series(SERIES_B, "Mass-Training_P_00007_LEFT_MLO_1", "cropped images", TWO, ImageCount=3), TWO),
    ])
    use_registry(monkeypatch, tmp_path, entry(ident, [_source(mirror_slug)]))
    dest = tmp_path / "d"
    resolved = resolve(ident, load_registry())
    report = fetch(resolved, FetchOptions(dest=dest, mirror=mirror.url, retry=RetryPolicy(attempts=2, base_s=0.01)))
    assert not report.ok
    text = json.dumps(report.to_dict())
    assert f"series {SERIES_B}: 2 DICOM files in the zip, the API lists 3" in text
    assert sorted(p.name for p in (dest / "tcia").rglob("*.dcm")) == ["1-1.dcm"]  # only the good series
    assert not list((dest / "tcia").rglob(f"{SERIES_B}.zip"))
    assert mirror.count("/nbia-api/services/v4/getImage") == 1 + 2  # the bad one was retried


def test_a_dropped_series_download_resumes(
    mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ident = dataset_id(mirror_slug)
    _cases(mirror, mirror_slug)
    _collection(mirror, mirror_slug, [(_series(SERIES_A, "Calc-Training_P_00009_RIGHT_CC", "full mammogram images", TWO), TWO)])
    use_registry(monkeypatch, tmp_path, entry(ident, [_source(mirror_slug)]))
    mirror.add_fault(Fault("/nbia-api/services/v4/getImage", "drop", after_bytes=1000))
    mirror.add_fault(Fault("/nbia-api/services/v4/getSeries", "status", status=503, retry_after=0))
    dest = tmp_path / "d"
    code, _, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(dest))
    assert code == 0, err
    assert {p.name for p in (dest / "tcia").rglob("*.dcm")} == set(TWO)
    ranged = [r for r in mirror.requests if r.path.endswith("/getImage") and "range" in r.headers]
    assert ranged and ranged[0].headers["range"].startswith("bytes=1000-")


def test_an_unknown_collection_says_to_check_its_name(
    mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [_source(f"{mirror_slug}-nope", files=[])]))
    code, _, err = run_cli("fetch", ident, "--mirror", mirror.url, "--dest", str(tmp_path / "d"))
    assert code == 1
    assert f"collection '{mirror_slug}-nope'" in err and "check the collection name" in err


def test_a_file_mirror_is_refused_because_the_api_cannot_be_asked(
    mirror: MirrorServer, mirror_slug: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ident = dataset_id(mirror_slug)
    use_registry(monkeypatch, tmp_path, entry(ident, [_source(mirror_slug)]))
    code, _, err = run_cli("fetch", ident, "--mirror", f"file://{tmp_path}", "--dest", str(tmp_path / "d"))
    assert code == 1 and "NBIA REST API" in err and "file:// mirror" in err
