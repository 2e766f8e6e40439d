"""PAD-UFES-20: nested zips read in place (or loose PNGs), typed metadata, patient-grouped stratified
splits and damaged images named relative to the folder, on its replica and hand-written trees, and the
whole chain (replica → fetch over loopback → verify → normalize --jobs 1/2 → load)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import datasets
import pytest
from PIL import Image

from medcat_data.datasets.pad_ufes_20 import recipe as pad_ufes_20
from medcat_data.datasets.pad_ufes_20 import replica
from medcat_data.errors import UpstreamFormatError
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import load, normalize_folder, read_errors, run_chain

DATASET = "pad-ufes-20"
TOP = "zr7vgbcyr2-1"


def _png(size: int = 8) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (size, size), (200, 30, 30)).save(buffer, "PNG")
    return buffer.getvalue()


def _normalize(root: Path, out: Path, *, jobs: int = 1) -> Path:
    return normalize_folder(DATASET, root, out, jobs=jobs).out_dir


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The replica's outer zip, stored and extracted as the fetch engine does (into the zip's folder)."""
    served = tmp_path_factory.mktemp("served")
    (built,) = replica.build(served, seed=0)
    root = tmp_path_factory.mktemp("cache")
    outer = root / "zr7vgbcyr2-1.zip"
    outer.write_bytes((served / replica.URL_PATH).read_bytes())
    with zipfile.ZipFile(outer) as archive:
        archive.extractall(root)
    return root, dict(built.expected)


# ------------------------------------------------------------------------------------- replica


