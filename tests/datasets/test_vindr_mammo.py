"""VinDr-Mammo: the recipe on its replica (both configs, per-study split, boxes, sizes, partial
fetches, one decode per DICOM), damaged upstream tables, and the whole chain over loopback."""

from __future__ import annotations

import csv
from collections.abc import Sized
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.normalize import NormalizeRequest, context_for, normalize, pick_source
from medcat_data.converters.recipe import RecipeContext, RecipeOptions
from medcat_data.converters.units import ErrorUnit, Row
from medcat_data.converters.vocab.mammography import BIRADS
from medcat_data.datasets.vindr_mammo import recipe as vindr_mammo
from medcat_data.datasets.vindr_mammo import replica as replica_builder
from medcat_data.errors import OutputExistsError, SampleError, UpstreamFormatError
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import load, normalize_folder, read_errors, run_chain

DATASET = "vindr-mammo"
RECIPE = vindr_mammo.RECIPE


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The replica's project folder, laid out as a fetch leaves it, and what it must produce."""
    served = tmp_path_factory.mktemp("served")
    (built,) = replica_builder.build(served, seed=0)
    return served / "files" / "vindr-mammo" / "1.0.0", dict(built.expected)


def _context(root: Path, available: frozenset[str] | None = None, **options: Any) -> RecipeContext:
    """The context normalize builds for a folder (registry facts included)."""
    resolved = resolve(DATASET, load_registry())
    return context_for(resolved.entry, resolved.version, root, pick_source(resolved, None), RecipeOptions(**options), available)


def _normalize(root: Path, out: Path, configs: tuple[str, ...] = (), **options: Any) -> Path:
    return normalize_folder(DATASET, root, out, configs=configs, options=RecipeOptions(**options)).out_dir


def _convert(units: Any) -> list[Row | SampleError]:
    return [r for unit in units for r in RECIPE.convert_unit(unit)]


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


