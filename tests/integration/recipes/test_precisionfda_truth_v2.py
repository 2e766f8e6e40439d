"""precisionFDA Truth V2 / GIAB HG002 end to end: GIAB replica → fetch (md5 lists) → verify → normalize → load."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from medcat_data.catalog.refs import resolve
from medcat_data.catalog.registry import load_registry
from medcat_data.converters.normalize import NormalizeRequest, normalize
from medcat_data.converters.recipes.base import RecipeOptions
from medcat_data.errors import UsageError
from medcat_data.mirror.server import MirrorServer
from medcat_data.paths import raw_dir
from tests.integration.recipes.harness import run_chain

pytestmark = pytest.mark.integration

DATASET = "precisionfda-truth-v2"


def _rows(result: object, config: str) -> list[dict[str, object]]:
    return list(result.loaded[config]["train"])  # type: ignore[attr-defined]


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
        by_site.setdefault((row["chrom"], row["pos"]), []).append(row["alt_index"])  # type: ignore[arg-type]
    assert all(sorted(v) == [1, 2] for v in by_site.values())
    assert any(r["phased"] for r in rows) and not all(r["phased"] for r in rows)
    assert any(r["in_confident_region"] for r in rows) and not all(r["in_confident_region"] for r in rows)
    assert any(r["stratifications"] for r in rows)
    assert {r["chrom"] for r in rows} == {"chr1", "chr2", "chr20"}
    errors = [json.loads(line) for line in (result.out_dir / "errors.jsonl").read_text().splitlines()]
    assert "not an integer" in errors[0]["message"]
    regions = _rows(result, "confident-regions")
    assert all(r["start"] < r["end"] for r in regions)  # type: ignore[operator]
    readme = (result.out_dir / "README.md").read_text()
    assert "v4.1" in readme


def test_fetch_verifies_truth_files_and_beds_against_giab_md5_lists(mirror: MirrorServer, tmp_path: Path) -> None:
    """current.tree covers the VCF, the GIAB md5s list covers the BEDs; FASTA and FASTQs stay unfetched."""
    result = run_chain(DATASET, mirror, tmp_path)
    manifest = json.loads((raw_dir(DATASET, result.resolved.version) / ".medcat/manifest.json").read_text())
    files = manifest["files"]
    vcf = files["HG002_GRCh38_1_22_v4.2.1_benchmark.vcf.gz"]
    assert vcf["algorithm"] == "md5"
    bed = files["stratifications/Union/GRCh38_alldifficultregions.bed.gz"]
    assert bed["algorithm"] == "md5"
    assert not any(k.startswith(("reference/", "challenge-fastq/")) for k in files)


def _candidates_vcf(path: Path, truth_rows: list[dict[str, object]], regions: list[dict[str, object]]) -> dict[str, str]:
    """Write a sorted query VCF: a truth site with its ALT, a truth site with another ALT, a site
    inside the BED absent from the truth, and a site outside every region; return expected labels."""
    inside = next(r for r in truth_rows if r["in_confident_region"] and r["chrom"] == "chr1")
    other = next(r for r in truth_rows if r["in_confident_region"] and r["chrom"] == "chr1" and r["pos"] != inside["pos"] and r["alt_index"] == 1)
    region = next(g for g in regions if g["chrom"] == "chr20")
    absent = int(region["start"]) + 1 + 0  # 1-based POS of the region's first base
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
    lines.sort(key=lambda x: (x[0], x[1]))  # type: ignore[arg-type, return-value]
    text = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tQUERY\n"
    text += "".join(f"{c}\t{p}\t.\t{r}\t{a}\t30\tPASS\t.\tGT\t{g}\n" for c, p, r, a, g in lines)
    path.write_text(text)
    return {f"chr1:{inside['pos']}": "truth", f"chr1:{other['pos']}": "truth-other-allele", f"chr20:{absent}": "confident-absent"}


def test_candidates_are_labelled_against_the_truth_inside_the_benchmark_regions(mirror: MirrorServer, tmp_path: Path) -> None:
    first = run_chain(DATASET, mirror, tmp_path / "plain")
    names = first.loaded["variants"]["train"].features["genotype_class"].names
    truth = [{**r, "genotype_class": names[r["genotype_class"]]} for r in _rows(first, "variants")]
    expected = _candidates_vcf(tmp_path / "query.vcf", truth, _rows(first, "confident-regions"))
    resolved = resolve(DATASET, load_registry())
    options = RecipeOptions(extra={"candidates": str(tmp_path / "query.vcf")})
    result = normalize(NormalizeRequest(resolved, tmp_path / "out", configs=("candidates",), jobs=1, options=options))
    import datasets

    ds = datasets.load_dataset(str(result.out_dir), "candidates", split="train")
    labels = {f"{r['chrom']}:{r['pos']}": r for r in ds}
    assert {k: v["label_source"] for k, v in labels.items()} == expected, (tmp_path / "query.vcf").read_text()
    match = next(v for v in labels.values() if v["label_source"] == "truth")
    truth_row = next(t for t in truth if (t["chrom"], t["pos"], t["alt"]) == (match["chrom"], match["pos"], match["alt"]))
    cls = ds.features["genotype_class"].names
    assert cls[match["genotype_class"]] == truth_row["genotype_class"]
    assert all(cls[v["genotype_class"]] == "hom-ref" for v in labels.values() if v["label_source"] != "truth")
    assert "1 candidate allele(s) outside them were dropped" in (result.out_dir / "README.md").read_text()


def test_candidates_config_without_the_option_is_a_usage_error(mirror: MirrorServer, tmp_path: Path) -> None:
    run_chain(DATASET, mirror, tmp_path)
    resolved = resolve(DATASET, load_registry())
    with pytest.raises(UsageError, match="--candidates"):
        normalize(NormalizeRequest(resolved, tmp_path / "out2", configs=("candidates",), jobs=1))
    only = normalize(NormalizeRequest(resolved, tmp_path / "out3", configs=("variants",), jobs=1))
    assert {p.parent.name for p in only.out_dir.rglob("*.parquet")} <= {"variants", "train"}
    assert not (only.out_dir / "confident-regions").exists()
