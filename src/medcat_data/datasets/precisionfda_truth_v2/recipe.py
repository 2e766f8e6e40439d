"""precisionFDA Truth Challenge V2 / GIAB HG002 v4.2.1 GRCh38 -> variant-calling and tabular configs.

``variants``: one row per ALT allele of each truth VCF record (``1/2`` gives two ``het`` rows).
``genotype`` is ``GT`` as written; ``phased`` is true when every separator is ``|``;
``genotype_class`` counts copies of *that* ALT (0 hom-ref, 1 het, all hom-alt);
``in_confident_region`` tests ``POS`` against ``_noinconsistent.bed`` (BED 0-based half-open, VCF
1-based: inside when ``start <= POS-1 < end``); ``stratifications`` lists the names (first column
of ``GRCh38-all-stratifications.tsv``) of the fetched stratification BEDs holding ``POS``. A record
whose ``GT`` has a missing allele (``./.``) or whose line cannot be read is a ``SampleError`` naming
the VCF and its line number.

A work unit is a contig, found through the ``.tbi`` (its first virtual offset), cut into ranges of
16 kbp linear-index windows spanning about ``UNIT_BYTES`` compressed bytes so that a unit's rows stay
bounded on chr1. A unit seeks straight to its range and sweeps it once: one cursor per BED moves
forward with the positions, so memory does not grow with the VCF or the BEDs. The BEDs are checked
once in the planning pass: an unsorted BED stops the run with its file and line.

``confident-regions``: one row per interval of the benchmark BED (``start`` 0-based, ``end``
exclusive), a unit per contig. ``candidates`` (only with ``--option candidates=VCF``): each ALT of each
candidate record labelled by position against the truth, DeepVariant-style: outside the BED it is
dropped (and counted in the card); inside, a truth record at the same position and with that ALT
gives its copies (``label_source`` ``truth``), the same position with other ALTs gives ``hom-ref``
(``truth-other-allele``), no truth record gives ``hom-ref`` (``confident-absent``). The candidate
file is swept in one unit (it must be sorted like the truth); its own ``GT`` is kept as written and
may be incomplete (``.``, ``./1``, ``1/.``): only truth calls must be complete. Candidates outside
the BED are counted, never errors, whatever their ``GT``.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from datasets import Features, Value

from medcat_data.converters.codecs.bed import BedIndex, RegionCursor, TagSweep, iter_intervals, scan_bed
from medcat_data.converters.codecs.tabix import TabixIndex, lines_before, open_at, read_tbi
from medcat_data.converters.codecs.vcf import (
    GENOTYPE_CLASSES,
    VcfLineError,
    VcfRecord,
    genotype_class,
    iter_data_lines,
    parse_genotype,
    parse_record,
)
from medcat_data.converters.recipe import Plan, Recipe, RecipeContext
from medcat_data.converters.schemas import tabular_features, variant_calling_features
from medcat_data.converters.units import Columns, Row
from medcat_data.converters.writer import WriterOptions
from medcat_data.errors import SampleError, UsageError

__all__ = ["RECIPE", "CandidateUnit", "PrecisionFdaTruthV2", "RegionUnit", "Survey", "TruthOptions", "VariantUnit"]

log = logging.getLogger(__name__)

DATASET_ID = "precisionfda-truth-v2"

VCF = "HG002_GRCh38_1_22_v4.2.1_benchmark.vcf.gz"
TBI = VCF + ".tbi"
BED = "HG002_GRCh38_1_22_v4.2.1_benchmark_noinconsistent.bed"
"""File names of fact sheet §8 (confirmed); the GRCh37 files differ only in ``GRCh38``."""
STRAT_SOURCE = "stratifications"
STRAT_INDEX = "GRCh38-all-stratifications.tsv"
SPLIT = "train"
UNIT_BYTES = 1 << 17
"""Compressed VCF bytes per unit (about 3k records of the real file, 40 bytes each): bounds a unit's
rows in memory; BED sweeps of a range start at a checkpoint, not at the contig's start."""
BLOCK_ROWS = 8192
"""Rows per ``Columns`` block a unit yields."""
_CLASS_INDEX = {name: i for i, name in enumerate(GENOTYPE_CLASSES)}
_WINDOW = 1 << 14


