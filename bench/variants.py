"""Benchmark the ``variants`` config of precisionfda-truth-v2 against a plain loop (not a test).

Run on an otherwise idle machine and paste the printed Markdown into ``docs/benchmarks.md``
(section "Variants")::

    python bench/variants.py                         # 1M records, 20 stratification BEDs, RSS 100k vs 1M
    python bench/variants.py --records 100000 --repeat 1   # a quick smoke run

Inputs are generated (synthetic, seeded) in the layout of a fetched cache: a BGZF truth VCF with
its tabix index (our writer), a benchmark BED covering ~90 % of 22 contigs, and ``--beds``
BGZF stratification BEDs listed in ``GRCh38-all-stratifications.tsv``. About 8 % of records are
``1/2`` (two rows), the rest ``0/1``, ``1/1`` or phased.

What it compares, each in a fresh process, repeats interleaved, medians reported:

* **medcat**: the recipe through normalize's own conversion path (``plan`` -> executor ->
  parquet writer with the recipe's ``WRITER_OPTIONS``, card, manifest), in-process executor
  (``--jobs 1``) and two workers; the CLI on top adds argument parsing and the fetched-state
  check only. With all ``--beds`` BEDs.
* **plain loop**: ``gzip`` + ``bytes.split`` + pyarrow ``ParquetWriter``, writing the same columns
  (a row per ALT, genotype class, phasing, in_confident_region by a sorted sweep) but no
  stratifications: the floor of any converter in Python.
* **peak RSS** of the medcat process at 100k and at ``--records`` records.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
CONTIGS = [(f"chr{i}", n) for i, n in enumerate(
    [248_956_422, 242_193_529, 198_295_559, 190_214_555, 181_538_259, 170_805_979, 159_345_973, 145_138_636, 138_394_717,
     133_797_422, 135_086_622, 133_275_309, 114_364_328, 107_043_718, 101_991_189, 90_338_345, 83_257_441, 80_373_285,
     58_617_616, 64_444_167, 46_709_983, 50_818_468], 1)]


def generate(root: Path, records: int, beds: int, seed: int = 0) -> None:
    """Write ``root/giab`` (VCF, .tbi, BED) and ``root/strat`` (index + ``beds`` BGZF BEDs)."""
    from medcat_data.converters.codecs.tabix import BgzfWriter, TabixWriter
    from medcat_data.datasets.precisionfda_truth_v2 import recipe

    rng = random.Random(seed)
    giab, strat = root / "giab", root / "strat"
    giab.mkdir(parents=True, exist_ok=True)
    (strat / "Union").mkdir(parents=True, exist_ok=True)
    total = sum(n for _, n in CONTIGS)
    genotypes = ["0/1"] * 40 + ["0|1"] * 20 + ["1|0"] * 10 + ["1/1"] * 20 + ["1|2"] * 4 + ["1/2"] * 4 + ["1|1"] * 2
    with open(giab / recipe.VCF, "wb") as handle:
        writer, index = BgzfWriter(handle), TabixWriter()
        writer.write(b"##fileformat=VCFv4.2\n##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n"
                     b"#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tHG002\n")
        for contig, length in CONTIGS:
            count = max(1, records * length // total)
            step = length // count
            pos = 0
            lines = []
            for _ in range(count):
                pos += rng.randint(1, 2 * step - 1)
                gt = rng.choice(genotypes)
                ref = rng.choice("ACGT")
                alt = "G,T" if "2" in gt else rng.choice("CT")
                ps = f"GT:PS\t{gt}:{pos}" if "|" in gt else f"GT\t{gt}"
                lines.append((pos, ref, f"{contig}\t{pos}\t.\t{ref}\t{alt}\t50\tPASS\t.\t{ps}\n".encode()))
            for pos, ref, line in lines:
                start = writer.tell()
                writer.write(line)
                index.add(contig, pos - 1, pos, start, writer.tell())
        writer.close()
    (giab / recipe.TBI).write_bytes(index.to_bytes())

    def intervals(mean_len: int, mean_gap: int) -> bytes:
        out = io.StringIO()
        for contig, length in CONTIGS:
            pos = rng.randint(0, mean_gap)
            while pos < length:
                end = pos + rng.randint(1, 2 * mean_len)
                out.write(f"{contig}\t{pos}\t{end}\n")
                pos = end + rng.randint(1, 2 * mean_gap)
        return out.getvalue().encode()

    (giab / recipe.BED).write_bytes(intervals(30_000, 3_000))
    lines = []
    for k in range(beds):
        name = f"strat{k:02d}"
        buffer = io.BytesIO()
        bgzf = BgzfWriter(buffer)
        bgzf.write(intervals(500 + 300 * k, 60_000 + 10_000 * k))  # about 20k-50k intervals each
        bgzf.close()
        (strat / "Union" / f"GRCh38_{name}.bed.gz").write_bytes(buffer.getvalue())
        lines.append(f"{name}\tUnion/GRCh38_{name}.bed.gz\n")
    (strat / recipe.STRAT_INDEX).write_text("".join(lines))


RUN_MEDCAT = r'''
import resource, sys, pathlib
from medcat_data.datasets.precisionfda_truth_v2.recipe import RECIPE
from medcat_data.converters.recipe import RecipeContext
from medcat_data.converters.card import CardInfo
from medcat_data.converters.executor import convert_units
from medcat_data.converters.build_manifest import BuildKey
from medcat_data.converters.writer import ConfigSpec, DatasetSpec, write_dataset
if __name__ == "__main__":
    root, out, jobs = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
    ctx = RecipeContext(RECIPE.DATASET_ID, "v4.2.1", root, "giab", root / "giab", companions={"stratifications": root / "strat"})
    survey = RECIPE.survey(ctx)
    spec = DatasetSpec(source=ctx.source_tag, configs=(ConfigSpec("variants", RECIPE.features("variants", ctx, survey)),),
                       card=CardInfo(pretty_name="bench", summary="bench", notes=tuple(RECIPE.card_notes(ctx, survey))))
    units = RECIPE.plan("variants", ctx, survey).units
    write_dataset(out, spec, BuildKey(inputs=(), options={}), convert_units(units, RECIPE.convert_unit, spec.encoder(), jobs=jobs),
                  RECIPE.WRITER_OPTIONS)  # as normalize passes them
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
'''

PLAIN_LOOP = r'''
import gzip, sys, pathlib, pyarrow as pa, pyarrow.parquet as pq
root, out = pathlib.Path(sys.argv[1]), sys.argv[2]
giab = root / "giab"
vcf = next(giab.glob("*.vcf.gz")); bed = next(giab.glob("*.bed"))
schema = pa.schema([("chrom", pa.string()), ("pos", pa.int64()), ("id", pa.string()), ("ref", pa.string()), ("alt", pa.string()),
    ("qual", pa.float64()), ("filter", pa.string()), ("genotype", pa.string()), ("phased", pa.bool_()), ("alt_index", pa.int32()),
    ("genotype_class", pa.int64()), ("in_confident_region", pa.bool_()), ("sample_id", pa.string())])
regions = {}
for line in open(bed, "rb"):
    c, s, e = line.split(b"\t")[:3]
    regions.setdefault(c, []).append((int(s), int(e)))
cols = {n: [] for n in schema.names}
def flush(writer):
    writer.write_table(pa.table(cols, schema=schema))
    for v in cols.values():
        v.clear()
with pq.ParquetWriter(out, schema) as writer, gzip.open(vcf, "rb") as stream:
    contig, ivs, k = None, [], 0
    for line in stream:
        if line[:1] == b"#":
            continue
        f = line.rstrip(b"\n").split(b"\t")
        if f[0] != contig:
            contig, ivs, k = f[0], regions.get(f[0], []), 0
        pos = int(f[1]); pos0 = pos - 1
        while k < len(ivs) and ivs[k][1] <= pos0:
            k += 1
        inside = k < len(ivs) and ivs[k][0] <= pos0
        gt = f[9].split(b":", 1)[0].decode()
        phased = "|" in gt
        alleles = gt.replace("|", "/").split("/")
        chrom, ref = f[0].decode(), f[3].decode()
        for i, alt in enumerate(f[4].decode().split(","), 1):
            copies = alleles.count(str(i))
            cols["chrom"].append(chrom); cols["pos"].append(pos); cols["id"].append(None); cols["ref"].append(ref)
            cols["alt"].append(alt); cols["qual"].append(float(f[5])); cols["filter"].append(f[6].decode())
            cols["genotype"].append(gt); cols["phased"].append(phased); cols["alt_index"].append(i)
            cols["genotype_class"].append(0 if copies == 0 else 2 if copies == len(alleles) else 1)
            cols["in_confident_region"].append(inside); cols["sample_id"].append(f"{chrom}:{pos}:{ref}>{alt}")
        if len(cols["pos"]) >= 65536:
            flush(writer)
    flush(writer)
'''


def _timed(command: list[str], out: Path | None = None) -> tuple[float, str]:
    if out is not None and out.is_dir():  # the writer skips an up-to-date output: start from nothing
        shutil.rmtree(out)
    elif out is not None:
        out.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - start, done.stdout


def _fmt(values: list[float]) -> str:
    med = statistics.median(values)
    return f"{med:.1f} s" if len(values) == 1 else f"{med:.1f} s ({min(values):.1f}-{max(values):.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000, help="record count of the RSS comparison point")
    parser.add_argument("--beds", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--work", type=Path, default=None)
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="medcat-bench-variants-"))
    big, small = work / f"r{args.records}", work / f"r{args.small}"
    for root, n in ((big, args.records), (small, args.small)):
        if not (root / "giab").exists():
            generate(root, n, args.beds)
    medcat = [PY, "-c", RUN_MEDCAT]
    times: dict[str, list[float]] = {"medcat j1": [], "medcat j2": [], "plain": []}
    rss: dict[str, float] = {}
    for _ in range(args.repeat):
        for jobs in (1, 2):
            seconds, out = _timed([*medcat, str(big), str(work / f"out-j{jobs}"), str(jobs)], work / f"out-j{jobs}")
            times[f"medcat j{jobs}"].append(seconds)
            rss[f"j{jobs}"] = max(int(v) for v in out.split()) / 1024
        seconds, _ = _timed([PY, "-c", PLAIN_LOOP, str(big), str(work / "plain.parquet")], work / "plain.parquet")
        times["plain"].append(seconds)
    _, out = _timed([*medcat, str(small), str(work / "out-small"), "1"], work / "out-small")
    rss["small"] = max(int(v) for v in out.split()) / 1024
    from medcat_data.datasets.precisionfda_truth_v2 import recipe

    rows = __import__("pyarrow.parquet", fromlist=["x"]).read_metadata(work / "plain.parquet").num_rows
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"{args.records:,} synthetic records ({rows:,} rows, one per ALT), 22 contigs, {args.beds} stratification BEDs, "
          f"UNIT_BYTES {recipe.UNIT_BYTES}; {platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} cores, median of {args.repeat}:\n")
    print("| run | time | records/s | vs plain loop |")
    print("|---|---:|---:|---:|")
    for name, label in (("plain", "plain loop (gzip, split, pyarrow; no stratifications)"),
                        ("medcat j1", f"medcat `variants`, {args.beds} stratifications, --jobs 1"),
                        ("medcat j2", f"medcat `variants`, {args.beds} stratifications, --jobs 2")):
        print(f"| {label} | {_fmt(times[name])} | {args.records / med[name]:,.0f} | {med['plain'] / med[name]:.2f}x |")
    print(f"\nPeak RSS (largest process), --jobs 1: {rss['small']:.0f} MiB at {args.small:,} records, "
          f"{rss['j1']:.0f} MiB at {args.records:,} ({rss['j1'] / rss['small']:.2f}x); --jobs 2: {rss['j2']:.0f} MiB.")


if __name__ == "__main__":
    main()
