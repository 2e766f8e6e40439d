"""Synthetic PathVQA: the authors' ``pvqa.zip`` on Google Drive and the Hugging Face parquet build of it.

Google Drive (``root/gdrive/<file id>/pvqa.zip``): ``pvqa/images/{train,val,test}/<split>_<NNNN>.jpg``
(small RGB JPEGs drawn here), ``pvqa/qas/{train,val,test}/<split>_qa.pkl`` (pickled lists of
``{image, question, answer}``; ``image`` the file stem), and beside them the LXMERT-style tables
the baselines read, ``pvqa/qas/<split>_vqa.pkl`` and ``trainval_ans2label.pkl`` (plain-data
pickles; the recipe does not read them). Texts keep upstream's look: capitals, a space before
``?``, an exact duplicate triplet in train. Planted bad item: one train question whose image is
not in the images folder.

Hugging Face (``root/datasets/flaviagiammarino/path-vqa/``, pinned with a ``.revision`` flag):
``data/<split>-0000k-of-0000n-<hash>.parquet`` with ``image`` {bytes, path ``img_<i>.jpg``},
``question``, ``answer``, built from the same records the way the repo's processing script does
(duplicate triplets dropped, then lower-cased, spaces collapsed, `` ?`` as ``?``; the same JPEG
bytes), and a README card. Shard hashes are invented. Planted bad item: one extra train row whose
image bytes are not a JPEG.
"""

from __future__ import annotations

import io
import pickle
import random
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from medcat_data.mirror.replicas.base import Replica, zip_bytes

DATASET_ID = "pathvqa"
HF_REPO = "datasets/flaviagiammarino/path-vqa"
HF_REVISION = "a933f30f012c5aa8483524316c01fac528b26154"
DRIVE_ID = "1o8KOiSlHG8X12LE4Pcxx-ECZ4M8g5AtS"
DRIVE_NAME = "pvqa.zip"
SPLITS = {"train": "train", "val": "validation", "test": "test"}
IMAGES = {"train": 5, "val": 2, "test": 2}
HF_SHARDS = {
    "train": ("data/train-00000-of-00002-5b3f1e0c9a7d2e41.parquet", "data/train-00001-of-00002-0c8d6a2f4e9b1735.parquet"),
    "validation": ("data/validation-00000-of-00001-7e2a9c4b1d6f0358.parquet",),
    "test": ("data/test-00000-of-00001-2f6b8d0e3a1c9457.parquet",),
}
_ZIP_TIME = (2023, 2, 15, 0, 0, 0)
_TISSUES = ("liver", "kidney", "lung", "heart", "brain", "spleen")
# (question, answer): {t} is the tissue; answers as upstream writes them.
_QUESTIONS = (
    ("What does this image show ?", "{t} with necrosis"),
    ("Does this image show {t} ?", "Yes"),
    ("Is there inflammation in the {t}?", "no"),
    ("What is  present ?", "fibrosis"),
    ("Where is this from ?", "{t}"),
    ("Does the  {t} show  hemorrhage ?", "yes"),
)
_CARD = """---
license: mit
task_categories:
- visual-question-answering
language:
- en
tags:
- medical
---
Synthetic stand-in for the PathVQA Hub card (medcat replica; no real images or questions).
"""


