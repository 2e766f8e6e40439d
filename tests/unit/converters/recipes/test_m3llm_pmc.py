"""M3LLM-PMC on its replica: both record forms, JSONL and JSON arrays, byte-range units, options, splits."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from datasets import load_dataset

from medcat_data.converters.recipes import m3llm_pmc
from medcat_data.converters.recipes.base import RecipeContext, RecipeOptions
from medcat_data.errors import SampleError, UsageError
from medcat_data.mirror.replicas import m3llm_pmc as replica_builder

from .recipe_run import read_errors, run_recipe

CONFIGS = list(m3llm_pmc.CONFIGS)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The replica repo as served, and its expected counts."""
    root = tmp_path_factory.mktemp("served")
    (replica,) = replica_builder.build(root, seed=0)
    return root / replica_builder.REPO, dict(replica.expected)


def _fetched(served: Path, tmp_path: Path) -> Path:
    """Lay the repo out as the fetch leaves it: ``<cache>/hf/<path in repo>``."""
    root = tmp_path / "cache"
    shutil.copytree(served, root / "hf")
    return root


def _context(root: Path, **options: object) -> RecipeContext:
    return RecipeContext("m3llm-pmc", "unversioned", root, "hf", root / "hf", options=RecipeOptions(**options))  # type: ignore[arg-type]


def _rows(out: Path, config: str) -> list[dict]:
    ds = load_dataset(str(out), config)
    return [row for split in ds for row in ds[split]]


def test_replica_is_byte_identical_per_seed_and_uses_the_cards_file_names(tmp_path: Path) -> None:
    replica_builder.build(tmp_path / "a", seed=1)
    replica_builder.build(tmp_path / "b", seed=1)
    a, b = tmp_path / "a" / replica_builder.REPO, tmp_path / "b" / replica_builder.REPO
    files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    assert {f for f in files if "/" not in f} == {
        "README.md", "puretext.jsonl", "boundingboxVQA.jsonl", "single_subimage.jsonl",
        "multi_subimage.jsonl", "subimage_option.jsonl", "compound_image.jsonl",
    }
    assert sum((a / f).stat().st_size for f in files) < 200_000


