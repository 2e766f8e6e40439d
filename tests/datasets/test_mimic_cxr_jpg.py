"""MIMIC-CXR-JPG: study-level labels by name, four states, unlabelled = null, the official split,
damaged index files as lines of errors.jsonl, and the whole chain over loopback."""

from __future__ import annotations

import gzip
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from datasets import DatasetDict, Image
from PIL import Image as PILImage

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.normalize import context_for, pick_source
from medcat_data.converters.recipe import RecipeContext, RecipeOptions
from medcat_data.converters.vocab.chexpert import OBSERVATIONS, column_name
from medcat_data.datasets.mimic_cxr_jpg import labels
from medcat_data.datasets.mimic_cxr_jpg import recipe as mimic_cxr_jpg
from medcat_data.datasets.mimic_cxr_jpg import replica as replica_builder
from medcat_data.errors import InputDecodeError, SampleError, UpstreamFormatError
from medcat_data.mirror.server import MirrorServer
from medcat_data.mirror.synth import mimic_cohort
from tests.datasets.harness import load, normalize_folder, read_errors, run_chain

DATASET = "mimic-cxr-jpg"
RECIPE = mimic_cxr_jpg.RECIPE
PROJECT = Path("files/mimic-cxr-jpg/2.1.0")


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    served = tmp_path_factory.mktemp("served")
    (built,) = replica_builder.build(served, seed=0)
    return served / PROJECT, dict(built.expected)


def _context(root: Path, available: frozenset[str] | None = None, **options: Any) -> RecipeContext:
    """The context normalize builds for a folder (registry facts included)."""
    resolved = resolve(DATASET, load_registry())
    return context_for(resolved.entry, resolved.version, root, pick_source(resolved, None), RecipeOptions(**options), available)


def _normalize(root: Path, out: Path, configs: tuple[str, ...] = (), jobs: int = 1, **options: Any) -> Path:
    return normalize_folder(DATASET, root, out, configs=configs, jobs=jobs, options=RecipeOptions(**options)).out_dir


@pytest.fixture(scope="module")
def loaded(replica: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, DatasetDict]]:
    root, _ = replica
    out = _normalize(root, tmp_path_factory.mktemp("out"))
    return out, {c: load(out, c) for c in mimic_cxr_jpg.CONFIGS}


