"""MIMIC-CXR on its replica: DICOMs + reports, labels and split from the MIMIC-CXR-JPG companion."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from datasets import DatasetDict, load_dataset

from medcat_data.converters.recipes import mimic_cxr
from medcat_data.converters.recipes.base import RecipeContext, RecipeOptions
from medcat_data.converters.vocab.chexpert import OBSERVATIONS, column_name
from medcat_data.mirror.replicas import _mimic
from medcat_data.mirror.replicas import mimic_cxr as replica_builder
from medcat_data.mirror.replicas import mimic_cxr_jpg as jpg_builder

from .recipe_run import read_errors, run_recipe

DICOM_PROJECT = Path("files/mimic-cxr/2.0.0")
JPG_PROJECT = Path("files/mimic-cxr-jpg/2.1.0")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The replica laid out as the fetch leaves it: the DICOM project at the root, the companion's CSVs in ``mimic-cxr-jpg/``."""
    served = tmp_path_factory.mktemp("served")
    (built,) = replica_builder.build(served, seed=0)
    root = tmp_path_factory.mktemp("cache") / "2.0.0"
    shutil.copytree(served / DICOM_PROJECT, root)
    (root / "mimic-cxr-jpg").mkdir()
    for path in (served / JPG_PROJECT).glob("mimic-cxr-2.0.0-*.csv.gz"):
        shutil.copy(path, root / "mimic-cxr-jpg" / path.name)
    return root, dict(built.expected)


def _context(root: Path, available: frozenset[str] | None = None, **options: object) -> RecipeContext:
    return RecipeContext(
        "mimic-cxr", "2.0.0", root, "physionet", root, options=RecipeOptions(**options),  # type: ignore[arg-type]
        companions={"mimic-cxr-jpg-labels": root / "mimic-cxr-jpg"}, available=available,
    )


@pytest.fixture(scope="module")
def loaded(cache: tuple[Path, dict], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, DatasetDict]]:
    root, _ = cache
    out = tmp_path_factory.mktemp("out") / "mimic-cxr"
    run_recipe(mimic_cxr, _context(root), list(mimic_cxr.CONFIGS), out)
    return out, {c: load_dataset(str(out), c) for c in mimic_cxr.CONFIGS}


def test_replica_sums_cover_top_level_files_and_companion_matches_jpg_replica(tmp_path: Path) -> None:
    replica_builder.build(tmp_path / "a", seed=0)
    jpg_builder.build(tmp_path / "b", seed=0)
    project = tmp_path / "a" / DICOM_PROJECT
    sums = (project / "SHA256SUMS.txt").read_text()
    assert [line.split(" ", 1)[1] for line in sums.splitlines()] == [
        "LICENSE.txt", "cxr-record-list.csv.gz", "cxr-study-list.csv.gz", "mimic-cxr-reports.zip",
    ]
    a_files = sorted(p.relative_to(tmp_path / "a" / JPG_PROJECT) for p in (tmp_path / "a" / JPG_PROJECT).rglob("*") if p.is_file())
    assert a_files == sorted(p.relative_to(tmp_path / "b" / JPG_PROJECT) for p in (tmp_path / "b" / JPG_PROJECT).rglob("*") if p.is_file())
    assert all((tmp_path / "a" / JPG_PROJECT / f).read_bytes() == (tmp_path / "b" / JPG_PROJECT / f).read_bytes() for f in a_files)
    dcms = list(project.rglob("*.dcm"))
    assert dcms and all(p.read_bytes()[128:132] == b"DICM" for p in dcms)
    assert list(project.glob("files/p1*/p*/s*.txt"))


def test_every_config_loads_with_expected_counts_and_truncated_dicom_in_errors_only(
    cache: tuple[Path, dict], loaded: tuple[Path, dict[str, DatasetDict]]
) -> None:
    _, expected = cache
    out, sets = loaded
    for config, ds in sets.items():
        assert {s: ds[s].num_rows for s in ds} == expected["configs"][config]
        assert all(ds[s].num_rows for s in ("train", "validation", "test"))
        ids = [i for s in ds for i in ds[s]["sample_id"]]
        assert len(ids) == len(set(ids))
        patients = {s: set(ds[s]["patient_id"]) for s in ds}
        assert not (patients["train"] & patients["validation"] or patients["train"] & patients["test"]
                    or patients["validation"] & patients["test"])
    errors = read_errors(out)
    planted = expected["errors"]
    assert len(errors) == len(planted) == 3
    assert all(e["path"].endswith(planted[0]["path"]) and e["stage"] == "decode" for e in errors)
    bad = Path(planted[0]["path"]).stem
    assert all(bad not in ds[s]["sample_id"] for c in ("chexpert", "negbio") for ds in [sets[c]] for s in ds)
    assert all(bad not in ids for s in sets["reports"] for ids in sets["reports"][s]["dicom_ids"])


