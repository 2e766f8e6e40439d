"""Synthetic SLAKE: the authors' Hugging Face repo and the Google Drive archive, holding the same data.

Hugging Face (``root/datasets/BoKelvin/SLAKE/``, pinned with a ``.revision`` flag to the
registry's commit): ``train.json``, ``validation.json``, ``test.json`` (JSON arrays of question
records with the twelve upstream keys, English and Chinese), ``imgs.zip`` (members
``imgs/xmlab<N>/source.jpg``, ``mask.png``, ``detection.json`` and ``question.json``),
``KG.zip`` (``KG/`` with the six CSV names of the release: ``disease.csv``, ``en_disease.csv``,
``en_organ.csv``, ``en_organ_rel.csv``, ``organ.csv``, ``organ_rel.csv``), ``mask.txt`` (the mask
id mapping) and a README card. The CSV and ``mask.txt`` contents are invented placeholders
(medcat reads neither; their real formats are unconfirmed).

Google Drive (``root/gdrive/<file id>/Slake.zip``): the top folder ``Slake1.0/`` with
``train.json``, ``validate.json`` (the pre-2024 name), ``test.json``, ``mask.txt``, ``KG/`` and the
same ``imgs/`` folders (layout as listed by openmedlab's Awesome-Medical-Dataset SLAKE page).

Images are small greyscale JPEGs drawn here; masks are PNGs whose pixel values number the boxed
structures; ``detection.json`` lists ``{name: [x, y, w, h]}`` objects. Splits are image-disjoint.
One image folder no question references is included (left out of ``masks-boxes``). Planted bad
item, in both sources: one English train question whose folder lacks ``source.jpg`` (its
``detection.json`` and ``mask.png`` are there), which fails in ``vqa-en`` and in ``masks-boxes``.
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

DATASET_ID = "slake"
HF_REPO = "datasets/BoKelvin/SLAKE"
HF_REVISION = "a9083ce6c34ac3ffb17671a605962924d8a8f9e9"
DRIVE_ID = "1EZ0WpO5Z6BJUqC3iPBQJJS1INWSMsh7U"
DRIVE_NAME = "Slake.zip"
TOP = "Slake1.0"
SPLIT_IMAGES = {"train": 6, "validation": 2, "test": 2}
_ZIP_TIME = (2021, 2, 18, 0, 0, 0)

# (location, modality, structures boxed in detection.json)
_SCANS = (
    ("Lung", "X-Ray", ("Left Lung", "Right Lung", "Heart")),
    ("Abdomen", "CT", ("Liver", "Spleen", "Kidney")),
    ("Brain", "MRI", ("Brain", "Brain Edema")),
)
# (content_type, answer_type, English question, Chinese question, answer in en, answer in zh); {organ} and {modality} filled in.
_QUESTIONS = (
    ("Modality", "OPEN", "What modality is used to take this image?", "这张图片是用什么成像方式拍摄的?", "{modality}", "{modality}"),
    ("Organ", "CLOSED", "Does the picture contain {organ}?", "图片中包含{organ_zh}吗?", "Yes", "是"),
    ("Position", "OPEN", "Where is the {organ} in this image?", "图中{organ_zh}在哪里?", "Left", "左侧"),
    ("Abnormality", "CLOSED", "Is this image normal?", "这张图片正常吗?", "No", "不正常"),
    ("KG", "OPEN", "What is the function of the {organ}?", "{organ_zh}的功能是什么?", "Breathe", "呼吸"),
)
_ZH = {"Left Lung": "左肺", "Right Lung": "右肺", "Heart": "心脏", "Liver": "肝脏", "Spleen": "脾脏", "Kidney": "肾脏",
       "Brain": "大脑", "Brain Edema": "脑水肿"}
KG_FILES = ("disease.csv", "en_disease.csv", "en_organ.csv", "en_organ_rel.csv", "organ.csv", "organ_rel.csv")
_MASK_TXT = "synthetic placeholder for the mask id mapping (medcat does not read mask.txt)\n"
_CARD = """---
license: cc-by-4.0
task_categories:
- visual-question-answering
language:
- en
- zh
tags:
- medical
---
Synthetic stand-in for the SLAKE repository card (medcat replica; no real images or questions).
The split file validation.json is named validate.json in the original archive.
"""


def _jpeg(rng: np.random.Generator, size: int) -> bytes:
    yy, xx = np.mgrid[0:size, 0:size]
    blob = np.exp(-(((yy - size / 2) ** 2 + (xx - size / 3) ** 2) / (2 * (size / 5) ** 2)))
    pixels = np.clip(30 + 190 * blob + rng.normal(0, 6, (size, size)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def _mask_and_boxes(size: int, names: tuple[str, ...]) -> tuple[bytes, list[dict[str, list[int]]]]:
    """Return a mask PNG (value k+1 inside box k) and the boxes as upstream's {name: [x, y, w, h]} list."""
    mask = np.zeros((size, size), dtype=np.uint8)
    boxes = []
    for k, name in enumerate(names):
        x, y, w, h = 2 + 9 * k, 3 + 4 * k, 8, 10
        mask[y : y + h, x : x + w] = k + 1
        boxes.append({name: [x, y, w, h]})
    buffer = io.BytesIO()
    Image.fromarray(mask, mode="L").save(buffer, "PNG")
    return buffer.getvalue(), boxes