def test_replica_has_upstream_layout_and_is_byte_identical(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    replica.build(a, seed=1)
    replica.build(b, seed=1)
    data = (a / replica.URL_PATH).read_bytes()
    assert data == (b / replica.URL_PATH).read_bytes()
    with zipfile.ZipFile(a / replica.URL_PATH) as outer:
        names = outer.namelist()
        header = outer.read(f"{TOP}/metadata.csv").decode().splitlines()[0]
    assert header.split(",") == list(pad_ufes_20.COLUMNS) and len(pad_ufes_20.COLUMNS) == 26
    assert {f"{TOP}/images/imgs_part_{n}.zip" for n in (1, 2, 3)} <= set(names)


# ------------------------------------------------------------------------------------- recipe


def test_diagnosis_loads_with_grouped_splits_and_missing_png_in_errors(fetched: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, expected = fetched
    assert not list(root.rglob("*.png"))  # the inner zips stay zipped
    out = _normalize(root, tmp_path / "out")
    ds = load(out, "diagnosis")
    assert {s: ds[s].num_rows for s in ds} == expected["configs"]["diagnosis"]
    assert all(ds[s].num_rows for s in ("train", "validation", "test"))
    patients = {s: set(ds[s]["patient_id"]) for s in ds}
    assert not (patients["train"] & patients["validation"] or patients["train"] & patients["test"] or patients["validation"] & patients["test"])
    ids = [i for s in ds for i in ds[s]["sample_id"]]
    assert len(ids) == len(set(ids)) and all(i.startswith("PAT_") for i in ids)
    errors = read_errors(out)
    assert len(errors) == 1 and errors[0]["path"].endswith(expected["errors"][0]["path"])
    assert errors[0]["stage"] == expected["errors"][0]["stage"]
    planted = expected["errors"][0]["path"].removesuffix(".png")
    assert planted not in ids

    train = ds["train"]
    feats = train.features
    assert feats["diagnosis"].names == ["ACK", "BCC", "MEL", "NEV", "SCC", "SEK"]
    assert {c: feats[c].dtype for c in ("age", "lesion_id", "fitspatrick", "smoke", "itch", "biopsed", "region")} == {
        "age": "int64", "lesion_id": "int64", "fitspatrick": "float64", "smoke": "bool", "itch": "bool",
        "biopsed": "bool", "region": "string",
    }
    rows = [r for s in ds for r in ds[s].remove_columns("image")]
    assert any(r["smoke"] is None for r in rows) and any(r["smoke"] is not None for r in rows)
    unk = [r for r in rows if r["unk_columns"]]
    assert unk and all(r[c] is None for r in unk for c in r["unk_columns"])
    names = feats["diagnosis"].names
    assert all(r["is_cancer"] == (names[r["diagnosis"]] in {"BCC", "MEL", "SCC"}) for r in rows)
    assert all(names[r["diagnosis"]] == r["diagnostic"] for r in rows)
    first = train[0]
    assert first["image"].format == "PNG" and first["modality"] == "XC"
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "grouped by patient_id" in card and "UNK" in card


def test_extracted_pngs_give_the_same_rows(fetched: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, _ = fetched
    loose = tmp_path / "loose"
    for path in root.rglob("*"):
        if path.is_file():
            target = loose / path.relative_to(root)
            target.parent.mkdir(parents=True, exist_ok=True)
            if path.name.startswith("imgs_part_"):
                with zipfile.ZipFile(path) as inner:
                    inner.extractall(target.parent)
            else:
                target.write_bytes(path.read_bytes())
    a = load(_normalize(loose, tmp_path / "a"), "diagnosis")
    b = load(_normalize(root, tmp_path / "b", jobs=2), "diagnosis")
    undecoded = datasets.Image(decode=False)
    for split in ("train", "validation", "test"):
        assert a[split]["sample_id"] == b[split]["sample_id"]
        assert [x["bytes"] for x in a[split].cast_column("image", undecoded)["image"]] == [
            x["bytes"] for x in b[split].cast_column("image", undecoded)["image"]
        ]


def _row(patient: int, img_id: str, **values: str) -> str:
    cells = dict.fromkeys(pad_ufes_20.COLUMNS, "")
    cells.update(patient_id=f"PAT_{patient}", lesion_id=str(patient), diagnostic="BCC", img_id=img_id, **values)
    return ",".join(cells[c] for c in pad_ufes_20.COLUMNS)


def _metadata(root: Path, header: list[str], rows: list[str]) -> None:
    (root / TOP / "images").mkdir(parents=True, exist_ok=True)
    (root / TOP / "metadata.csv").write_text(",".join(header) + "\n" + "\n".join(rows) + "\n", encoding="utf-8")


def test_typed_cells_an_integral_age_is_kept_and_a_bad_value_names_column_and_value(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    ids = [f"PAT_{n}_{n}_{n}.png" for n in (1, 2, 3)]
    _metadata(root, list(pad_ufes_20.COLUMNS), [
        _row(1, ids[0], age="55.0", smoke="True", itch="UNK"),
        _row(2, ids[1], age="55.5"),
        _row(3, ids[2], smoke="yes"),
    ])
    for img in ids:
        (root / TOP / "images" / img).write_bytes(_png())
    out = _normalize(root, tmp_path / "out")
    (row,) = [r for split in load(out, "diagnosis").values() for r in split.remove_columns("image")]
    assert (row["sample_id"], row["age"], row["smoke"], row["itch"], row["unk_columns"]) == ("PAT_1_1_1", 55, True, None, ["itch"])
    errors = sorted((e["path"], e["message"]) for e in read_errors(out))
    assert errors == [
        (f"{TOP}/metadata.csv:3 {ids[1]}", "age: unexpected value '55.5' for a int64 column"),
        (f"{TOP}/metadata.csv:4 {ids[2]}", "smoke: unexpected value 'yes' for a bool column"),
    ]


def test_a_metadata_csv_lacking_an_upstream_column_is_an_upstream_format_error(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    header = [c for c in pad_ufes_20.COLUMNS if c != "biopsed"]
    _metadata(root, header, [",".join("" for _ in header)])
    with pytest.raises(UpstreamFormatError, match=rf"pad-ufes-20: {TOP}/metadata.csv lacks the column\(s\) biopsed \(it has patient_id, "):
        _normalize(root, tmp_path / "out")


# ------------------------------------------------------------------------------------- damaged input


def _damage_member(archive: Path, member: str) -> None:
    """Overwrite the start of a deflated member's data (same size, as damage on disk)."""
    with zipfile.ZipFile(archive) as handle:
        info = handle.getinfo(member)
    data = bytearray(archive.read_bytes())
    name_len, extra_len = int.from_bytes(data[info.header_offset + 26 : info.header_offset + 28], "little"), int.from_bytes(
        data[info.header_offset + 28 : info.header_offset + 30], "little"
    )
    start = info.header_offset + 30 + name_len + extra_len
    data[start : start + 4] = b"\xff" * 4
    archive.write_bytes(bytes(data))


def test_a_damaged_zip_member_and_a_broken_loose_png_are_named_relative_to_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    images = root / TOP / "images"
    ids = [f"PAT_{n}_{n}_{n}.png" for n in (1, 2, 3)]
    _metadata(root, list(pad_ufes_20.COLUMNS), [_row(n, img) for n, img in zip((1, 2, 3), ids)])
    part = images / "imgs_part_1.zip"
    with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"imgs_part_1/{ids[0]}", _png())
        archive.writestr(f"imgs_part_1/{ids[1]}", _png(64))
    _damage_member(part, f"imgs_part_1/{ids[1]}")
    (images / ids[2]).write_bytes(b"not a png at all")
    out = _normalize(root, tmp_path / "out")
    errors = [(e["path"], e["stage"], e["message"]) for e in read_errors(out)]
    assert [(p, s) for p, s, _ in errors] == [
        (f"{TOP}/images/imgs_part_1.zip:imgs_part_1/{ids[1]}", "read"),
        (f"{TOP}/images/{ids[2]}", "read"),
    ]
    assert "truncated or corrupt" in errors[0][2]
    assert str(tmp_path) not in (out / "errors.jsonl").read_text()
    loaded = load(out, "diagnosis")
    assert [sid for split in loaded.values() for sid in split["sample_id"]] == ["PAT_1_1_1"]


# ------------------------------------------------------------------------------------- chain


@pytest.mark.integration
def test_mendeley_chain_reads_the_inner_zips_in_place(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path)
    ds = result.loaded["diagnosis"]
    assert set(ds) == {"train", "validation", "test"}
    assert ds["train"].features["diagnosis"].names == ["ACK", "BCC", "MEL", "NEV", "SCC", "SEK"]
    card = (result.out_dir / "README.md").read_text(encoding="utf-8")
    assert "read directly from the inner imgs_part_*.zip archives" in card and " 0 read directly" not in card
