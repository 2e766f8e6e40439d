"""Synthetic VQA-RAD: the OSF project storage and the Hugging Face parquet copy.

OSF (``root/osf/89kps/osfstorage/``, served by ``mirror/osf.py``): ``VQA_RAD Dataset Public.json``
(a list of objects with the 14 upstream keys; ``answer`` sometimes a JSON number; ``answer_type``
``CLOSED``/``OPEN``, once with a stray space), ``VQA_RAD Dataset Public.xml`` (the same items as
``<question>`` elements) and ``VQA_RAD Image Folder/`` of small greyscale JPEGs named
``synpic<n>.jpg``. Free-form questions, paraphrases linked to them by ``qid_linked_id``, and a
test set marked by ``phrase_type`` ``test_freeform``/``test_para``; one image in the folder is
referenced by no question (upstream: 315 images, 314 referenced). The XLSX and Readme.docx of
upstream are left out (no writer for them here; the recipe reads the JSON). Planted bad item:
one question whose image is not in the folder.

Hugging Face (``root/datasets/flaviagiammarino/vqa-rad/``, pinned with a ``.revision`` flag to
the registry's commit): ``data/train-00000-of-00001-eb8844602202be60.parquet`` and
``data/test-00000-of-00001-e5bc3d208bb4deeb.parquet`` with ``image`` {bytes, path}, ``question``,
``answer`` (the OSF-derived, de-duplicated triplets, with the same image bytes; ``image.path`` null,
as in the card's example) and a README card. Planted bad item: one train row whose image bytes
are not an image.
"""

from __future__ import annotations

import io
import json
import random
import uuid
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from medcat_data.mirror.replicas.base import Replica

DATASET_ID = "vqa-rad"
PROJECT = "89kps"
OSF_DIR = f"osf/{PROJECT}/osfstorage"
JSON_NAME = "VQA_RAD Dataset Public.json"
XML_NAME = "VQA_RAD Dataset Public.xml"
IMAGE_FOLDER = "VQA_RAD Image Folder"
HF_REPO = "datasets/flaviagiammarino/vqa-rad"
HF_REVISION = "bcf91e7654fb9d51c8ab6a5b82cacf3fafd2fae9"
HF_TRAIN = "data/train-00000-of-00001-eb8844602202be60.parquet"
HF_TEST = "data/test-00000-of-00001-e5bc3d208bb4deeb.parquet"
ORGANS = ("HEAD", "CHEST", "ABD")
MODALITIES = ("CT", "MRI", "X-ray")

# (question_type, question, answer, answer_type, paraphrase): synthetic questions in the style
# of the paper's categories; the answer is a JSON number where upstream has numbers.
_TEMPLATES: tuple[tuple[str, str, object, str, str], ...] = (
    ("PRES", "Is there a mass in the {organ}?", "No", "CLOSED", "Does the {organ} contain a mass?"),
    ("MODALITY", "What imaging modality was used?", "{modality}", "OPEN", "How was this image taken?"),
    ("ORGAN", "Which organ system is shown?", "{organ}", "OPEN", "What part of the body is imaged?"),
    ("COUNT", "How many lesions are visible?", 2, "OPEN", "What is the number of lesions seen?"),
    ("PLANE", "Is this an axial image?", "Yes", "CLOSED", "Was the image taken in the axial plane?"),
    ("ABN", "Is the {organ} normal?", "Yes", "CLOSED", "Does the {organ} look normal?"),
    ("SIZE", "Is the lesion larger than 2 cm?", "Yes", "CLOSED", "Does the lesion measure over 2 cm?"),
    ("POS", "Where is the abnormality located?", "left side", "OPEN", "On which side is the abnormality?"),
)
_ORGAN_WORDS = {"HEAD": "brain", "CHEST": "lungs", "ABD": "liver"}
_TRAIN_IMAGES = 9
_TEST_IMAGES = 3