def test_reports_have_sections_labels_and_images(loaded: tuple[Path, dict[str, DatasetDict]]) -> None:
    _, sets = loaded
    ds = sets["reports"]
    rows = [r for s in ds for r in ds[s]]
    assert all(len(r["images"]) == len(r["views"]) == len(r["dicom_ids"]) >= 1 for r in rows)
    assert all(img.format == "PNG" for r in rows for img in r["images"])
    assert any(r["findings"] == "" and r["impression"] for r in rows)
    assert all(r["findings"] is not None and r["impression"] is not None for r in rows)
    assert any(r["findings"].startswith("The lungs are clear") for r in rows)
    unlabelled = [r for r in rows if not r["labelled"]]
    assert len(unlabelled) == 1 and unlabelled[0]["labels"] is None
    assert set(rows[0]["labels"] or {}) == {column_name(o) for o in OBSERVATIONS}
    chexpert = sets["chexpert"]
    names = chexpert["train"].features["edema"].names
    flat = [r for s in chexpert for r in chexpert[s].remove_columns("image")]
    assert {names[r[c]] for r in flat for c in (column_name(o) for o in OBSERVATIONS) if r[c] is not None} == set(names)
    assert all(r["modality"] == "DX" for r in flat)


def test_reports_read_from_the_zip_when_loose_reports_absent(cache: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = cache
    zipped = tmp_path / "2.0.0"
    shutil.copytree(root, zipped, ignore=shutil.ignore_patterns("s5*.txt"))
    assert not list(zipped.rglob("s5*.txt"))
    units = mimic_cxr.plan("reports", _context(zipped)).units
    assert units and all(u.report is not None and u.report[1] is not None for u in units)
    run_recipe(mimic_cxr, _context(zipped, limit=4), ["reports"], tmp_path / "zip")
    run_recipe(mimic_cxr, _context(root, limit=4), ["reports"], tmp_path / "loose", jobs=2)
    a, b = load_dataset(str(tmp_path / "zip"), "reports"), load_dataset(str(tmp_path / "loose"), "reports")
    for split in a:
        cols = ["sample_id", "findings", "impression"]
        assert a[split].select_columns(cols).to_list() == b[split].select_columns(cols).to_list()


def test_unfetched_dicoms_are_not_fetched_not_errors(cache: tuple[Path, dict]) -> None:
    root, expected = cache
    everything = frozenset(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    dropped = sorted(p for p in everything if p.endswith(".dcm"))[:2]
    planned = mimic_cxr.plan("chexpert", _context(root, available=everything - set(dropped)))
    assert sorted(planned.not_fetched) == dropped
    images = sum(len(u.images) for u in planned.units)
    assert images == sum(expected["configs"]["chexpert"].values()) + 1 - len(dropped)


def test_report_sections_parse_upstream_shape() -> None:
    study = _mimic.make_cohort(0).studies[0]
    sections = mimic_cxr.report_sections(_mimic.report_text(study))
    assert sections["FINDINGS"] == study.findings and sections["IMPRESSION"] == study.impression
    assert mimic_cxr.report_sections("FINAL REPORT\n IMPRESSION: \n none.\n").get("FINDINGS") is None


def test_all_configs_together_decode_each_dicom_once_and_give_the_same_rows(
    cache: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch
) -> None:
    from medcat_data.converters.recipes import mimic_cxr

    root, _ = cache
    ctx = _context(root)
    plans = {config: mimic_cxr.plan(config, ctx).units for config in mimic_cxr.CONFIGS}
    separately = sorted(
        (o.config, str(o.values["sample_id"])) for units in plans.values() for u in units for o in mimic_cxr.convert_unit(u)
        if not isinstance(o, Exception)
    )
    decoded: list[Path] = []
    real = mimic_cxr.decode_dicom

    def counting(path: Path, options):  # type: ignore[no-untyped-def]
        decoded.append(path)
        return real(path, options)

    monkeypatch.setattr(mimic_cxr, "decode_dicom", counting)
    together = sorted(
        (o.config, str(o.values["sample_id"])) for u in mimic_cxr.combine_units(plans) for o in mimic_cxr.convert_unit(u)
        if not isinstance(o, Exception)
    )
    assert together == separately
    assert decoded and len(decoded) == len(set(decoded))
