"""The task schemas of DESIGN.md as Hugging Face ``Features``, shared by every recipe and ``medcat convert``.

One builder per task. Each returns the *core* columns of its task in a fixed order, then the
columns every row carries (``source``, ``sample_id``, ``split``), then the caller's declared
``extras``. Two datasets built with the same builder and the same label vocabularies therefore
have equal features and can be joined with ``datasets.concatenate_datasets``.

Conventions (stated once, relied on everywhere):

* ``source`` is ``"<dataset id>@<version>"`` (``"local:<name>"`` for ``medcat convert``);
* ``sample_id`` is stable across runs and unique within a dataset;
* bounding boxes are ``xyxy`` in pixels of the *output* image (after ``--max-size``);
* ``scale`` is output size / original size (1.0 when not resized);
* a missing value is null, never an invented default.

This module declares types only; it never reads files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from datasets import ClassLabel, Features, Image, List, Value

from medcat_data.catalog.schema import Task

__all__ = [
    "ANSWER_TYPES",
    "GENOTYPE_CLASSES",
    "MultiLabel",
    "TASK_BUILDERS",
    "common_features",
    "image_classification_features",
    "image_text_features",
    "label_feature",
    "object_detection_features",
    "report_generation_features",
    "tabular_features",
    "text_qa_features",
    "variant_calling_features",
    "vqa_features",
    "with_extras",
]

ANSWER_TYPES = ("open", "closed")
"""VQA answer types: ``closed`` = yes/no or a choice among ``options``; ``open`` = free text."""

GENOTYPE_CLASSES = ("hom-ref", "het", "hom-alt")
"""Genotype classes of the variant-calling schema, in this (frozen) ClassLabel order."""


@dataclass(frozen=True)
class MultiLabel:
    """Declare a multi-label column: a list of class names drawn from ``names`` (multi-hot as names)."""

    names: tuple[str, ...]

    def __init__(self, names: Sequence[str]) -> None:
        object.__setattr__(self, "names", tuple(names))


LabelSpec = Union[Sequence[str], MultiLabel]
"""A single-label column (its class names, in ClassLabel order) or a ``MultiLabel``."""


def label_feature(spec: LabelSpec) -> ClassLabel | List:
    """Return the feature of one label column: ``ClassLabel`` or ``List(ClassLabel)`` for ``MultiLabel``.

    Raises:
        ValueError: duplicate or empty class names (a bug in a vocabulary, not a user error).
    """
    names = spec.names if isinstance(spec, MultiLabel) else tuple(spec)
    if not names or len(set(names)) != len(names) or any(not n for n in names):
        raise ValueError(f"class names must be unique and non-empty, got {names!r}")
    label = ClassLabel(names=list(names))
    return List(label) if isinstance(spec, MultiLabel) else label


def common_features() -> Features:
    """Return the columns every row of every dataset carries: ``source``, ``sample_id``, ``split``."""
    return Features({"source": Value("string"), "sample_id": Value("string"), "split": Value("string")})


def with_extras(core: Mapping[str, Any], extras: Mapping[str, Any] | None) -> Features:
    """Return ``core`` + the common columns + ``extras``, refusing an extra that shadows a core column.

    Raises:
        ValueError: an extra column has the name of a core or common column.
    """
    merged: dict[str, Any] = dict(core)
    merged.update(common_features())
    for name, feature in (extras or {}).items():
        if name in merged:
            raise ValueError(f"extra column {name!r} shadows a core column of the task schema")
        merged[name] = feature
    return Features(merged)


def _ids() -> dict[str, Any]:
    return {
        "patient_id": Value("string"),
        "study_id": Value("string"),
        "view": Value("string"),
        "laterality": Value("string"),
        "modality": Value("string"),
    }


def image_classification_features(
    labels: Mapping[str, LabelSpec] | None = None, extras: Mapping[str, Any] | None = None
) -> Features:
    """Build the image-classification schema.

    Args:
        labels: label column name -> class names (a ``ClassLabel``) or ``MultiLabel`` (a list of
            class names). Columns appear in the given order, after ``image``. ``None`` or ``{}``
            gives an unlabelled image dataset.
        extras: further declared columns, appended last.

    Columns: ``image`` (Image), the label columns, ``patient_id``, ``study_id``, ``view``,
    ``laterality``, ``modality`` (strings, null when unknown), then ``source``, ``sample_id``,
    ``split`` and the extras.
    """
    core: dict[str, Any] = {"image": Image()}
    for name, spec in (labels or {}).items():
        core[name] = label_feature(spec)
    core.update(_ids())
    return with_extras(core, extras)


def object_detection_features(
    categories: Sequence[str],
    object_extras: Mapping[str, Any] | None = None,
    extras: Mapping[str, Any] | None = None,
) -> Features:
    """Build the object-detection schema.

    ``objects`` follows the Hugging Face object-detection convention: a dict of equal-length
    lists, one entry per box. ``bbox`` is ``[x_min, y_min, x_max, y_max]`` in output pixels
    (``xyxy``, not COCO's ``xywh``); ``category`` a ``ClassLabel`` of ``categories``.
    ``object_extras`` adds per-box attributes (e.g. ``birads``) to ``objects``. An image without
    findings has empty lists. ``width``/``height`` are the output image size in pixels and
    ``scale`` the factor applied to the original coordinates.
    """
    objects: dict[str, Any] = {
        "bbox": List(List(Value("float32"), length=4)),
        "category": List(label_feature(categories)),
    }
    for name, feature in (object_extras or {}).items():
        if name in objects:
            raise ValueError(f"object attribute {name!r} shadows a core attribute")
        objects[name] = List(feature)
    core: dict[str, Any] = {
        "image": Image(),
        "objects": objects,
        "width": Value("int32"),
        "height": Value("int32"),
        "scale": Value("float32"),
    }
    core.update(_ids())
    return with_extras(core, extras)


def report_generation_features(
    labels: Mapping[str, LabelSpec] | None = None, extras: Mapping[str, Any] | None = None
) -> Features:
    """Build the report-generation schema: a study's ``images`` with its report sections and labels.

    ``findings`` and ``impression`` are the report sections ("" when the report has none; null
    when no report exists). ``labels`` is a struct of label columns (e.g. the CheXpert 14), absent
    when ``labels`` is empty. ``views`` lists each image's view, aligned with ``images``.
    """
    core: dict[str, Any] = {
        "images": List(Image()),
        "views": List(Value("string")),
        "findings": Value("string"),
        "impression": Value("string"),
    }
    if labels:
        core["labels"] = {name: label_feature(spec) for name, spec in labels.items()}
    core.update({"patient_id": Value("string"), "study_id": Value("string")})
    return with_extras(core, extras)


def vqa_features(extras: Mapping[str, Any] | None = None) -> Features:
    """Build the VQA schema, identical for every VQA dataset so they concatenate.

    ``images`` is a list even for single-image datasets (one element). ``answer_type`` is a
    ``ClassLabel`` of ``ANSWER_TYPES``. ``options`` is empty and ``answer_idx`` null for open
    questions; for closed ones ``answer_idx`` indexes ``options`` (0-based).
    """
    core: dict[str, Any] = {
        "images": List(Image()),
        "question": Value("string"),
        "answer": Value("string"),
        "answer_type": ClassLabel(names=list(ANSWER_TYPES)),
        "options": List(Value("string")),
        "answer_idx": Value("int32"),
    }
    return with_extras(core, extras)


def text_qa_features(extras: Mapping[str, Any] | None = None) -> Features:
    """Build the text-QA schema (multiple-choice exam questions and the like).

    ``options`` is a list of ``{key, text}`` (``key`` as upstream wrote it: ``A``, ``opa``...);
    ``answer_idx`` indexes it (0-based) and ``answer`` is the correct option's text.
    """
    core: dict[str, Any] = {
        "question": Value("string"),
        "options": List({"key": Value("string"), "text": Value("string")}),
        "answer_idx": Value("int32"),
        "answer": Value("string"),
        "explanation": Value("string"),
        "subject": Value("string"),
    }
    return with_extras(core, extras)


def image_text_features(extras: Mapping[str, Any] | None = None) -> Features:
    """Build the image-text schema (figures with captions and the sentences that mention them)."""
    core: dict[str, Any] = {
        "image": Image(),
        "caption": Value("string"),
        "inline_mentions": List(Value("string")),
        "article_id": Value("string"),
        "figure_label": Value("string"),
        "license": Value("string"),
    }
    return with_extras(core, extras)


def variant_calling_features(extras: Mapping[str, Any] | None = None) -> Features:
    """Build the variant-calling schema: one row per variant of a truth set.

    ``pos`` is 1-based as in VCF; ``alt`` is one alternate allele: a multi-allelic record gives one
    row per ALT, so ``genotype_class`` (copies of that ALT) is well defined; ``genotype`` is the VCF
    ``GT`` string as written (``0/1``, ``1|2``); ``genotype_class`` a ``ClassLabel`` of
    ``GENOTYPE_CLASSES``.
    """
    core: dict[str, Any] = {
        "chrom": Value("string"),
        "pos": Value("int64"),
        "ref": Value("string"),
        "alt": Value("string"),
        "genotype": Value("string"),
        "genotype_class": ClassLabel(names=list(GENOTYPE_CLASSES)),
        "in_confident_region": Value("bool"),
        "stratifications": List(Value("string")),
    }
    return with_extras(core, extras)


def tabular_features(columns: Mapping[str, Any]) -> Features:
    """Build a tabular schema: the table's own typed ``columns`` in upstream order, then the common ones.

    Raises:
        ValueError: a table column is named like a common column (``source``, ``sample_id``, ``split``).
    """
    clash = sorted(set(columns) & set(common_features()))
    if clash:
        raise ValueError(f"table columns {clash} clash with common columns; rename them in the recipe")
    return with_extras(dict(columns), None)


TASK_BUILDERS: Mapping[Task, Any] = {
    Task.IMAGE_CLASSIFICATION: image_classification_features,
    Task.OBJECT_DETECTION: object_detection_features,
    Task.REPORT_GENERATION: report_generation_features,
    Task.VQA: vqa_features,
    Task.TEXT_QA: text_qa_features,
    Task.IMAGE_TEXT: image_text_features,
    Task.VARIANT_CALLING: variant_calling_features,
    Task.TABULAR: tabular_features,
}
"""The builder of each task schema, for code that picks a schema by task."""
