"""PubMedVision: odd records, loose images before zip members, --limit, --split-by, broken images named
as the record names them, and the whole chain (Hub replica → fetch over loopback, also through
``HF_ENDPOINT`` → verify → normalize --jobs 1/2 → load)."""

from __future__ import annotations

import io
import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import datasets
import pytest
from PIL import Image

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.recipe import RecipeOptions
from medcat_data.converters.schemas import vqa_features
from medcat_data.datasets.pubmedvision import recipe
from medcat_data.datasets.pubmedvision import replica as replica_module
from medcat_data.errors import UsageError
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import normalize_folder, read_errors, replicas, run_chain

DATASET = "pubmedvision"


def _jpeg(shade: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (shade, shade, shade)).save(out, "JPEG")
    return out.getvalue()


def _record(n: int, images: list[str], turns: Any = None) -> dict[str, Any]:
    return {
        "id": f"Alignment_VQA_{n}",
        "image": images,
        "conversations": turns if turns is not None else [{"from": "human", "value": f"Q{n}?"}, {"from": "gpt", "value": f"A{n}."}],
        "modality": "Others",
        "body_part": None,
    }


def _normalize(root: Path, out: Path, configs: tuple[str, ...] = ("alignment",), **options: Any) -> Path:
    """Normalize a hand-written tree with the real normalize; return the output folder."""
    return normalize_folder(DATASET, root, out, configs=configs, options=RecipeOptions(**options)).out_dir