# ------------------------------------------------------------------------------------- survey


@dataclass(frozen=True)
class TruthOptions:
    """This recipe's own option: ``--option candidates=FILE``."""

    candidates: Path | None = field(default=None, metadata={"help": "a VCF of candidate calls to label (config `candidates`)"})


@dataclass(frozen=True)
class Survey:
    """The truth files read once: the VCF's tabix index, the benchmark BED and the fetched stratification BEDs."""

    vcf: Path
    vcf_name: str
    index: TabixIndex
    confident: BedIndex
    strats: tuple[tuple[str, BedIndex], ...]
    listed_strats: int


def _require(ctx: RecipeContext, name: str) -> Path:
    path = ctx.source_dir / name
    if not ctx.has(path):
        raise UsageError(f"{ctx.dataset_id}: {name} is not in {ctx.source_dir}; run `medcat fetch {ctx.dataset_id}` first.")
    return path


def _strat_beds(ctx: RecipeContext) -> tuple[list[tuple[str, Path]], int]:
    """Return ``(name, BED path)`` of the fetched stratifications in index order, and how many are listed."""
    folder = ctx.companions.get(STRAT_SOURCE)
    if folder is None or not ctx.has(folder / STRAT_INDEX):
        return [], 0
    found, listed = [], 0
    with open(folder / STRAT_INDEX, encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) < 2 or not row[0].strip() or row[0].startswith("#"):
                continue
            listed += 1
            path = folder / row[1].strip()
            if ctx.has(path):
                found.append((row[0].strip(), path))
    return found, listed


def _survey(ctx: RecipeContext) -> Survey:
    vcf, tbi, bed = _require(ctx, VCF), _require(ctx, TBI), _require(ctx, BED)
    strat_paths, listed = _strat_beds(ctx)
    return Survey(
        vcf=vcf,
        vcf_name=ctx.rel(vcf),
        index=read_tbi(tbi),
        confident=scan_bed(bed, ctx.rel(bed)),
        strats=tuple((name, scan_bed(path, ctx.rel(path))) for name, path in strat_paths),
        listed_strats=listed,
    )


# ------------------------------------------------------------------------------------- units


@dataclass(frozen=True)
class VariantUnit:
    """One range ``[beg, end)`` (0-based, on ``POS-1``) of one contig, read from ``voffset``."""

    config: str
    source_tag: str
    vcf: Path
    vcf_name: str
    contig: str
    voffset: int
    beg: int
    end: int | None
    confident: BedIndex
    strats: tuple[tuple[str, BedIndex], ...]
    limit: int | None = None

    @property
    def name(self) -> str:
        return f"{self.config}@{self.contig}:{self.beg}"


@dataclass(frozen=True)
class RegionUnit:
    """The intervals of one contig of the benchmark BED."""

    config: str
    source_tag: str
    bed: BedIndex
    contig: str
    limit: int | None = None

    @property
    def name(self) -> str:
        return f"{self.config}@{self.contig}"


@dataclass(frozen=True)
class CandidateUnit:
    """A whole candidate VCF, swept against the truth VCF and the BEDs."""

    config: str
    source_tag: str
    candidates: Path
    truth: Path
    truth_index: TabixIndex
    confident: BedIndex
    strats: tuple[tuple[str, BedIndex], ...]
    limit: int | None = None

    @property
    def name(self) -> str:
        return f"{self.config}@{self.candidates.name}"


def _ranges(contig: Any) -> list[tuple[int, int, int | None]]:
    """Cut a contig into ``(voffset, beg, end)`` ranges of about ``UNIT_BYTES`` compressed bytes."""
    ranges: list[tuple[int, int, int | None]] = []
    start_voffset, start_window = contig.first, 0
    for window, voffset in enumerate(contig.linear):
        if window == 0 or not voffset:
            continue
        if (voffset >> 16) - (start_voffset >> 16) >= UNIT_BYTES:
            ranges.append((start_voffset, start_window * _WINDOW, window * _WINDOW))
            start_voffset, start_window = voffset, window
    ranges.append((start_voffset, start_window * _WINDOW, None))
    return ranges


