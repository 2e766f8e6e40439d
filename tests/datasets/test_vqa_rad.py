"""VQA-RAD: the recipe on hand-written trees (answer types, splits, paraphrase groups, sample ids,
bad items) and the whole chain from both sources (replica → fetch over loopback, OSF API and Hub
API → verify → normalize --jobs 1/2 → load), plus what the two sources must agree on."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from medcat_data.converters.recipe import RecipeOptions
from medcat_data.converters.schemas import vqa_features
from medcat_data.datasets.vqa_rad import recipe as vqa_rad
from medcat_data.errors import UpstreamFormatError, UsageError
from medcat_data.loaders.fetch_manifest import Manifest
from medcat_data.mirror.server import MirrorServer
from medcat_data.paths import raw_dir
from tests.datasets.harness import ChainResult, normalize_folder, read_errors, run_chain

DATASET = "vqa-rad"


def _jpeg(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), shade).save(buffer, "JPEG")
    return buffer.getvalue()


def _item(qid: int, image: str, question: str, phrase: str, link: str, answer: Any = "Yes", atype: Any = "CLOSED") -> dict[str, Any]:
    return {"qid": qid, "phrase_type": phrase, "qid_linked_id": link, "image_case_url": "", "image_name": image,
            "image_organ": "CHEST", "evaluation": "given", "question": question, "question_rephrase": "NULL",
            "question_relation": "NULL", "question_frame": "NULL", "question_type": "PRES", "answer": answer,
            "answer_type": atype}


def _normalize(root: Path, source: str, **options: Any) -> Path:
    """Normalize a hand-written tree of one source with the real normalize; return the output folder."""
    return normalize_folder(DATASET, root, root / "out", source=source, options=RecipeOptions(**options)).out_dir


def _osf(root: Path, items: list[dict[str, Any]], images: tuple[str, ...] = ("synpic1.jpg", "synpic2.jpg")) -> Path:
    folder = root / "osf" / "VQA_RAD Image Folder"
    folder.mkdir(parents=True)
    for i, name in enumerate(images):
        (folder / name).write_bytes(_jpeg(40 * i + 20))
    (root / "osf" / "VQA_RAD Dataset Public.json").write_text(json.dumps(items), encoding="utf-8")
    return _normalize(root, "osf")


@pytest.mark.parametrize(
    ("value", "expected"),
    [("CLOSED", "closed"), ("OPEN", "open"), ("OPEN ", "open"), ("closed", "closed"), ("YES", None), (None, None), (1, None)],
)
def test_answer_type_comes_only_from_upstream_spellings(value: Any, expected: str | None) -> None:
    assert vqa_rad.answer_type(value) == expected


def test_sample_key_ignores_case_and_spacing_of_the_question_but_not_the_image() -> None:
    image = vqa_rad.image_key(_jpeg(20))
    assert vqa_rad.sample_key(image, "Is there  a mass?") == vqa_rad.sample_key(image, "is there a MASS?")
    assert vqa_rad.sample_key(image, "Is there a mass?") != vqa_rad.sample_key(vqa_rad.image_key(_jpeg(60)), "Is there a mass?")
    assert vqa_rad.sample_key(image, "Is there a mass?").startswith(image + "-") and len(image) == 12


def test_osf_split_keeps_crossing_paraphrases_and_says_so(tmp_path: Path) -> None:
    items = [
        _item(1, "synpic1.jpg", "Is there a mass?", "freeform", "a"),
        _item(2, "synpic1.jpg", "Does it show a mass?", "para", "a"),
        _item(3, "synpic2.jpg", "How many nodules?", "test_freeform", "b", answer=3, atype="OPEN"),
        _item(4, "synpic2.jpg", "What is the count of nodules?", "test_para", "b", answer=3, atype="OPEN"),
        _item(5, "synpic2.jpg", "Is the heart enlarged?", "test_freeform", "c"),
        _item(6, "synpic1.jpg", "Is the heart big?", "para", "c"),  # a paraphrase of a test question, in train
    ]
    out = _osf(tmp_path, items)
    ds = datasets.load_dataset(str(out), "vqa")
    assert {s: len(ds[s]) for s in ds} == {"train": 3, "test": 3}
    assert sorted(ds["test"]["answer"]) == ["3", "3", "Yes"]
    assert set(ds["train"]["qid_linked_id"]) & set(ds["test"]["qid_linked_id"]) == {"c"}
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "1 paraphrase group(s) (qid_linked_id) have questions in both splits" in card
    assert read_errors(out) == []


def test_osf_bad_items_are_reported_and_repeats_get_distinct_ids(tmp_path: Path) -> None:
    items = [
        _item(1, "synpic1.jpg", "Is there a mass?", "freeform", "a"),
        _item(2, "synpic1.jpg", "Is there a mass?", "freeform", "b"),  # an exact repeat upstream
        _item(3, "synpic1.jpg", "Is it normal?", "freeform", "c", atype="YES"),
        _item(4, "synpic9.jpg", "Is it axial?", "freeform", "d"),
        _item(5, "synpic2.jpg", "Which side?", "freeform", "e", answer=None, atype="OPEN"),
    ]
    out = _osf(tmp_path, items)
    ds = datasets.load_dataset(str(out), "vqa")
    key = vqa_rad.sample_key(vqa_rad.image_key(_jpeg(20)), "Is there a mass?")
    assert sorted(ds["train"]["sample_id"]) == [key, f"{key}-q2"]
    assert set(ds["train"]["image_name"]) == {"synpic1.jpg"}
    errors = {e["path"]: e for e in read_errors(out)}
    assert set(errors) == {"VQA_RAD Dataset Public.json#2", "VQA_RAD Image Folder/synpic9.jpg", "VQA_RAD Dataset Public.json#4"}
    assert "answer_type 'YES' is neither CLOSED nor OPEN" in errors["VQA_RAD Dataset Public.json#2"]["message"]
    assert "qid 4" in errors["VQA_RAD Image Folder/synpic9.jpg"]["message"]


def _parquet(path: Path, rows: list[dict[str, Any]], *, row_group_size: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=pa.schema([
        ("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
        ("question", pa.string()), ("answer", pa.string()),
    ]))
    pq.write_table(table, path, row_group_size=row_group_size)


def test_hf_rows_are_keyed_by_image_content_across_row_groups_and_limit_stops_early(tmp_path: Path) -> None:
    rows = [
        {"image": {"bytes": _jpeg(10), "path": None}, "question": "Is there a mass?", "answer": "no"},
        {"image": {"bytes": _jpeg(20), "path": None}, "question": "Is there a mass?", "answer": "yes"},
        {"image": {"bytes": _jpeg(20), "path": "synpic1.jpg"}, "question": "Is there a MASS?", "answer": "yes"},
        {"image": {"bytes": b"", "path": None}, "question": "Is it axial?", "answer": "yes"},
    ]
    _parquet(tmp_path / "hf/data/train-00000-of-00001-x.parquet", rows)
    _parquet(tmp_path / "hf/data/test-00000-of-00001-y.parquet", rows[1:2])
    out = _normalize(tmp_path, "hf")
    ds = datasets.load_dataset(str(out), "vqa")
    first, key = (vqa_rad.sample_key(vqa_rad.image_key(_jpeg(shade)), "Is there a mass?") for shade in (10, 20))
    assert ds["train"]["sample_id"] == [first, key, f"{key}-train2"]
    assert ds["test"]["sample_id"] == [f"{key}-test0"]
    assert set(ds["train"]["answer_type"]) == {None} and ds["train"]["image_name"] == [None, None, "synpic1.jpg"]
    (error,) = read_errors(out)
    assert error["path"] == "data/train-00000-of-00001-x.parquet#3" and "no bytes" in error["message"]
    limited = normalize_folder(DATASET, tmp_path, tmp_path / "limited", source="hf", options=RecipeOptions(limit=3))
    assert dict(limited.write.rows["vqa"]) == {"train": 3} and limited.write.errors == 0


def test_a_source_folder_with_neither_layout_is_explained(tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    with pytest.raises(UsageError, match=r"found neither 'VQA_RAD Dataset Public.json' \(source osf\) nor data/train-\*.parquet"):
        _normalize(tmp_path, "hf")


def test_both_layouts_declare_the_same_features() -> None:
    osf = vqa_rad.RECIPE.features("vqa", None, vqa_rad.Survey(osf=None, parquet={}))  # type: ignore[arg-type]
    assert list(osf)[:6] == ["images", "question", "answer", "answer_type", "options", "answer_idx"]


def test_a_hub_copy_with_another_image_column_is_refused_with_the_type_found(tmp_path: Path) -> None:
    path = tmp_path / "hf/data/train-00000-of-00001.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"image": [b"x"], "question": ["q"], "answer": ["a"]}), path)
    with pytest.raises(UpstreamFormatError, match="vqa-rad: data/train-00000-of-00001.parquet has an image column of type binary, not the Hub's struct"):
        _normalize(tmp_path, "hf")


CORE = list(vqa_features())[:6]


def _records(result: ChainResult) -> dict[str, dict[str, object]]:
    return {
        row["sample_id"]: row
        for split in result.loaded["vqa"].values()
        for row in split.remove_columns("images")
    }


@pytest.mark.integration
def test_osf_chain_keeps_upstream_columns_and_official_split(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("vqa-rad", mirror, tmp_path, source="osf")
    ds = result.loaded["vqa"]
    assert list(ds["train"].features)[:6] == CORE == ["images", "question", "answer", "answer_type", "options", "answer_idx"]
    assert ds["train"].features == vqa_features({c: datasets.Value("string") for c in
                                                 ("qid", "qid_linked_id", "phrase_type", "question_type", "image_organ", "image_name")})
    assert set(ds["test"]["phrase_type"]) == {"test_freeform", "test_para"}
    assert set(ds["train"]["phrase_type"]) == {"freeform", "para"}
    names = ds["train"].features["answer_type"].names
    assert {names[v] for v in ds["train"]["answer_type"]} == {"closed", "open"}
    assert "2" in list(ds["train"]["answer"]) + list(ds["test"]["answer"])  # a JSON number became a string
    row = ds["test"][0]
    assert len(row["images"]) == 1 and row["images"][0].size[0] > 0
    assert row["options"] == [] and row["answer_idx"] is None
    # Every file (names with spaces included) was verified against the sha256 of OSF's metadata.
    raw = raw_dir("vqa-rad", result.resolved.version)
    manifest = Manifest.open(raw / ".medcat", "vqa-rad", result.resolved.version, create=False)
    assert manifest is not None
    osf_files = {path: record for path, record in manifest.files() if path.startswith("osf/")}
    assert "osf/VQA_RAD Dataset Public.json" in osf_files
    assert any(path.startswith("osf/VQA_RAD Image Folder/synpic") for path in osf_files)
    assert {record.verified_by for record in osf_files.values()} == {"osf-meta"}


@pytest.mark.integration
def test_hf_chain_has_the_same_features_and_null_answer_type(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain("vqa-rad", mirror, tmp_path, source="hf")
    ds = result.loaded["vqa"]
    assert list(ds["train"].features)[:6] == CORE
    assert set(ds["train"]["answer_type"]) == {None}
    assert set(ds["train"]["phrase_type"]) == {None}
    assert set(ds["train"]["image_name"]) == {None}  # the Hub copy names no image


@pytest.mark.integration
def test_both_sources_concatenate_and_share_sample_ids(mirror: MirrorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    osf = run_chain("vqa-rad", mirror, tmp_path / "osf", source="osf")
    # datasets' cache would hand back the osf build for the second folder of the same name
    # (same dataset name, config and shard names): give the second load its own cache.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    hf = run_chain("vqa-rad", mirror, tmp_path / "hf", source="hf")
    both = datasets.concatenate_datasets([osf.loaded["vqa"]["test"], hf.loaded["vqa"]["test"]])
    assert len(both) == len(osf.loaded["vqa"]["test"]) + len(hf.loaded["vqa"]["test"])
    osf_rows, hf_rows = _records(osf), _records(hf)
    shared = set(osf_rows) & set(hf_rows)
    assert shared == set(hf_rows)  # every hf triplet is an osf question on the same image bytes
    for sid in shared:
        assert osf_rows[sid]["question"] == hf_rows[sid]["question"]
        assert osf_rows[sid]["split"] == hf_rows[sid]["split"]


@pytest.mark.integration
def test_demo_counts_each_source_from_its_own_output(tmp_path: Path) -> None:
    """Both sources write a folder named vqa-rad with the same config and shard names; each demo row
    must count its own rows, not the other source's cached ones."""
    from click.testing import CliRunner

    from medcat_data.cli import main
    from medcat_data.datasets.vqa_rad import replica

    expected = {r.source: r.expected["configs"]["vqa"] for r in replica.build(tmp_path / "replica")}
    assert expected["osf"] != expected["hf"]
    result = CliRunner().invoke(main, ["demo", "--only", "vqa-rad", "--out", str(tmp_path / "out"), "--json"])
    assert result.exit_code == 0, result.output
    rows = {row["source"]: row for row in json.loads(result.stdout)["rows"]}
    assert {source: row["rows"]["vqa"] for source, row in rows.items()} == expected
    assert all(row["status"] == "ok" and row["errors"] == 1 for row in rows.values())
