"""``medcat normalize --conversations`` end to end: replica -> real fetch over loopback -> normalize -> export.

Uses the PubMedVision replica (multi-image rows, upstream conversations, modality/body part, a
planted missing image), MedQA (text only) and PMC-OA (image-text), each fetched by the real
engine from the loopback mirror and normalized by the real command.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.cli import main
from medcat_data.datasets.pubmedvision import replica as pubmedvision_replica
from medcat_data.mirror.server import MirrorServer
from tests.datasets.harness import fetch_and_verify, replicas

pytestmark = pytest.mark.integration


def _fetch(dataset_id: str, mirror: MirrorServer) -> None:
    replica = replicas(dataset_id, mirror)[0]
    fetch_and_verify(resolve(dataset_id, load_registry()), replica, mirror)


def _normalize(*args: str) -> Result:
    """Run ``medcat normalize``; replicas plant one bad item or so, tolerated here (errors.jsonl is tested elsewhere)."""
    return CliRunner().invoke(main, ["normalize", *args, "--max-errors", "5"], catch_exceptions=False)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _paths(record: dict[str, Any]) -> list[str]:
    image = record.get("image")
    return [] if image is None else [image] if isinstance(image, str) else list(image)


def _upstream_images(mirror: MirrorServer) -> dict[str, bytes]:
    """Return every image of the replica's zip parts by its upstream path ``images/<name>``."""
    found = {}
    for part in sorted((mirror.root / pubmedvision_replica.HF_REPO).glob("images_*.zip")):
        with zipfile.ZipFile(part) as zf:
            for name in zf.namelist():
                found["images/" + name.rsplit("/", 1)[-1]] = zf.read(name)
    return found


def test_pubmedvision_exports_in_every_format_faithfully(mirror: MirrorServer, tmp_path: Path) -> None:
    _fetch("pubmedvision", mirror)
    out = tmp_path / "out"
    run = _normalize("pubmedvision", "--out", str(out), "--conversations", "internvl", "--conversations", "sharegpt",
                     "--conversations", "llava", "--json")  # fmt: skip
    assert run.exit_code == 0, run.output
    summary = json.loads(run.stdout)["conversations"]
    conv = out / "pubmedvision" / "conversations"
    assert summary["dir"] == str(conv)

    # internvl: as many <image> tokens as images on every line, every path exists, meta lengths are line counts.
    meta = json.loads((conv / "internvl" / "meta.json").read_text())
    assert set(meta) == {"pubmedvision-alignment-train", "pubmedvision-instruction-train"}
    for entry in meta.values():
        records = _lines(conv / entry["annotation"])
        assert entry["length"] == len(records) > 0
        for record in records:
            tokens = sum(t["value"].count("<image>") for t in record["conversations"])
            assert tokens == len(_paths(record)) >= 1
            assert all((conv / p).is_file() for p in _paths(record))

    # sharegpt equals the upstream records but for image paths; the images are the upstream bytes.
    upstream_images = _upstream_images(mirror)
    for config, name in (("alignment", pubmedvision_replica.ALIGNMENT), ("instruction", pubmedvision_replica.INSTRUCTION)):
        upstream = json.loads((mirror.root / pubmedvision_replica.HF_REPO / name).read_text(encoding="utf-8"))
        kept = [r for r in upstream if pubmedvision_replica.MISSING_IMAGE not in r["image"]]
        exported = _lines(conv / "sharegpt" / f"{config}-train.jsonl")
        assert [r["id"] for r in exported] == [r["id"] for r in kept]
        for ours, theirs in zip(exported, kept):
            assert {**ours, "image": None} == {**theirs, "image": None}
            assert [(conv / p).read_bytes() for p in ours["image"]] == [upstream_images[p] for p in theirs["image"]]
        multi = sum(len(r["image"]) > 1 for r in kept)
        assert summary["files"]["llava"][f"{config}-train"] == {"rows": len(kept) - multi, "skipped": {"multi_image": multi} if multi else {}}

    # Each image once: as many files as distinct images referenced.
    referenced = {p for f in conv.glob("*/*.jsonl") for r in _lines(f) for p in _paths(r)}
    assert len(referenced) == summary["images"] == len([p for p in (conv / "images").rglob("*") if p.is_file()])


def test_a_second_run_is_up_to_date_and_max_images_is_reported(mirror: MirrorServer, tmp_path: Path) -> None:
    _fetch("pubmedvision", mirror)
    out = tmp_path / "out"
    first = _normalize("pubmedvision", "--out", str(out), "--config", "alignment", "--conversations", "internvl", "--max-images", "1")
    assert first.exit_code == 0, first.output
    assert "conversations ->" in first.stdout and "internvl:" in first.stdout and "max_images" in first.stdout
    again = _normalize("pubmedvision", "--out", str(out), "--config", "alignment", "--conversations", "internvl", "--max-images", "1", "--json")
    summary = json.loads(again.stdout)
    assert summary["skipped_up_to_date"] and summary["conversations"]["skipped_up_to_date"]
    records = _lines(out / "pubmedvision" / "conversations" / "internvl" / "alignment-train.jsonl")
    assert all(isinstance(r["image"], str) for r in records)
    assert summary["conversations"]["formats"]["internvl"]["skipped_max_images"] > 0