# ------------------------------------------------------------------------------------- recipe


class PrecisionFdaTruthV2(Recipe[Survey, "VariantUnit | RegionUnit | CandidateUnit"]):
    """The truth VCF, the benchmark regions and optionally a labelled candidate VCF (see the module docstring)."""

    DATASET_ID = DATASET_ID
    CONFIGS = ("variants", "confident-regions", "candidates")
    Options = TruthOptions
    CONFIG_HINTS = {"candidates": "The candidates config needs a query VCF: pass --option candidates=FILE."}
    WRITER_OPTIONS = WriterOptions(row_group_rows=65_536)
    """Parquet row groups for ~100-byte rows: the writer's 100-row default (sized for images) made
    10k row groups per million records and a quarter of the run time."""

    def survey(self, ctx: RecipeContext) -> Survey:
        """Read the tabix index and scan the benchmark and stratification BEDs once.

        Raises:
            UsageError: a truth file is missing.
            UnsortedInputError: a BED is not sorted (file and line named).
        """
        return _survey(ctx)

    def configs(self, ctx: RecipeContext, survey: Survey) -> Sequence[str]:
        """Return the configs this run builds: ``candidates`` only when its option was given."""
        given = ctx.extra(TruthOptions).candidates is not None
        return [c for c in self.CONFIGS if c != "candidates" or given]

    def features(self, config: str, ctx: RecipeContext, survey: Survey) -> Features:
        """Return the variant-calling schema (with VCF extras) or the tabular BED schema."""
        self.check_config(config)
        if config == "confident-regions":
            return tabular_features({"chrom": Value("string"), "start": Value("int64"), "end": Value("int64")})
        extras: dict[str, Any] = {
            "id": Value("string"),
            "qual": Value("float64"),
            "filter": Value("string"),
            "phased": Value("bool"),
            "alt_index": Value("int32"),
        }
        if config == "candidates":
            extras.update(truth_genotype=Value("string"), label_source=Value("string"))
        return variant_calling_features(extras)

    def plan(self, config: str, ctx: RecipeContext, survey: Survey) -> Plan[VariantUnit | RegionUnit | CandidateUnit]:
        """List the units: VCF ranges per contig, BED contigs, or the one candidates sweep.

        Raises:
            UsageError: ``candidates`` without its option.
        """
        self.check_config(config)
        limit = ctx.options.limit
        units: list[VariantUnit | RegionUnit | CandidateUnit]
        if config == "confident-regions":
            units = [RegionUnit(config, ctx.source_tag, survey.confident, c.name, limit) for c in survey.confident.contigs]
        elif config == "variants":
            units = []
            for contig in survey.index.contigs:
                # units carry only their contig's BED entries (start and seek checkpoints): small to pickle
                confident = survey.confident.only(contig.name)
                strats = tuple((name, index.only(contig.name)) for name, index in survey.strats)
                units += [
                    VariantUnit(config, ctx.source_tag, survey.vcf, survey.vcf_name, contig.name, voffset, beg, end, confident, strats, limit)
                    for voffset, beg, end in _ranges(contig)
                ]
        else:
            units = [
                CandidateUnit(config, ctx.source_tag, _candidates_path(ctx), survey.vcf, survey.index, survey.confident, survey.strats, limit)
            ]
        return Plan(units=units[:1] if limit is not None else units)

    # Columns blocks are rows too (the executor takes both); the base names Row only.
    def convert_unit(self, unit: VariantUnit | RegionUnit | CandidateUnit) -> Iterator[Row | Columns | SampleError]:  # type: ignore[override]
        """Convert one unit (see the module docstring); a bad line is a ``SampleError`` with file and line."""
        if isinstance(unit, RegionUnit):
            return _regions(unit)
        if isinstance(unit, VariantUnit):
            return _variants(unit)
        return _candidates(unit)

    def card_notes(self, ctx: RecipeContext, survey: Survey) -> list[str]:
        """State the conventions, the stratifications used and, with candidates, how many were dropped."""
        names = ", ".join(name for name, _ in survey.strats) or "none"
        notes = [
            "HG002's truth during the precisionFDA Truth Challenge V2 (2020) was GIAB v4.1; this is the later "
            "v4.2.1 benchmark (HG003/HG004 were graded against v4.2).",
            "One row per ALT allele: a 1/2 record gives two rows, each het. genotype is GT as written; genotype_class "
            "counts copies of that ALT (0 hom-ref, 1 het, all hom-alt); phased is true when GT uses '|'.",
            "in_confident_region: start <= POS-1 < end for an interval of the _noinconsistent.bed (BED is 0-based "
            "half-open, VCF POS 1-based). Positions inside the BED and absent from the VCF are confidently hom-ref; "
            "outside it they are unknown and must not be scored.",
            f"stratifications: {len(survey.strats)} of {survey.listed_strats} GIAB v3.6 GRCh38 stratification BEDs "
            f"were fetched and used ({names}); fetch more with `medcat fetch {ctx.dataset_id} --only 'stratifications/...'`.",
        ]
        if ctx.extra(TruthOptions).candidates is not None:
            path = _candidates_path(ctx)
            unit = CandidateUnit("candidates", ctx.source_tag, path, survey.vcf, survey.index, survey.confident, (), ctx.options.limit)
            dropped = sum(1 for item in _candidate_sweep(unit, count_only=True) if item is None)
            log.info("%s: %d candidate allele(s) outside the benchmark regions dropped", ctx.dataset_id, dropped)
            notes.append(
                f"candidates ({path.name}): labelled by position against the truth inside the benchmark regions; "
                f"{dropped} candidate allele(s) outside them were dropped."
            )
        return notes


