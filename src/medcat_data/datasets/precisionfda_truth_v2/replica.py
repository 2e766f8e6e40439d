"""A synthetic GIAB tree: HG002 v4.2.1 GRCh38 truth files, v3.6 stratifications, md5 lists.

Served as a static tree at NCBI's paths (``root/ReferenceSamples/giab/...``), fact sheet §8:
``release/AshkenazimTrio/HG002_NA24385_son/NISTv4.2.1/GRCh38/`` holds the BGZF VCF (written with
our own BGZF writer), its tabix index and the ``_noinconsistent.bed``;
``release/genome-stratifications/v3.6/GRCh38@all/`` holds ``GRCh38-all-stratifications.tsv``
(name TAB relative path), ``GRCh38-genome-stratifications-md5s.txt`` (``md5  relative path``),
``GRCh38-README.md`` and a few BGZF BEDs under ``Union/``, ``SegmentalDuplications/``... The
FTP-wide ``current.tree`` (path, type, size, mtime, md5; tab-separated, paths from ``ftp/``; the
column layout is from third-party use, unconfirmed) lists the truth files. The reference FASTA and
the challenge FASTQs (declared, not fetched by default) are tiny stand-ins at their hosts' paths.

Three contigs, a few dozen records: het, hom-alt, phased, ``1/2`` multi-allelic. Planted bad item:
one chr2 line whose ``POS`` is not a number, inside valid BGZF (not indexed; found by the sweep).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import random
from pathlib import Path

from medcat_data.converters.codecs.tabix import BgzfWriter, TabixWriter
from medcat_data.mirror.replicas.base import Replica

DATASET_ID = "precisionfda-truth-v2"
GIAB = "ReferenceSamples/giab"
TRUTH_DIR = "release/AshkenazimTrio/HG002_NA24385_son/NISTv4.2.1/GRCh38"
STRAT_DIR = "release/genome-stratifications/v3.6/GRCh38@all"
VCF = "HG002_GRCh38_1_22_v4.2.1_benchmark.vcf.gz"
BED = "HG002_GRCh38_1_22_v4.2.1_benchmark_noinconsistent.bed"
CONTIGS = (("chr1", 248_956_422), ("chr2", 242_193_529), ("chr20", 64_444_167))
STRATS = (
    ("alldifficultregions", "Union/GRCh38_alldifficultregions.bed.gz"),
    ("notinalldifficultregions", "Union/GRCh38_notinalldifficultregions.bed.gz"),
    ("alllowmapandsegdupregions", "Union/GRCh38_alllowmapandsegdupregions.bed.gz"),
    ("segdups", "SegmentalDuplications/GRCh38_segdups.bed.gz"),
    ("lowmappabilityall", "Mappability/GRCh38_lowmappabilityall.bed.gz"),
    ("AllTandemRepeatsandHomopolymers_slop5", "LowComplexity/GRCh38_AllTandemRepeatsandHomopolymers_slop5.bed.gz"),
    ("MHC", "OtherDifficult/GRCh38_MHC.bed.gz"),
    ("KIR", "OtherDifficult/GRCh38_KIR.bed.gz"),
    ("gc15", "GCcontent/GRCh38_gc15_slop50.bed.gz"),
)
"""Listed in the index; the registry fetches the first seven by default (the rest stay unfetched)."""
GENOTYPES = ("0/1", "0|1", "1|0", "1/1", "1|1", "0/1", "1/1")
BASES = "ACGT"


def _bgzf(data: bytes) -> bytes:
    buffer = io.BytesIO()
    writer = BgzfWriter(buffer)
    writer.write(data)
    writer.close()
    return buffer.getvalue()


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, mtime=0)


def _records(rng: random.Random) -> list[tuple[str, int, str, list[str], str]]:
    """Return sorted ``(chrom, pos, ref, alts, gt)``; every contig gets a 1/2 record."""
    records = []
    for chrom, _ in CONTIGS:
        pos = rng.randint(10_000, 20_000)
        for i in range(rng.randint(12, 16)):
            pos += rng.randint(50, 4_000)
            ref = rng.choice(BASES)
            if i == 5:
                alts = [b for b in BASES if b != ref][:2]
                gt = rng.choice(["1/2", "1|2"])
            elif i == 8:
                ref, alts, gt = ref + "".join(rng.choice(BASES) for _ in range(3)), [ref], rng.choice(GENOTYPES)  # deletion
            elif i == 9:
                alts, gt = [ref + "".join(rng.choice(BASES) for _ in range(2))], rng.choice(GENOTYPES)  # insertion
            else:
                alts, gt = [rng.choice([b for b in BASES if b != ref])], rng.choice(GENOTYPES)
            records.append((chrom, pos, ref, alts, gt))
    return records


def _vcf(records: list[tuple[str, int, str, list[str], str]], rng: random.Random) -> tuple[bytes, bytes, int]:
    """Return BGZF VCF bytes, its .tbi bytes and the 1-based line number of the planted bad line."""
    header = [
        "##fileformat=VCFv4.2",
        '##FILTER=<ID=PASS,Description="All filters passed">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=PS,Number=1,Type=Integer,Description="Phase set">',
        *(f"##contig=<ID={c},length={n}>" for c, n in CONTIGS),
        "##reference=GRCh38 (synthetic replica)",
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tHG002",
    ]
    buffer = io.BytesIO()
    writer = BgzfWriter(buffer)
    index = TabixWriter()
    writer.write(("\n".join(header) + "\n").encode())
    line_number, bad_line = len(header), 0
    for n, (chrom, pos, ref, alts, gt) in enumerate(records):
        fmt, sample = ("GT:PS", f"{gt}:{pos}") if "|" in gt else ("GT", gt)
        qual = "50" if n % 3 else "."
        line = f"{chrom}\t{pos}\t.\t{ref}\t{','.join(alts)}\t{qual}\tPASS\t.\t{fmt}\t{sample}\n"
        start = writer.tell()
        writer.write(line.encode())
        line_number += 1
        index.add(chrom, pos - 1, pos - 1 + len(ref), start, writer.tell())
        if chrom == "chr2" and n == next(i for i, r in enumerate(records) if r[0] == "chr2") + 3:
            writer.write(f"chr2\t{pos + 7}x\t.\tA\tG\t50\tPASS\t.\tGT\t0/1\n".encode())
            line_number += 1
            bad_line = line_number
    writer.close()
    return buffer.getvalue(), index.to_bytes(), bad_line


def _bed_lines(intervals: list[tuple[str, int, int]]) -> bytes:
    return "".join(f"{c}\t{s}\t{e}\n" for c, s, e in intervals).encode()


def _confident(records: list[tuple[str, int, str, list[str], str]], rng: random.Random) -> list[tuple[str, int, int]]:
    """Cover most records (a few fall outside) with sorted, non-overlapping intervals."""
    out: list[tuple[str, int, int]] = []
    for chrom, _ in CONTIGS:
        positions = [pos for c, pos, *_ in records if c == chrom]
        cursor = positions[0] - 2_000
        for i in range(0, len(positions), 4):
            chunk = positions[i : i + 4]
            start, end = max(cursor, chunk[0] - rng.randint(10, 200)), chunk[-1] + rng.randint(1, 200)
            if i == 4:
                start = chunk[0]  # POS-1 = start - 1 < start: the first record of this run is outside (1-based vs 0-based)
            out.append((chrom, start, end))
            cursor = end + 1
    return out


def _strat(rng: random.Random, records: list[tuple[str, int, str, list[str], str]], share: float) -> list[tuple[str, int, int]]:
    out = []
    for chrom, _ in CONTIGS:
        for c, pos, *_ in records:
            if c == chrom and rng.random() < share:
                out.append((chrom, pos - rng.randint(1, 50), pos + rng.randint(0, 50)))
    merged: list[tuple[str, int, int]] = []
    for item in out:
        if merged and merged[-1][0] == item[0] and item[1] <= merged[-1][2]:
            merged[-1] = (item[0], merged[-1][1], max(merged[-1][2], item[2]))
        else:
            merged.append(item)
    return merged


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _tree_line(rel: str, data: bytes) -> str:
    return f"ftp/{rel}\tfile\t{len(data)}\tFri Jul 30 12:00:00 2021\t{hashlib.md5(data).hexdigest()}\n"


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write the GIAB tree under ``root / ReferenceSamples/giab`` and return its replica."""
    rng = random.Random(f"giab-{seed}")
    base = root / GIAB
    records = _records(rng)
    vcf, tbi, bad_line = _vcf(records, rng)
    confident = _confident(records, rng)
    truth = {VCF: vcf, VCF + ".tbi": tbi, BED: _bed_lines(confident)}
    tree = [f"ftp/{TRUTH_DIR}\tdirectory\t4096\tFri Jul 30 12:00:00 2021\t\n"]
    for name, data in truth.items():
        _write(base / TRUTH_DIR / name, data)
        tree.append(_tree_line(f"{TRUTH_DIR}/{name}", data))

    index_lines, md5_lines = [], []
    for n, (name, rel) in enumerate(STRATS):
        data = _bed_lines(_strat(rng, records, 0.15 + 0.1 * (n % 4)))
        packed = _gzip(data) if name == "MHC" else _bgzf(data)  # one plain-gzip BED: cursors skip lines instead of seeking
        _write(base / STRAT_DIR / rel, packed)
        index_lines.append(f"{name}\t{rel}\n")
        md5_lines.append(f"{hashlib.md5(packed).hexdigest()}  {rel}\n")
    strat_files = {
        "GRCh38-all-stratifications.tsv": "".join(index_lines).encode(),
        "GRCh38-genome-stratifications-md5s.txt": "".join(md5_lines).encode(),
        "GRCh38-README.md": b"# GRCh38 stratifications (synthetic replica)\n\nBED files are 0-based, half-open.\n",
    }
    for name, data in strat_files.items():
        _write(base / STRAT_DIR / name, data)
        tree.append(_tree_line(f"{STRAT_DIR}/{name}", data))

    fasta = _gzip(b">chr1\n" + "".join(rng.choice(BASES) for _ in range(240)).encode() + b"\n")
    fasta_rel = "release/references/GRCh38/GCA_000001405.15_GRCh38_no_alt_analysis_set.fasta.gz"
    _write(base / fasta_rel, fasta)
    tree.append(_tree_line(fasta_rel, fasta))
    (base / "current.tree").write_text("".join(sorted(tree)), encoding="utf-8")

    for mate in ("R1", "R2"):
        reads = "".join(
            f"@synthetic:{i}/{mate[1]}\n{''.join(rng.choice(BASES) for _ in range(30))}\n+\n{'I' * 30}\n" for i in range(4)
        )
        _write(root / f"WGS/precisionFDA_v2_HG002/HG002.novaseq.pcr-free.35x.{mate}.fastq.gz", _gzip(reads.encode()))

    variants = sum(len(alts) for *_, alts, _ in records)
    expected = {
        "configs": {"variants": {"train": variants}, "confident-regions": {"train": len(confident)}},
        "errors": [{"path": f"{VCF}:{bad_line}", "stage": "parse"}],
    }
    return [Replica(DATASET_ID, "giab", expected=expected, group_columns=())]