def _record(img_id: int, folder: str, scan: tuple[str, str, tuple[str, ...]], template: tuple[str, ...], lang: str, qid: int) -> dict[str, Any]:
    location, modality, names = scan
    content, atype, en, zh, answer_en, answer_zh = template
    organ = names[0]
    fill = {"organ": organ.lower(), "organ_zh": _ZH[organ], "modality": modality}
    kvqa = content == "KG"
    return {
        "img_id": img_id,
        "img_name": f"{folder}/source.jpg",
        "question": (en if lang == "en" else zh).format(**fill),
        "answer": (answer_en if lang == "en" else answer_zh).format(**fill),
        "q_lang": lang,
        "location": location,
        "modality": modality,
        "answer_type": atype,
        "base_type": "kvqa" if kvqa else "vqa",
        "content_type": "Function" if kvqa else content,
        "triple": [organ, "function", "_"] if kvqa else ["vhead", "_", "_"],
        "qid": qid,
    }


def _dataset(seed: int) -> tuple[dict[str, list[dict[str, Any]]], dict[str, dict[str, bytes]], dict[str, Any]]:
    """Return the split records, the image folders' files and the replica's bookkeeping."""
    rng, nrng = random.Random(seed), np.random.default_rng(seed)
    records: dict[str, list[dict[str, Any]]] = {split: [] for split in SPLIT_IMAGES}
    folders: dict[str, dict[str, bytes]] = {}
    img_id, qid = 0, 0
    for split, count in SPLIT_IMAGES.items():
        for _ in range(count):
            folder = f"xmlab{img_id}"
            scan = _SCANS[img_id % len(_SCANS)]
            size = 40 + 4 * (img_id % 3)
            mask, boxes = _mask_and_boxes(size, scan[2])
            folders[folder] = {
                "source.jpg": _jpeg(nrng, size),
                "mask.png": mask,
                "detection.json": json.dumps(boxes).encode("utf-8"),
            }
            for template in rng.sample(_QUESTIONS, 3):
                for lang in ("en", "zh"):
                    records[split].append(_record(img_id, folder, scan, template, lang, qid))
                    qid += 1
            folders[folder]["question.json"] = json.dumps(
                [r for r in records[split] if r["img_id"] == img_id], ensure_ascii=False
            ).encode("utf-8")
            img_id += 1
    # An image folder no question references (left out of masks-boxes).
    folders[f"xmlab{img_id}"] = {"source.jpg": _jpeg(nrng, 40), "question.json": b"[]"}
    # The planted bad item: one English train question on a folder without source.jpg.
    planted = f"xmlab{img_id + 1}"
    mask, boxes = _mask_and_boxes(40, _SCANS[0][2])
    folders[planted] = {"mask.png": mask, "detection.json": json.dumps(boxes).encode("utf-8")}
    records["train"].insert(2, _record(img_id + 1, planted, _SCANS[0], _QUESTIONS[0], "en", qid))
    counts = {
        lang: {s: sum(1 for r in rs if r["q_lang"] == lang) - (s == "train" and lang == "en") for s, rs in records.items()}
        for lang in ("en", "zh")
    }
    return records, folders, {"counts": counts, "images": dict(SPLIT_IMAGES), "planted": planted}


def _json(records: list[dict[str, Any]]) -> bytes:
    return json.dumps(records, ensure_ascii=False, indent=1).encode("utf-8")


def _image_members(folders: dict[str, dict[str, bytes]], prefix: str) -> list[tuple[str, bytes]]:
    return [(f"{prefix}imgs/{folder}/{name}", data) for folder in sorted(folders, key=lambda f: int(f[5:]))
            for name, data in sorted(folders[folder].items())]


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write both sources under ``root`` and return what normalizing each must give."""
    records, folders, book = _dataset(seed)
    hub = root / HF_REPO
    hub.mkdir(parents=True, exist_ok=True)
    for split, name in (("train", "train.json"), ("validation", "validation.json"), ("test", "test.json")):
        (hub / name).write_bytes(_json(records[split]))
    (hub / "imgs.zip").write_bytes(zip_bytes(_image_members(folders, ""), date_time=_ZIP_TIME))
    kg = [(f"KG/{name}", b"entity,relation,value\nsynthetic,placeholder,1\n") for name in KG_FILES]
    (hub / "KG.zip").write_bytes(zip_bytes(kg, date_time=_ZIP_TIME))
    (hub / "mask.txt").write_text(_MASK_TXT, encoding="utf-8")
    (hub / "README.md").write_text(_CARD, encoding="utf-8")
    (hub / ".revision").write_text(HF_REVISION + "\n", encoding="ascii")

    members = [(f"{TOP}/{name}", _json(records[split]))
               for split, name in (("train", "train.json"), ("validation", "validate.json"), ("test", "test.json"))]
    members += [(f"{TOP}/{name}", data) for name, data in kg] + [(f"{TOP}/mask.txt", _MASK_TXT.encode("utf-8"))]
    drive = root / "gdrive" / DRIVE_ID
    drive.mkdir(parents=True, exist_ok=True)
    (drive / DRIVE_NAME).write_bytes(zip_bytes(members + _image_members(folders, f"{TOP}/"), date_time=_ZIP_TIME))

    planted = book["planted"]
    expected = {
        "configs": {
            "vqa-en": book["counts"]["en"],
            "vqa-zh": book["counts"]["zh"],
            "masks-boxes": dict(book["images"]),
        },
        "errors": [{"path": f"{planted}/source.jpg", "stage": "read"}, {"path": f"{planted}/source.jpg", "stage": "read"}],
    }
    return [
        Replica(DATASET_ID, "hf", expected=expected, group_columns=("img_name",)),
        Replica(DATASET_ID, "gdrive", expected=expected, group_columns=("img_name",)),
    ]