def _regions(unit: RegionUnit) -> Iterator[Row]:
    for count, (_, start, end) in enumerate(iter_intervals(unit.bed, unit.contig)):
        if unit.limit is not None and count >= unit.limit:
            return
        values = {"chrom": unit.contig, "start": start, "end": end, "sample_id": f"{unit.contig}:{start}-{end}", "split": SPLIT}
        yield Row(unit.config, SPLIT, values)


class _Cursors:
    """The confident-region cursor and one cursor per stratification BED, for one contig."""

    def __init__(self, confident: BedIndex, strats: tuple[tuple[str, BedIndex], ...], contig: str, from_pos: int = 0) -> None:
        self.confident = RegionCursor(confident, contig, from_pos)
        self.strats = TagSweep(strats, contig, from_pos)

    def tags(self, pos0: int) -> list[str]:
        return self.strats.tags(pos0)

    def close(self) -> None:
        self.confident.close()
        self.strats.close()


_VARIANT_COLUMNS = (
    "chrom", "pos", "ref", "alt", "genotype", "genotype_class", "in_confident_region", "stratifications",
    "id", "qual", "filter", "phased", "alt_index", "sample_id",
)


def _class_index(classes: dict[tuple[tuple[int, ...], int], int], alleles: tuple[int, ...], alt_index: int) -> int:
    """Return the ClassLabel index of ``genotype_class``, memoised in ``classes`` (a truth set has few genotypes)."""
    key = (alleles, alt_index)
    found = classes.get(key)
    if found is None:
        found = _CLASS_INDEX[genotype_class(alleles, alt_index)]
        if len(classes) < 4096:
            classes[key] = found
    return found


def _new_block() -> dict[str, list[Any]]:
    return {name: [] for name in _VARIANT_COLUMNS}


