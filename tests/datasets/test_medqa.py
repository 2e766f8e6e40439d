"""MedQA: the recipe on its replica and on hand-written files (seven question configs and the textbook
paragraphs, bad lines reported by file and line, splits from the registry) and the whole chain over
loopback (the Drive flow: virus-scan interstitial, quota page, hand download), normalize, load."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import datasets
import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.normalize import context_for, pick_source
from medcat_data.converters.recipe import RecipeContext, RecipeOptions
from medcat_data.converters.units import Row
from medcat_data.datasets.medqa import recipe as medqa
from medcat_data.datasets.medqa import replica as replica_builder
from medcat_data.errors import SampleError, UsageError
from medcat_data.mirror import gdrive
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import load, normalize_folder, read_errors, replicas, run_chain
from tests.unit.loaders.entries import run_cli

DATASET = "medqa"
RECIPE = medqa.RECIPE


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
    return normalize_folder(DATASET, root, tmp_path_factory.mktemp("out")).out_dir


def _context(root: Path, **options: Any) -> RecipeContext:
    """The context normalize builds for a folder (registry facts included)."""
    resolved = resolve(DATASET, load_registry())
    return context_for(resolved.entry, resolved.version, root, pick_source(resolved, None), RecipeOptions(**options))


def _units(config: str, ctx: RecipeContext) -> list[Any]:
    return list(RECIPE.plan(config, ctx, RECIPE.survey(ctx)).units)


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
        ds = load(normalized, config)
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
    ds = load(normalized, config)
    for split in ds:
        for row in ds[split]:
            assert row["options"][row["answer_idx"]]["text"] == row["answer"]
            assert row["upstream_answer"] is None
            assert row["explanation"] is None and row["subject"] is None
            assert row["meta_info"]
    n_options = {len(r["options"]) for s in ds for r in ds[s]}
    assert n_options == ({5} if config in ("us", "mainland") else {4})


def test_us_rows_keep_meta_info_and_the_4option_config_its_metamap_phrases(normalized: Path) -> None:
    us = load(normalized, "us")
    assert set(us["train"]["meta_info"]) <= {"step1", "step2&3"}
    assert set(us["train"]["region"]) == {"US"} and set(us["train"]["language"]) == {"en"}
    assert "metamap_phrases" not in us["train"].features
    four = load(normalized, "us-4options")
    assert all(r["metamap_phrases"] for r in four["validation"])
    assert four["validation"][0]["sample_id"] == "us-4options/dev/1"
    taiwan = load(normalized, "taiwan")
    assert set(taiwan["test"]["meta_info"]) == {"taiwanese_test_Q"} and set(taiwan["test"]["language"]) == {"zh-Hant"}


def test_textbooks_are_one_row_per_blank_line_separated_paragraph(normalized: Path, fetched: tuple[Path, dict[str, Any]]) -> None:
    root, _ = fetched
    ds = load(normalized, "textbooks-en")
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
    units = _units("us", _context(root))
    assert [u.rel for u in units] == [f"data_clean/data_clean/questions/US/{s}.jsonl" for s in ("train", "dev", "test")]
    assert [u.split for u in units] == ["train", "validation", "test"]


def test_splits_and_their_order_are_the_registry_upstream_splits_not_a_copy_in_code(fetched: tuple[Path, dict[str, Any]]) -> None:
    root, _ = fetched
    ctx = _context(root)
    assert dict(ctx.splits_of("us")) == {"train": "train", "dev": "validation", "test": "test"}
    other = replace(ctx, upstream_splits={"us": {"test": "test", "dev": "dev"}})
    units = _units("us", other)
    assert [(u.upstream_split, u.split) for u in units] == [("test", "test"), ("dev", "dev")]  # train is not in this mapping
    notes = RECIPE.card_notes(other, RECIPE.survey(other))
    assert notes[0].startswith("Splits are upstream's official ones: test.jsonl -> test, dev.jsonl -> dev;")


def test_a_config_without_any_file_is_a_usage_error_naming_the_expected_files(tmp_path: Path) -> None:
    (tmp_path / "data_clean/questions/US").mkdir(parents=True)
    (tmp_path / "data_clean/questions/US/train.jsonl").write_text("")
    with pytest.raises(UsageError, match=r"taiwan-en has none of its files .*tw_translated_jsonl/en/train-2en.jsonl"):
        _units("taiwan-en", _context(tmp_path))
    with pytest.raises(UsageError, match="no textbooks/en"):
        _units("textbooks-en", _context(tmp_path))
    with pytest.raises(UsageError, match="no questions/ folder"):
        _units("us", _context(tmp_path / "data_clean/questions/US"))


def test_limit_keeps_the_first_lines_of_each_file(fetched: tuple[Path, dict[str, Any]]) -> None:
    root, _ = fetched
    units = _units("mainland", _context(root, limit=1))
    rows = [r for u in units for r in RECIPE.convert_unit(u) if isinstance(r, Row)]
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
    (unit,) = _units("textbooks-en", _context(tmp_path))
    out = list(RECIPE.convert_unit(unit))
    assert isinstance(out[1], SampleError) and out[1].path == "data_clean/textbooks/en/Pathoma_Husain.txt:3"
    rows = [o for o in out if isinstance(o, Row)]
    assert [(r.values["paragraph_index"], r.values["text"]) for r in rows] == [(0, "good one"), (2, "last one")]
    assert rows[1].values["sample_id"] == "Pathoma_Husain/2" and rows[1].split == "train"


def test_unknown_config_is_refused(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    with pytest.raises(UsageError, match="no config 'uk'"):
        RECIPE.features("uk", ctx, RECIPE.survey(ctx))


# ------------------------------------------------------------------------------------- spans


def _rows(units: list[Any]) -> list[dict[str, Any]]:
    return [dict(o.values) if isinstance(o, Row) else {"error": o.path} for u in units for o in RECIPE.convert_unit(u)]


@pytest.mark.parametrize("config", ["us", "mainland", "textbooks-en"])
def test_cutting_files_into_small_units_changes_nothing_in_the_rows(
    fetched: tuple[Path, dict[str, Any]], config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = fetched
    whole = _rows(_units(config, _context(root)))
    monkeypatch.setattr(medqa, "UNIT_LINES", 2)
    monkeypatch.setattr(medqa, "UNIT_PARAGRAPHS", 2)
    units = _units(config, _context(root))
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


# ------------------------------------------------------------------------------------- the chain


@pytest.mark.integration
def test_medqa_chain_passes_the_drive_confirmation_and_keeps_answers_on_their_options(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path)
    assert set(result.loaded) == {
        "us", "us-4options", "mainland", "mainland-4options", "taiwan", "taiwan-en", "taiwan-zh", "textbooks-en",
    }
    confirmed = [r for r in mirror.requests if r.path == "/download" and r.query.get("confirm") == "t"]
    assert confirmed and confirmed[-1].status == 200, "the fetch did not go through Drive's virus-scan page"
    us = result.loaded["us"]
    assert {s: us[s].num_rows for s in us} == result.replica.expected["configs"]["us"]
    for split in us:
        assert all(r["options"][r["answer_idx"]]["text"] == r["answer"] for r in us[split])
    errors = read_errors(result.out_dir)
    assert {e["path"] for e in errors} == {"data_clean/questions/US/train.jsonl:4", "data_clean/questions/Mainland/dev.jsonl:2"}


@pytest.mark.integration
def test_drive_quota_page_fails_the_fetch_and_a_hand_downloaded_zip_works_through_a_file_mirror(
    mirror: MirrorServer, tmp_path: Path
) -> None:
    replicas(DATASET, mirror)
    served = mirror.root / replica_builder.URL_PATH
    mirror.gdrive_quota_exceeded = True
    dest = tmp_path / "raw"
    code, out, err = run_cli("fetch", "medqa", "--mirror", mirror.url, "--dest", str(dest), "--json")
    assert code != 0
    (failed,) = json.loads(out)["failed"]
    assert "download quota exceeded" in failed["reason"] and "Retry within 24 h" in failed["reason"]
    assert "medcat fetch medqa --mirror file://DIR" in failed["reason"]
    assert not (dest / "data_clean.zip").exists() and not (dest / "data_clean").exists()
    assert not list(dest.rglob("*.part"))

    # The user downloads the zip by hand into a folder and points a file:// mirror at it.
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "data_clean.zip").write_bytes(served.read_bytes())
    mirror.clear_log()
    code, out, err = run_cli("fetch", "medqa", "--mirror", f"file://{manual}", "--dest", str(dest), "--json")
    assert code == 0, err
    assert mirror.requests == []
    assert (dest / "data_clean/questions/US/dev.jsonl").is_file()
    code, _, err = run_cli("normalize", "medqa", "--dest", str(dest), "--out", str(tmp_path / "out"), "--config", "us", "-j", "1")
    assert code == 1, err  # the planted malformed line is a recorded failure (exit 1 by default), not a crash
    ds = datasets.load_dataset(str(tmp_path / "out/medqa"), "us")
    assert {s: ds[s].num_rows for s in ds} == {"train": 6, "validation": 3, "test": 3}


@pytest.mark.integration
def test_a_hand_download_saved_under_another_name_is_pointed_out(mirror: MirrorServer, tmp_path: Path) -> None:
    replicas(DATASET, mirror)
    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "data_clean (1).zip").write_bytes((mirror.root / replica_builder.URL_PATH).read_bytes())
    dest = tmp_path / "raw"
    code, out, _ = run_cli("fetch", "medqa", "--mirror", f"file://{manual}", "--dest", str(dest), "--json")
    assert code != 0
    (failed,) = json.loads(out)["failed"]
    assert "data_clean.zip is not in the local mirror" in failed["reason"]
    assert "holds data_clean (1).zip: if one of them is the download, rename it to data_clean.zip" in failed["reason"]
    (manual / "data_clean (1).zip").rename(manual / "data_clean.zip")
    code, _, err = run_cli("fetch", "medqa", "--mirror", f"file://{manual}", "--dest", str(dest))
    assert code == 0, err


@pytest.mark.integration
def test_cli_mirror_serving_the_quota_page_makes_medcat_fetch_medqa_fail_without_a_final_file(tmp_path: Path) -> None:
    """The shell check: `medcat mirror build medqa`, `medcat mirror serve --gdrive-quota-exceeded`, `medcat fetch`."""
    code, _, err = run_cli("mirror", "build", "medqa", "--out", str(tmp_path / "tree"))
    assert code == 0, err
    proc = subprocess.Popen(
        [sys.executable, "-m", "medcat_data", "mirror", "serve", str(tmp_path / "tree"), "--gdrive-quota-exceeded", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = json.loads("".join(iter(proc.stdout.readline, "}\n")) + "}")["url"]
        dest = tmp_path / "raw"
        code, _, err = run_cli("fetch", "medqa", "--mirror", url, "--dest", str(dest))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert code == 1
    assert "download quota exceeded" in err and "Retry within 24 h" in err and "--mirror file://DIR" in err
    assert not (dest / "data_clean.zip").exists() and not list(dest.rglob("*.part"))