def test_both_configs_load_with_expected_counts_and_planted_error(replica: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, expected = replica
    out = _normalize(root, tmp_path / "out")
    errors = read_errors(out)
    assert sorted((e["path"], e["stage"]) for e in errors) == sorted((e["path"], e["stage"]) for e in expected["errors"])
    planted_id = expected["errors"][0]["path"].rsplit("/", 1)[1].removesuffix(".dicom")
    for config in vindr_mammo.CONFIGS:
        ds = load(out, config)
        assert {s: ds[s].num_rows for s in ds} == expected["configs"][config]
        assert ds["train"].features == RECIPE.features(config, _context(root), None)
        ids = [i for s in ds for i in ds[s]["sample_id"]]
        assert len(ids) == len(set(ids)) and planted_id not in ids
        studies = {s: set(ds[s]["study_id"]) for s in ds}
        assert not studies["train"] & studies["test"]
        assert all(p is None for s in ds for p in ds[s]["patient_id"])
    findings = load(out, "findings")["train"]
    objects = [o for o in findings["objects"] if o["bbox"]]
    assert objects and any(len(c) > 1 for o in objects for c in o["categories"])
    birads_names = findings.features["objects"]["birads"].feature.names
    assert "unassessed" in {birads_names[b] for o in objects for b in o["birads"]}
    assert any(not o["bbox"] for o in findings["objects"])  # No Finding images
    assert load(out, "birads")["train"].features["birads"].names == list(BIRADS.labels)


def test_sample_ids_are_stable_across_runs(replica: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, _ = replica
    runs = []
    for name in ("one", "two"):
        ds = load(_normalize(root, tmp_path / name, ("birads",)), "birads")
        runs.append([i for s in ds for i in ds[s]["sample_id"]])
    assert runs[0] == runs[1]


def test_resized_boxes_stay_inside_their_image(replica: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, _ = replica
    ds = load(_normalize(root, tmp_path / "small", ("findings",), image=ImageOptions(max_size=64)), "findings")
    boxes = 0
    for split in ds:
        for row in ds[split]:
            assert max(row["width"], row["height"]) == 64 and row["image"].size == (row["width"], row["height"])
            assert row["scale"] < 1
            for x0, y0, x1, y1 in row["objects"]["bbox"]:
                boxes += 1
                assert 0 <= x0 <= x1 <= row["width"] and 0 <= y0 <= y1 <= row["height"]
    assert boxes


def _copy_with_csv(root: Path, dest: Path, edit: Any) -> Path:
    """A folder with the replica's images (linked) and an edited ``breast-level_annotations.csv``."""
    dest.mkdir()
    (dest / "images").symlink_to(root / "images")
    rows = (root / "breast-level_annotations.csv").read_text().splitlines(keepends=True)
    (dest / "breast-level_annotations.csv").write_text("".join(edit(rows)))
    return dest


def test_size_mismatch_is_a_sample_error_and_limit_counts_studies(replica: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    root, _ = replica

    def taller(rows: list[str]) -> list[str]:
        fields = rows[5].split(",")
        fields[5] = str(int(fields[5]) + 1)
        rows[5] = ",".join(fields)
        return rows

    ctx = _context(_copy_with_csv(root, tmp_path / "copy", taller), limit=2)
    plan = RECIPE.plan("birads", ctx, None)
    units = list(plan.units)
    assert len(units) == 2
    errors = [r for r in _convert(units) if isinstance(r, SampleError)]
    assert [e.stage for e in errors] == ["decode", "size"]  # the planted file, then the changed height


def test_images_not_fetched_are_listed_not_errors(replica: tuple[Path, dict[str, Any]]) -> None:
    root, _ = replica
    available = frozenset(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    dropped = sorted(p for p in available if p.endswith(".dicom"))[:3]
    plan = RECIPE.plan("findings", _context(root, available - set(dropped)), None)
    assert sorted(plan.not_fetched) == dropped
    assert not {i.path for u in plan.units for i in u.images} & set(dropped)  # type: ignore[union-attr]


def test_both_configs_together_decode_each_dicom_once(replica: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    root, _ = replica
    ctx = _context(root)
    plans = {config: RECIPE.plan(config, ctx, None) for config in vindr_mammo.CONFIGS}
    plans = {config: replace(plan, units=list(plan.units)) for config, plan in plans.items()}
    decoded: list[Path] = []
    real = vindr_mammo.decode_dicom

    def counting(path: Path, options: ImageOptions):  # type: ignore[no-untyped-def]
        decoded.append(path)
        return real(path, options)

    monkeypatch.setattr(vindr_mammo, "decode_dicom", counting)
    rows = {config: 0 for config in vindr_mammo.CONFIGS}
    for out in _convert(RECIPE.combine_units(plans)):
        if isinstance(out, Row):
            rows[out.config] += 1
    assert len(decoded) == len(set(decoded)) == len(list(root.glob("images/*/*.dicom")))
    separately = {config: sum(1 for o in _convert(plan.units) if isinstance(o, Row)) for config, plan in plans.items()}
    assert rows == separately


def test_plans_make_their_units_as_they_are_taken(replica: tuple[Path, dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    """``plan`` makes no unit; the combined stream has its length up front and makes a study's units when it is taken."""
    root, _ = replica
    made: list[str] = []

    class Counted(vindr_mammo.StudyUnit):
        def __init__(self, *args: Any) -> None:
            super().__init__(*args)
            made.append(self.study_id)

    monkeypatch.setattr(vindr_mammo, "StudyUnit", Counted)
    ctx = _context(root)
    plans = {config: RECIPE.plan(config, ctx, None) for config in vindr_mammo.CONFIGS}
    assert made == []
    units = RECIPE.combine_units(plans)
    assert isinstance(units, Sized) and len(units) == len(list(root.glob("images/*")))
    first = next(iter(units))
    assert isinstance(first, vindr_mammo.SharedStudyUnit) and [p.config for p in first.parts] == list(vindr_mammo.CONFIGS)
    assert made == [first.parts[0].study_id] * len(vindr_mammo.CONFIGS)  # the other studies' units are not made yet


def test_a_csv_lacking_a_column_is_an_upstream_format_error_naming_file_and_column(replica: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    """An upstream table without a column the recipe reads is a conversion error (exit 1), not a usage error."""
    root, _ = replica

    def without_split(rows: list[str]) -> list[str]:
        return [line.rstrip("\r\n").rsplit(",", 1)[0] + "\n" for line in rows]  # split is the last column

    copy = _copy_with_csv(root, tmp_path / "copy", without_split)
    assert "split" not in (copy / "breast-level_annotations.csv").read_text().splitlines()[0]
    with pytest.raises(UpstreamFormatError, match=r"vindr-mammo: breast-level_annotations\.csv lacks the column\(s\) split \(it has .*"
                                                  r"`medcat verify --full vindr-mammo`") as caught:
        _normalize(copy, tmp_path / "out", ("birads",))
    assert caught.value.exit_code == 1


def test_upstream_split_names_are_the_registry_entrys(replica: tuple[Path, dict[str, Any]]) -> None:
    """The split mapping is read from the context (the registry entry normalize was given), never a copy in code."""
    root, _ = replica
    ctx = _context(root)
    assert ctx.splits_of("birads") == {"training": "train", "test": "test"}
    renamed = replace(ctx, upstream_splits={"birads": {"training": "validation", "test": "test"}})
    splits = {item.split for unit in RECIPE.plan("birads", renamed, None).units for item in unit.images}  # type: ignore[union-attr]
    assert splits == {"validation", "test"}
    unmapped = replace(ctx, upstream_splits={"birads": {"test": "test"}})
    units = list(RECIPE.plan("birads", unmapped, None).units)
    assert isinstance(units[-1], ErrorUnit)  # reported by the executor in unit order, converted by no recipe
    errors = list(units[-1].errors)
    assert errors and {e.stage for e in errors} == {"split"} and "unknown upstream split 'training'" in errors[0].reason


@pytest.mark.integration
def test_vindr_mammo_chain_and_rebuilds_of_one_config(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path)
    assert set(result.loaded) == {"birads", "findings"}
    # The planted undecodable DICOM is met once per config by the study unit both configs share:
    # each errors.jsonl line names its own config and split.
    places = sorted((e["config"], e["split"]) for e in read_errors(result.out_dir))
    assert places == [("birads", "train"), ("findings", "train")], places

    # Asking for one config an output already holds changes nothing; a rebuild of one config with
    # other options says which configs it removes.
    out = result.out_dir.parent
    again = normalize(NormalizeRequest(result.resolved, out, configs=("birads",)))
    assert again.write.skipped and again.dropped_configs == ()
    assert (result.out_dir / "findings").is_dir()
    other = NormalizeRequest(result.resolved, out, configs=("birads",), options=RecipeOptions(image=ImageOptions(max_size=32)))
    with pytest.raises(OutputExistsError) as refused:  # never silently: it names what differs, changes nothing
        normalize(other)
    assert "max_size unset -> 32" in str(refused.value) and "findings would be dropped" in str(refused.value)
    assert (result.out_dir / "findings").is_dir()
    smaller = normalize(replace(other, overwrite=True))
    assert not smaller.write.skipped and smaller.dropped_configs == ("findings",)
    assert not (result.out_dir / "findings").exists() and (result.out_dir / "birads").is_dir()
