"""The precisionFDA Truth V2 recipe on hand-made truth files: ranges through the tabix index,
bad lines reported once with their line number, stratification sweeps, unsorted BEDs refused."""

from __future__ import annotations

import hashlib
import io
import json
import random
from pathlib import Path

import pytest
from datasets import load_dataset

from medcat_data.converters.codecs.bed import UnsortedInputError
from medcat_data.converters.codecs.tabix import BgzfWriter, TabixWriter
from medcat_data.converters.recipes import precisionfda_truth_v2 as recipe
from medcat_data.converters.recipes.base import RecipeContext, RecipeOptions

from .recipe_run import read_errors, run_recipe


def _truth(root: Path, records: int = 6000, seed: int = 3) -> dict[str, int]:
    """Write VCF + .tbi + BED + two stratifications; return the planted bad lines by kind."""
    rng = random.Random(seed)
    giab, strat = root / "giab", root / "strat"
    (strat / "Union").mkdir(parents=True)
    giab.mkdir()
    buffer = io.BytesIO()
    writer, index = BgzfWriter(buffer), TabixWriter()
    writer.write(b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tHG002\n")
    number, planted = 2, {}
    for contig in ("chr1", "chr2", "chr3"):
        pos = 100
        for i in range(records // 3):
            pos += rng.randint(1, 60)
            gt = "./." if (contig, i) == ("chr2", 1500) else rng.choice(["0/1", "1|1", "0|2", "1/2"])
            alts = "G,T" if "2" in gt else "G"
            noise = "".join(rng.choice("ACGT") for _ in range(40))  # keeps blocks from compressing to nothing
            line = f"{contig}\t{pos}\t.\tA\t{alts}\t30\tPASS\tN={noise}\tGT\t{gt}\n".encode()
            start = writer.tell()
            writer.write(line)
            number += 1
            index.add(contig, pos - 1, pos, start, writer.tell())
            if gt == "./.":
                planted["missing-gt"] = number
            if (contig, i) == ("chr3", 700):
                writer.write(f"chr3\t{pos}z\t.\tA\tG\t30\tPASS\t.\tGT\t0/1\n".encode())
                number += 1
                planted["bad-pos"] = number
    writer.close()
    (giab / recipe.VCF).write_bytes(buffer.getvalue())
    (giab / recipe.TBI).write_bytes(index.to_bytes())
    (giab / recipe.BED).write_text("".join(f"{c}\t0\t{20000 + 100 * k}\n" for k, c in enumerate(("chr1", "chr2", "chr3"))))
    (strat / "Union" / "GRCh38_a.bed").write_text("chr1\t1000\t5000\nchr3\t0\t100000\n")
    (strat / "Union" / "GRCh38_b.bed").write_text("chr2\t500\t600\nchr2\t700\t90000\n")
    (strat / recipe.STRAT_INDEX).write_text("a\tUnion/GRCh38_a.bed\nb\tUnion/GRCh38_b.bed\nc\tUnion/GRCh38_missing.bed.gz\n")
    return planted


def _ctx(root: Path, **extra: str) -> RecipeContext:
    return RecipeContext(
        recipe.DATASET_ID, "v4.2.1", root, "giab", root / "giab",
        options=RecipeOptions(extra=extra), companions={"stratifications": root / "strat"},
    )


def test_ranges_through_the_linear_index_give_the_same_rows_as_whole_contigs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planted = _truth(tmp_path)
    ctx = _ctx(tmp_path)
    whole = run_recipe(recipe, ctx, ["variants"], tmp_path / "whole")
    monkeypatch.setattr(recipe, "UNIT_BYTES", 1)  # every linear-index window in a new block starts a unit
    units = recipe.plan("variants", ctx).units
    assert len(units) > 3 and {u.contig for u in units} == {"chr1", "chr2", "chr3"}  # contigs were cut
    ranged = run_recipe(recipe, ctx, ["variants"], tmp_path / "ranged", jobs=2)
    a = load_dataset(str(whole.out_dir), "variants", split="train")
    b = load_dataset(str(ranged.out_dir), "variants", split="train")
    assert a["sample_id"] == b["sample_id"] and len(a) > 6000
    for out in (whole.out_dir, ranged.out_dir):
        errors = {e["path"]: e["message"] for e in read_errors(out)}
        assert set(errors) == {f"giab/{recipe.VCF}:{planted['missing-gt']}", f"giab/{recipe.VCF}:{planted['bad-pos']}"}
        assert "missing allele" in errors[f"giab/{recipe.VCF}:{planted['missing-gt']}"]
        assert "is not an integer" in errors[f"giab/{recipe.VCF}:{planted['bad-pos']}"]


def test_rows_carry_copies_of_their_alt_regions_and_stratifications(tmp_path: Path) -> None:
    _truth(tmp_path, records=300)
    out = run_recipe(recipe, _ctx(tmp_path), ["variants", "confident-regions"], tmp_path / "out").out_dir
    ds = load_dataset(str(out), "variants", split="train")
    names = ds.features["genotype_class"].names
    for row in ds:
        alleles = row["genotype"].replace("|", "/").split("/")
        copies = alleles.count(str(row["alt_index"]))
        assert names[row["genotype_class"]] == {0: "hom-ref", 1: "het", 2: "hom-alt"}[copies]
        assert row["phased"] == ("|" in row["genotype"])
        pos0 = row["pos"] - 1
        expected = {"chr1": ["a"] if 1000 <= pos0 < 5000 else [], "chr2": ["b"] if 500 <= pos0 < 600 or 700 <= pos0 < 90000 else [], "chr3": ["a"]}
        assert row["stratifications"] == expected[row["chrom"]]
        assert row["in_confident_region"] == (pos0 < 20000 + 100 * int(row["chrom"][3:]) - 100)
    assert {names[c] for c in ds["genotype_class"]} == {"hom-ref", "het", "hom-alt"}
    regions = load_dataset(str(out), "confident-regions", split="train")
    assert regions["end"] == [20000, 20100, 20200] and regions["start"] == [0, 0, 0]


def test_an_unsorted_stratification_stops_planning_with_file_and_line(tmp_path: Path) -> None:
    _truth(tmp_path, records=30)
    (tmp_path / "strat/Union/GRCh38_b.bed").write_text("chr2\t500\t600\nchr1\t1\t2\nchr2\t700\t900\n")
    with pytest.raises(UnsortedInputError, match=r"strat/Union/GRCh38_b\.bed:3: chr2 appears again"):
        recipe.plan("variants", _ctx(tmp_path))


def test_only_produced_configs_are_listed_and_candidates_needs_its_option(tmp_path: Path) -> None:
    _truth(tmp_path, records=30)
    assert recipe.configs(_ctx(tmp_path)) == ["variants", "confident-regions"]
    assert recipe.configs(_ctx(tmp_path, candidates=str(tmp_path / "q.vcf")))[-1] == "candidates"


def test_candidate_genotypes_may_be_incomplete_and_candidates_outside_the_regions_are_counted(tmp_path: Path) -> None:
    """Callers write ``.``, ``./1`` and ``1/.`` for sites they could not fully genotype: rows kept as written."""
    _truth(tmp_path, records=300)
    calls = [
        ("chr1", 5, "./1"), ("chr1", 7, "1/."), ("chr1", 9, "."), ("chr1", 11, "0|."), ("chr1", 13, "x/1"),
        ("chr1", 30000, "./."), ("chr1", 30002, "."), ("chr4", 10, "1/1"),  # outside every benchmark region
    ]
    query = tmp_path / "query.vcf"
    query.write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tQUERY\n"
        + "".join(f"{c}\t{p}\t.\tA\tC\t20\tPASS\t.\tGT:GQ\t{g}:30\n" for c, p, g in calls)
    )
    result = run_recipe(recipe, _ctx(tmp_path, candidates=str(query)), ["candidates"], tmp_path / "out")
    ds = load_dataset(str(result.out_dir), "candidates", split="train")
    assert [(r["pos"], r["genotype"], r["phased"]) for r in ds] == [(5, "./1", False), (7, "1/.", False), (9, ".", False), (11, "0|.", True)]
    errors = read_errors(result.out_dir)
    assert [(e["path"], e["stage"]) for e in errors] == [("query.vcf:7", "parse")]  # only the one that is not a genotype
    assert "x/1" in errors[0]["message"]
    assert "3 candidate allele(s) outside them were dropped" in (result.out_dir / "README.md").read_text()


def test_card_and_manifest_record_the_candidates_by_name_and_sha256_never_their_local_path(tmp_path: Path) -> None:
    _truth(tmp_path, records=300)
    query = tmp_path / "private" / "calls.vcf"
    query.parent.mkdir()
    header = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tQUERY\n"
    query.write_text(header + "chr1\t5\t.\tA\tC\t20\tPASS\t.\tGT\t0/1\n")
    ctx = _ctx(tmp_path, candidates=str(query.resolve()))
    out = run_recipe(recipe, ctx, ["candidates"], tmp_path / "out").out_dir
    for name in ("README.md", "medcat-manifest.json"):
        text = (out / name).read_text(encoding="utf-8")
        assert str(query.parent) not in text and "calls.vcf" in text, name
    options = json.loads((out / "medcat-manifest.json").read_text())["options"]
    assert options["recipe"]["candidates"] == {"name": "calls.vcf", "sha256": hashlib.sha256(query.read_bytes()).hexdigest()}
    # The output depends on the file's content: new calls at the same path rebuild it.
    query.write_text(header + "chr1\t5\t.\tA\tC\t20\tPASS\t.\tGT\t0/1\nchr1\t7\t.\tA\tG\t20\tPASS\t.\tGT\t1/1\n")
    rerun = run_recipe(recipe, ctx, ["candidates"], tmp_path / "out")
    assert not rerun.skipped and rerun.rows["candidates"]["train"] == 2
