"""MedMCQA: the recipe on hand-written trees (cop bases, the answerless test split, bad lines), a real
upstream record, and the whole chain from both sources (replica → fetch over loopback, Hub API and
Drive → verify → normalize --jobs 1/2 → load), plus what the two sources must agree on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from medcat_data.converters.recipe import RecipeOptions
from medcat_data.converters.schemas import text_qa_features
from medcat_data.datasets.medmcqa import recipe as medmcqa
from medcat_data.errors import SampleError, UpstreamFormatError, UsageError
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import ChainResult, load, normalize_folder, read_errors, run_chain

DATASET = "medmcqa"
FIXTURES = Path(__file__).parents[1] / "fixtures" / "medmcqa"


def _line(**fields: Any) -> str:
    record: dict[str, Any] = {"question": "Q?", "exp": "because", "cop": 2, "opa": "a1", "opb": "b1", "opc": "c1", "opd": "d1",
                              "subject_name": "Anatomy", "topic_name": "Upper limb", "id": "id-1", "choice_type": "single"}
    record.update(fields)
    return json.dumps({k: v for k, v in record.items() if v is not ...}) + "\n"


def _gdrive(root: Path, files: dict[str, str], **options: Any) -> Path:
    folder = root / "gdrive"
    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return normalize_folder(DATASET, root, root / "out", source="gdrive", options=RecipeOptions(**options)).out_dir


def test_json_cop_is_one_based_and_test_lines_have_no_answer(tmp_path: Path) -> None:
    out = _gdrive(tmp_path, {
        "train.json": _line(id="t1", cop=1) + "\n" + _line(id="t2", cop=4, exp="", topic_name=None),
        "dev.json": _line(id="d1", cop="3"),
        "test.json": _line(id="x1", cop=..., exp=...) + _line(id="x2", cop=0, exp=...),
    })
    ds = load(out, "qa")
    assert {s: len(ds[s]) for s in ds} == {"train": 2, "validation": 1, "test": 2}
    assert [(r["answer_idx"], r["answer"]) for r in ds["train"]] == [(0, "a1"), (3, "d1")]
    assert ds["train"][1]["explanation"] is None and ds["train"][1]["topic"] is None
    assert ds["validation"][0]["answer"] == "c1"
    assert {(r["answer"], r["answer_idx"], r["explanation"]) for r in ds["test"]} == {(None, None, None)}
    assert ds["test"]["sample_id"] == ["x1", "x2"] == ds["test"]["id"]
    assert [o["key"] for o in ds["train"][0]["options"]] == ["opa", "opb", "opc", "opd"]
    assert ds["train"].features == text_qa_features({"id": datasets.Value("string"), "topic": datasets.Value("string"),
                                                     "choice_type": datasets.Value("string")})
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "The test split (AIIMS PG questions) has no answers upstream" in card
    assert "dev -> validation" in card and read_errors(out) == []


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (_line(cop=...), "no answer (cop absent or a placeholder) on a split that has answers"),
        (_line(cop=0), "no answer"),
        (_line(cop=5), "cop 5 names no option (expected 1-4)"),
        (_line(cop=1.5), "cop 1.5 is not an option number"),
        (_line(id=" "), "missing or empty field(s) ['id']"),
        (_line(opc=None), "missing or empty field(s) ['opc']"),
        ('{"question": "Q?", "cop": 1,\n', "malformed JSON"),
        ('["Q?"]\n', "expected a JSON object, got list"),
    ],
)
def test_a_bad_train_line_is_one_error_naming_file_and_line(tmp_path: Path, line: str, reason: str) -> None:
    out = _gdrive(tmp_path, {"train.json": _line(id="ok") + line})
    (error,) = read_errors(out)
    assert error["path"] == "train.json:2" and reason in error["message"]
    assert load(out, "qa")["train"]["sample_id"] == ["ok"]


def test_an_empty_option_text_is_kept_not_refused() -> None:
    values = medmcqa.parse_record(json.loads(_line(opd="")), "f:1", one_based=True, labelled=True)
    assert values["options"][3] == {"key": "opd", "text": ""}


def test_hub_cop_is_zero_based_and_minus_one_only_allowed_on_test() -> None:
    record = json.loads(_line())
    assert medmcqa.parse_record({**record, "cop": 0}, "p#0", one_based=False, labelled=True)["answer"] == "a1"
    assert medmcqa.parse_record({**record, "cop": -1, "exp": ""}, "p#0", one_based=False, labelled=False)["answer_idx"] is None
    with pytest.raises(SampleError, match="no answer"):
        medmcqa.parse_record({**record, "cop": -1}, "p#0", one_based=False, labelled=True)
    with pytest.raises(SampleError, match=r"cop 4 names no option \(expected 0-3\)"):
        medmcqa.parse_record({**record, "cop": 4}, "p#0", one_based=False, labelled=False)


def _hub(root: Path, split: str, rows: list[dict[str, Any]], *, row_group_size: int = 2, drop: tuple[str, ...] = ()) -> None:
    path = root / "hf" / "data" / f"{split}-00000-of-00001.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist([{k: v for k, v in r.items() if k not in drop} for r in rows])
    pq.write_table(table, path, row_group_size=row_group_size)


def test_hub_rows_are_read_across_row_groups_and_limit_keeps_the_first_of_each_file(tmp_path: Path) -> None:
    base = json.loads(_line())
    _hub(tmp_path, "train", [{**base, "id": f"r{i}", "cop": i % 4} for i in range(5)])
    _hub(tmp_path, "test", [{**base, "id": "x", "cop": -1, "exp": ""}])
    out = normalize_folder(DATASET, tmp_path, tmp_path / "out", source="hf").out_dir
    ds = load(out, "qa")
    assert ds["train"]["sample_id"] == ["r0", "r1", "r2", "r3", "r4"]
    assert ds["train"]["answer_idx"] == [0, 1, 2, 3, 0]
    assert (ds["test"][0]["answer"], ds["test"][0]["explanation"]) == (None, None)
    limited = normalize_folder(DATASET, tmp_path, tmp_path / "limited", source="hf", options=RecipeOptions(limit=3))
    assert dict(limited.write.rows["qa"]) == {"train": 3, "test": 1}


def test_a_hub_file_without_cop_is_an_upstream_format_error(tmp_path: Path) -> None:
    _hub(tmp_path, "train", [json.loads(_line())], drop=("cop",))
    with pytest.raises(UpstreamFormatError, match=r"medmcqa: data/train-00000-of-00001.parquet lacks the column\(s\) cop"):
        normalize_folder(DATASET, tmp_path, tmp_path / "out", source="hf")


def test_a_source_folder_with_neither_layout_is_explained(tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    with pytest.raises(UsageError, match=r"found neither train.json/dev.json/test.json \(source gdrive\) nor"):
        normalize_folder(DATASET, tmp_path, tmp_path / "out", source="hf")


def test_json_files_are_found_below_a_folder_the_zip_put_them_in(tmp_path: Path) -> None:
    (tmp_path / "gdrive" / "medmcqa_data").mkdir(parents=True)
    (tmp_path / "gdrive" / "medmcqa_data" / "test.json").write_text(_line(id="x", cop=...), encoding="utf-8")
    out = normalize_folder(DATASET, tmp_path, tmp_path / "out", source="gdrive").out_dir
    assert load(out, "qa")["test"]["sample_id"] == ["x"]


def test_the_readme_record_of_the_authors_repository_goes_through_the_recipe(tmp_path: Path) -> None:
    """A real record: the example in medmcqa/medmcqa's README ("Data Instances"), MIT-licensed repository.

    Which split it comes from is not stated; it is placed in ``dev.json`` here.
    """
    (tmp_path / "gdrive").mkdir()
    shutil.copy(FIXTURES / "dev.json", tmp_path / "gdrive" / "dev.json")
    out = normalize_folder(DATASET, tmp_path, tmp_path / "out", source="gdrive").out_dir
    (row,) = load(out, "qa")["validation"]
    assert row["sample_id"] == "4e1715fe-0bc3-494e-b6eb-2d4617245aef"
    assert (row["answer_idx"], row["answer"]) == (0, "Leukemoid reaction")  # cop 1 in the JSON release
    assert row["subject"] == "Pathology" and row["topic"].startswith("Basic Concepts")
    assert row["explanation"].startswith("Circulating levels of leukocytes") and row["choice_type"] == "single"


# ------------------------------------------------------------------------------------- the chain


def _rows(result: ChainResult) -> dict[str, dict[str, Any]]:
    return {row["sample_id"]: {k: v for k, v in row.items() if k != "source"} for split in result.loaded["qa"].values() for row in split}


@pytest.mark.integration
def test_hf_chain_gives_null_answers_on_test_only(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path, source="hf")
    ds = result.loaded["qa"]
    assert {r["answer"] for r in ds["test"]} == {None} and {r["answer_idx"] for r in ds["test"]} == {None}
    for split in ("train", "validation"):
        assert all(r["options"][r["answer_idx"]]["text"] == r["answer"] for r in ds[split])
    (error,) = read_errors(result.out_dir)
    assert "no answer" in error["message"]


@pytest.mark.integration
def test_both_sources_give_the_same_rows(mirror: MirrorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hf = run_chain(DATASET, mirror, tmp_path / "hf", source="hf")
    # datasets' cache would hand back the hf build for a second folder of the same name.
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    drive = run_chain(DATASET, mirror, tmp_path / "gdrive", source="gdrive")
    assert _rows(hf) == _rows(drive)
    assert drive.loaded["qa"]["train"].features == hf.loaded["qa"]["train"].features
    confirmed = [r for r in mirror.requests if r.path == "/download"]
    assert confirmed and confirmed[-1].status == 200
