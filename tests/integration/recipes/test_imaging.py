"""Imaging datasets end to end: replica → fetch over loopback → verify → normalize (--jobs 1/2) → load."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from medcat_data.mirror.server import MirrorServer
from medcat_data.paths import raw_dir
from tests.integration.recipes.harness import run_chain

pytestmark = pytest.mark.integration


def test_vindr_mammo_chain(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("vindr-mammo", mirror, tmp_path)
    assert set(result.loaded) == {"birads", "findings"}

    # Asking for one config an output already holds changes nothing; a rebuild of one config with
    # other options says which configs it removes.
    from medcat_data.converters.codecs.image import ImageOptions
    from medcat_data.converters.normalize import NormalizeRequest, normalize
    from medcat_data.converters.recipes.base import RecipeOptions

    out = result.out_dir.parent
    again = normalize(NormalizeRequest(result.resolved, out, configs=("birads",)))
    assert again.write.skipped and again.dropped_configs == ()
    assert (result.out_dir / "findings").is_dir()
    smaller = normalize(NormalizeRequest(result.resolved, out, configs=("birads",), options=RecipeOptions(image=ImageOptions(max_size=32))))
    assert not smaller.write.skipped and smaller.dropped_configs == ("findings",)
    assert not (result.out_dir / "findings").exists() and (result.out_dir / "birads").is_dir()


def test_mimic_cxr_jpg_chain_keeps_all_four_states(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("mimic-cxr-jpg", mirror, tmp_path)
    train = result.loaded["chexpert"]["train"]
    names = train.features["edema"].names
    states = {names[v] for col in train.features if col in {"edema", "atelectasis", "cardiomegaly", "lung_opacity"} for v in train[col] if v is not None}
    assert {"positive", "negative", "uncertain", "unmentioned"} <= states


def test_mimic_cxr_chain(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("mimic-cxr", mirror, tmp_path)
    assert "reports" in result.loaded


def test_cbis_ddsm_kaggle_chain(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("cbis-ddsm", mirror, tmp_path, source="kaggle")
    assert result.loaded["mass"]["train"].features["pathology"].names


def _labels(result: object, config: str) -> dict[str, list[tuple[object, ...]]]:
    """Per split, the sorted (sample_id, labels...) of a config, images and masks left out."""
    loaded = result.loaded[config]  # type: ignore[attr-defined]
    out = {}
    for split, ds in loaded.items():
        if config.endswith("-roi"):
            rows = [
                (r["sample_id"], r["patient_id"], tuple(sorted(zip(r["objects"]["abnormality_id"], r["objects"]["category"], r["objects"]["pathology"], r["objects"]["birads"]))))
                for r in ds.remove_columns("image")
            ]
        else:
            keep = [c for c in ds.column_names if c not in ("image", "source")]
            rows = [tuple(r[c] for c in keep) for r in ds.remove_columns("image")]
        out[split] = sorted(rows, key=repr)
    return out


def test_cbis_ddsm_gives_equal_sample_ids_and_labels_from_tcia_and_kaggle(mirror: MirrorServer, tmp_path: Path) -> None:
    """The tcia source (NBIA API series zips laid out as the Data Retriever does) normalizes to the
    same configs, features, sample_ids and labels as the kaggle JPEG copy; the planted absent
    series is reported by both (run_chain checks errors.jsonl)."""
    mirror.clear_log()
    tcia = run_chain("cbis-ddsm", mirror, tmp_path / "tcia", source="tcia")
    kaggle = run_chain("cbis-ddsm", mirror, tmp_path / "kaggle", source="kaggle")
    assert set(tcia.loaded) == set(kaggle.loaded) == {"mass", "calc", "mass-roi", "calc-roi"}
    for config in tcia.loaded:
        for split in tcia.loaded[config]:
            assert tcia.loaded[config][split].features == kaggle.loaded[config][split].features
        assert _labels(tcia, config) == _labels(kaggle, config), config
    fetched = raw_dir("cbis-ddsm", tcia.resolved.version) / "tcia"
    header = (fetched / "metadata.csv").read_text().splitlines()[0]
    assert header.startswith("Series UID,Collection,") and header.endswith(",File Location,Download Timestamp")
    dicoms = sorted(p.relative_to(fetched).as_posix() for p in fetched.rglob("*.dcm"))
    assert dicoms and all(re.fullmatch(r"CBIS-DDSM/(Mass|Calc)-(Training|Test)_P_\d{5}_(LEFT|RIGHT)_(CC|MLO)(_\d+)?/"
                                       r"07-20-2016-DDSM-\d{5}/\d\.000000-[a-zA-Z ]+-\d{5}/1-[12]\.dcm", d) for d in dicoms), dicoms[:3]
    assert mirror.count("/nbia-api/services/v4/getSeries") >= 1
    assert mirror.count("/nbia-api/services/v4/getImage") == len({d.rsplit("/", 1)[0] for d in dicoms})