def test_text_qa_rows_become_text_only_conversations(mirror: MirrorServer, tmp_path: Path) -> None:
    _fetch("medqa", mirror)
    out = tmp_path / "out"
    run = _normalize("medqa", "--out", str(out), "--conversations", "llava", "--conversations", "internvl", "--json")
    assert run.exit_code == 0, run.output
    conv = out / "medqa" / "conversations"
    files = sorted((conv / "llava").glob("*.jsonl"))
    assert files
    for fmt in ("llava", "internvl"):
        for record in (r for f in sorted((conv / fmt).glob("*.jsonl")) for r in _lines(f)):
            assert "image" not in record
            human, gpt = record["conversations"]
            assert "<image>" not in human["value"] and "\nA. " in human["value"] and gpt["value"]
    assert not (conv / "images").exists() or not any((conv / "images").rglob("*.*"))


def test_figures_take_the_prompt_template_and_answer_with_the_caption(mirror: MirrorServer, tmp_path: Path) -> None:
    _fetch("pmc-oa", mirror)
    template = tmp_path / "prompt.txt"
    template.write_text("Caption {figure_label}.\n", encoding="utf-8")
    out = tmp_path / "out"
    run = _normalize("pmc-oa", "--out", str(out), "--conversations", "llava", "--prompt-template", str(template), "--json")
    assert run.exit_code == 0, run.output
    conv = out / "pmc-oa" / "conversations"
    records = [r for f in sorted((conv / "llava").glob("*.jsonl")) for r in _lines(f)]
    assert records
    for record in records:
        human, gpt = record["conversations"]
        assert human["value"].startswith("<image>\nCaption ") and gpt["value"]
        assert (conv / record["image"]).is_file()


def test_export_options_without_conversations_or_with_a_bad_template_are_usage_errors(tmp_path: Path) -> None:
    run = CliRunner().invoke(main, ["normalize", "medqa", "--out", str(tmp_path), "--max-images", "2"])
    assert run.exit_code == 2 and "add --conversations FORMAT" in run.output
    template = tmp_path / "bad.txt"
    template.write_text("Describe {title}\n", encoding="utf-8")
    run = CliRunner().invoke(main, ["normalize", "medqa", "--out", str(tmp_path), "--conversations", "llava", "--prompt-template", str(template)])
    assert run.exit_code == 2 and "unknown placeholder {title}" in run.output
    assert not (tmp_path / "medqa").exists()


def test_the_core_vqa_columns_of_the_three_vqa_sets_concatenate(mirror: MirrorServer, tmp_path: Path) -> None:
    """VQA-RAD, PubMedVision and M3LLM-PMC share the VQA core features, so they mix without casts."""
    import datasets

    from medcat_data.converters.schemas import vqa_features

    core = [name for name in vqa_features() if name not in ("source", "sample_id", "split")]
    parts = []
    for dataset_id in ("vqa-rad", "pubmedvision", "m3llm-pmc"):
        _fetch(dataset_id, mirror)
        run = _normalize(dataset_id, "--out", str(tmp_path), "--json")
        assert run.exit_code == 0, run.output
        first_config = next(iter(json.loads(run.stdout)["rows"]))
        loaded = datasets.load_dataset(str(tmp_path / dataset_id), first_config, split="train")
        parts.append(loaded.select_columns([*core, "source", "sample_id"]))
    assert all(part.features == parts[0].features for part in parts)
    mixed = datasets.concatenate_datasets(parts)
    assert mixed.num_rows == sum(p.num_rows for p in parts)
    assert {s.split("@")[0] for s in mixed["source"]} == {"vqa-rad", "pubmedvision", "m3llm-pmc"}


def test_export_command_serves_a_folder_normalized_earlier(mirror: MirrorServer, tmp_path: Path) -> None:
    _fetch("vqa-rad", mirror)
    out = tmp_path / "out"
    assert _normalize("vqa-rad", "--out", str(out)).exit_code == 0
    folder = out / "vqa-rad"
    assert not (folder / "conversations").exists()
    run = CliRunner().invoke(main, ["export", str(folder), "--conversations", "internvl", "--json"])
    assert run.exit_code == 0, run.output
    summary = json.loads(run.stdout)
    assert summary["formats"]["internvl"]["rows"] > 0 and not summary["skipped_up_to_date"]
    assert (folder / "conversations" / "internvl" / "meta.json").is_file()
    again = CliRunner().invoke(main, ["export", str(folder), "--conversations", "internvl"])
    assert again.exit_code == 0 and "conversations (up to date)" in again.stdout


def test_export_command_refuses_a_folder_that_is_not_a_normalize_output(tmp_path: Path) -> None:
    run = CliRunner().invoke(main, ["export", str(tmp_path), "--conversations", "llava"])
    assert run.exit_code == 2 and "medcat-manifest.json" in run.output
    run = CliRunner().invoke(main, ["export", str(tmp_path)])
    assert run.exit_code == 2 and "--conversations" in run.output