def _jpeg(rng: np.random.Generator, size: int) -> bytes:
    base = rng.integers(120, 220, size=3)
    pixels = np.clip(base + rng.normal(0, 18, (size, size, 3)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="RGB").save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


def hub_fold(text: str) -> str:
    """Clean a text the way the Hub build describes: lower case, runs of spaces as one, `` ?`` as ``?``."""
    return re.sub(" +", " ", text.lower()).replace(" ?", "?").strip()


def _records(seed: int) -> tuple[dict[str, list[dict[str, str]]], dict[str, bytes]]:
    """Return the upstream records per upstream split and the image files by stem."""
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    records: dict[str, list[dict[str, str]]] = {}
    images: dict[str, bytes] = {}
    for split, count in IMAGES.items():
        records[split] = []
        for n in range(count):
            stem = f"{split}_{n:04d}"
            images[stem] = _jpeg(nrng, 24 + 2 * n)
            tissue = rng.choice(_TISSUES)
            for question, answer in rng.sample(_QUESTIONS, 3):
                records[split].append({"image": stem, "question": question.format(t=tissue), "answer": answer.format(t=tissue)})
    records["train"].insert(4, dict(records["train"][1]))  # an exact duplicate triplet, as upstream has
    records["train"].insert(6, {"image": "train_0099", "question": "What is shown ?", "answer": "granuloma"})  # planted
    return records, images


def _vqa_tables(records: dict[str, list[dict[str, str]]]) -> list[tuple[str, bytes]]:
    """Return the LXMERT-style ``<split>_vqa.pkl`` files and ``trainval_ans2label.pkl``."""
    members = []
    answers = sorted({r["answer"] for split in ("train", "val") for r in records[split]})
    for split, rows in records.items():
        table: list[dict[str, Any]] = [
            {"img_id": r["image"], "question_id": i, "sent": r["question"], "label": {r["answer"]: 1},
             "answer_type": "yes/no" if r["answer"].lower() in ("yes", "no") else "other"}
            for i, r in enumerate(rows)
        ]
        members.append((f"pvqa/qas/{split}_vqa.pkl", pickle.dumps(table, protocol=4)))
    members.append(("pvqa/qas/trainval_ans2label.pkl", pickle.dumps({a: i for i, a in enumerate(answers)}, protocol=4)))
    return members


def _parquet(rows: list[dict[str, Any]], path: Path) -> None:
    schema = pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                        ("question", pa.string()), ("answer", pa.string())])
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=4)


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write both sources under ``root`` and return what normalizing each must give."""
    records, images = _records(seed)
    members = [(f"pvqa/images/{split}/{stem}.jpg", images[stem]) for split in IMAGES for stem in sorted(images) if stem.startswith(f"{split}_")]
    members += [(f"pvqa/qas/{split}/{split}_qa.pkl", pickle.dumps(rows, protocol=4)) for split, rows in records.items()]
    members += _vqa_tables(records)
    drive = root / "gdrive" / DRIVE_ID
    drive.mkdir(parents=True, exist_ok=True)
    (drive / DRIVE_NAME).write_bytes(zip_bytes(members, date_time=_ZIP_TIME))

    hub = root / HF_REPO
    counts: dict[str, int] = {}
    for upstream, split in SPLITS.items():
        rows: list[dict[str, Any]] = []
        seen: set[tuple[str, str, str]] = set()
        for r in records[upstream]:
            triplet = (r["image"], r["question"], r["answer"])
            if triplet in seen or r["image"] not in images:  # duplicates dropped; the build needs every image
                continue
            seen.add(triplet)
            image = {"bytes": images[r["image"]], "path": f"img_{len(rows)}.jpg"}
            rows.append({"image": image, "question": hub_fold(r["question"]), "answer": hub_fold(r["answer"])})
        counts[split] = len(rows)
        if split == "train":
            rows.insert(3, {"image": {"bytes": b"\xff\xd8\xff\xe0 not a JPEG at all", "path": "img_99.jpg"},
                            "question": "what is this?", "answer": "tissue"})
        shards = HF_SHARDS[split]
        cut = (len(rows) + len(shards) - 1) // len(shards)
        for k, name in enumerate(shards):
            _parquet(rows[k * cut : (k + 1) * cut], hub / name)
    (hub / "README.md").write_text(_CARD, encoding="utf-8")
    (hub / ".revision").write_text(HF_REVISION + "\n", encoding="ascii")

    return [
        Replica(DATASET_ID, "hf", expected={"configs": {"vqa": counts}, "errors": [{"path": f"{Path(HF_SHARDS['train'][0]).name}#3", "stage": "read"}]},
                group_columns=()),
        Replica(DATASET_ID, "gdrive", expected={"configs": {"vqa": counts}, "errors": [{"path": "train_0099.jpg", "stage": "read"}]},
                group_columns=("image_name",)),
    ]