def _variants(unit: VariantUnit) -> Iterator[Columns | SampleError]:
    """Sweep one range; rows leave in ``Columns`` blocks of ``BLOCK_ROWS`` (no per-row dicts)."""
    cursors = _Cursors(unit.confident, unit.strats, unit.contig, unit.beg)
    wanted = unit.contig.encode() + b"\t"
    inside = unit.beg == 0  # bad lines before the range belong to the previous unit
    base: list[int] = []
    last, emitted = -1, 0
    block = _new_block()
    appenders = [column.append for column in block.values()]
    sample_ids = block["sample_id"]
    classes: dict[tuple[tuple[int, ...], int], int] = {}  # one unit's memo of genotype classes

    def where(read: int) -> str:
        if not base:
            base.append(lines_before(unit.vcf, unit.voffset))
        return f"{unit.vcf_name}:{base[0] + read}"

    try:
        with open_at(unit.vcf, unit.voffset) as stream:
            for read, line in enumerate(stream, 1):
                if line.startswith(b"#"):
                    continue
                if not line.startswith(wanted):
                    break
                try:
                    record = parse_record(line)
                except VcfLineError as err:
                    if inside:
                        yield SampleError(where(read), "parse", str(err))
                    continue
                pos0 = record.pos - 1
                if pos0 < unit.beg:
                    continue
                if unit.end is not None and pos0 >= unit.end:
                    break
                inside = True
                if pos0 < last:
                    yield SampleError(where(read), "parse", f"POS {record.pos} comes after POS {last + 1} on {unit.contig}: the VCF is not sorted")
                    continue
                last = pos0
                try:
                    alleles, phased = parse_genotype(record.gt)
                except VcfLineError as err:
                    yield SampleError(where(read), "parse", str(err))
                    continue
                confident = cursors.confident.contains(pos0)
                tags = cursors.tags(pos0)
                chrom, pos, ident, ref, alts, qual, filt, gt = record
                for index, alt in enumerate(alts, 1):
                    values = (
                        chrom, pos, ref, alt, gt, _class_index(classes, alleles, index), confident, tags, ident, qual, filt,
                        phased, index, f"{chrom}:{pos}:{ref}>{alt}",
                    )
                    for append, value in zip(appenders, values):
                        append(value)
                if len(sample_ids) >= BLOCK_ROWS:
                    yield Columns(unit.config, SPLIT, block)
                    block = _new_block()
                    appenders = [column.append for column in block.values()]
                    sample_ids = block["sample_id"]
                emitted += 1
                if unit.limit is not None and emitted >= unit.limit:
                    break
        if sample_ids:
            yield Columns(unit.config, SPLIT, block)
    finally:
        cursors.close()


class _TruthCursor:
    """Truth records of one contig, read forward from the contig's first virtual offset."""

    def __init__(self, path: Path, index: TabixIndex, contig: str) -> None:
        self._stack = ExitStack()
        entry = index.contig(contig)
        self._stream = self._stack.enter_context(open_at(path, entry.first)) if entry is not None else None
        self._wanted = contig.encode() + b"\t"
        self._head: VcfRecord | None = None
        self._last: tuple[int, list[VcfRecord]] = (-1, [])
        self._advance()

    def _advance(self) -> None:
        self._head = None
        if self._stream is None:
            return
        for line in self._stream:
            if line.startswith(b"#"):
                continue
            if not line.startswith(self._wanted):
                break
            try:
                self._head = parse_record(line)
                return
            except VcfLineError:
                continue  # reported by the variants config
        self.close()

    def at(self, pos: int) -> list[VcfRecord]:
        """Return the truth records at ``pos``; positions must not decrease between calls."""
        if pos == self._last[0]:
            return self._last[1]
        while self._head is not None and self._head.pos < pos:
            self._advance()
        found = []
        while self._head is not None and self._head.pos == pos:
            found.append(self._head)
            self._advance()
        self._last = (pos, found)
        return found

    def close(self) -> None:
        self._stream = None
        self._stack.close()


def _candidates_path(ctx: RecipeContext) -> Path:
    path = ctx.extra(TruthOptions).candidates
    if path is None:
        raise UsageError(PrecisionFdaTruthV2.CONFIG_HINTS["candidates"])
    if not path.is_file():
        raise UsageError(f"--option candidates={path}: no such file.")
    return path