def test_every_config_matches_the_replica_and_the_planted_items_name_file_and_line(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, expected = served
    root = _fetched(repo, tmp_path)
    out = tmp_path / "out"
    run_recipe(m3llm_pmc, _context(root), CONFIGS, out)
    for config, splits in expected["configs"].items():
        assert len(_rows(out, config)) == splits["train"], config
    errors = {(e["path"], e["stage"]) for e in read_errors(out)}
    assert errors == {("hf/single_subimage.jsonl:3", "parse"), ("hf/multi_subimage.jsonl:2", "read")}
    (truncated,) = [e for e in read_errors(out) if e["stage"] == "parse"]
    assert "truncated" in truncated["message"]


def test_jsonl_ranges_end_on_newlines_and_know_their_first_line(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    lines = [json.dumps({"n": n, "pad": "x" * (n * 7 % 40)}) for n in range(1, 31)]
    path.write_bytes(("\n".join(lines[:10]) + "\n\n" + "\n".join(lines[10:])).encode())  # a blank line, no final newline
    ranges = m3llm_pmc.jsonl_ranges(path, target_bytes=90)
    assert len(ranges) > 5
    data = path.read_bytes()
    assert ranges[0].start == 0 and ranges[-1].end == len(data)
    for before, after in zip(ranges, ranges[1:]):
        assert before.end == after.start and data[before.end - 1 : before.end] == b"\n"
    seen = []
    for span in ranges:
        for item in m3llm_pmc.iter_jsonl(path, "x.jsonl", span):
            assert not isinstance(item, SampleError)
            seen.append(item)
    assert [value["n"] for _, value in seen] == list(range(1, 31))
    assert [line for line, _ in seen] == list(range(1, 11)) + list(range(12, 32)), "line numbers count the blank line"


def test_many_small_units_give_the_same_rows_as_one(served, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    repo, _ = served
    root = _fetched(repo, tmp_path)
    run_recipe(m3llm_pmc, _context(root), ["single-subimage", "compound-image"], tmp_path / "one")
    monkeypatch.setattr(m3llm_pmc, "UNIT_BYTES", 200)
    small = _context(root, seed=7)  # another survey key
    assert len(m3llm_pmc.plan("single-subimage", small).units) > 3
    run_recipe(m3llm_pmc, small, ["single-subimage", "compound-image"], tmp_path / "many", jobs=2)
    for config in ("single-subimage", "compound-image"):
        one = [(r["sample_id"], r["question"], r["answer"]) for r in _rows(tmp_path / "one", config)]
        many = [(r["sample_id"], r["question"], r["answer"]) for r in _rows(tmp_path / "many", config)]
        assert one == many
    assert {e["path"] for e in read_errors(tmp_path / "many")} == {"hf/single_subimage.jsonl:3"}


def test_a_json_array_file_reads_like_its_jsonl_twin_and_a_bad_element_is_one_error(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, _ = served
    root = _fetched(repo, tmp_path)
    run_recipe(m3llm_pmc, _context(root), ["subimage-option"], tmp_path / "jsonl")
    source = root / "hf" / "subimage_option.jsonl"
    records = [line for line in source.read_text().splitlines() if line.strip()]
    records.insert(1, '{"image": "PMC1_x.jpg", "qa_pairs": [tru]}')
    (root / "hf" / "subimage_option.json").write_text("[\n  " + ",\n  ".join(records) + "\n]\n")
    source.unlink()
    ctx = _context(root)
    run_recipe(m3llm_pmc, ctx, ["subimage-option"], tmp_path / "json")
    fields = ("question", "answer", "options", "answer_idx", "answer_key", "article_id")
    assert [[r[f] for f in fields] for r in _rows(tmp_path / "jsonl", "subimage-option")] == [
        [r[f] for f in fields] for r in _rows(tmp_path / "json", "subimage-option")
    ]
    (error,) = read_errors(tmp_path / "json")
    assert error["path"] == "hf/subimage_option.json[1]" and error["stage"] == "parse"
    assert any("JSON array" in note for note in m3llm_pmc.card_notes(ctx))


def test_a_structurally_broken_json_array_is_reported_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    (root / "hf").mkdir(parents=True)
    (root / "hf" / "puretext.json").write_text('[{"image": "PMC1_a.jpg", "qa_pairs": []}, {"image": ')
    out = tmp_path / "out"
    run_recipe(m3llm_pmc, _context(root), ["puretext"], out)
    (error,) = read_errors(out)
    assert error["path"] == "hf/puretext.json" and "not a well-formed JSON array" in error["message"]


@pytest.mark.parametrize(
    ("value", "keys", "texts"),
    [
        ("A. Cyst\nB. Abscess\nC. Hamartoma\nD. Metastasis", ["A", "B", "C", "D"], ["Cyst", "Abscess", "Hamartoma", "Metastasis"]),
        ("A) left; B) right; C) above; D) below", ["A", "B", "C", "D"], ["left", "right", "above", "below"]),
        ({"A": "one", "B": "two"}, ["A", "B"], ["one", "two"]),
        (["yes", "no"], ["A", "B"], ["yes", "no"]),
        ("Answer with a word.", [], []),
        ("", [], []),
    ],
)
def test_options_are_read_from_text_dicts_and_lists_never_guessed(value, keys, texts) -> None:  # type: ignore[no-untyped-def]
    assert m3llm_pmc.parse_options(value) == (keys, texts)


@pytest.mark.parametrize(("answer", "letter"), [("B", "B"), ("B.", "B"), ("(C) Hamartoma", "C"), ("Correct answer: D", "D"), ("Answer is A", "A"), (" d ", None), ("Because", None)])
def test_answer_letters(answer: str, letter: str | None) -> None:
    assert m3llm_pmc.answer_letter(answer) == letter


def _record(**pair: object) -> dict:
    return {"image": "PMC42_fig-g001.jpg", "caption": "c", "qa_pairs": [{"question": "q?", "answer": "a", **pair}]}


def test_answer_type_is_upstreams_or_closed_with_options_else_null() -> None:
    (plain,) = m3llm_pmc.pipeline_drafts("single-subimage", _record())
    (typed,) = m3llm_pmc.pipeline_drafts("single-subimage", _record(answer_type="CLOSED"))
    (odd,) = m3llm_pmc.pipeline_drafts("single-subimage", _record(answer_type="yes/no"))
    (mcq,) = m3llm_pmc.pipeline_drafts("subimage-option", _record(option="A. x\nB. y", answer="B"))
    assert isinstance(plain, m3llm_pmc.Draft) and plain.answer_type is None
    assert isinstance(typed, m3llm_pmc.Draft) and typed.answer_type == "closed"
    assert isinstance(odd, m3llm_pmc.Draft) and odd.answer_type is None
    assert isinstance(mcq, m3llm_pmc.Draft) and (mcq.answer_type, mcq.answer, mcq.answer_idx) == ("closed", "y", 1)


def test_an_answer_letter_outside_the_options_is_a_bad_item() -> None:
    (bad,) = m3llm_pmc.pipeline_drafts("subimage-option", _record(option="A. x\nB. y", answer="E"))
    assert bad == (0, "qa_pairs[0]: answer 'E' names none of the options ['A', 'B']")


def test_v2_snake_case_contexts_land_in_the_same_columns_as_v1() -> None:
    (v1,) = m3llm_pmc.pipeline_drafts("puretext", _record(context="draft", **{"improved context": "better"}))
    (v2,) = m3llm_pmc.pipeline_drafts("puretext", _record(draft_context="draft", context="better"))
    assert isinstance(v1, m3llm_pmc.Draft) and isinstance(v2, m3llm_pmc.Draft)
    assert (v1.extras["context"], v1.extras["improved_context"]) == (v2.extras["context"], v2.extras["improved_context"]) == ("draft", "better")


def test_images_per_config_puretext_none_compound_first_for_bbox() -> None:
    record = _record(selected_image_paths=["PMC42_fig-g001.jpg_0.jpg", "PMC42_fig-g001.jpg_1.jpg"])
    (text,) = m3llm_pmc.pipeline_drafts("puretext", record)
    (bbox,) = m3llm_pmc.pipeline_drafts("bbox", record)
    (multi,) = m3llm_pmc.pipeline_drafts("multi-subimage", record)
    assert isinstance(text, m3llm_pmc.Draft) and text.images == []
    assert isinstance(bbox, m3llm_pmc.Draft) and bbox.images[0] == "PMC42_fig-g001.jpg" and len(bbox.images) == 3
    assert isinstance(multi, m3llm_pmc.Draft) and multi.images == record["qa_pairs"][0]["selected_image_paths"]
    assert bbox.extras["article_id"] == "PMC42"


def test_internvl_lines_give_a_row_per_turn_pair_without_image_placeholders() -> None:
    record = {
        "id": 7,
        "image": ["sub/PMC5_a.jpg", "PMC5_b.jpg"],
        "conversations": [
            {"from": "human", "value": "Image-1: <image>\nImage-2: <image>\nCompare the panels."},
            {"from": "gpt", "value": "They differ."},
            {"from": "human", "value": "Which is larger?"},
            {"from": "gpt", "value": "The first."},
            {"from": "human", "value": "Anything else?"},
        ],
    }
    first, second, dangling = m3llm_pmc.internvl_drafts("multi-subimage", record)
    assert isinstance(first, m3llm_pmc.Draft) and first.question == "Compare the panels." and first.images == record["image"]
    assert isinstance(second, m3llm_pmc.Draft) and (second.question, second.answer, second.k) == ("Which is larger?", "The first.", 1)
    assert first.extras["article_id"] == "PMC5" and first.extras["record_id"] == "7"
    assert dangling == (2, "conversation turn pair 2 has a human turn without a gpt answer")


def test_multiple_subimage_is_preferred_over_multi_subimage_and_the_other_is_named(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, _ = served
    root = _fetched(repo, tmp_path)
    shutil.copy(root / "hf/multi_subimage.jsonl", root / "hf/multiple_subimage.jsonl")
    ctx = _context(root)
    (unit,) = m3llm_pmc.plan("multi-subimage", ctx).units
    assert unit.rel == "hf/multiple_subimage.jsonl"
    assert any("also present and not read: hf/multi_subimage.jsonl" in n for n in m3llm_pmc.card_notes(ctx))


def test_split_by_article_keeps_each_article_in_one_split_across_configs(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, _ = served
    root = _fetched(repo, tmp_path)
    out = tmp_path / "out"
    run_recipe(m3llm_pmc, _context(root, split_by="article_id"), CONFIGS, out)
    where: dict[str, set[str]] = {}
    for config in CONFIGS:
        ds = load_dataset(str(out), config)
        for split in ds:
            for article in ds[split]["article_id"]:
                where.setdefault(article, set()).add(split)
    assert len(where) == 5 and all(len(splits) == 1 for splits in where.values())
    assert len({s for splits in where.values() for s in splits}) > 1


def test_split_by_an_unknown_column_is_refused(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, _ = served
    with pytest.raises(UsageError, match="--split-by 'patient_id' is not supported; use one of article_id"):
        m3llm_pmc.plan("puretext", _context(_fetched(repo, tmp_path), split_by="patient_id"))


def test_limit_caps_rows_per_config(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, _ = served
    out = tmp_path / "out"
    run_recipe(m3llm_pmc, _context(_fetched(repo, tmp_path), limit=2), ["puretext", "compound-image"], out)
    assert len(_rows(out, "puretext")) == 2 and len(_rows(out, "compound-image")) == 2


def test_a_config_without_its_file_is_empty_and_said_so(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    (root / "hf").mkdir(parents=True)
    ctx = _context(root)
    assert list(m3llm_pmc.plan("bbox", ctx).units) == []
    assert any(n.startswith("bbox: no annotation file fetched") for n in m3llm_pmc.card_notes(ctx))


def test_a_partial_download_still_writes_the_configs_it_has(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, _ = served
    root = _fetched(repo, tmp_path)
    (root / "hf/boundingboxVQA.jsonl").unlink()
    out = tmp_path / "out"
    run_recipe(m3llm_pmc, _context(root), ["puretext", "bbox"], out)
    assert len(_rows(out, "puretext")) == 5


def test_images_inside_zip_files_are_read_in_place_like_loose_ones(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import zipfile

    repo, _ = served
    loose_root = _fetched(repo, tmp_path / "loose")
    run_recipe(m3llm_pmc, _context(loose_root), ["multi-subimage", "bbox"], tmp_path / "out-loose")
    zipped_root = _fetched(repo, tmp_path / "zipped")
    folder = zipped_root / "hf" / "full_data_images"
    with zipfile.ZipFile(zipped_root / "hf" / "subfigures_part_0.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"subfigures/{path.name}")
    shutil.rmtree(folder)
    ctx = _context(zipped_root)
    run_recipe(m3llm_pmc, ctx, ["multi-subimage", "bbox"], tmp_path / "out-zipped")
    for config in ("multi-subimage", "bbox"):
        loose = [[image.tobytes() for image in row["images"]] for row in _rows(tmp_path / "out-loose", config)]
        zipped = [[image.tobytes() for image in row["images"]] for row in _rows(tmp_path / "out-zipped", config)]
        assert loose == zipped and all(loose)
    assert {e["path"] for e in read_errors(tmp_path / "out-zipped")} == {"hf/multi_subimage.jsonl:2"}
    assert sorted(p.name.split("-")[2] for p in (zipped_root / ".medcat/derived").glob("m3llm-pmc-*.sqlite")) == ["loose", "zips"]
    assert any("members of 1 zip file(s)" in note for note in m3llm_pmc.card_notes(ctx))
