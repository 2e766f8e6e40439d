"""MIMIC-CXR: DICOMs and reports with labels and split from the MIMIC-CXR-JPG companion, reports
from loose files or the zip, one decode per DICOM for all configs, and the whole chain over loopback."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from datasets import DatasetDict

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.normalize import context_for, pick_source
from medcat_data.converters.recipe import RecipeContext, RecipeOptions
from medcat_data.converters.units import Row
from medcat_data.converters.vocab.chexpert import OBSERVATIONS, column_name
from medcat_data.datasets.mimic_cxr import recipe as mimic_cxr
from medcat_data.datasets.mimic_cxr import replica as replica_builder
from medcat_data.datasets.mimic_cxr_jpg import replica as jpg_builder
from medcat_data.errors import SampleError, UpstreamFormatError
from medcat_data.mirror.server import MirrorServer
from medcat_data.mirror.synth import mimic_cohort
from tests.datasets.harness import load, normalize_folder, read_errors, run_chain

DATASET = "mimic-cxr"
RECIPE = mimic_cxr.RECIPE
DICOM_PROJECT = Path("files/mimic-cxr/2.0.0")
JPG_PROJECT = Path("files/mimic-cxr-jpg/2.1.0")


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The replica laid out as the fetch leaves it: the DICOM project at the root, the companion's CSVs in ``mimic-cxr-jpg/``."""
    served = tmp_path_factory.mktemp("served")
    (built,) = replica_builder.build(served, seed=0)
    root = tmp_path_factory.mktemp("cache") / "2.0.0"
    shutil.copytree(served / DICOM_PROJECT, root)
    (root / "mimic-cxr-jpg").mkdir()
    for path in (served / JPG_PROJECT).glob("mimic-cxr-2.0.0-*.csv.gz"):
        shutil.copy(path, root / "mimic-cxr-jpg" / path.name)
    return root, dict(built.expected)


def _context(root: Path, available: frozenset[str] | None = None, **options: Any) -> RecipeContext:
    """The context normalize builds for a folder (companion folder and registry facts included)."""
    resolved = resolve(DATASET, load_registry())
    return context_for(resolved.entry, resolved.version, root, pick_source(resolved, None), RecipeOptions(**options), available)


def _normalize(root: Path, out: Path, configs: tuple[str, ...] = (), jobs: int = 1, **options: Any) -> Path:
    return normalize_folder(DATASET, root, out, configs=configs, jobs=jobs, options=RecipeOptions(**options)).out_dir


def _plan(config: str, ctx: RecipeContext) -> list[Any]:
    return list(RECIPE.plan(config, ctx, RECIPE.survey(ctx)).units)


@pytest.fixture(scope="module")
def loaded(cache: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, DatasetDict]]:
    root, _ = cache
    out = _normalize(root, tmp_path_factory.mktemp("out"))
    return out, {c: load(out, c) for c in mimic_cxr.CONFIGS}


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
    cache: tuple[Path, dict[str, Any]], loaded: tuple[Path, dict[str, DatasetDict]]
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


