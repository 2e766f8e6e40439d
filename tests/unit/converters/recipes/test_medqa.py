"""MedQA on its replica: seven question configs and the textbook paragraphs, bad lines reported by file and line."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from datasets import load_dataset

from medcat_data.converters.recipes import medqa
from medcat_data.converters.recipes.base import RecipeContext, RecipeOptions
from medcat_data.converters.units import Row
from medcat_data.errors import SampleError, UsageError
from medcat_data.mirror import gdrive
from medcat_data.mirror.replicas import medqa as replica_builder

from .recipe_run import read_errors, run_recipe


def _extract(served: Path, root: Path, top: str = "") -> Path:
    """Store the replica zip and extract it as the fetch engine does (into the zip's folder)."""
    archive = root / "data_clean.zip"
    root.mkdir(parents=True, exist_ok=True)
    archive.write_bytes((served / replica_builder.URL_PATH).read_bytes())
    with zipfile.ZipFile(archive) as zf:
        zf.extractall(root / top)
    return root


@pytest.fixture(scope="module")
def fetched(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    served = tmp_path_factory.mktemp("served")
    (replica,) = replica_builder.build(served, seed=0)
    return _extract(served, tmp_path_factory.mktemp("cache")), dict(replica.expected)


@pytest.fixture(scope="module")
def normalized(fetched: tuple[Path, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    root, _ = fetched
    out = tmp_path_factory.mktemp("out") / "medqa"
    run_recipe(medqa, _context(root), list(medqa.CONFIGS), out)
    return out


def _context(root: Path, **options: Any) -> RecipeContext:
    return RecipeContext("medqa", "unversioned", root, "gdrive", root, options=RecipeOptions(**options))


# ------------------------------------------------------------------------------------- replica


def test_replica_is_byte_identical_per_seed_and_has_the_upstream_layout(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    replica_builder.build(a, seed=3)
    replica_builder.build(b, seed=3)
    data = (a / replica_builder.URL_PATH).read_bytes()
    assert data == (b / replica_builder.URL_PATH).read_bytes()
    assert data[:2] == b"PK"
    # Above the Drive mirror's threshold, so a fetch passes the virus-scan page like the real 132 MB zip.
    assert gdrive.CONFIRM_THRESHOLD_BYTES < len(data) < 1_000_000
    with zipfile.ZipFile(a / replica_builder.URL_PATH) as zf:
        names = set(zf.namelist())
        mainland = json.loads(zf.read("data_clean/questions/Mainland/train.jsonl").decode().splitlines()[0])
        four = json.loads(zf.read("data_clean/questions/US/4_options/phrases_no_exclude_dev.jsonl").decode().splitlines()[0])
    assert {
        "data_clean/questions/US/train.jsonl",
        "data_clean/questions/US/US_qbank.jsonl",
        "data_clean/questions/Mainland/4_options/test.jsonl",
        "data_clean/questions/Taiwan/tw_translated_jsonl/en/dev-2en.jsonl",
        "data_clean/questions/Taiwan/tw_translated_jsonl/zh/test-2zh.jsonl",
        "data_clean/textbooks/en/Obstentrics_Williams.txt",
        "data_clean/textbooks/zh_paragraph/all_books.txt",
    } <= names
    assert len([n for n in names if n.startswith("data_clean/textbooks/en/")]) == 18
    assert list(mainland)[:3] == ["question", "options", "answer"]  # Mainland's key order
    assert list(four["options"]) == ["A", "B", "C", "D"] and isinstance(four["metamap_phrases"], list)


# ------------------------------------------------------------------------------------- normalized


def test_every_config_has_the_replica_counts_and_only_the_planted_errors(
    normalized: Path, fetched: tuple[Path, dict[str, Any]]
) -> None:
    _, expected = fetched
    for config, splits in expected["configs"].items():
        ds = load_dataset(str(normalized), config)
        assert {s: ds[s].num_rows for s in ds} == splits, config
        ids = [i for s in ds for i in ds[s]["sample_id"]]
        assert len(ids) == len(set(ids)), config
    errors = read_errors(normalized)
    assert sorted(e["path"] for e in errors) == [
        "data_clean/questions/Mainland/dev.jsonl:2",
        "data_clean/questions/US/train.jsonl:4",
    ]
    by_path = {e["path"]: e["message"] for e in errors}
    assert "malformed JSON" in by_path["data_clean/questions/US/train.jsonl:4"]
    assert "answer_idx 'F' is not an option key (A, B, C, D, E)" == by_path["data_clean/questions/Mainland/dev.jsonl:2"]


@pytest.mark.parametrize("config", list(medqa.QA_CONFIGS))
def test_answer_is_the_text_of_the_option_answer_idx_points_at(normalized: Path, config: str) -> None:
    ds = load_dataset(str(normalized), config)
    for split in ds:
        for row in ds[split]:
            assert row["options"][row["answer_idx"]]["text"] == row["answer"]
            assert row["upstream_answer"] is None
            assert row["explanation"] is None and row["subject"] is None
            assert row["meta_info"]
    n_options = {len(r["options"]) for s in ds for r in ds[s]}
    assert n_options == ({5} if config in ("us", "mainland") else {4})


def test_us_rows_keep_meta_info_and_the_4option_config_its_metamap_phrases(normalized: Path) -> None:
    us = load_dataset(str(normalized), "us")
    assert set(us["train"]["meta_info"]) <= {"step1", "step2&3"}
    assert set(us["train"]["region"]) == {"US"} and set(us["train"]["language"]) == {"en"}
    assert "metamap_phrases" not in us["train"].features
    four = load_dataset(str(normalized), "us-4options")
    assert all(r["metamap_phrases"] for r in four["validation"])
    assert four["validation"][0]["sample_id"] == "us-4options/dev/1"
    taiwan = load_dataset(str(normalized), "taiwan")
    assert set(taiwan["test"]["meta_info"]) == {"taiwanese_test_Q"} and set(taiwan["test"]["language"]) == {"zh-Hant"}


def test_textbooks_are_one_row_per_blank_line_separated_paragraph(normalized: Path, fetched: tuple[Path, dict[str, Any]]) -> None:
    root, _ = fetched
    ds = load_dataset(str(normalized), "textbooks-en")
    assert list(ds) == ["train"]
    train = ds["train"]
    assert len(set(train["book"])) == 18
    gray = [r for r in train if r["book"] == "Anatomy_Gray"]
    assert [r["paragraph_index"] for r in gray] == list(range(len(gray)))
    source = (root / "data_clean/textbooks/en/Anatomy_Gray.txt").read_text(encoding="utf-8").splitlines()
    for row in gray:
        first = row["text"].split("\n")[0]
        assert source[row["line"] - 1] == first
        assert "\n\n" not in row["text"] and row["text"] == row["text"].strip()


# ------------------------------------------------------------------------------------- finding and planning


def test_questions_are_found_when_the_zip_was_extracted_into_a_folder_of_its_own_name(tmp_path: Path) -> None:
    served = tmp_path / "served"
    replica_builder.build(served, seed=0)
    root = _extract(served, tmp_path / "cache", top="data_clean")  # data_clean/data_clean/questions
    assert (root / "data_clean/data_clean/questions/US/dev.jsonl").is_file()
    units = medqa.plan("us", _context(root)).units
    assert [u.rel for u in units] == [f"data_clean/data_clean/questions/US/{s}.jsonl" for s in ("train", "dev", "test")]
    assert [u.split for u in units] == ["train", "validation", "test"]


def test_a_config_without_any_file_is_a_usage_error_naming_the_expected_files(tmp_path: Path) -> None:
    (tmp_path / "data_clean/questions/US").mkdir(parents=True)
    (tmp_path / "data_clean/questions/US/train.jsonl").write_text("")
    with pytest.raises(UsageError, match=r"taiwan-en has none of its files .*tw_translated_jsonl/en/train-2en.jsonl"):
        medqa.plan("taiwan-en", _context(tmp_path))
    with pytest.raises(UsageError, match="no textbooks/en"):
        medqa.plan("textbooks-en", _context(tmp_path))
    with pytest.raises(UsageError, match="no questions/ folder"):
        medqa.plan("us", _context(tmp_path / "data_clean/questions/US"))


def test_limit_keeps_the_first_lines_of_each_file(fetched: tuple[Path, dict[str, Any]]) -> None:
    root, _ = fetched
    units = medqa.plan("mainland", _context(root, limit=1)).units
    rows = [r for u in units for r in medqa.convert_unit(u) if isinstance(r, Row)]
    assert [r.values["sample_id"] for r in rows] == ["mainland/train/1", "mainland/dev/1", "mainland/test/1"]


# ------------------------------------------------------------------------------------- one line


def _line(**record: Any) -> bytes:
    base: dict[str, Any] = {"question": "Q?", "answer": "two", "options": {"A": "one", "B": "two"}, "meta_info": "step1", "answer_idx": "B"}
    base.update(record)
    return json.dumps({k: v for k, v in base.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"question": "Q?", "options": {"A": ', "malformed JSON"),
        (b'["question"]', "expected a JSON object, got list"),
        (_line(answer_idx=...), "missing key(s) ['answer_idx']"),
        (_line(answer_idx="C"), "answer_idx 'C' is not an option key (A, B)"),
        (_line(answer_idx=1), "answer_idx 1 is not an option key (A, B)"),
        (_line(options=["one", "two"]), "'options' must be a non-empty object"),
        (_line(question=None), "'question' must be a string"),
        (b'{"question": "\xff"}', "not UTF-8"),
    ],
)
def test_a_bad_line_is_a_sample_error_naming_file_and_line(raw: bytes, reason: str) -> None:
    with pytest.raises(SampleError) as caught:
        medqa.parse_question(raw, "questions/US/dev.jsonl:7")
    assert caught.value.path == "questions/US/dev.jsonl:7" and caught.value.stage == "parse"
    assert reason in caught.value.reason


def test_answer_idx_is_the_zero_based_position_of_the_letter_whatever_the_key_order() -> None:
    raw = json.dumps({"options": {"A": "x", "B": "y", "C": "z"}, "answer_idx": "C", "question": "Q", "answer": "z"})
    values = medqa.parse_question(raw, "f:1")
    assert values["answer_idx"] == 2 and values["answer"] == "z"
    assert values["options"] == [{"key": "A", "text": "x"}, {"key": "B", "text": "y"}, {"key": "C", "text": "z"}]
    assert values["meta_info"] is None and "metamap_phrases" not in values


def test_an_upstream_answer_that_differs_from_its_option_is_kept_not_hidden() -> None:
    values = medqa.parse_question(_line(answer="Two "), "f:1")
    assert values["answer"] == "two" and values["upstream_answer"] == "Two "


def test_metamap_phrases_are_kept_and_checked() -> None:
    assert medqa.parse_question(_line(metamap_phrases=["a b", "c"]), "f:1", metamap=True)["metamap_phrases"] == ["a b", "c"]
    assert medqa.parse_question(_line(), "f:1", metamap=True)["metamap_phrases"] is None
    with pytest.raises(SampleError, match="list of strings"):
        medqa.parse_question(_line(metamap_phrases="a b"), "f:1", metamap=True)


# ------------------------------------------------------------------------------------- paragraphs


def test_paragraphs_split_on_blank_and_whitespace_only_lines(tmp_path: Path) -> None:
    book = tmp_path / "Book.txt"
    book.write_bytes(b"first line\nsecond line  \n\n\n  \nthird\r\n\t\nfourth\nfifth")
    assert list(medqa.iter_paragraphs(book)) == [(1, b"first line\nsecond line"), (6, b"third"), (8, b"fourth\nfifth")]


def test_a_paragraph_that_is_not_utf8_is_reported_and_the_book_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "data_clean/textbooks/en"
    folder.mkdir(parents=True)
    (folder / "Pathoma_Husain.txt").write_bytes(b"good one\n\nbad \xff byte\n\nlast one\n")
    (unit,) = medqa.plan("textbooks-en", _context(tmp_path)).units
    out = list(medqa.convert_unit(unit))
    assert isinstance(out[1], SampleError) and out[1].path == "data_clean/textbooks/en/Pathoma_Husain.txt:3"
    rows = [o for o in out if isinstance(o, Row)]
    assert [(r.values["paragraph_index"], r.values["text"]) for r in rows] == [(0, "good one"), (2, "last one")]
    assert rows[1].values["sample_id"] == "Pathoma_Husain/2" and rows[1].split == "train"


def test_unknown_config_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no config 'uk'"):
        medqa.features("uk", _context(tmp_path))


# ------------------------------------------------------------------------------------- spans


def _rows(units: list[Any]) -> list[dict[str, Any]]:
    return [dict(o.values) if isinstance(o, Row) else {"error": o.path} for u in units for o in medqa.convert_unit(u)]


@pytest.mark.parametrize("config", ["us", "mainland", "textbooks-en"])
def test_cutting_files_into_small_units_changes_nothing_in_the_rows(
    fetched: tuple[Path, dict[str, Any]], config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = fetched
    whole = _rows(list(medqa.plan(config, _context(root)).units))
    monkeypatch.setattr(medqa, "UNIT_LINES", 2)
    monkeypatch.setattr(medqa, "UNIT_PARAGRAPHS", 2)
    units = list(medqa.plan(config, _context(root)).units)
    assert len(units) > 3 * (18 if config == "textbooks-en" else 1)
    assert _rows(units) == whole


def test_spans_start_at_line_and_paragraph_boundaries_and_stop_at_the_limit(tmp_path: Path) -> None:
    jsonl = tmp_path / "train.jsonl"
    jsonl.write_bytes(b"{}\n\n{}\n{}\n{}\n")
    assert medqa.line_spans(jsonl, 2) == [medqa.Span(0, 7, 1), medqa.Span(7, 13, 4)]
    assert medqa.line_spans(jsonl, 2, limit=3) == [medqa.Span(0, 7, 1), medqa.Span(7, 10, 4)]
    assert [n for n, _ in medqa.span_lines(jsonl, medqa.Span(7, 10, 4))] == [4]
    book = tmp_path / "Book.txt"
    book.write_bytes(b"a\nb\n\nc\n  \n\nd\ne\n\nf\n")
    spans = medqa.paragraph_spans(book, 2)
    assert spans == [medqa.Span(0, 11, 1, 0), medqa.Span(11, 18, 7, 2)]
    assert list(medqa.iter_paragraphs(book, spans[1])) == [(7, b"d\ne"), (10, b"f")]
    assert medqa.paragraph_spans(book, 10, limit=1) == [medqa.Span(0, 5, 1, 0)]