def _jpeg(rng: np.random.Generator) -> bytes:
    size = int(rng.integers(24, 40))
    yy, xx = np.mgrid[0:size, 0:size]
    blob = np.exp(-(((yy - size / 2) ** 2 + (xx - size / 2) ** 2) / (2 * (size / 4) ** 2)))
    pixels = np.clip(40 + 180 * blob + rng.normal(0, 8, (size, size)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _items(rng: random.Random) -> tuple[list[dict[str, object]], list[str]]:
    """Return the JSON items and the image names, in upstream's key order."""
    items: list[dict[str, object]] = []
    names = sorted({f"synpic{rng.randint(10000, 59999)}.jpg" for _ in range(40)})[: _TRAIN_IMAGES + _TEST_IMAGES + 2]
    qid = 0
    for index, name in enumerate(names[: _TRAIN_IMAGES + _TEST_IMAGES]):
        test = index >= _TRAIN_IMAGES
        organ = ORGANS[index % len(ORGANS)]
        modality = MODALITIES[index % len(MODALITIES)]
        for qtype, question, answer, atype, paraphrase in rng.sample(_TEMPLATES, 3):
            link = str(uuid.UUID(int=rng.getrandbits(128)))
            words = {"organ": _ORGAN_WORDS[organ], "modality": modality}
            value = answer.format(**{"organ": organ.lower(), "modality": modality}) if isinstance(answer, str) else answer
            variants = [("freeform", question)]
            if rng.random() < 0.6:
                variants.append(("para", paraphrase))
            for phrase, text in variants:
                qid += 1
                items.append(
                    {
                        "qid": qid,
                        "phrase_type": f"test_{phrase}" if test else phrase,
                        "qid_linked_id": link,
                        "image_case_url": f"https://medpix.example/case?id={rng.randint(100000, 999999)}",
                        "image_name": name,
                        "image_organ": organ,
                        "evaluation": "given",
                        "question": text.format(**words),
                        "question_rephrase": "NULL",
                        "question_relation": "NULL",
                        "question_frame": "NULL",
                        "question_type": qtype,
                        "answer": value,
                        "answer_type": atype,
                    }
                )
    items[4]["answer_type"] = str(items[4]["answer_type"]) + " "  # a stray space, normalised by the recipe
    return items, names


def _xml(items: list[dict[str, object]]) -> str:
    body = "".join(
        "<question>" + "".join(f"<{k}>{escape(str(v))}</{k}>" for k, v in item.items()) + "</question>\n"
        for item in items
    )
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<questions>\n{body}</questions>\n'


def _parquet(rows: list[dict[str, object]]) -> bytes:
    features = {"image": {"_type": "Image"}, "question": {"dtype": "string", "_type": "Value"},
                "answer": {"dtype": "string", "_type": "Value"}}
    schema = pa.schema(
        [
            pa.field("image", pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])),
            pa.field("question", pa.string()),
            pa.field("answer", pa.string()),
        ],
        metadata={"huggingface": json.dumps({"info": {"features": features}})},
    )
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
    return buffer.getvalue()


_CARD = """---
license: cc0-1.0
task_categories:
- visual-question-answering
language:
- en
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: test
    path: data/test-*
---
# VQA-RAD (synthetic medcat replica)

Image, question and answer triplets derived from the OSF release of VQA-RAD, without duplicates.
Every image here is synthetic noise; no upstream text or pixels are copied.
"""


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write both sources under ``root`` and return their replicas with the expected counts."""
    rng = random.Random(f"vqa-rad-{seed}")
    pixels = np.random.default_rng(seed)
    items, names = _items(rng)
    images = {name: _jpeg(pixels) for name in names}
    planted_name = names[-1]  # referenced by one question below, absent from the folder
    unreferenced = names[-2]  # in the folder, referenced by no question
    planted = dict(items[1], qid=len(items) + 1, phrase_type="freeform", image_name=planted_name,
                   qid_linked_id=str(uuid.UUID(int=rng.getrandbits(128))))
    items.append(planted)

    osf = root / OSF_DIR
    (osf / IMAGE_FOLDER).mkdir(parents=True, exist_ok=True)
    (osf / JSON_NAME).write_text(json.dumps(items, indent=1) + "\n", encoding="utf-8")
    (osf / XML_NAME).write_text(_xml(items), encoding="utf-8")
    for name, data in images.items():
        if name != planted_name:
            (osf / IMAGE_FOLDER / name).write_bytes(data)
    assert unreferenced not in {i["image_name"] for i in items}

    osf_counts = {"train": 0, "test": 0}
    for item in items:
        if item is not planted:
            osf_counts["test" if str(item["phrase_type"]).startswith("test") else "train"] += 1

    # The Hub copy: OSF-derived (image, question, answer) triplets, duplicates dropped.
    splits: dict[str, list[dict[str, object]]] = {"train": [], "test": []}
    seen: set[tuple[str, str, str]] = set()
    for item in items:
        if item is planted:
            continue
        triplet = (str(item["image_name"]), str(item["question"]), str(item["answer"]))
        if triplet in seen:
            continue
        seen.add(triplet)
        split = "test" if str(item["phrase_type"]).startswith("test") else "train"
        image = {"bytes": images[triplet[0]], "path": None}  # the Hub copy names no image
        splits[split].append({"image": image, "question": triplet[1], "answer": triplet[2]})
    bad_row = 2
    splits["train"][bad_row]["image"] = {"bytes": b"\xff\xd8\xff\xe0 these bytes are not a JPEG", "path": None}
    hub = root / HF_REPO
    (hub / "data").mkdir(parents=True, exist_ok=True)
    (hub / HF_TRAIN).write_bytes(_parquet(splits["train"]))
    (hub / HF_TEST).write_bytes(_parquet(splits["test"]))
    (hub / "README.md").write_text(_CARD, encoding="utf-8")
    (hub / ".revision").write_text(HF_REVISION + "\n", encoding="ascii")

    return [
        Replica(
            dataset_id=DATASET_ID,
            source="osf",
            expected={
                "configs": {"vqa": osf_counts},
                "errors": [{"path": f"{IMAGE_FOLDER}/{planted_name}", "stage": "read"}],
            },
            group_columns=("qid_linked_id",),
        ),
        Replica(
            dataset_id=DATASET_ID,
            source="hf",
            expected={
                "configs": {"vqa": {"train": len(splits["train"]) - 1, "test": len(splits["test"])}},
                "errors": [{"path": f"{Path(HF_TRAIN).name}#{bad_row}", "stage": "read"}],
            },
            group_columns=(),
        ),
    ]