def test_reports_read_from_the_zip_when_loose_reports_absent(cache: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, _ = cache
    zipped = tmp_path / "2.0.0"
    shutil.copytree(root, zipped, ignore=shutil.ignore_patterns("s5*.txt"))
    assert not list(zipped.rglob("s5*.txt"))
    units = _plan("reports", _context(zipped))
    studies = [u for u in units if isinstance(u, mimic_cxr.DicomStudyUnit)]
    assert studies and all(u.report is not None and u.report[1] is not None for u in studies)
    a = load(_normalize(zipped, tmp_path / "zip", ("reports",), limit=4), "reports")
    b = load(_normalize(root, tmp_path / "loose", ("reports",), jobs=2, limit=4), "reports")
    for split in a:
        cols = ["sample_id", "findings", "impression"]
        assert a[split].select_columns(cols).to_list() == b[split].select_columns(cols).to_list()


def test_unfetched_dicoms_are_not_fetched_not_errors(cache: tuple[Path, dict[str, Any]]) -> None:
    root, expected = cache
    everything = frozenset(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    dropped = sorted(p for p in everything if p.endswith(".dcm"))[:2]
    ctx = _context(root, everything - set(dropped))
    planned = RECIPE.plan("chexpert", ctx, RECIPE.survey(ctx))
    assert sorted(planned.not_fetched) == dropped
    images = sum(len(u.images) for u in planned.units if isinstance(u, mimic_cxr.DicomStudyUnit))
    assert images == sum(expected["configs"]["chexpert"].values()) + 1 - len(dropped)


def test_report_sections_parse_upstream_shape() -> None:
    study = mimic_cohort.make_cohort(0).studies[0]
    sections = mimic_cxr.report_sections(mimic_cohort.report_text(study))
    assert sections["FINDINGS"] == study.findings and sections["IMPRESSION"] == study.impression
    assert mimic_cxr.report_sections("FINAL REPORT\n IMPRESSION: \n none.\n").get("FINDINGS") is None


def test_all_configs_together_decode_each_dicom_once_and_give_the_same_rows(
    cache: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = cache
    ctx = _context(root)
    survey = RECIPE.survey(ctx)
    plans = {config: RECIPE.plan(config, ctx, survey) for config in mimic_cxr.CONFIGS}
    plans = {config: replace(plan, units=list(plan.units)) for config, plan in plans.items()}
    separately = sorted(
        (o.config, str(o.values["sample_id"])) for plan in plans.values() for u in plan.units for o in RECIPE.convert_unit(u)
        if isinstance(o, Row)
    )
    decoded: list[Path] = []
    real = mimic_cxr.decode_dicom

    def counting(path: Path, options):  # type: ignore[no-untyped-def]
        decoded.append(path)
        return real(path, options)

    monkeypatch.setattr(mimic_cxr, "decode_dicom", counting)
    together = sorted(
        (o.config, str(o.values["sample_id"])) for u in RECIPE.combine_units(plans) for o in RECIPE.convert_unit(u)
        if isinstance(o, Row)
    )
    assert together == separately
    assert decoded and len(decoded) == len(set(decoded))


def test_upstream_split_names_are_the_registry_entrys(cache: tuple[Path, dict[str, Any]]) -> None:
    """``validate`` becomes ``validation`` because the registry entry says so, not a copy in code."""
    root, _ = cache
    ctx = _context(root)
    assert ctx.splits_of("negbio") == {"train": "train", "validate": "validation", "test": "test"}
    renamed = replace(ctx, upstream_splits={"negbio": {"validate": "test"}})
    splits = {u.split for u in _plan("negbio", renamed) if isinstance(u, mimic_cxr.DicomStudyUnit)}
    assert splits == {"train", "test"}


def test_a_reports_zip_that_is_no_zip_is_an_upstream_format_error(cache: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, _ = cache
    damaged = tmp_path / "2.0.0"
    shutil.copytree(root, damaged, ignore=shutil.ignore_patterns("s5*.txt"))
    (damaged / mimic_cxr.REPORTS_ZIP).write_bytes(b"<html>not a zip</html>")
    with pytest.raises(UpstreamFormatError, match=r"mimic-cxr: mimic-cxr-reports\.zip is not a readable zip .*medcat verify --full mimic-cxr") as caught:
        _normalize(damaged, tmp_path / "out", ("reports",))
    assert caught.value.exit_code == 1 and str(tmp_path) not in str(caught.value)


def test_a_report_with_bytes_not_utf8_is_an_error_not_replacement_characters(tmp_path: Path) -> None:
    report = tmp_path / "files/p10/p10000000/s50000000.txt"
    report.parent.mkdir(parents=True)
    report.write_bytes("FINDINGS: caf\u00e9 clear.\n".encode("latin-1"))
    with pytest.raises(SampleError, match=r"s50000000\.txt has bytes not valid UTF-8 at byte 13") as caught:
        mimic_cxr._read_report(tmp_path, ("files/p10/p10000000/s50000000.txt", None), "s50000000")
    assert str(tmp_path) not in str(caught.value)


@pytest.mark.integration
def test_mimic_cxr_chain(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path)
    assert set(result.loaded) == {"reports", "chexpert", "negbio"}
    # A study unit shared by the three configs names each config on its errors.jsonl line.
    configs = sorted(e["config"] for e in read_errors(result.out_dir))
    assert configs == ["chexpert", "negbio", "reports"] and all(e["split"] for e in read_errors(result.out_dir))
    reports = result.loaded["reports"]["train"]
    assert reports.features["labels"] is not None and all(len(r) >= 1 for r in reports["dicom_ids"])


def test_plans_and_combined_units_are_made_as_they_are_taken(cache: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver holds the executor's window of units, not the plan: taking one unit makes one study's parts."""
    root, _ = cache
    ctx = _context(root)
    survey = RECIPE.survey(ctx)
    made: list[str] = []

    @dataclass(frozen=True)
    class Counted(mimic_cxr.DicomStudyUnit):
        def __post_init__(self) -> None:
            made.append(self.study_id)

    monkeypatch.setattr(mimic_cxr, "DicomStudyUnit", Counted)
    plans = {config: RECIPE.plan(config, ctx, survey) for config in mimic_cxr.CONFIGS}
    assert made == [] and all(not isinstance(p.units, (list, tuple)) for p in plans.values())
    combined = RECIPE.combine_units(plans)
    first = next(iter(combined))
    assert isinstance(first, mimic_cxr.SharedStudyUnit) and [p.config for p in first.parts] == list(mimic_cxr.CONFIGS)
    assert made == [first.parts[0].study_id] * 3
    every = list(combined)
    assert len(every) == len(combined)  # progress still knows the total
    assert sum(isinstance(u, mimic_cxr.SharedStudyUnit) for u in every) == len({u.study_id for p in plans.values() for u in p.units
                                                                                  if isinstance(u, mimic_cxr.DicomStudyUnit)})


def test_a_bad_label_value_is_mapped_in_the_worker_to_the_same_sample_error(cache: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """Units carry the survey's raw label tuple; the worker meets the bad value and reports it per DICOM."""
    import gzip

    from medcat_data.datasets.mimic_cxr_jpg.labels import mention_values

    root, _ = cache
    damaged = tmp_path / "2.0.0"
    shutil.copytree(root, damaged)
    labels = damaged / "mimic-cxr-jpg" / "mimic-cxr-2.0.0-chexpert.csv.gz"
    lines = gzip.decompress(labels.read_bytes()).decode().splitlines()
    fields = lines[1].split(",")
    fields[-1] = "2.0"
    lines[1] = ",".join(fields)
    labels.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    ctx = _context(damaged)
    survey = RECIPE.survey(ctx)
    study = fields[1]
    units = [u for u in RECIPE.plan("chexpert", ctx, survey).units if isinstance(u, mimic_cxr.DicomStudyUnit) and u.study_id == study]
    (unit,) = units
    assert unit.raw_labels == survey.labels.labels["chexpert"].values[study]
    subject = unit.subject_id
    with pytest.raises(SampleError) as expected:
        mention_values(survey.labels.labels["chexpert"], study, f"files/p{subject[:2]}/p{subject}/s{study}")
    got = list(RECIPE.convert_unit(unit))
    assert got and all(isinstance(e, SampleError) for e in got)
    assert [(e.path, e.stage, e.reason) for e in got if isinstance(e, SampleError)] == [
        (rel, expected.value.stage, expected.value.reason) for _, rel, _ in unit.images
    ]
    assert "2.0" in expected.value.reason and "mimic-cxr-2.0.0-chexpert.csv.gz" in str(expected.value)