def _write(root: Path, records: list[Any] | str, members: dict[str, bytes]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    text = records if isinstance(records, str) else json.dumps(records, indent=1)
    (root / recipe.JSON_FILES["alignment"]).write_text(text, encoding="utf-8")
    with zipfile.ZipFile(root / "images_0.zip", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def _rows(out: Path, split: str = "train") -> list[dict[str, Any]]:
    ds = datasets.load_dataset(str(out), "alignment", split=split)
    return ds.cast_column("images", datasets.List(datasets.Image(decode=False))).to_list()


def test_odd_records_are_one_error_each_and_unusual_conversations_are_kept_verbatim(tmp_path: Path) -> None:
    three_turns = [{"from": "human", "value": "Q?"}, {"from": "gpt", "value": "A."}, {"from": "human", "value": "More?"}]
    good = _record(0, ["images/pmc_0_0.jpg"])
    text = json.dumps(
        [good, _record(1, ["images/pmc_0_0.jpg"], three_turns), 5, {"image": ["images/pmc_0_0.jpg"]},
         _record(4, ["images/pmc_0_0.jpg"], [{"from": "gpt", "value": "only an answer"}])]
    )
    text = text[:-1] + ', {"id": "Alignment_VQA_6", "image": tru}]'  # brackets balance, content does not parse
    _write(tmp_path / "raw", text, {"images/pmc_0_0.jpg": _jpeg(100)})
    out = _normalize(tmp_path / "raw", tmp_path / "out")
    rows = _rows(out)
    assert [r["id"] for r in rows] == ["Alignment_VQA_0", "Alignment_VQA_1"]
    assert rows[0]["conversations"] is None
    assert rows[1]["conversations"] == three_turns and (rows[1]["question"], rows[1]["answer"]) == ("Q?", "A.")
    assert rows[0]["body_part"] is None and rows[0]["modality"] == "Others"
    errors = read_errors(out)
    name = recipe.JSON_FILES["alignment"]
    assert [e["path"] for e in errors] == [f"{name}[2]", f"{name}[3]", f"{name}[4]", name]
    assert "must be a JSON object" in errors[0]["message"] and "'id'" in errors[1]["message"]
    assert "'human' and a 'gpt' turn" in errors[2]["message"] and "element 5" in errors[3]["message"]


def test_loose_images_are_used_first_and_limit_keeps_the_first_records(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write(raw, [_record(n, [f"images/pmc_{n}_0.jpg", f"images/pmc_{n}_1.jpg"]) for n in range(5)],
           {f"x/pmc_{n}_{k}.jpg": _jpeg(10) for n in range(5) for k in range(2)})
    (raw / "images").mkdir()
    (raw / "images" / "pmc_0_1.jpg").write_bytes(_jpeg(250))
    out = _normalize(raw, tmp_path / "out", limit=3)
    rows = _rows(out)
    assert [r["id"] for r in rows] == ["Alignment_VQA_0", "Alignment_VQA_1", "Alignment_VQA_2"]
    assert rows[0]["images"][1]["bytes"] == _jpeg(250) and rows[0]["images"][0]["bytes"] == _jpeg(10)
    assert [i["path"] for i in rows[2]["images"]] == ["images/pmc_2_0.jpg", "images/pmc_2_1.jpg"]
    assert read_errors(out) == []


def test_split_by_hashes_the_group_key_with_the_seed(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write(raw, [_record(n, [f"images/pmc_{n // 2}_0.jpg"]) for n in range(40)], {f"pmc_{n}_0.jpg": _jpeg(n) for n in range(20)})
    out = _normalize(raw, tmp_path / "out", split_by="image", seed=3)
    placed = {s: _rows(out, s) for s in datasets.load_dataset(str(out), "alignment")}
    split_of: dict[str, str] = {}
    for split, rows in placed.items():
        for row in rows:
            assert row["split"] == split
            assert split_of.setdefault(row["images"][0]["path"], split) == split
    assert split_of == {f"images/pmc_{n}_0.jpg": recipe.hashed_split(f"images/pmc_{n}_0.jpg", 3) for n in range(20)}


def test_hashed_split_follows_the_fractions_on_average_and_depends_on_the_seed() -> None:
    counts = Counter(recipe.hashed_split(f"k{i}", 1) for i in range(20_000))
    assert abs(counts["train"] / 20_000 - 0.70) < 0.02 and abs(counts["test"] / 20_000 - 0.15) < 0.02
    assert [recipe.hashed_split(f"k{i}", 1) for i in range(50)] != [recipe.hashed_split(f"k{i}", 2) for i in range(50)]


def test_unknown_split_key_and_unfetched_json_are_usage_errors(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write(raw, [_record(0, ["images/pmc_0_0.jpg"])], {})
    with pytest.raises(UsageError, match="--split-by takes one of id, image, modality, body_part"):
        _normalize(raw, tmp_path / "out", split_by="patient_id")
    with pytest.raises(UsageError, match="PubMedVision_InstructionTuning_VQA.json was not fetched"):
        _normalize(raw, tmp_path / "out", ("instruction",))


def test_an_empty_turn_keeps_the_conversation_verbatim(tmp_path: Path) -> None:
    """An exporter rebuilds turns from question/answer only when both hold text, so an empty one is kept as is."""
    empty = [{"from": "human", "value": ""}, {"from": "gpt", "value": "A."}]
    _write(tmp_path / "raw", [_record(0, ["images/pmc_0_0.jpg"], empty)], {"pmc_0_0.jpg": _jpeg(1)})
    (row,) = _rows(_normalize(tmp_path / "raw", tmp_path / "out"))
    assert row["question"] == "" and row["conversations"] == empty


def test_a_broken_loose_image_is_named_as_the_record_names_it_not_by_absolute_path(tmp_path: Path) -> None:
    raw = tmp_path / "raw"
    _write(raw, [_record(0, ["images/pmc_0_0.jpg"]), _record(1, ["images/pmc_1_0.jpg"])], {"pmc_1_0.jpg": _jpeg(9)})
    (raw / "images").mkdir()
    (raw / "images" / "pmc_0_0.jpg").write_bytes(b"\xff\xd8\xff cut short")
    out = _normalize(raw, tmp_path / "out")
    (error,) = read_errors(out)
    assert error["path"].endswith(" images/pmc_0_0.jpg") and not error["path"].startswith("/")
    assert str(tmp_path) not in (out / "errors.jsonl").read_text()


def test_the_image_index_is_built_once_per_fetch_and_reused(tmp_path: Path) -> None:
    """The survey indexes loose files and zip members once; a second normalize of the same fetch reuses it."""
    raw = tmp_path / "raw"
    _write(raw, [_record(0, ["images/pmc_0_0.jpg", "images/pmc_0_1.jpg"])], {"x/pmc_0_0.jpg": _jpeg(10)})
    (raw / "images").mkdir()
    (raw / "images" / "pmc_0_1.jpg").write_bytes(_jpeg(250))
    first = _rows(_normalize(raw, tmp_path / "one"))
    indexes = sorted((raw / ".medcat" / "derived").glob("pubmedvision-*.sqlite"))
    assert [p.name.split("-")[1] for p in indexes] == ["loose", "zips"]
    stamps = [p.stat().st_mtime_ns for p in indexes]
    assert _rows(_normalize(raw, tmp_path / "two")) == first
    assert sorted((raw / ".medcat" / "derived").glob("pubmedvision-*.sqlite")) == indexes
    assert [p.stat().st_mtime_ns for p in indexes][1] == stamps[1]  # the zip index was not rebuilt


_FILES = {"alignment": replica_module.ALIGNMENT, "instruction": replica_module.INSTRUCTION}


def _upstream(mirror: MirrorServer, config: str) -> list[dict[str, Any]]:
    path = mirror.root / replica_module.HF_REPO / _FILES[config]
    return json.loads(path.read_text(encoding="utf-8"))  # the replica is tiny: loading it whole is fine here


def _undecoded(ds: datasets.Dataset) -> datasets.Dataset:
    """Return ``ds`` with its images as stored ``{bytes, path}`` values instead of PIL images."""
    return ds.cast_column("images", datasets.List(datasets.Image(decode=False)))


def _as_sharegpt(row: dict[str, Any]) -> dict[str, Any]:
    """Rebuild an upstream record from a normalized row, as a ShareGPT export would (image paths kept)."""
    turns = row["conversations"] or [{"from": "human", "value": row["question"]}, {"from": "gpt", "value": row["answer"]}]
    return {
        "id": row["id"],
        "image": [image["path"] for image in row["images"]],
        "conversations": turns,
        "modality": row["modality"],
        "body_part": row["body_part"],
    }


@pytest.mark.integration
def test_pubmedvision_chain_keeps_every_image_and_the_upstream_text(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path, source="hf")
    assert set(result.loaded) == {"alignment", "instruction"}
    core = list(vqa_features())
    for config, dsd in result.loaded.items():
        train = dsd["train"]
        columns = list(train.features)
        assert columns[: len(core)] == core  # the VQA core columns first, exactly
        assert columns[len(core):] == ["id", "modality", "body_part", "conversations"]
        rows = _undecoded(train)
        by_id = {row["id"]: row for row in rows}
        upstream = _upstream(mirror, config)
        missing = [r for r in upstream if replica_module.MISSING_IMAGE in r["image"]]
        assert len(missing) == (1 if config == "alignment" else 0)
        assert set(by_id) == {r["id"] for r in upstream} - {r["id"] for r in missing}
        for record in upstream:
            if record in missing:
                continue
            row = by_id[record["id"]]
            # A later --conversations sharegpt export equals upstream but for image paths: nothing lost.
            assert _as_sharegpt(row) == record
            assert all(image["bytes"][:3] == b"\xff\xd8\xff" for image in row["images"])  # JPEG bytes passed through
            assert row["answer_type"] is None and row["options"] == [] and row["answer_idx"] is None
            assert row["sample_id"] == record["id"] and row["conversations"] is None
        assert max(len(r["images"]) for r in rows) == 7  # multi-image rows keep every image
    errors = [json.loads(line) for line in (result.out_dir / "errors.jsonl").read_text().splitlines()]
    assert len(errors) == 1 and errors[0]["path"].endswith(f"[{replica_module.MISSING_RECORD}] {replica_module.MISSING_IMAGE}")
    assert errors[0]["path"].startswith(replica_module.ALIGNMENT) and "in the 2 fetched zip part(s)" in errors[0]["message"]
    assert not list((result.out_dir).rglob("*.jpg"))  # nothing extracted next to the output


@pytest.mark.integration
def test_fetch_with_hf_endpoint_goes_through_huggingface_hub_to_the_mirror(
    mirror: MirrorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from medcat_data.loaders import FetchOptions, fetch, verify

    replicas("pubmedvision", mirror)
    monkeypatch.setenv("HF_ENDPOINT", mirror.url)
    resolved = resolve("pubmedvision", load_registry())
    report = fetch(resolved, FetchOptions(accept_license=True, jobs=2))
    assert report.ok, json.dumps(report.to_dict(), indent=1)
    assert verify(resolved).ok
    hub = [r for r in mirror.requests if "/FreedomIntelligence/PubMedVision" in r.path]
    assert any(r.path.startswith("/api/datasets/FreedomIntelligence/PubMedVision") for r in hub)
    resolves = [r for r in hub if "/resolve/" in r.path]
    assert {r.path.rsplit("/", 1)[-1] for r in resolves} >= {replica_module.ALIGNMENT, replica_module.INSTRUCTION, "images_0.zip", "images_1.zip"}
    assert all(f"/resolve/{replica_module.HF_REVISION}/" in r.path for r in resolves)  # pinned revision
    assert all("hf_hub/" in r.user_agent for r in hub)  # the real huggingface_hub client did the talking


@pytest.mark.integration
def test_split_by_image_is_grouped_and_agrees_across_configs(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("pubmedvision", mirror, tmp_path, options=RecipeOptions(split_by="image", seed=7), expected_splits=False)
    split_of: dict[str, str] = {}
    for dsd in result.loaded.values():
        assert set(dsd) <= {"train", "validation", "test"}
        for split, ds in dsd.items():
            for images in _undecoded(ds)["images"]:
                path = images[0]["path"]
                assert split_of.setdefault(path, split) == split, f"{path} in two splits"
    assert len(set(split_of.values())) >= 2  # 24 groups at 70/15/15 reach more than one split
