"""A small normalized dataset in the three exported shapes, written with the real writer (no tests here).

Configs of the toy output ``toy@1.0``:

* ``vqa`` (VQA-RAD-like): one image per row, closed questions with options, open ones without,
  a two-image row, a three-image row, a row with no answer, a row whose image has no bytes, and
  an image shared by two rows;
* ``upstream`` (PubMedVision-like): an upstream ``conversations`` column, 1-3 images a row,
  ``modality`` and ``body_part``; ``UPSTREAM_RECORDS`` are the records as upstream would publish them;
* ``textqa`` (MedQA-like): text only, options as ``{key, text}``;
* ``figures`` (PMC-OA-like image-text): image, caption, inline mentions, figure label;
* ``labels``: an image-classification config, which has nothing to export.

Shards hold three rows so that every split spans several shards.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from datasets import List, Value
from PIL import Image as PILImage

from medcat_data.catalog.schema import Task
from medcat_data.converters.card import CardInfo
from medcat_data.converters.build_manifest import BuildKey
from medcat_data.converters.schemas import image_classification_features, image_text_features, text_qa_features, vqa_features
from medcat_data.converters.units import Row
from medcat_data.converters.writer import ConfigSpec, DatasetSpec, DatasetWriter, WriterOptions
from tests.unit.converters.test_writer import add_rows

TURN = {"from": Value("string"), "value": Value("string")}


def png(value: int, size: int = 6) -> bytes:
    """Return a tiny grey PNG; equal ``value`` and ``size`` give equal bytes."""
    buf = io.BytesIO()
    PILImage.new("L", (size, size), value).save(buf, "PNG")
    return buf.getvalue()


def jpeg(value: int) -> bytes:
    """Return a tiny JPEG; values 40 apart give different bytes after quantization."""
    buf = io.BytesIO()
    PILImage.new("RGB", (8, 8), (value % 256, (value * 3) % 256, 255 - value % 256)).save(buf, "JPEG")
    return buf.getvalue()


def _img(data: bytes | None, name: str) -> dict[str, Any] | None:
    return None if data is None else {"bytes": data, "path": name}


def _vqa(sample_id: str, split: str, images: list[bytes | None], question: str, answer: str | None,
         options: list[str] = [], answer_idx: int | None = None) -> Row:  # fmt: skip
    values = {
        "images": [_img(b, f"{sample_id}_{i}.png") for i, b in enumerate(images)],
        "question": question,
        "answer": answer,
        "answer_type": "closed" if options else "open",
        "options": options,
        "answer_idx": answer_idx,
        "sample_id": sample_id,
    }
    return Row("vqa", split, values)


VQA_ROWS = [
    _vqa("v0", "train", [png(10)], "Is there a fracture?", "yes", ["yes", "no"], 0),
    _vqa("v1", "train", [png(11)], "Which organ is shown?", "liver"),
    _vqa("v2", "train", [png(12), png(13)], "Which image shows the lesion?", "the second"),
    _vqa("v3", "train", [png(14), png(15), png(16)], "How many views are there?", "three"),
    _vqa("v4", "train", [png(17)], "What is abnormal?", None),
    _vqa("v5", "train", [None], "Is the image missing?", "yes"),
    _vqa("v6", "test", [png(10)], "Is the same image shown again?", "yes", ["no", "yes"], 1),
]
"""7 rows: v2 has 2 images, v3 has 3, v4 no answer, v5 an image without bytes, v6 reuses v0's image."""

UPSTREAM_RECORDS: list[dict[str, Any]] = [
    {
        "id": "Alignment_VQA_0",
        "image": ["images/pmc_1_0.jpg"],
        "conversations": [{"from": "human", "value": "What does the CT show?"}, {"from": "gpt", "value": "A mass in the liver."}],
        "modality": "Computed Tomography",
        "body_part": "Abdomen",
    },
    {
        "id": "Alignment_VQA_1",
        "image": ["images/pmc_2_0.jpg", "images/pmc_2_1.jpg"],
        "conversations": [{"from": "human", "value": "Compare the two panels."}, {"from": "gpt", "value": "The right panel is brighter."}],
        "modality": "Microscopy Images",
        "body_part": "Cell",
    },
    {
        "id": "Alignment_VQA_2",
        "image": ["images/pmc_3_0.jpg", "images/pmc_3_1.jpg", "images/pmc_3_2.jpg"],
        "conversations": [{"from": "human", "value": "Describe the series."}, {"from": "gpt", "value": "Three MR slices."}],
        "modality": "Magnetic Resonance Imaging",
        "body_part": "Brain",
    },
    {
        "id": "Alignment_VQA_3",
        "image": ["images/pmc_4_0.jpg"],
        "conversations": [{"from": "human", "value": "Image-1: <image>\nWhat is marked?"}, {"from": "gpt", "value": "An arrow."}],
        "modality": "Others",
        "body_part": "Others",
    },
]
"""Upstream records; the last already holds one ``<image>`` token (kept as written)."""

