"""Synthetic MedMCQA: the authors' Drive zip and the Hugging Face parquet copy, the same questions in both.

Drive (``root/gdrive/<file id>/data.zip``, served by ``mirror/gdrive.py``): ``train.json``,
``dev.json`` and ``test.json`` at the top of the zip, JSON Lines despite the extension, keys in
the order of the README's example (``question``, ``exp``, ``cop``, ``opa``-``opd``,
``subject_name``, ``topic_name``, ``id``, ``choice_type``), ``cop`` 1-based; test lines have
neither ``cop`` nor ``exp``; some ``exp`` are empty and some ``topic_name`` null, as upstream's
are. Planted bad item: a truncated line in ``train.json``.

Hugging Face (``root/datasets/openlifescienceai/medmcqa/``, pinned with a ``.revision`` flag to the
registry's commit): ``data/{train,test,validation}-00000-of-00001.parquet`` with the columns of
the converted loading script (``cop`` 0-based with ClassLabel ``a``-``d`` metadata, ``-1`` and an
empty ``exp`` on every test row) and a README card. Planted bad item: a train row whose ``cop``
is ``-1`` (no answer on a split that has answers).

Every question, option and explanation is generated here; no upstream text is copied.
"""

from __future__ import annotations

import io
import json
import random
import uuid
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medcat_data.mirror.replicas.base import Replica, zip_bytes

DATASET_ID = "medmcqa"
FILE_ID = "15VkJdq5eyWIkfb_aoD3oS8i4tScbHYky"
FILENAME = "data.zip"
URL_PATH = f"gdrive/{FILE_ID}/{FILENAME}"
HF_REPO = "datasets/openlifescienceai/medmcqa"
HF_REVISION = "91c6572c454088bf71b679ad90aa8dffcd0d5868"
COUNTS = {"train": 12, "dev": 5, "test": 6}
"""Questions per upstream file (upstream: 182,822 / 4,183 / 6,150)."""
HF_SPLITS = {"train": "train", "dev": "validation", "test": "test"}
SUBJECTS = ("Anatomy", "Biochemistry", "Medicine", "Pathology", "Pharmacology", "Physiology", "Surgery", "Dental")
_ZIP_TIME = (2022, 3, 29, 0, 0, 0)
_TERMS = ("glucagon", "the vagus nerve", "lactate", "the thyroid", "warfarin", "the femur", "pepsin", "the spleen",
          "insulin", "the ureter", "heparin", "the cochlea", "bilirubin", "the pons")
_STEMS = ("Which of the following is most closely associated with {t}?", "All of the following are true about {t} except:",
          "The drug of choice for a condition involving {t} is:", "{t} is derived from:")


def _record(rng: random.Random, split: str) -> dict[str, Any]:
    """Return one question in upstream's key order (test lines without cop and exp)."""
    term, *others = rng.sample(_TERMS, 5)
    subject = rng.choice(SUBJECTS)
    record: dict[str, Any] = {"question": rng.choice(_STEMS).format(t=term)}
    if split != "test":
        record["exp"] = rng.choice(["", f"Ans. is '{rng.choice('abcd')}' i.e., {others[0]} (synthetic explanation about {term})."])
        record["cop"] = rng.randint(1, 4)
    record.update({f"op{k}": text for k, text in zip("abcd", others)})
    record["subject_name"] = subject
    record["topic_name"] = rng.choice([None, f"{subject} topic {rng.randint(1, 9)}"])
    record["id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    record["choice_type"] = rng.choice(["single", "single", "multi"])
    return record


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    strings = {"dtype": "string", "_type": "Value"}
    features = {"id": strings, "question": strings, "opa": strings, "opb": strings, "opc": strings, "opd": strings,
                "cop": {"names": ["a", "b", "c", "d"], "_type": "ClassLabel"}, "choice_type": strings, "exp": strings,
                "subject_name": strings, "topic_name": strings}
    schema = pa.schema(
        [pa.field(name, pa.int64() if name == "cop" else pa.string()) for name in features],
        metadata={"huggingface": json.dumps({"info": {"features": features}})},
    )
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), buffer)
    return buffer.getvalue()


def _hub_row(record: dict[str, Any]) -> dict[str, Any]:
    """Return a record as the Hub's loading script wrote it: cop - 1 (-1 when absent), exp '' when absent."""
    return {**record, "cop": int(record.get("cop", 0)) - 1, "exp": record.get("exp", "")}


_CARD = """---
license: apache-2.0
task_categories:
- question-answering
- multiple-choice
language:
- en
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
  - split: test
    path: data/test-*
  - split: validation
    path: data/validation-*
---
# MedMCQA (synthetic medcat replica)

Four-option questions with the upstream field names; every text here is synthetic.
"""


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write both sources under ``root`` and return their replicas with the expected counts."""
    rng = random.Random(f"medmcqa-{seed}")
    records = {split: [_record(rng, split) for _ in range(n)] for split, n in COUNTS.items()}

    lines = {split: [json.dumps(r) + "\n" for r in rows] for split, rows in records.items()}
    lines["train"].insert(4, '{"question": "Which nerve supplies the deltoid?", "exp": "", "cop": 2, "opa": "Axil\n')
    members = [(f"{split}.json", "".join(rows).encode("utf-8")) for split, rows in sorted(lines.items())]
    target = root / URL_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(zip_bytes(members, date_time=_ZIP_TIME))

    hub = root / HF_REPO
    (hub / "data").mkdir(parents=True, exist_ok=True)
    bad = {**_record(rng, "train"), "cop": 0}  # written as -1: no answer on train
    for upstream, split in HF_SPLITS.items():
        rows = [_hub_row(r) for r in records[upstream]]
        if split == "train":
            rows.insert(7, _hub_row(bad))
        (hub / f"data/{split}-00000-of-00001.parquet").write_bytes(_parquet(rows))
    (hub / "README.md").write_text(_CARD, encoding="utf-8")
    (hub / ".revision").write_text(HF_REVISION + "\n", encoding="ascii")

    counts = {"qa": {HF_SPLITS[s]: n for s, n in COUNTS.items()}}
    return [
        Replica(dataset_id=DATASET_ID, source="hf", group_columns=(),
                expected={"configs": counts, "errors": [{"path": "data/train-00000-of-00001.parquet#7", "stage": "parse"}]}),
        Replica(dataset_id=DATASET_ID, source="gdrive", group_columns=(),
                expected={"configs": counts, "errors": [{"path": "train.json:5", "stage": "parse"}]}),
    ]