def test_replica_is_byte_identical_and_upstream_shaped(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    replica_builder.build(a, seed=3)
    replica_builder.build(b, seed=3)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    project = a / PROJECT
    sums = (project / "SHA256SUMS.txt").read_text().splitlines()
    paths = [line.split(" ", 1)[1] for line in sums]
    assert paths == sorted(paths, key=lambda p: p.encode()) and "SHA256SUMS.txt" not in paths
    assert len(paths) == len([p for p in project.rglob("*") if p.is_file()]) - 1
    with gzip.open(project / "mimic-cxr-2.0.0-chexpert.csv.gz", "rt") as fh:
        assert fh.readline().strip().split(",") == ["subject_id", "study_id", *OBSERVATIONS]
    with gzip.open(project / "mimic-cxr-2.0.0-metadata.csv.gz", "rt") as fh:
        assert fh.readline().strip().split(",") == list(mimic_cohort.METADATA_COLUMNS)
    test_header = (project / "mimic-cxr-2.1.0-test-set-labeled.csv").read_text().splitlines()[0].split(",")
    assert test_header[0] == "study_id" and "Airspace Opacity" in test_header and "Lung Opacity" not in test_header
    listed = (project / "IMAGE_FILENAMES").read_text().splitlines()
    assert listed and all(p.startswith("files/p1") and p.endswith(".jpg") for p in listed)


def test_every_config_loads_with_expected_counts_and_planted_jpg_in_errors_only(
    replica: tuple[Path, dict[str, Any]], loaded: tuple[Path, dict[str, DatasetDict]]
) -> None:
    _, expected = replica
    out, sets = loaded
    for config, ds in sets.items():
        assert {s: ds[s].num_rows for s in ds} == expected["configs"][config]
        ids = [i for s in ds for i in ds[s]["sample_id"]]
        assert len(ids) == len(set(ids))
        patients = {s: set(ds[s]["patient_id"]) for s in ds}
        for s1 in patients:
            for s2 in patients:
                assert s1 == s2 or not patients[s1] & patients[s2]
    assert set(sets["test-labeled"]) == {"test"}
    errors = read_errors(out)
    planted = expected["errors"]
    assert len(errors) == len(planted) == 2
    assert all(e["path"].endswith(planted[0]["path"]) and e["stage"] == "read" for e in errors)
    bad_id = Path(planted[0]["path"]).stem
    assert all(bad_id not in ds[s]["sample_id"] for ds in sets.values() for s in ds)


def test_chexpert_has_four_states_and_unlabelled_studies_are_null(loaded: tuple[Path, dict[str, DatasetDict]]) -> None:
    _, sets = loaded
    ds = sets["chexpert"]
    columns = [column_name(o) for o in OBSERVATIONS]
    names = ds["train"].features["atelectasis"].names
    assert names == ["negative", "positive", "uncertain", "unmentioned"]
    rows = [r for s in ds for r in ds[s].remove_columns("image")]
    states = {names[r[c]] for r in rows for c in columns if r[c] is not None}
    assert states == set(names)
    unlabelled = [r for r in rows if not r["labelled"]]
    assert unlabelled and all(r[c] is None for r in unlabelled for c in columns)
    assert all(r[c] is not None for r in rows if r["labelled"] for c in columns)
    assert len({r["study_id"] for r in unlabelled}) == 1
    assert {r["view"] for r in rows} >= {"LATERAL"} and any(r["view"] in ("PA", "AP") for r in rows)


def test_jpeg_bytes_pass_through(replica: tuple[Path, dict[str, Any]], loaded: tuple[Path, dict[str, DatasetDict]]) -> None:
    root, _ = replica
    _, sets = loaded
    train = sets["negbio"]["train"].cast_column("image", Image(decode=False))
    first = train[0]
    folder = f"files/p{first['patient_id'][:2]}/p{first['patient_id']}/s{first['study_id']}"
    assert first["image"]["bytes"] == (root / folder / f"{first['dicom_id']}.jpg").read_bytes()


def test_test_labeled_reads_airspace_opacity_as_lung_opacity(replica: tuple[Path, dict[str, Any]], loaded: tuple[Path, dict[str, DatasetDict]]) -> None:
    root, _ = replica
    _, sets = loaded
    lines = (root / "mimic-cxr-2.1.0-test-set-labeled.csv").read_text().splitlines()
    header = lines[0].split(",")
    upstream = {row.split(",")[0]: row.split(",")[header.index("Airspace Opacity")] for row in lines[1:]}
    want = {"1.0": "positive", "0.0": "negative", "-1.0": "uncertain", "": "unmentioned"}
    test = sets["test-labeled"]["test"]
    names = test.features["lung_opacity"].names
    assert test.num_rows
    for row in test.remove_columns("image"):
        assert names[row["lung_opacity"]] == want[upstream[row["study_id"]]]


def test_sample_ids_stable_and_limit_and_partial_fetch(replica: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, expected = replica
    a = load(_normalize(root, tmp_path / "a", ("chexpert",), jobs=2), "chexpert")
    b = load(_normalize(root, tmp_path / "b", ("chexpert",)), "chexpert")
    for split in a:
        assert a[split]["sample_id"] == b[split]["sample_id"]
    limited = _context(root, limit=2)
    assert len(list(RECIPE.plan("chexpert", limited, RECIPE.survey(limited)).units)) == 2
    listed = [line.split(" ", 1)[1] for line in (root / "SHA256SUMS.txt").read_text().splitlines()]
    dropped = [p for p in listed if p.endswith(".jpg")][:3]
    ctx = _context(root, frozenset(set(listed) - set(dropped)))
    planned = RECIPE.plan("chexpert", ctx, RECIPE.survey(ctx))
    assert sorted(planned.not_fetched) == sorted(dropped)
    images = sum(len(u.images) for u in planned.units if isinstance(u, mimic_cxr_jpg.JpgStudyUnit))
    assert images == sum(expected["configs"]["chexpert"].values()) + 1 - len(dropped)


def test_the_label_files_are_read_once_for_every_config(replica: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """The survey reads metadata, split and label files once; plans and card notes use what it read."""
    root, _ = replica
    ctx = _context(root)
    survey = RECIPE.survey(ctx)
    assert set(survey.labels) == {"chexpert", "negbio", "test-labeled"}
    monkeypatch.setattr(labels, "read_text_lines", None)  # any further read would fail
    for config in mimic_cxr_jpg.CONFIGS:
        assert list(RECIPE.plan(config, ctx, survey).units)
    notes = RECIPE.card_notes(ctx, survey)
    assert any(n.startswith("mimic-cxr-2.0.0-chexpert.csv.gz: ") and "labelled studies" in n for n in notes)


def test_upstream_split_names_are_the_registry_entrys(replica: tuple[Path, dict[str, Any]]) -> None:
    """``validate`` becomes ``validation`` because the registry entry says so, not a copy in code."""
    root, _ = replica
    ctx = _context(root)
    assert ctx.splits_of("chexpert") == {"train": "train", "validate": "validation", "test": "test"}
    renamed = replace(ctx, upstream_splits={"chexpert": {"validate": "test"}})
    units = RECIPE.plan("chexpert", renamed, RECIPE.survey(renamed)).units
    splits = {split for u in units if isinstance(u, mimic_cxr_jpg.JpgStudyUnit) for *_, split in u.images}
    assert splits == {"train", "test"}


def test_a_label_file_lacking_an_observation_is_an_upstream_format_error(replica: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, _ = replica
    copy = tmp_path / "raw"
    copy.mkdir()
    for name in (labels.METADATA, labels.SPLIT):
        (copy / name).write_bytes((root / name).read_bytes())
    with gzip.open(root / labels.LABEL_FILES["negbio"], "rt") as fh:
        text = fh.read().replace(",Edema,", ",Oedema,", 1)
    (copy / labels.LABEL_FILES["negbio"]).write_bytes(gzip.compress(text.encode(), mtime=0))
    with pytest.raises(UpstreamFormatError, match=r"mimic-cxr-jpg: mimic-cxr-2\.0\.0-negbio\.csv\.gz lacks the column\(s\) Edema") as caught:
        _normalize(copy, tmp_path / "out", ("negbio",))
    assert caught.value.exit_code == 1


# ------------------------------------------------------------------------------ damaged index files


def test_read_text_lines_reports_bytes_not_utf8_with_file_and_line_and_keeps_the_other_lines(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_bytes(b"a,b\r\nx,y\rz,w\nbad,\xff\nlast,1\n")
    errors: list[SampleError] = []
    assert list(labels.read_text_lines(path, errors=errors)) == [(1, "a,b\r\n"), (2, "x,y\r"), (3, "z,w\n"), (5, "last,1\n")]
    assert [(e.path, e.stage) for e in errors] == [("labels.csv:4", "read")]
    assert "bytes not valid utf-8 at column 5" in errors[0].reason
    with pytest.raises(InputDecodeError, match=r"labels\.csv:4: read: bytes not valid utf-8"):
        list(labels.read_text_lines(path))


def _truncated_gzip(text: str) -> bytes:
    data = gzip.compress(text.encode(), mtime=0)
    return data[: len(data) // 2]


def _labels_folder(root: Path, studies: int = 1500) -> None:
    """Metadata, split and CheXpert files of ``studies`` one-image studies; the first study has its JPEG."""
    meta = "dicom_id,subject_id,study_id,ViewPosition\n" + "".join(
        f"d{i:05d}x{i * 7919 % 100003},{10000000 + i},{50000000 + i},PA\n" for i in range(studies)
    )
    (root / labels.METADATA).write_bytes(_truncated_gzip(meta))
    split = "dicom_id,study_id,subject_id,split\n" + "".join(
        f"d{i:05d}x{i * 7919 % 100003},{50000000 + i},{10000000 + i},train\n" for i in range(3)
    )
    split = split.replace("d00002", "d\xe900002")  # one line in Latin-1, not UTF-8
    (root / labels.SPLIT).write_bytes(gzip.compress(split.encode("latin-1"), mtime=0))
    label_csv = f"subject_id,study_id,{','.join(OBSERVATIONS)}\n{10000000},{50000000},{',' * (len(OBSERVATIONS) - 1)}1.0\n"
    (root / labels.LABEL_FILES["chexpert"]).write_bytes(gzip.compress(label_csv.encode(), mtime=0))
    jpeg = root / "files/p10/p10000000/s50000000/d00000x0.jpg"
    jpeg.parent.mkdir(parents=True)
    buffer = io.BytesIO()
    PILImage.new("L", (8, 8), 90).save(buffer, "JPEG")
    jpeg.write_bytes(buffer.getvalue())


def test_a_truncated_metadata_gzip_and_a_bad_split_line_are_lines_in_errors(tmp_path: Path) -> None:
    root = tmp_path / "raw"
    root.mkdir()
    _labels_folder(root)
    out = _normalize(root, tmp_path / "out", ("chexpert",))
    errors = {e["path"].split(":")[0]: e for e in read_errors(out)}
    truncated = errors[labels.METADATA]
    assert truncated["stage"] == "read" and "the file is truncated" in truncated["message"]
    assert int(truncated["path"].split(":")[1]) > 2
    assert errors[labels.SPLIT]["path"] == f"{labels.SPLIT}:4"
    assert "bytes not valid utf-8" in errors[labels.SPLIT]["message"]
    assert load(out, "chexpert")["train"]["sample_id"] == ["d00000x0"]


@pytest.mark.integration
def test_mimic_cxr_jpg_chain_keeps_all_four_states(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path)
    train = result.loaded["chexpert"]["train"]
    names = train.features["edema"].names
    states = {names[v] for col in train.features if col in {"edema", "atelectasis", "cardiomegaly", "lung_opacity"} for v in train[col] if v is not None}
    assert {"positive", "negative", "uncertain", "unmentioned"} <= states
