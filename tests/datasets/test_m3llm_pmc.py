"""M3LLM-PMC: both record forms, JSONL and JSON arrays, byte-range units, options, splits, images in
zips, and the whole chain from both Hub repositories (replica → fetch over loopback → verify →
normalize --jobs 1/2 → load)."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import datasets
import pytest
from datasets import load_dataset

from medcat_data.converters.codecs.image import ImageOptions
from medcat_data.converters.recipe import RecipeContext, RecipeOptions
from medcat_data.converters.schemas import vqa_features
from medcat_data.datasets.m3llm_pmc import recipe as m3llm_pmc
from medcat_data.datasets.m3llm_pmc import records
from medcat_data.datasets.m3llm_pmc import replica as replica_builder
from medcat_data.errors import SampleError, UsageError
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import normalize_folder, read_errors, replicas, run_chain

DATASET = "m3llm-pmc"
RECIPE = m3llm_pmc.RECIPE
CONFIGS = list(RECIPE.CONFIGS)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """The ``hf`` replica repo as served, and its expected counts."""
    root = tmp_path_factory.mktemp("served")
    hf = next(r for r in replica_builder.build(root, seed=0) if r.source == "hf")
    return root / replica_builder.REPO, dict(hf.expected)


def _fetched(served: Path, tmp_path: Path) -> Path:
    """Lay the repo out as the fetch leaves it: ``<cache>/hf/<path in repo>``."""
    root = tmp_path / "cache"
    shutil.copytree(served, root / "hf")
    return root


def _context(root: Path, **options: object) -> RecipeContext:
    return RecipeContext(DATASET, "unversioned", root, "hf", root / "hf", options=RecipeOptions(**options))  # type: ignore[arg-type]


def _normalize(root: Path, out: Path, configs: list[str] | None = None, *, jobs: int = 1, **options: object) -> Path:
    """Normalize a fetched ``hf`` tree with the real normalize; return the output folder."""
    opts = RecipeOptions(**options)  # type: ignore[arg-type]
    return normalize_folder(DATASET, root, out, source="hf", configs=configs or (), options=opts, jobs=jobs).out_dir


def _notes(ctx: RecipeContext) -> list[str]:
    return RECIPE.card_notes(ctx, RECIPE.survey(ctx))


def _rows(out: Path, config: str) -> list[dict]:
    ds = load_dataset(str(out), config, cache_dir=str(out.parent / "hf-cache"))
    return [row for split in ds for row in ds[split]]


def test_replica_is_byte_identical_per_seed_and_uses_the_cards_file_names(tmp_path: Path) -> None:
    replica_builder.build(tmp_path / "a", seed=1)
    replica_builder.build(tmp_path / "b", seed=1)
    for repo in (replica_builder.REPO, replica_builder.RELEASE_REPO):
        a, b = tmp_path / "a" / repo, tmp_path / "b" / repo
        files = sorted(p.relative_to(a).as_posix() for p in a.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(b).as_posix() for p in b.rglob("*") if p.is_file())
        assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
        assert sum((a / f).stat().st_size for f in files) < 200_000
    a = tmp_path / "a" / replica_builder.REPO
    assert {p.name for p in a.iterdir() if p.is_file()} == {
        "README.md", "puretext.jsonl", "boundingboxVQA.jsonl", "single_subimage.jsonl",
        "multi_subimage.jsonl", "subimage_option.jsonl", "compound_image.jsonl",
    }
    release = tmp_path / "a" / replica_builder.RELEASE_REPO
    assert {p.relative_to(release).as_posix() for p in release.rglob("*") if p.is_file()} == {
        "DATA_LICENCE.md", "images.zip", "full_data_images.zip", *(f"full_training_data/{n}" for n in (
            "puretext.jsonl", "boundingboxVQA.jsonl", "single_subimage.jsonl", "multiple_subimage.jsonl",
            "subimage_option.jsonl", "compound_image.jsonl"))
    }


def test_every_config_matches_the_replica_and_the_planted_items_name_file_and_line(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, expected = served
    out = _normalize(_fetched(repo, tmp_path), tmp_path / "out")
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
    ranges = records.jsonl_ranges(path, target_bytes=90)
    assert len(ranges) > 5
    data = path.read_bytes()
    assert ranges[0].start == 0 and ranges[-1].end == len(data)
    for before, after in zip(ranges, ranges[1:]):
        assert before.end == after.start and data[before.end - 1 : before.end] == b"\n"
    seen = []
    for span in ranges:
        for item in records.iter_jsonl(path, "x.jsonl", span):
            assert not isinstance(item, SampleError)
            seen.append(item)
    assert [value["n"] for _, value in seen] == list(range(1, 31))
    assert [line for line, _ in seen] == list(range(1, 11)) + list(range(12, 32)), "line numbers count the blank line"


def test_many_small_units_give_the_same_rows_as_one(served, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    repo, _ = served
    root = _fetched(repo, tmp_path)
    configs = ["single-subimage", "compound-image"]
    one = _normalize(root, tmp_path / "one", configs)
    monkeypatch.setattr(m3llm_pmc, "UNIT_BYTES", 200)
    small = _context(root)
    assert len(list(RECIPE.plan("single-subimage", small, RECIPE.survey(small)).units)) > 3
    many = _normalize(root, tmp_path / "many", configs, jobs=2)
    for config in configs:
        assert [(r["sample_id"], r["question"], r["answer"]) for r in _rows(one, config)] == [
            (r["sample_id"], r["question"], r["answer"]) for r in _rows(many, config)
        ]
    assert {e["path"] for e in read_errors(many)} == {"hf/single_subimage.jsonl:3"}


def test_a_json_array_file_reads_like_its_jsonl_twin_and_a_bad_element_is_one_error(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, _ = served
    root = _fetched(repo, tmp_path)
    from_jsonl = _normalize(root, tmp_path / "jsonl", ["subimage-option"])
    source = root / "hf" / "subimage_option.jsonl"
    lines = [line for line in source.read_text().splitlines() if line.strip()]
    lines.insert(1, '{"image": "PMC1_x.jpg", "qa_pairs": [tru]}')
    (root / "hf" / "subimage_option.json").write_text("[\n  " + ",\n  ".join(lines) + "\n]\n")
    source.unlink()
    from_json = _normalize(root, tmp_path / "json", ["subimage-option"])
    fields = ("question", "answer", "options", "answer_idx", "answer_key", "article_id")
    assert [[r[f] for f in fields] for r in _rows(from_jsonl, "subimage-option")] == [
        [r[f] for f in fields] for r in _rows(from_json, "subimage-option")
    ]
    (error,) = read_errors(from_json)
    assert error["path"] == "hf/subimage_option.json[1]" and error["stage"] == "parse"
    assert any("JSON array" in note for note in _notes(_context(root)))


def test_a_structurally_broken_json_array_is_reported_not_fatal(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    (root / "hf").mkdir(parents=True)
    (root / "hf" / "puretext.json").write_text('[{"image": "PMC1_a.jpg", "qa_pairs": []}, {"image": ')
    out = _normalize(root, tmp_path / "out", ["puretext"])
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
    assert records.parse_options(value) == (keys, texts)


@pytest.mark.parametrize(("answer", "letter"), [("B", "B"), ("B.", "B"), ("(C) Hamartoma", "C"), ("Correct answer: D", "D"), ("Answer is A", "A"), (" d ", None), ("Because", None)])
def test_answer_letters(answer: str, letter: str | None) -> None:
    assert records.answer_letter(answer) == letter


def _record(**pair: object) -> dict:
    return {"image": "PMC42_fig-g001.jpg", "caption": "c", "qa_pairs": [{"question": "q?", "answer": "a", **pair}]}


def test_answer_type_is_upstreams_or_closed_with_options_else_null() -> None:
    (plain,) = records.pipeline_drafts("single-subimage", _record())
    (typed,) = records.pipeline_drafts("single-subimage", _record(answer_type="CLOSED"))
    (odd,) = records.pipeline_drafts("single-subimage", _record(answer_type="yes/no"))
    (mcq,) = records.pipeline_drafts("subimage-option", _record(option="A. x\nB. y", answer="B"))
    assert isinstance(plain, records.Draft) and plain.answer_type is None
    assert isinstance(typed, records.Draft) and typed.answer_type == "closed"
    assert isinstance(odd, records.Draft) and odd.answer_type is None
    assert isinstance(mcq, records.Draft) and (mcq.answer_type, mcq.answer, mcq.answer_idx) == ("closed", "y", 1)


def test_an_answer_letter_outside_the_options_is_a_bad_item() -> None:
    (bad,) = records.pipeline_drafts("subimage-option", _record(option="A. x\nB. y", answer="E"))
    assert bad == (0, "qa_pairs[0]: answer 'E' names none of the options ['A', 'B']")


def test_v2_snake_case_contexts_land_in_the_same_columns_as_v1() -> None:
    (v1,) = records.pipeline_drafts("puretext", _record(context="draft", **{"improved context": "better"}))
    (v2,) = records.pipeline_drafts("puretext", _record(draft_context="draft", context="better"))
    assert isinstance(v1, records.Draft) and isinstance(v2, records.Draft)
    assert (v1.extras["context"], v1.extras["improved_context"]) == (v2.extras["context"], v2.extras["improved_context"]) == ("draft", "better")


def test_images_per_config_puretext_none_compound_first_for_bbox() -> None:
    record = _record(selected_image_paths=["PMC42_fig-g001.jpg_0.jpg", "PMC42_fig-g001.jpg_1.jpg"])
    (text,) = records.pipeline_drafts("puretext", record)
    (bbox,) = records.pipeline_drafts("bbox", record)
    (multi,) = records.pipeline_drafts("multi-subimage", record)
    assert isinstance(text, records.Draft) and text.images == []
    assert isinstance(bbox, records.Draft) and bbox.images[0] == "PMC42_fig-g001.jpg" and len(bbox.images) == 3
    assert isinstance(multi, records.Draft) and multi.images == record["qa_pairs"][0]["selected_image_paths"]
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
    first, second, dangling = records.internvl_drafts("multi-subimage", record)
    assert isinstance(first, records.Draft) and first.question == "Compare the panels." and first.images == record["image"]
    assert isinstance(second, records.Draft) and (second.question, second.answer, second.k) == ("Which is larger?", "The first.", 1)
    assert first.extras["article_id"] == "PMC5" and first.extras["record_id"] == "7"
    assert dangling == (2, "conversation turn pair 2 has a human turn without a gpt answer")


def test_multiple_subimage_is_preferred_over_multi_subimage_and_the_other_is_named(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, _ = served
    root = _fetched(repo, tmp_path)
    shutil.copy(root / "hf/multi_subimage.jsonl", root / "hf/multiple_subimage.jsonl")
    ctx = _context(root)
    (unit,) = RECIPE.plan("multi-subimage", ctx, RECIPE.survey(ctx)).units
    assert unit.rel == "hf/multiple_subimage.jsonl"
    assert any("also present and not read: hf/multi_subimage.jsonl" in n for n in _notes(ctx))


def test_split_by_article_keeps_each_article_in_one_split_across_configs(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, _ = served
    out = _normalize(_fetched(repo, tmp_path), tmp_path / "out", split_by="article_id")
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
        _normalize(_fetched(repo, tmp_path), tmp_path / "out", ["puretext"], split_by="patient_id")


def test_limit_caps_rows_per_config(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, _ = served
    out = _normalize(_fetched(repo, tmp_path), tmp_path / "out", ["puretext", "compound-image"], limit=2)
    assert len(_rows(out, "puretext")) == 2 and len(_rows(out, "compound-image")) == 2


def test_a_config_without_its_file_is_empty_and_said_so(tmp_path: Path) -> None:
    root = tmp_path / "cache"
    (root / "hf").mkdir(parents=True)
    ctx = _context(root)
    assert list(RECIPE.plan("bbox", ctx, RECIPE.survey(ctx)).units) == []
    assert any(n.startswith("bbox: no annotation file fetched") for n in _notes(ctx))


def test_a_partial_download_still_writes_the_configs_it_has(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, _ = served
    root = _fetched(repo, tmp_path)
    (root / "hf/boundingboxVQA.jsonl").unlink()
    out = _normalize(root, tmp_path / "out", ["puretext", "bbox"])
    assert len(_rows(out, "puretext")) == 5


def test_images_inside_zip_files_are_read_in_place_like_loose_ones(served, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    repo, _ = served
    loose_out = _normalize(_fetched(repo, tmp_path / "loose"), tmp_path / "out-loose", ["multi-subimage", "bbox"])
    zipped_root = _fetched(repo, tmp_path / "zipped")
    folder = zipped_root / "hf" / "full_data_images"
    with zipfile.ZipFile(zipped_root / "hf" / "subfigures_part_0.zip", "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.iterdir()):
            archive.write(path, f"subfigures/{path.name}")
    shutil.rmtree(folder)
    zipped_out = _normalize(zipped_root, tmp_path / "out-zipped", ["multi-subimage", "bbox"])
    for config in ("multi-subimage", "bbox"):
        loose = [[image.tobytes() for image in row["images"]] for row in _rows(loose_out, config)]
        zipped = [[image.tobytes() for image in row["images"]] for row in _rows(zipped_out, config)]
        assert loose == zipped and all(loose)
    assert {e["path"] for e in read_errors(zipped_out)} == {"hf/multi_subimage.jsonl:2"}
    assert sorted(p.name.split("-")[2] for p in (zipped_root / ".medcat/derived").glob("m3llm-pmc-*.sqlite")) == ["loose", "zips"]
    assert any("members of 1 zip file(s)" in note for note in _notes(_context(zipped_root)))


@pytest.mark.integration
def test_m3llm_pmc_chain_gives_six_vqa_configs_with_the_shared_core_columns(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path, source="hf")
    assert set(result.loaded) == {"puretext", "bbox", "single-subimage", "multi-subimage", "subimage-option", "compound-image"}
    core = list(vqa_features())
    for config, ds in result.loaded.items():
        names = list(ds["train"].features)
        assert names[: len(core)] == core, f"{config}: core VQA columns first, in schema order"
        assert ds["train"].features["images"] == vqa_features()["images"]

    puretext = result.loaded["puretext"]["train"]
    assert all(images == [] for images in puretext["images"])
    types = puretext.features["answer_type"].names
    assert [types[t] if t is not None else None for t in puretext["answer_type"]].count("open") == 1
    assert puretext["answer_type"].count(None) == len(puretext) - 1, "no options and no upstream type: null, never guessed"
    assert all(a and a.startswith("PMC") for a in puretext["article_id"])
    assert set(puretext["license"]) == {"CC-BY-NC-SA-4.0"}

    option = result.loaded["subimage-option"]["train"]
    for row in option:
        assert len(row["options"]) == 4 and row["answer"] == row["options"][row["answer_idx"]]
        assert row["answer_key"] == "ABCD"[row["answer_idx"]]
        assert option.features["answer_type"].names[row["answer_type"]] == "closed"
        assert len(row["images"]) == 1
    assert option["article_license"].count("CC BY 4.0") == 2

    bbox = result.loaded["bbox"]["train"]
    assert all(len(images) == 3 for images in bbox["images"]), "compound figure first, then the two sub-figures"
    assert bbox[0]["images"][0].size == (48, 32)

    compound = result.loaded["compound-image"]["train"]
    assert "<image>" not in "".join(compound["question"])
    assert set(compound["record_form"]) == {"internvl"}

    # The same core schema as every other VQA dataset: the configs concatenate.
    core_only = [ds["train"].select_columns(core) for ds in result.loaded.values()]
    assert len(datasets.concatenate_datasets(core_only)) == sum(len(ds["train"]) for ds in result.loaded.values())


@pytest.mark.integration
def test_m3llm_pmc_bbox_images_keep_their_pixels_under_max_size(mirror: MirrorServer, tmp_path: Path) -> None:
    result = run_chain(DATASET, mirror, tmp_path, source="hf", options=RecipeOptions(image=ImageOptions(max_size=16)))
    assert result.loaded["bbox"]["train"][0]["images"][0].size == (48, 32)
    assert max(result.loaded["compound-image"]["train"][0]["images"][0].size) == 16


@pytest.mark.integration
def test_m3llm_pmc_from_a_manual_download_through_a_file_mirror(mirror: MirrorServer, tmp_path: Path) -> None:
    """The user downloads the repo by hand (`hf download ... --local-dir DIR`); no request reaches any server."""
    from tests.unit.loaders.entries import run_cli

    replica = next(r for r in replicas(DATASET, mirror) if r.source == "hf")
    manual = tmp_path / "manual download"
    shutil.copytree(mirror.root / replica_builder.REPO, manual)
    (manual / ".cache/huggingface/download").mkdir(parents=True)
    (manual / ".cache/huggingface/download/puretext.jsonl.metadata").write_text("x\n")
    mirror.clear_log()
    dest = tmp_path / "raw"
    code, out, err = run_cli("fetch", "m3llm-pmc", "--mirror", manual.as_uri(), "--dest", str(dest), "--json")
    assert code == 0, err
    report = json.loads(out)
    assert set(report["verification"]) == {"tofu"} and report["trust_on_first_use"] == report["downloaded"]
    assert mirror.requests == []
    code, out, err = run_cli("verify", "m3llm-pmc", "--dest", str(dest), "--json")
    assert code == 0, err
    code, _, err = run_cli("normalize", "m3llm-pmc", "--dest", str(dest), "--out", str(tmp_path / "out"), "-j", "1")
    assert code == 1, err  # the two planted items are recorded failures, not a crash
    for config, splits in replica.expected["configs"].items():
        ds = datasets.load_dataset(str(tmp_path / "out/m3llm-pmc"), config)
        assert {s: ds[s].num_rows for s in ds} == splits


@pytest.mark.integration
def test_m3llm_pmc_release_chain_reads_its_images_from_zip_members(mirror: MirrorServer, tmp_path: Path) -> None:
    """The release repo ships the images only as zips: rows carry the same bytes as the loose files of ``hf``."""
    result = run_chain(DATASET, mirror, tmp_path, source="hf-release")
    loose = mirror.root / replica_builder.REPO
    for config in ("bbox", "multi-subimage", "compound-image"):
        rows = result.loaded[config]["train"].cast_column("images", datasets.List(datasets.Image(decode=False)))
        for row in rows:
            assert row["images"], config
            for image in row["images"]:
                (found,) = loose.glob(f"*/{image['path']}")
                assert image["bytes"] == found.read_bytes()
    card = (result.out_dir / "README.md").read_text(encoding="utf-8")
    assert "multi-subimage: hf-release/full_training_data/multiple_subimage.jsonl" in card
    assert "index of 0 image file(s) and the members of 2 zip file(s)" in card
