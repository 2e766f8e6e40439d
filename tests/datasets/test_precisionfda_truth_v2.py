"""precisionFDA Truth V2 / GIAB HG002: the recipe on hand-made truth files (ranges through the tabix
index, bad lines reported once with their line number, stratification sweeps, unsorted BEDs refused,
candidates labelled against the truth, the ``candidates`` option) and the whole chain over loopback:
GIAB replica → fetch (md5 lists) → verify → normalize --jobs 1/2 → load."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import random
from pathlib import Path
from typing import Any

import datasets
import pytest
from click.testing import CliRunner

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.cli import main
from medcat_data.converters.codecs.bed import UnsortedInputError
from medcat_data.converters.codecs.tabix import BgzfWriter, TabixWriter
from medcat_data.converters.normalize import NormalizeRequest, context_for, normalize, pick_source
from medcat_data.converters.recipe import RecipeContext, RecipeOptions
from medcat_data.datasets.precisionfda_truth_v2 import recipe
from medcat_data.errors import OutputExistsError, UsageError
from medcat_data.mirror.server import MirrorServer
from medcat_data.paths import raw_dir
from tests.datasets.harness import ChainResult, load, normalize_folder, read_errors, run_chain

DATASET = "precisionfda-truth-v2"
RECIPE = recipe.RECIPE
STRAT = "stratifications"
"""The companion source's folder under the dataset root (the registry's ``subdir``)."""


def _truth(root: Path, records: int = 6000, seed: int = 3) -> dict[str, int]:
    """Write VCF + .tbi + BED at ``root`` and two stratifications under ``root/stratifications``
    (the layout a fetch leaves); return the planted bad lines by kind."""
    rng = random.Random(seed)
    strat = root / STRAT
    (strat / "Union").mkdir(parents=True)
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
    (root / recipe.VCF).write_bytes(buffer.getvalue())
    (root / recipe.TBI).write_bytes(index.to_bytes())
    (root / recipe.BED).write_text("".join(f"{c}\t0\t{20000 + 100 * k}\n" for k, c in enumerate(("chr1", "chr2", "chr3"))))
    (strat / "Union" / "GRCh38_a.bed").write_text("chr1\t1000\t5000\nchr3\t0\t100000\n")
    (strat / "Union" / "GRCh38_b.bed").write_text("chr2\t500\t600\nchr2\t700\t90000\n")
    (strat / recipe.STRAT_INDEX).write_text("a\tUnion/GRCh38_a.bed\nb\tUnion/GRCh38_b.bed\nc\tUnion/GRCh38_missing.bed.gz\n")
    return planted


def _ctx(root: Path, **extra: Any) -> RecipeContext:
    """The context normalize builds for a dataset root (the stratifications as a companion)."""
    resolved = resolve(DATASET, load_registry())
    options = RecipeOptions(extra=recipe.TruthOptions(**extra))
    return context_for(resolved.entry, resolved.version, root, pick_source(resolved, None), options)


def _normalize(root: Path, out: Path, configs: tuple[str, ...], jobs: int = 1, **extra: str) -> Path:
    result = normalize_folder(DATASET, root, out, configs=configs, jobs=jobs, options=RecipeOptions(extra=extra))
    return result.out_dir


def test_ranges_through_the_linear_index_give_the_same_rows_as_whole_contigs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    planted = _truth(root)
    whole = _normalize(root, tmp_path / "whole", ("variants",))
    monkeypatch.setattr(recipe, "UNIT_BYTES", 1)  # every linear-index window in a new block starts a unit
    ctx = _ctx(root)
    units = RECIPE.plan("variants", ctx, RECIPE.survey(ctx)).units
    assert len(list(units)) > 3 and {u.contig for u in units} == {"chr1", "chr2", "chr3"}  # type: ignore[union-attr]
    ranged = _normalize(root, tmp_path / "ranged", ("variants",), jobs=2)
    a = load(whole, "variants")["train"]
    b = load(ranged, "variants")["train"]
    assert a["sample_id"] == b["sample_id"] and len(a) > 6000
    for out in (whole, ranged):
        errors = {e["path"]: e["message"] for e in read_errors(out)}
        assert set(errors) == {f"{recipe.VCF}:{planted['missing-gt']}", f"{recipe.VCF}:{planted['bad-pos']}"}
        assert "missing allele" in errors[f"{recipe.VCF}:{planted['missing-gt']}"]
        assert "is not an integer" in errors[f"{recipe.VCF}:{planted['bad-pos']}"]


def test_rows_carry_copies_of_their_alt_regions_and_stratifications(tmp_path: Path) -> None:
    _truth(tmp_path / "root", records=300)
    out = _normalize(tmp_path / "root", tmp_path / "out", ("variants", "confident-regions"))
    ds = load(out, "variants")["train"]
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
    regions = load(out, "confident-regions")["train"]
    assert regions["end"] == [20000, 20100, 20200] and regions["start"] == [0, 0, 0]
    assert "2 of 3 GIAB v3.6 GRCh38 stratification BEDs were fetched and used (a, b)" in (out / "README.md").read_text()


def test_an_unsorted_stratification_stops_planning_with_file_and_line(tmp_path: Path) -> None:
    _truth(tmp_path, records=30)
    (tmp_path / STRAT / "Union/GRCh38_b.bed").write_text("chr2\t500\t600\nchr1\t1\t2\nchr2\t700\t900\n")
    with pytest.raises(UnsortedInputError, match=r"stratifications/Union/GRCh38_b\.bed:3: chr2 appears again"):
        RECIPE.survey(_ctx(tmp_path))


def test_a_bed_rewritten_in_place_is_read_again_not_taken_from_an_earlier_run(tmp_path: Path) -> None:
    """Same size and modification time, other content: nothing of the first run is remembered."""
    root = tmp_path / "root"
    _truth(root, records=30)
    first = _normalize(root, tmp_path / "first", ("confident-regions",))
    bed = root / recipe.BED
    stat = bed.stat()
    bed.write_text(bed.read_text().replace("chr3", "chr4"))
    os.utime(bed, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    second = _normalize(root, tmp_path / "second", ("confident-regions",))
    assert load(first, "confident-regions")["train"]["chrom"] == ["chr1", "chr2", "chr3"]
    assert load(second, "confident-regions")["train"]["chrom"] == ["chr1", "chr2", "chr4"]


def test_only_produced_configs_are_listed_and_candidates_needs_its_option(tmp_path: Path) -> None:
    _truth(tmp_path / "root", records=30)
    (tmp_path / "q.vcf").write_text("")
    ctx = _ctx(tmp_path / "root")
    assert RECIPE.configs(ctx, RECIPE.survey(ctx)) == ["variants", "confident-regions"]
    given = _ctx(tmp_path / "root", candidates=tmp_path / "q.vcf")
    assert RECIPE.configs(given, RECIPE.survey(given))[-1] == "candidates"
    with pytest.raises(UsageError, match=r"needs a query VCF: pass --option candidates=FILE\.$"):
        _normalize(tmp_path / "root", tmp_path / "out", ("candidates",))
    with pytest.raises(UsageError, match=r"option candidates: '.*missing\.vcf' is not a file"):
        _normalize(tmp_path / "root", tmp_path / "out", ("candidates",), candidates=str(tmp_path / "missing.vcf"))


def test_normalize_help_lists_the_candidates_option_with_its_help() -> None:
    result = CliRunner().invoke(main, ["normalize", DATASET, "--help"])
    assert result.exit_code == 0, result.output
    assert "--option candidates=FILE" in result.output
    assert "a VCF of candidate calls to label (config `candidates`)" in " ".join(result.output.split())


def test_candidate_genotypes_may_be_incomplete_and_candidates_outside_the_regions_are_counted(tmp_path: Path) -> None:
    """Callers write ``.``, ``./1`` and ``1/.`` for sites they could not fully genotype: rows kept as written."""
    _truth(tmp_path / "root", records=300)
    calls = [
        ("chr1", 5, "./1"), ("chr1", 7, "1/."), ("chr1", 9, "."), ("chr1", 11, "0|."), ("chr1", 13, "x/1"),
        ("chr1", 30000, "./."), ("chr1", 30002, "."), ("chr4", 10, "1/1"),  # outside every benchmark region
    ]
    query = tmp_path / "query.vcf"
    query.write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tQUERY\n"
        + "".join(f"{c}\t{p}\t.\tA\tC\t20\tPASS\t.\tGT:GQ\t{g}:30\n" for c, p, g in calls)
    )
    out = _normalize(tmp_path / "root", tmp_path / "out", ("candidates",), candidates=str(query))
    ds = load(out, "candidates")["train"]
    assert [(r["pos"], r["genotype"], r["phased"]) for r in ds] == [(5, "./1", False), (7, "1/.", False), (9, ".", False), (11, "0|.", True)]
    errors = read_errors(out)
    assert [(e["path"], e["stage"]) for e in errors] == [("query.vcf:7", "parse")]  # only the one that is not a genotype
    assert "x/1" in errors[0]["message"]
    assert "3 candidate allele(s) outside them were dropped" in (out / "README.md").read_text()


def test_card_and_manifest_record_the_candidates_by_name_and_sha256_never_their_local_path(tmp_path: Path) -> None:
    _truth(tmp_path / "root", records=300)
    query = tmp_path / "private" / "calls.vcf"
    query.parent.mkdir()
    header = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tQUERY\n"
    query.write_text(header + "chr1\t5\t.\tA\tC\t20\tPASS\t.\tGT\t0/1\n")
    out = _normalize(tmp_path / "root", tmp_path / "out", ("candidates",), candidates=str(query))
    for name in ("README.md", "medcat-manifest.json"):
        text = (out / name).read_text(encoding="utf-8")
        assert str(query.parent) not in text and "calls.vcf" in text, name
    options = json.loads((out / "medcat-manifest.json").read_text())["options"]
    assert options["recipe"]["candidates"] == {"name": "calls.vcf", "sha256": hashlib.sha256(query.read_bytes()).hexdigest()}
    # The output depends on the file's content: new calls at the same path are other inputs, which
    # replace the output only when asked to (the difference is named), then rebuild it.
    query.write_text(header + "chr1\t5\t.\tA\tC\t20\tPASS\t.\tGT\t0/1\nchr1\t7\t.\tA\tG\t20\tPASS\t.\tGT\t1/1\n")
    options = RecipeOptions(extra={"candidates": str(query)})
    with pytest.raises(OutputExistsError, match=r"recipe\.candidates\.sha256"):
        normalize_folder(DATASET, tmp_path / "root", tmp_path / "out", configs=("candidates",), options=options)
    rerun = normalize_folder(DATASET, tmp_path / "root", tmp_path / "out", configs=("candidates",), options=options, overwrite=True)
    assert not rerun.write.skipped and rerun.write.rows["candidates"]["train"] == 2


# ------------------------------------------------------------------------------------- the chain


def _rows(result: ChainResult, config: str) -> list[dict[str, Any]]:
    return list(result.loaded[config]["train"])


@pytest.mark.integration
def test_chain_gives_variants_per_alt_allele_and_confident_regions(mirror: MirrorServer, tmp_path: Path) -> None:
    """het and hom-alt rows exist, each 1/2 record gives two het rows, the broken POS line is in
    errors.jsonl with its line number (run_chain checks the path ``<vcf>:<line>``)."""
    result = run_chain(DATASET, mirror, tmp_path)
    rows = _rows(result, "variants")
    names = result.loaded["variants"]["train"].features["genotype_class"].names
    classes = {names[r["genotype_class"]] for r in rows}
    assert {"het", "hom-alt"} <= classes
    multi = [r for r in rows if r["genotype"] in ("1/2", "1|2")]
    assert multi and len(multi) % 2 == 0
    for row in multi:
        assert names[row["genotype_class"]] == "het"
    by_site: dict[tuple[object, object], list[int]] = {}
    for row in multi:
        by_site.setdefault((row["chrom"], row["pos"]), []).append(row["alt_index"])
    assert all(sorted(v) == [1, 2] for v in by_site.values())
    assert any(r["phased"] for r in rows) and not all(r["phased"] for r in rows)
    assert any(r["in_confident_region"] for r in rows) and not all(r["in_confident_region"] for r in rows)
    assert any(r["stratifications"] for r in rows)
    assert {r["chrom"] for r in rows} == {"chr1", "chr2", "chr20"}
    errors = read_errors(result.out_dir)
    assert "not an integer" in errors[0]["message"]
    regions = _rows(result, "confident-regions")
    assert all(r["start"] < r["end"] for r in regions)
    readme = (result.out_dir / "README.md").read_text()
    assert "v4.1" in readme

    # The fetch verified the truth files against current.tree and the BEDs against GIAB's md5 list;
    # the FASTA and FASTQs stay unfetched.
    manifest = json.loads((raw_dir(DATASET, result.resolved.version) / ".medcat/manifest.json").read_text())
    files = manifest["files"]
    assert files["HG002_GRCh38_1_22_v4.2.1_benchmark.vcf.gz"]["algorithm"] == "md5"
    assert files["stratifications/Union/GRCh38_alldifficultregions.bed.gz"]["algorithm"] == "md5"
    assert not any(k.startswith(("reference/", "challenge-fastq/")) for k in files)


def _candidates_vcf(path: Path, truth_rows: list[dict[str, Any]], regions: list[dict[str, Any]]) -> dict[str, str]:
    """Write a sorted query VCF: a truth site with its ALT, a truth site with another ALT, a site
    inside the BED absent from the truth, and a site outside every region; return expected labels."""
    inside = next(r for r in truth_rows if r["in_confident_region"] and r["chrom"] == "chr1")
    other = next(r for r in truth_rows if r["in_confident_region"] and r["chrom"] == "chr1" and r["pos"] != inside["pos"] and r["alt_index"] == 1)
    region = next(g for g in regions if g["chrom"] == "chr20")
    absent = int(region["start"]) + 1  # 1-based POS of the region's first base
    truth_positions = {(r["chrom"], r["pos"]) for r in truth_rows}
    while ("chr20", absent) in truth_positions:
        absent += 1
    other_alt = next(b for b in "ACGT" if b != other["alt"] and b != other["ref"])
    lines = [
        ("chr1", inside["pos"], inside["ref"], inside["alt"], "0/1"),
        ("chr1", other["pos"], other["ref"], other_alt if len(str(other["ref"])) == 1 else "T", "0/1"),
        ("chr20", absent, "A", "C", "0|1"),
        ("chr20", 1, "A", "G", "1/1"),  # before every region: dropped
    ]
    lines.sort(key=lambda x: (x[0], x[1]))
    text = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tQUERY\n"
    text += "".join(f"{c}\t{p}\t.\t{r}\t{a}\t30\tPASS\t.\tGT\t{g}\n" for c, p, r, a, g in lines)
    path.write_text(text)
    return {f"chr1:{inside['pos']}": "truth", f"chr1:{other['pos']}": "truth-other-allele", f"chr20:{absent}": "confident-absent"}


@pytest.mark.integration
def test_candidates_are_labelled_against_the_truth_inside_the_benchmark_regions(mirror: MirrorServer, tmp_path: Path) -> None:
    first = run_chain(DATASET, mirror, tmp_path / "plain")
    names = first.loaded["variants"]["train"].features["genotype_class"].names
    truth = [{**r, "genotype_class": names[r["genotype_class"]]} for r in _rows(first, "variants")]
    expected = _candidates_vcf(tmp_path / "query.vcf", truth, _rows(first, "confident-regions"))
    resolved = resolve(DATASET, load_registry())
    options = RecipeOptions(extra={"candidates": str(tmp_path / "query.vcf")})
    result = normalize(NormalizeRequest(resolved, tmp_path / "out", configs=("candidates",), jobs=1, options=options))
    ds = datasets.load_dataset(str(result.out_dir), "candidates", split="train")
    labels = {f"{r['chrom']}:{r['pos']}": r for r in ds}
    assert {k: v["label_source"] for k, v in labels.items()} == expected, (tmp_path / "query.vcf").read_text()
    match = next(v for v in labels.values() if v["label_source"] == "truth")
    truth_row = next(t for t in truth if (t["chrom"], t["pos"], t["alt"]) == (match["chrom"], match["pos"], match["alt"]))
    cls = ds.features["genotype_class"].names
    assert cls[match["genotype_class"]] == truth_row["genotype_class"]
    assert all(cls[v["genotype_class"]] == "hom-ref" for v in labels.values() if v["label_source"] != "truth")
    assert "1 candidate allele(s) outside them were dropped" in (result.out_dir / "README.md").read_text()

    # Without the option the config is refused with the option to pass; one config builds alone.
    with pytest.raises(UsageError, match="--option candidates=FILE"):
        normalize(NormalizeRequest(resolved, tmp_path / "out2", configs=("candidates",), jobs=1))
    only = normalize(NormalizeRequest(resolved, tmp_path / "out3", configs=("variants",), jobs=1))
    assert {p.parent.name for p in only.out_dir.rglob("*.parquet")} <= {"variants", "train"}
    assert not (only.out_dir / "confident-regions").exists()


@pytest.mark.integration
def test_a_truncated_gzip_candidates_file_is_an_errors_line_with_file_line_and_config(mirror: MirrorServer, tmp_path: Path) -> None:
    plain = run_chain(DATASET, mirror, tmp_path / "plain")
    planted = read_errors(plain.out_dir)
    assert planted and all(e["config"] == "variants" and "split" in e for e in planted), planted

    text = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tQUERY\n"
    text += "".join(f"chr1\t{pos}\t.\tA\tC\t30\tPASS\t.\tGT\t0/1\n" for pos in range(1, 3001))
    data = gzip.compress(text.encode(), mtime=0)
    query = tmp_path / "query.vcf.gz"
    query.write_bytes(data[: len(data) // 2])
    options = RecipeOptions(extra={"candidates": str(query)})
    result = normalize(NormalizeRequest(plain.resolved, tmp_path / "out", configs=("candidates",), options=options))
    errors = read_errors(result.out_dir)
    assert len(errors) == 1, errors
    (error,) = errors
    assert error["path"].startswith("query.vcf.gz:") and int(error["path"].split(":")[1]) > 2
    assert (error["stage"], error["config"]) == ("read", "candidates")
    assert "the gzip stream ends early: the file is truncated" in error["message"]