def _candidate_phased(gt: str | None) -> bool:
    """Return whether a candidate's ``GT`` is phased (every separator ``|``).

    Unlike a truth call, a candidate need not be complete: ``.``, ``./1`` and ``1/.`` are valid
    (callers write them for sites they could not fully genotype) and are kept as written.

    Raises:
        VcfLineError: an allele that is neither ``.`` nor an allele index.
    """
    if not gt:
        return False
    alleles = gt.replace("|", "/").split("/")
    if not all(a == "." or a.isdigit() for a in alleles):
        raise VcfLineError(f"genotype {gt!r} is not a list of allele indices or '.'")
    return "|" in gt and "/" not in gt


def _candidate_sweep(unit: CandidateUnit, count_only: bool = False) -> Iterator[Row | SampleError | None]:
    """Yield rows and errors; ``None`` for each candidate ALT dropped outside the benchmark regions."""
    name = unit.candidates.name
    contig: str | None = None
    done: set[str] = set()
    cursors: _Cursors | None = None
    truth: _TruthCursor | None = None
    last, emitted = -1, 0
    try:
        for number, line in iter_data_lines(unit.candidates):
            try:
                record = parse_record(line)
            except VcfLineError as err:
                yield SampleError(f"{name}:{number}", "parse", str(err))
                continue
            if record.chrom != contig:
                if record.chrom in done:
                    yield SampleError(f"{name}:{number}", "parse", f"{record.chrom} appears again after other contigs: the candidates are not sorted")
                    continue
                if cursors is not None:
                    cursors.close()
                if truth is not None:
                    truth.close()
                if contig is not None:
                    done.add(contig)
                contig, last = record.chrom, -1
                cursors = _Cursors(unit.confident, unit.strats, contig)
                truth = None if count_only else _TruthCursor(unit.truth, unit.truth_index, contig)
            assert cursors is not None
            pos0 = record.pos - 1
            if pos0 < last:
                yield SampleError(f"{name}:{number}", "parse", f"POS {record.pos} comes after POS {last + 1} on {contig}: the candidates are not sorted")
                continue
            last = pos0
            if not cursors.confident.contains(pos0):
                for _ in record.alts:
                    yield None
                continue
            try:
                phased = _candidate_phased(record.gt)
            except VcfLineError as err:
                yield SampleError(f"{name}:{number}", "parse", str(err))
                continue
            if count_only or truth is None:
                continue
            tags = cursors.tags(pos0)
            matches = truth.at(record.pos)
            for index, alt in enumerate(record.alts, 1):
                label, source, truth_gt = "hom-ref", "confident-absent", None
                for match in matches:
                    truth_gt = match.gt
                    source = "truth-other-allele"
                    if match.ref == record.ref and alt in match.alts:
                        try:
                            alleles, _ = parse_genotype(match.gt)
                        except VcfLineError:
                            break
                        label, source = genotype_class(alleles, match.alts.index(alt) + 1), "truth"
                        break
                values = {
                    "chrom": record.chrom, "pos": record.pos, "ref": record.ref, "alt": alt, "genotype": record.gt,
                    "genotype_class": label, "in_confident_region": True, "stratifications": tags, "id": record.id,
                    "qual": record.qual, "filter": record.filter, "phased": phased, "alt_index": index,
                    "truth_genotype": truth_gt, "label_source": source,
                    "sample_id": f"{record.chrom}:{record.pos}:{record.ref}>{alt}#{number}", "split": SPLIT,
                }
                yield Row(unit.config, SPLIT, values)
            emitted += 1
            if unit.limit is not None and emitted >= unit.limit:
                return
    finally:
        if cursors is not None:
            cursors.close()
        if truth is not None:
            truth.close()


def _candidates(unit: CandidateUnit) -> Iterator[Row | SampleError]:
    for item in _candidate_sweep(unit):
        if item is not None:
            yield item


RECIPE = PrecisionFdaTruthV2()
