"""Synthetic ROCOv2: the Zenodo record's files and the Hugging Face parquet copy.

Zenodo (``root/records/10821435/files/<name>``, the path Zenodo serves a record's files at, by the
mirror's plain tree): ``cui_mapping.csv`` (``CUI``, ``Canonical name``), ``license_information.csv``
(``ID``, ``PMCID``, ``Attribution``, ``Link``), and per upstream split (``train``, ``valid``,
``test``) ``<split>_captions.csv`` (``ID``, ``Caption``), ``<split>_concepts.csv`` and
``<split>_concepts_manual.csv`` (``ID``, ``CUIs``, ``;``-separated) and ``<split>_images.zip``
holding ``<split>/<ID>.jpg``. IDs follow ``ROCOv2_2023_<split>_<6 digits>``; captions are synthetic
sentences, the CUIs a handful of real UMLS identifiers of imaging modalities and anatomy. Planted
bad item: one train caption whose image is not in ``train_images.zip``.

Hugging Face (``root/datasets/eltorio/ROCOv2-radiology/``, pinned with a ``.revision`` flag to the
registry's commit): ``data/train-0000N-of-00002.parquet``, ``data/validation-00000-of-00001.parquet``
and ``data/test-00000-of-00001.parquet`` with ``image`` {bytes, path}, ``image_id``, ``caption``
and ``cui`` (a list), the same images and rows as the Zenodo copy, and a README card. Planted bad
item: one train row whose image bytes are not an image.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from medcat_data.mirror.replicas.base import Replica, csv_bytes, zip_bytes

DATASET_ID = "rocov2"
RECORD = "10821435"
ZENODO_DIR = f"records/{RECORD}/files"
HF_REPO = "datasets/eltorio/ROCOv2-radiology"
HF_REVISION = "49c74bfdc49365b9ac1792f22914211aff5ba534"
SPLITS = {"train": ("train", 8), "valid": ("validation", 3), "test": ("test", 3)}
"""Upstream split -> (the Hub's split name, images in the replica)."""

_MODALITIES = (("C0040405", "X-Ray Computed Tomography", "CT"), ("C0024485", "Magnetic Resonance Imaging", "MRI"),
               ("C0041618", "Ultrasonography", "ultrasound"), ("C1306645", "Plain x-ray", "radiograph"))
_ANATOMY = (("C0817096", "Chest"), ("C0000726", "Abdomen"), ("C0006104", "Brain"))
_FINDINGS = ("a well-defined hypodense lesion", "no acute abnormality", "a small effusion", "mild wall thickening")
_ZIP_TIME = (2024, 3, 15, 12, 0, 0)


def _jpeg(rng: np.random.Generator) -> bytes:
    size = int(rng.integers(20, 36))
    pixels = np.clip(rng.normal(110, 40, (size, size)), 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, "JPEG", quality=80)
    return buffer.getvalue()


@dataclass(frozen=True)
class _Record:
    """One synthetic image of the release with everything the CSVs and the Hub copy say about it."""

    id: str
    caption: str
    cuis: tuple[str, ...]
    manual: tuple[str, ...]
    pmcid: str
    attribution: str
    link: str
    image: bytes


def _records(rng: random.Random, pixels: np.random.Generator) -> dict[str, list[_Record]]:
    """Return per upstream split the synthetic records: ID, caption, CUIs, manual CUIs, licence and image."""
    records: dict[str, list[_Record]] = {}
    number = 0
    for upstream, (_, count) in SPLITS.items():
        rows = []
        for index in range(count):
            number += 1
            cui, _, word = _MODALITIES[index % len(_MODALITIES)]
            anatomy, organ = _ANATOMY[index % len(_ANATOMY)]
            pmcid = f"PMC{rng.randint(1000000, 9999999)}"
            rows.append(_Record(
                id=f"ROCOv2_2023_{upstream}_{index + 1:06d}",
                caption=f"{word.capitalize()} of the {organ.lower()} showing {rng.choice(_FINDINGS)} (synthetic).",
                cuis=(cui, anatomy) + ((cui,) if index == 1 else ()),  # a repeated CUI, dropped by the recipe
                manual=(cui,) + ((anatomy,) if cui == "C1306645" else ()),
                pmcid=pmcid,
                attribution=f"Synthetic Author {number} et al. 2021, {'CC BY-NC 4.0' if index % 2 else 'CC BY 4.0'}",
                link=f"https://www.ncbi.nlm.nih.gov/pmc/articles/{pmcid}/",
                image=_jpeg(pixels),
            ))
        records[upstream] = rows
    return records


def _parquet(rows: list[dict[str, object]]) -> bytes:
    features = {"image": {"_type": "Image"}, "image_id": {"dtype": "string", "_type": "Value"},
                "caption": {"dtype": "string", "_type": "Value"},
                "cui": {"feature": {"dtype": "string", "_type": "Value"}, "_type": "Sequence"}}
    schema = pa.schema(
        [
            pa.field("image", pa.struct([pa.field("bytes", pa.binary()), pa.field("path", pa.string())])),
            pa.field("image_id", pa.string()),
            pa.field("caption", pa.string()),
            pa.field("cui", pa.list_(pa.string())),
        ],
        metadata={"huggingface": json.dumps({"info": {"features": features}})},
    )
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
    return buffer.getvalue()


_CARD = """---
license: cc-by-nc-sa-4.0
language:
- en
tags:
- medical
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: validation
    path: data/validation-*
  - split: test
    path: data/test-*
---
# ROCOv2 (synthetic medcat replica)

Radiology images with captions and UMLS concepts, converted from the Zenodo release.
Every image here is synthetic noise; no upstream text or pixels are copied.
"""


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write both sources under ``root`` and return their replicas with the expected counts."""
    records = _records(random.Random(f"rocov2-{seed}"), np.random.default_rng(seed))
    zenodo = root / ZENODO_DIR
    zenodo.mkdir(parents=True, exist_ok=True)
    planted = replace(records["train"][-1], id="ROCOv2_2023_train_000099", image=b"")
    everything = [r for rows in records.values() for r in rows] + [planted]
    cuis = sorted({(c, n) for c, n, _ in _MODALITIES} | set(_ANATOMY))
    (zenodo / "cui_mapping.csv").write_bytes(csv_bytes(["CUI", "Canonical name"], cuis))
    (zenodo / "license_information.csv").write_bytes(
        csv_bytes(["ID", "PMCID", "Attribution", "Link"], [[r.id, r.pmcid, r.attribution, r.link] for r in everything]))
    for upstream, rows in records.items():
        listed = rows + ([planted] if upstream == "train" else [])
        (zenodo / f"{upstream}_captions.csv").write_bytes(csv_bytes(["ID", "Caption"], [[r.id, r.caption] for r in listed]))
        (zenodo / f"{upstream}_concepts.csv").write_bytes(
            csv_bytes(["ID", "CUIs"], [[r.id, ";".join(r.cuis)] for r in listed]))
        (zenodo / f"{upstream}_concepts_manual.csv").write_bytes(
            csv_bytes(["ID", "CUIs"], [[r.id, ";".join(r.manual)] for r in listed]))
        members = [(f"{upstream}/{r.id}.jpg", r.image) for r in rows]
        (zenodo / f"{upstream}_images.zip").write_bytes(zip_bytes(members, date_time=_ZIP_TIME))

    hub = root / HF_REPO
    (hub / "data").mkdir(parents=True, exist_ok=True)
    hf_counts: dict[str, int] = {}
    bad_row = 1
    for upstream, (split, _) in SPLITS.items():
        table: list[dict[str, object]] = [{"image": {"bytes": r.image, "path": None}, "image_id": r.id, "caption": r.caption,
                                           "cui": list(dict.fromkeys(r.cuis))} for r in records[upstream]]
        if split == "train":
            table[bad_row]["image"] = {"bytes": b"\xff\xd8\xff\xe0 these bytes are not a JPEG", "path": None}
            half = len(table) // 2
            shards = [table[:half], table[half:]]
        else:
            shards = [table]
        for number, shard in enumerate(shards):
            (hub / "data" / f"{split}-{number:05d}-of-{len(shards):05d}.parquet").write_bytes(_parquet(shard))
        hf_counts[split] = len(table) - (1 if split == "train" else 0)
    (hub / "README.md").write_text(_CARD, encoding="utf-8")
    (hub / ".revision").write_text(HF_REVISION + "\n", encoding="ascii")

    zenodo_counts = {ours: len(records[upstream]) for upstream, (ours, _) in SPLITS.items()}
    return [
        Replica(
            dataset_id=DATASET_ID,
            source="zenodo",
            expected={"configs": {"captions": zenodo_counts}, "errors": [{"path": f"{planted.id}.jpg", "stage": "read"}]},
            group_columns=("image_id",),
        ),
        Replica(
            dataset_id=DATASET_ID,
            source="hf",
            expected={"configs": {"captions": hf_counts}, "errors": [{"path": f"train-00000-of-00002.parquet#{bad_row}", "stage": "read"}]},
            group_columns=("image_id",),
        ),
    ]
