"""Synthetic M3LLM-PMC Hub repos: ``hf`` at ``root/datasets/KerwinFu/M3LLM-PMC/`` and ``hf-release``.

Layout from the repository card (fact sheet §7a and the look-up in the registry entry): the six
annotation files at the repo root under the card's names (``multi_subimage.jsonl``, not
``multiple_``) and a ``README.md``. Where the images live in the repo is unconfirmed; here
compound figures sit in ``images/`` and sub-figures in ``full_data_images/`` (the two InternVL
roots), named as upstream names them: ``PMC<id>_<figure file>.jpg`` and ``<that name>_<k>.jpg``.

Both record forms appear: pipeline records in v1 spelling (``improved context``, ``option`` text
with an answer letter) and v2 snake_case (``options`` dict, ``correct_answer``, ``draft_context``,
an article licence), and InternVL conversation lines for ``compound_image.jsonl``. All text is
invented. Planted bad items: line 3 of ``single_subimage.jsonl`` is truncated, and line 2 of
``multi_subimage.jsonl`` names a sub-figure that is in no folder.

``hf-release`` (``root/datasets/KerwinFu/M3LLM-data-v1.0.0/``, whose file list is unconfirmed)
holds the same records under PMC-data.json's names in ``full_training_data/`` (so
``multiple_subimage.jsonl``), a ``DATA_LICENCE.md``, and the images only as zips
(``images.zip``, ``full_data_images.zip``, one folder each inside), so its rows come from zip
members read in place. The planted items are the same lines.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from medcat_data.mirror.replicas.base import Replica, zip_bytes

DATASET_ID = "m3llm-pmc"
REPO = "datasets/KerwinFu/M3LLM-PMC"
RELEASE_REPO = "datasets/KerwinFu/M3LLM-data-v1.0.0"
RELEASE_FOLDER = "full_training_data"
_RELEASE_NAMES = {"multi_subimage.jsonl": "multiple_subimage.jsonl"}
"""Where PMC-data.json's name differs from the Hub card's."""
_ZIP_TIME = (2025, 11, 27, 0, 0, 0)

_FINDINGS = [
    ("axial CT", "a hypodense hepatic lesion", "hepatic cyst"),
    ("H&E micrograph", "dense lymphocytic infiltrate", "chronic inflammation"),
    ("coronal MRI", "a T2-hyperintense cortical focus", "focal cortical dysplasia"),
    ("fundus photograph", "scattered dot haemorrhages", "diabetic retinopathy"),
    ("chest radiograph", "a right lower-lobe opacity", "lobar pneumonia"),
]


def _jpeg(rng: np.random.Generator, width: int, height: int) -> bytes:
    base = rng.integers(40, 210, size=3)
    pixels = np.clip(base + rng.integers(-25, 25, size=(height, width, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _line(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": ")) + "\n"


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write both repos under ``root`` and return their replicas with the expected counts and planted errors."""
    files, images, counts = _content(seed)
    repo = root / REPO
    for rel, data in images.items():
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_bytes(data)
    for name, content in files.items():
        (repo / name).write_text("".join(content), encoding="utf-8")
    (repo / "README.md").write_text(
        "---\nlicense: mit\ntask_categories:\n- visual-question-answering\n---\n"
        "# M3LLM-PMC (synthetic replica)\n\nSix JSONL files of invented instruction records for tests.\n",
        encoding="utf-8",
    )
    release = root / RELEASE_REPO
    (release / RELEASE_FOLDER).mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (release / RELEASE_FOLDER / _RELEASE_NAMES.get(name, name)).write_text("".join(content), encoding="utf-8")
    for folder in ("images", "full_data_images"):
        members = [(rel, data) for rel, data in images.items() if rel.startswith(folder + "/")]
        (release / f"{folder}.zip").write_bytes(zip_bytes(members, date_time=_ZIP_TIME))
    (release / "DATA_LICENCE.md").write_text(
        "# Data licence (synthetic replica)\n\nGenerated questions, answers, options and labels: CC BY-NC-SA 4.0. "
        "Images and article text keep their per-article PMC licences.\n",
        encoding="utf-8",
    )
    configs = {config: {"train": n} for config, n in counts.items()}
    planted = [("single_subimage.jsonl", 3, "parse"), ("multi_subimage.jsonl", 2, "read")]
    return [
        Replica(DATASET_ID, "hf", expected={"configs": configs, "errors": [
            {"path": f"{name}:{line}", "stage": stage} for name, line, stage in planted
        ]}, group_columns=("article_id",)),
        Replica(DATASET_ID, "hf-release", expected={"configs": configs, "errors": [
            {"path": f"{RELEASE_FOLDER}/{_RELEASE_NAMES.get(name, name)}:{line}", "stage": stage} for name, line, stage in planted
        ]}, group_columns=("article_id",)),
    ]


