"""VinDr-Mammo on its replica: BI-RADS and findings configs, official per-study split, truncated DICOM in errors."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from datasets import load_dataset

from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.recipes import vindr_mammo
from medcat_data.converters.recipes.base import RecipeContext, RecipeOptions
from medcat_data.converters.vocab.mammography import BIRADS
from medcat_data.mirror.replicas import vindr_mammo as replica_builder

from .recipe_run import read_errors, run_recipe


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    served = tmp_path_factory.mktemp("served")
    (built,) = replica_builder.build(served, seed=0)
    return served / "files" / "vindr-mammo" / "1.0.0", dict(built.expected)


def _context(root: Path, **options: object) -> RecipeContext:
    return RecipeContext("vindr-mammo", "1.0.0", root, "physionet", root, options=RecipeOptions(**options))  # type: ignore[arg-type]


def _load(out: Path, config: str):  # type: ignore[no-untyped-def]
    return load_dataset(str(out), config)


def test_replica_is_byte_identical_and_has_upstream_layout(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    replica_builder.build(a, seed=3)
    replica_builder.build(b, seed=3)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / p).read_bytes() == (b / p).read_bytes() for p in files_a)
    project = a / "files" / "vindr-mammo" / "1.0.0"
    with open(project / "finding_annotations.csv", newline="") as handle:
        header = next(csv.reader(handle))
    assert tuple(header) == replica_builder.FINDING_HEADER
    sums = (project / "SHA256SUMS.txt").read_text().splitlines()
    paths = [line.split(" ", 1)[1] for line in sums]
    assert paths == sorted(paths, key=lambda p: p.encode()) and "SHA256SUMS.txt" not in paths
    dicoms = list(project.glob("images/*/*.dicom"))
    assert len(dicoms) >= 30 and len(paths) == len(dicoms) + 4


def test_both_configs_load_with_expected_counts_and_planted_error(replica: tuple[Path, dict], tmp_path: Path) -> None:
    root, expected = replica
    out = tmp_path / "out"
    run_recipe(vindr_mammo, _context(root), list(vindr_mammo.CONFIGS), out)
    errors = read_errors(out)
    assert sorted((e["path"], e["stage"]) for e in errors) == sorted((e["path"], e["stage"]) for e in expected["errors"])
    planted_id = expected["errors"][0]["path"].rsplit("/", 1)[1].removesuffix(".dicom")
    for config in vindr_mammo.CONFIGS:
        ds = _load(out, config)
        assert {s: ds[s].num_rows for s in ds} == expected["configs"][config]
        assert ds["train"].features == vindr_mammo.features(config, _context(root))
        ids = [i for s in ds for i in ds[s]["sample_id"]]
        assert len(ids) == len(set(ids)) and planted_id not in ids
        studies = {s: set(ds[s]["study_id"]) for s in ds}
        assert not studies["train"] & studies["test"]
        assert all(p is None for s in ds for p in ds[s]["patient_id"])
    findings = _load(out, "findings")["train"]
    objects = [o for o in findings["objects"] if o["bbox"]]
    assert objects and any(len(c) > 1 for o in objects for c in o["categories"])
    birads_names = findings.features["objects"]["birads"].feature.names
    assert "unassessed" in {birads_names[b] for o in objects for b in o["birads"]}
    assert any(not o["bbox"] for o in findings["objects"])  # No Finding images
    assert _load(out, "birads")["train"].features["birads"].names == list(BIRADS.labels)


def test_sample_ids_are_stable_across_runs(replica: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = replica
    runs = []
    for name in ("one", "two"):
        run_recipe(vindr_mammo, _context(root), ["birads"], tmp_path / name)
        ds = _load(tmp_path / name, "birads")
        runs.append([i for s in ds for i in ds[s]["sample_id"]])
    assert runs[0] == runs[1]


def test_resized_boxes_stay_inside_their_image(replica: tuple[Path, dict], tmp_path: Path) -> None:
    root, expected = replica
    out = tmp_path / "small"
    run_recipe(vindr_mammo, _context(root, image=ImageOptions(max_size=64)), ["findings"], out)
    ds = _load(out, "findings")
    boxes = 0
    for split in ds:
        for row in ds[split]:
            assert max(row["width"], row["height"]) == 64 and row["image"].size == (row["width"], row["height"])
            assert row["scale"] < 1
            for x0, y0, x1, y1 in row["objects"]["bbox"]:
                boxes += 1
                assert 0 <= x0 <= x1 <= row["width"] and 0 <= y0 <= y1 <= row["height"]
    assert boxes


def test_size_mismatch_is_a_sample_error_and_limit_counts_studies(replica: tuple[Path, dict], tmp_path: Path) -> None:
    root, _ = replica
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "images").symlink_to(root / "images")
    rows = (root / "breast-level_annotations.csv").read_text().splitlines(keepends=True)
    fields = rows[5].split(",")
    fields[5] = str(int(fields[5]) + 1)
    rows[5] = ",".join(fields)
    (copy / "breast-level_annotations.csv").write_text("".join(rows))
    ctx = _context(copy, limit=2)
    plan = vindr_mammo.plan("birads", ctx)
    assert len(plan.units) == 2
    results = [r for unit in plan.units for r in vindr_mammo.convert_unit(unit)]
    errors = [r for r in results if not hasattr(r, "values")]
    assert [e.stage for e in errors] == ["decode", "size"]  # the planted file, then the changed height


def test_images_not_fetched_are_listed_not_errors(replica: tuple[Path, dict]) -> None:
    root, _ = replica
    available = frozenset(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    dropped = sorted(p for p in available if p.endswith(".dicom"))[:3]
    ctx = RecipeContext("vindr-mammo", "1.0.0", root, "physionet", root, available=available - set(dropped))
    plan = vindr_mammo.plan("findings", ctx)
    assert sorted(plan.not_fetched) == dropped
    assert not {i.path for u in plan.units for i in u.images} & set(dropped)


def test_both_configs_together_decode_each_dicom_once(replica: tuple[Path, dict], monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = replica
    ctx = _context(root)
    plans = {config: vindr_mammo.plan(config, ctx).units for config in vindr_mammo.CONFIGS}
    decoded: list[Path] = []
    real = vindr_mammo.decode_dicom

    def counting(path: Path, options: ImageOptions):  # type: ignore[no-untyped-def]
        decoded.append(path)
        return real(path, options)

    monkeypatch.setattr(vindr_mammo, "decode_dicom", counting)
    rows = {config: 0 for config in vindr_mammo.CONFIGS}
    for unit in vindr_mammo.combine_units(plans):
        for out in vindr_mammo.convert_unit(unit):
            if not isinstance(out, Exception):
                rows[out.config] += 1
    assert len(decoded) == len(set(decoded)) == len(list(root.glob("images/*/*.dicom")))
    separately = {config: sum(1 for u in units for o in vindr_mammo.convert_unit(u) if not isinstance(o, Exception)) for config, units in plans.items()}
    assert rows == separately