UPSTREAM_BYTES = {name: jpeg(40 * i + 7) for i, name in enumerate(p for r in UPSTREAM_RECORDS for p in r["image"])}
"""The bytes of each upstream image path."""


def _upstream_rows() -> list[Row]:
    rows = []
    for record in UPSTREAM_RECORDS:
        turns = record["conversations"]
        rows.append(
            Row(
                "upstream",
                "train",
                {
                    "images": [{"bytes": UPSTREAM_BYTES[p], "path": p} for p in record["image"]],
                    "question": turns[0]["value"],
                    "answer": turns[1]["value"],
                    "answer_type": "open",
                    "options": [],
                    "answer_idx": None,
                    "sample_id": record["id"],
                    "conversations": turns,
                    "modality": record["modality"],
                    "body_part": record["body_part"],
                },
            )
        )
    return rows


TEXTQA_ROWS = [
    Row("textqa", "train", {
        "question": "A 30-year-old presents with fever. What is the next step?",
        "options": [{"key": "A", "text": "Blood cultures"}, {"key": "B", "text": "Discharge"}, {"key": "C", "text": "Surgery"}],
        "answer_idx": 0, "answer": "Blood cultures", "explanation": None, "subject": None, "sample_id": "q0",
    }),
    Row("textqa", "test", {
        "question": "Which vitamin deficiency causes scurvy?",
        "options": [{"key": "opa", "text": "Vitamin A"}, {"key": "opb", "text": "Vitamin C"}],
        "answer_idx": 1, "answer": None, "explanation": None, "subject": None, "sample_id": "q1",
    }),
]  # fmt: skip
"""The second row has a null ``answer``: the option at ``answer_idx`` is the answer."""

FIGURE_ROWS = [
    Row("figures", "train", {
        "image": {"bytes": png(60), "path": "PMC1_fig1.png"}, "caption": "Axial CT of the chest.",
        "inline_mentions": ["As shown in Figure 1, the nodule is small.", "Figure 1 also shows effusion."],
        "article_id": "PMC1", "figure_label": "Figure 1", "license": "CC BY", "sample_id": "f0",
    }),
    Row("figures", "train", {
        "image": {"bytes": png(61), "path": "PMC2_fig2.png"}, "caption": "Histology, H&E stain.",
        "inline_mentions": [], "article_id": "PMC2", "figure_label": None, "license": "CC0", "sample_id": "f1",
    }),
    Row("figures", "train", {
        "image": {"bytes": png(62), "path": "PMC3_fig1.png"}, "caption": None,
        "inline_mentions": [], "article_id": "PMC3", "figure_label": "Fig. 1", "license": "CC BY", "sample_id": "f2",
    }),
]  # fmt: skip
"""The third figure has no caption (skipped as ``no_answer``)."""

LABEL_ROWS = [Row("labels", "train", {"image": {"bytes": png(90), "path": None}, "label": "cat", "sample_id": "l0"})]


def _spec() -> DatasetSpec:
    card = CardInfo(
        pretty_name="Toy conversations",
        summary="Synthetic rows in every exported shape.",
        license_spdx="CC-BY-4.0",
        license_name="Creative Commons Attribution 4.0",
        citation="@misc{toy, title={Toy}}\n",
        tags=("medcat",),
        upstream_splits={},
    )
    extras = {"modality": Value("string"), "body_part": Value("string")}
    configs = (
        ConfigSpec("vqa", vqa_features(), Task.VQA),
        ConfigSpec("upstream", vqa_features({**extras, "conversations": List(TURN)}), Task.VQA),
        ConfigSpec("textqa", text_qa_features(), Task.TEXT_QA),
        ConfigSpec("figures", image_text_features(), Task.IMAGE_TEXT),
        ConfigSpec("labels", image_classification_features({"label": ["cat", "dog"]}), Task.IMAGE_CLASSIFICATION),
    )
    return DatasetSpec("toy@1.0", configs, card)


def write_toy_dataset(out: Path, *, configs: tuple[str, ...] = ("vqa", "upstream", "textqa", "figures", "labels")) -> Path:
    """Write the toy dataset (the chosen configs) at ``out`` with the real writer; return ``out``."""
    rows = [*VQA_ROWS, *_upstream_rows(), *TEXTQA_ROWS, *FIGURE_ROWS, *LABEL_ROWS]
    spec = _spec()
    spec = DatasetSpec(spec.source, tuple(c for c in spec.configs if c.name in configs), spec.card)
    options = WriterOptions(max_shard_rows=3, row_group_rows=2)
    with DatasetWriter(out, spec, BuildKey((), {"configs": list(configs)}), options) as writer:
        add_rows(writer, (r for r in rows if r.config in configs))
        writer.close()
    return out