def _content(seed: int) -> tuple[dict[str, list[str]], dict[str, bytes], dict[str, int]]:
    """Return the annotation files (lines), the images by path in the repo and the rows per config."""
    rng = random.Random(f"m3llm-pmc-{seed}")
    pixels = np.random.default_rng(seed)
    images: dict[str, bytes] = {}

    figures: list[dict[str, Any]] = []
    for n, (view, finding, diagnosis) in enumerate(_FINDINGS):
        pmc = f"PMC{9_100_000 + rng.randint(1000, 9999) + n * 10_000}"
        compound = f"{pmc}_jcm-{12 + n}-0{n + 1}{rng.randint(10, 99)}-g00{n + 1}.jpg"
        images[f"images/{compound}"] = _jpeg(pixels, 48, 32)
        subs = [f"{compound}_{k}.jpg" for k in range(2 + n % 2)]
        for sub in subs:
            images[f"full_data_images/{sub}"] = _jpeg(pixels, 20, 16)
        caption = f"({', '.join(chr(65 + k) for k in range(len(subs)))}) {view.capitalize()} panels showing {finding}."
        figures.append({"pmc": pmc, "image": compound, "subs": subs, "view": view, "finding": finding, "dx": diagnosis, "caption": caption})

    def base(fig: dict[str, Any]) -> dict[str, Any]:
        return {
            "image": fig["image"],
            "caption": fig["caption"],
            "references": [f"As shown in Figure {rng.randint(1, 4)}, the {fig['view']} revealed {fig['finding']}."],
            "subcaptions": [
                {"image": sub, "text": f"Panel {chr(65 + k)}: {fig['view']}.", "idx": k} for k, sub in enumerate(fig["subs"])
            ],
            "Inline Summary": f"The {fig['view']} demonstrates {fig['finding']}, consistent with {fig['dx']}.",
            "medical knowledge": f"{fig['dx'].capitalize()} typically presents with {fig['finding']} on {fig['view']}.",
        }

    counts: dict[str, int] = {}
    files: dict[str, list[str]] = {}

    # puretext: pipeline v1, no images; one pair carries an upstream answer_type.
    lines, rows = [], 0
    for i, fig in enumerate(figures[:4]):
        pairs = [{
            "context": f"A patient was imaged with {fig['view']}.",
            "question": f"What does {fig['finding']} on {fig['view']} suggest?",
            "answer": f"It suggests {fig['dx']}.",
            "raw_output": "- **Question**: ...",
            "grouped_visual_word_count": 4,
            "improved context": f"A patient underwent {fig['view']} for evaluation.",
        }]
        if i == 1:
            pairs.append({**pairs[0], "question": f"Which modality showed {fig['finding']}?", "answer": fig["view"], "answer_type": "OPEN"})
        lines.append(_line({**base(fig), "qa_pairs": pairs}))
        rows += len(pairs)
    files["puretext.jsonl"], counts["puretext"] = lines, rows

    # bbox: pipeline v1, two sub-figures located in the compound figure.
    lines = []
    for fig in figures[:3]:
        a, b = fig["subs"][:2]
        lines.append(_line({**base(fig), "qa_pairs": [{
            "question": "What is the spatial relationship between Fig-1 and Fig-2 in the compound image?",
            "answer": "Fig-1 is to the left of Fig-2.",
            "selected_image_paths": [a, b],
            "image_index": ["Fig-0", "Fig-1"],
            "raw_output": "- **Question**: ...",
            "grouped_visual_word_count": 7,
        }]}))
    files["boundingboxVQA.jsonl"], counts["bbox"] = lines, len(lines)

    # single sub-image: pipeline v1 with improved context; line 3 is truncated (planted).
    lines = []
    for fig in figures[:4]:
        lines.append(_line({**base(fig), "qa_pairs": [{
            "context": f"Panel A is a {fig['view']}.",
            "question": "What finding is visible in Fig-1?",
            "answer": f"Fig-1 shows {fig['finding']}.",
            "selected_image_paths": [fig["subs"][0]],
            "image_index": ["Fig-1"],
            "raw_output": "- **Context**: ...",
            "grouped_visual_word_count": 5,
            "improved context": f"The figure includes a {fig['view']} panel.",
        }]}))
    truncated = _line({**base(figures[4]), "qa_pairs": []})
    lines.insert(2, truncated[: len(truncated) // 2] + "\n")
    files["single_subimage.jsonl"], counts["single-subimage"] = lines, 4

    # multi sub-image: pipeline v1; line 2 names a sub-figure that does not exist (planted).
    lines = []
    for i, fig in enumerate(figures[1:4]):
        chosen = list(fig["subs"][:2]) if i != 1 else [fig["subs"][0], f"{fig['image']}_7.jpg"]
        lines.append(_line({**base(fig), "qa_pairs": [{
            "context": f"Two panels of the {fig['view']} are compared.",
            "question": "How do Fig-1 and Fig-2 differ?",
            "answer": f"Fig-2 shows {fig['finding']} more clearly than Fig-1.",
            "selected_image_paths": chosen,
            "image_index": ["Fig-1", "Fig-2"],
            "improved context": f"Panels of a {fig['view']} study are shown.",
        }]}))
    files["multi_subimage.jsonl"], counts["multi-subimage"] = lines, 2

    # sub-image option: two v1 records (option text, answer letter) and two v2 records.
    lines = []
    for i, fig in enumerate(figures[:4]):
        distractors = [dx for _, _, dx in _FINDINGS if dx != fig["dx"]][:3]
        choices = distractors[:]
        position = (i + 1) % 4
        choices.insert(position, fig["dx"])
        letter = "ABCD"[position]
        if i < 2:
            pair: dict[str, Any] = {
                "question": "Which diagnosis best fits Fig-1?",
                "option": "\n".join(f"{'ABCD'[k]}. {c}" for k, c in enumerate(choices)),
                "answer": letter,
                "selected_image_paths": [fig["subs"][-1]],
                "image_index": ["Fig-2"],
                "raw_output": "- **Question**: ...",
                "grouped_visual_word_count": 1,
            }
            record = {**base(fig), "qa_pairs": [pair]}
        else:
            pair = {
                "question": "Which diagnosis best fits Fig-1?",
                "options": {"ABCD"[k]: c for k, c in enumerate(choices)},
                "correct_answer": letter,
                "image_index": ["Fig-1"],
                "selected_image_paths": [fig["subs"][0]],
            }
            record = {**base(fig), "task_type": "multiple_choice_vqa", "article_license": "CC BY 4.0",
                      "_construction_key": fig["image"], "qa_pairs": [pair]}
        lines.append(_line(record))
    files["subimage_option.jsonl"], counts["subimage-option"] = lines, 4

    # compound image: InternVL conversation lines, two turn pairs each.
    lines = []
    for i, fig in enumerate(figures[2:5]):
        lines.append(_line({
            "id": 2000 + i,
            "image": fig["image"],
            "conversations": [
                {"from": "human", "value": f"<image>\nDescribe the {fig['view']} panels of this figure."},
                {"from": "gpt", "value": f"The panels show {fig['finding']}."},
                {"from": "human", "value": "What is the most likely diagnosis?"},
                {"from": "gpt", "value": fig["dx"].capitalize() + "."},
            ],
        }))
    files["compound_image.jsonl"], counts["compound-image"] = lines, 6

    return files, images, counts
