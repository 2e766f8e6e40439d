"""Describe normalized columns in words and HF feature types as text, for pages and Croissant.

Pure functions over ``datasets`` feature objects, read by duck typing (``_type``, ``names``,
``feature``, ``length``) so this module imports nothing from ``datasets``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

CORE_COLUMN_NOTES: Mapping[str, str] = {
    "source": "Dataset id and version the row comes from, `<id>@<version>`.",
    "sample_id": "Stable id of the row, unique within the dataset and equal across runs.",
    "split": "train, validation or test.",
    "image": "The image: PNG decoded from DICOM, or the upstream JPEG/PNG passed through.",
    "images": "The study's images, in upstream order.",
    "views": "View of each image, aligned with `images`.",
    "patient_id": "Upstream patient identifier; null where upstream removed it.",
    "study_id": "Upstream study identifier.",
    "view": "View position as upstream wrote it (e.g. CC, MLO, PA).",
    "laterality": "L or R; null when not applicable.",
    "modality": "Imaging modality of the image (DICOM Modality where available).",
    "objects": "One entry per box: equal-length lists.",
    "bbox": "Box `[x_min, y_min, x_max, y_max]` in pixels of the output image.",
    "category": "Class of the box.",
    "width": "Output image width in pixels.",
    "height": "Output image height in pixels.",
    "scale": "Output size / original size (1.0 when not resized).",
    "findings": "FINDINGS section of the report (empty when the report has none).",
    "impression": "IMPRESSION section of the report (empty when the report has none).",
    "labels": "Label columns of the study.",
    "question": "The question text.",
    "answer": "The correct answer text.",
    "answer_type": "closed (yes/no or a choice among options) or open (free text).",
    "options": "The answer options, in upstream order.",
    "key": "Option key as upstream wrote it (A, B, opa...).",
    "text": "Option text.",
    "answer_idx": "0-based index of the correct option; null for open questions.",
    "explanation": "Upstream explanation of the answer, when given.",
    "subject": "Exam subject or topic, when given.",
    "caption": "Figure caption.",
    "inline_mentions": "Sentences of the article body that cite the figure.",
    "article_id": "PMC id of the article.",
    "figure_label": "Figure label as printed (Fig. 2, ...).",
    "license": "Licence of the article the figure comes from.",
    "chrom": "Chromosome.",
    "pos": "1-based position as in VCF.",
    "ref": "Reference allele.",
    "alt": "Alternate allele (one row per ALT of a multi-allelic record).",
    "genotype": "VCF GT string (0/1, 1|1, ...).",
    "genotype_class": "hom-ref, het or hom-alt.",
    "in_confident_region": "Whether the variant lies in the truth set's confident regions.",
    "stratifications": "Names of the genome stratifications the variant falls in.",
}
"""Descriptions of the task schemas' core and common columns (DESIGN.md "Normalizing")."""


@dataclass(frozen=True)
class ColumnRow:
    """One (possibly nested) column: dotted ``name``, HF type text, description and ClassLabel names."""

    name: str
    depth: int
    hf_type: str
    description: str
    class_names: tuple[str, ...] = ()


def feature_kind(feature: Any) -> str:
    """Return the HF feature class name (``Value``, ``ClassLabel``, ``List``...) or ``struct``."""
    if isinstance(feature, Mapping):
        return "struct"
    return str(getattr(feature, "_type", type(feature).__name__))


def hf_type_text(feature: Any) -> str:
    """Return a short, readable HF type: ``string``, ``ClassLabel(4)``, ``List(Image)``, ``struct``."""
    kind = feature_kind(feature)
    if kind == "Value":
        return str(feature.dtype)
    if kind == "ClassLabel":
        return f"ClassLabel({len(feature.names)})"
    if kind in ("List", "LargeList", "Sequence"):
        inner = hf_type_text(feature.feature)
        length = getattr(feature, "length", -1)
        return f"List({inner}, length={length})" if length not in (None, -1) else f"List({inner})"
    if kind == "struct":
        return "struct"
    return kind


def column_rows(features: Mapping[str, Any], notes: Mapping[str, str] | None = None) -> list[ColumnRow]:
    """Flatten features into rows, nested struct members under their parent (``objects.bbox``)."""
    merged = {**CORE_COLUMN_NOTES, **(notes or {})}
    return list(_walk(features, "", 0, merged))


def _walk(features: Mapping[str, Any], prefix: str, depth: int, notes: Mapping[str, str]) -> Iterator[ColumnRow]:
    for name, feature in features.items():
        dotted = prefix + name
        inner = _unwrap_lists(feature)
        class_names = tuple(inner.names) if feature_kind(inner) == "ClassLabel" else ()
        description = notes.get(dotted) or notes.get(name, "")
        if class_names and not description:
            description = "Label."
        yield ColumnRow(dotted, depth, hf_type_text(feature), description, class_names)
        if isinstance(inner, Mapping):
            yield from _walk(inner, dotted + ".", depth + 1, notes)


def _unwrap_lists(feature: Any) -> Any:
    while feature_kind(feature) in ("List", "LargeList", "Sequence"):
        feature = feature.feature
    return feature
