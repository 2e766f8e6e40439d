"""VCF records: parse one data line, read genotypes, count copies of an ALT allele.

Single-sample VCF as truth sets ship it: eight fixed columns ``CHROM POS ID REF ALT QUAL FILTER
INFO``, then ``FORMAT`` and one sample. ``POS`` is 1-based. ``GT`` separators: ``/`` unphased,
``|`` phased; ``.`` is a missing allele. Values are kept as written (``genotype`` is the ``GT``
string); only the allele indices are interpreted. Reading files and seeking (BGZF, tabix) is
``codecs.tabix``'s job; this module works on lines.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from medcat_data.converters.codecs.tabix import iter_lines

__all__ = [
    "GENOTYPE_CLASSES",
    "VcfLineError",
    "VcfRecord",
    "genotype_class",
    "iter_data_lines",
    "parse_genotype",
    "parse_record",
]

GENOTYPE_CLASSES = ("hom-ref", "het", "hom-alt")
"""Copies of one ALT allele, as the variant-calling schema names them (0, 1, all)."""


class VcfLineError(Exception):
    """A data line that cannot be read; the caller turns it into a ``SampleError`` with file and line."""


class VcfRecord(NamedTuple):
    """One VCF data line of a single-sample file, with ``GT`` still as written (a tuple: cheap to build)."""

    chrom: str
    pos: int
    id: str | None
    ref: str
    alts: tuple[str, ...]
    qual: float | None
    filter: str | None
    gt: str | None


def parse_record(line: bytes) -> VcfRecord:
    """Parse one data line (the sample's ``GT`` is taken from the ``FORMAT`` column).

    Raises:
        VcfLineError: not UTF-8, fewer than 8 columns, or a non-numeric ``POS`` / ``QUAL``.
    """
    try:
        text = line.decode()  # one decode per line, not one per field
    except UnicodeDecodeError as err:
        raise VcfLineError(f"not UTF-8 text ({err.reason} at byte {err.start})") from None
    fields = text.rstrip("\r\n").split("\t")
    if len(fields) < 8:
        raise VcfLineError(f"{len(fields)} tab-separated columns; a VCF data line has at least 8")
    try:
        pos = int(fields[1])
    except ValueError:
        raise VcfLineError(f"POS {fields[1]!r} is not an integer") from None
    if pos < 1:
        raise VcfLineError(f"POS {pos} is not 1-based")
    qual_text = fields[5]
    try:
        qual = None if qual_text == "." else float(qual_text)
    except ValueError:
        raise VcfLineError(f"QUAL {qual_text!r} is not a number") from None
    gt: str | None = None
    if len(fields) >= 10:
        keys = fields[8]
        if keys == "GT" or keys.startswith("GT:"):
            gt = fields[9].split(":", 1)[0]
        else:
            names = keys.split(":")
            if "GT" in names:
                values = fields[9].split(":")
                index = names.index("GT")
                gt = values[index] if index < len(values) else None
    ident, alt, filt = fields[2], fields[4], fields[6]
    return VcfRecord(
        fields[0],
        pos,
        None if ident == "." else ident,
        fields[3],
        () if alt == "." else tuple(alt.split(",")),
        qual,
        None if filt == "." else filt,
        gt,
    )


def parse_genotype(gt: str | None) -> tuple[tuple[int, ...], bool]:
    """Return the allele indices of ``GT`` and whether it is phased (every separator ``|``).

    Raises:
        VcfLineError: no ``GT``, or a missing allele (``./.``, ``0/.``): the call has no genotype.
    """
    known = _GENOTYPES.get(gt)  # type: ignore[arg-type]
    if known is not None:
        return known
    if not gt:
        raise VcfLineError("no GT value in the sample column")
    phased = "/" not in gt and ("|" in gt)
    parts = gt.replace("|", "/").split("/")
    if any(p == "." for p in parts):
        raise VcfLineError(f"genotype {gt!r} has a missing allele; a truth call must be complete")
    try:
        parsed = tuple(int(p) for p in parts), phased
    except ValueError:
        raise VcfLineError(f"genotype {gt!r} is not a list of allele indices") from None
    if len(_GENOTYPES) < 4096:  # a truth set has a handful of distinct GT strings
        _GENOTYPES[gt] = parsed
    return parsed


_GENOTYPES: dict[str, tuple[tuple[int, ...], bool]] = {}


def genotype_class(alleles: tuple[int, ...], alt_index: int) -> str:
    """Return ``hom-ref`` / ``het`` / ``hom-alt`` by copies of ALT ``alt_index`` (1-based) in ``alleles``.

    ``1/2`` gives ``het`` for both ALTs; a haploid ``1`` is ``hom-alt`` (all copies).
    """
    copies = alleles.count(alt_index)
    if copies == 0:
        return GENOTYPE_CLASSES[0]
    return GENOTYPE_CLASSES[2] if copies == len(alleles) else GENOTYPE_CLASSES[1]


def iter_data_lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """Yield ``(line number, line)`` of the data lines of a VCF (plain, gzip or BGZF), 1-based.

    Raises:
        InputDecodeError: the gzip stream is truncated or corrupt (file and line; see ``tabix.iter_lines``).
    """
    for number, line in iter_lines(path):
        if line.startswith(b"#") or not line.strip():
            continue
        yield number, line
