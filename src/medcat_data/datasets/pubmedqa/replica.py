"""Synthetic PubMedQA: the Hub parquet copy, the GitHub files and the two Drive files, the same records in all.

Hugging Face (``root/datasets/qiaojin/PubMedQA/``, pinned with a ``.revision`` flag to the
registry's commit): ``pqa_{labeled,unlabeled,artificial}/train-00000-of-00001.parquet`` as the
converted loading script wrote them: ``pubid`` int32, ``question``, ``context`` a struct of lists
(``contexts``, ``labels``, ``meshes`` and, for PQA-L, ``reasoning_required_pred`` /
``reasoning_free_pred`` as lists of characters), ``long_answer``, ``final_decision`` (absent from
PQA-U); no year; one train split. Planted bad item: a PQA-L row whose ``final_decision`` is empty.

GitHub (``root/pubmedqa/pubmedqa/<commit>/data/``, the raw.githubusercontent.com path):
``ori_pqal.json`` (an object keyed by PMID with upstream's upper-case keys, indented by 4 as
upstream's is; ``YEAR`` null for some) and ``test_ground_truth.json`` (half of the PMIDs, PMID ->
decision). Planted bad item: a PQA-L record whose ``final_decision`` is ``perhaps``.

Drive (``root/gdrive/<id>/ori_pqau.json`` and ``ori_pqaa.json``): the same layout, PQA-U without
decisions or reasoning predictions, PQA-A with yes/no decisions.

Every question, abstract and conclusion is generated here; no upstream text is copied.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from medcat_data.mirror.replicas.base import Replica

DATASET_ID = "pubmedqa"
GITHUB_COMMIT = "1cbae8e92f72f20c8d3747cbb3bf5bc53554d997"
GITHUB_DIR = f"pubmedqa/pubmedqa/{GITHUB_COMMIT}/data"
HF_REPO = "datasets/qiaojin/PubMedQA"
HF_REVISION = "e1bd6e261df393cb9338ddd3e6c9f9572bde2215"
DRIVE_FILES = {"1RsGLINVce-0GsDkCLDuLZmoLuzfmoCuQ": "ori_pqau.json", "15v1x6aQDlZymaHGP7cZJZZYFfeJt2NdS": "ori_pqaa.json"}
COUNTS = {"labeled": 16, "unlabeled": 5, "artificial": 7}
_SECTIONS = ("BACKGROUND", "OBJECTIVE", "METHODS", "RESULTS", "PATIENTS AND METHODS")
_TOPICS = ("statin use", "early mobilisation", "vitamin D levels", "telephone counselling", "laparoscopic repair",
           "night-shift work", "preoperative fasting", "iron supplements")
_OUTCOMES = ("postoperative delirium", "readmission", "bone density", "screening adherence", "wound infection")


def _record(rng: random.Random, kind: str) -> dict[str, Any]:
    """Return one record with upstream's keys in upstream's order (fields by set, as upstream's files differ)."""
    topic, outcome = rng.choice(_TOPICS), rng.choice(_OUTCOMES)
    sections = sorted(rng.sample(_SECTIONS, rng.randint(2, 3)), key=_SECTIONS.index)
    record: dict[str, Any] = {
        "QUESTION": f"Is {topic} associated with {outcome}?",
        "CONTEXTS": [f"Synthetic {s.lower()} paragraph about {topic} and {outcome} ({rng.randint(10, 999)} patients)." for s in sections],
        "LABELS": sections,
        "MESHES": sorted(rng.sample(["Humans", "Female", "Male", "Adult", "Aged", "Risk Factors", "Cohort Studies"], 3)),
        "YEAR": rng.choice([None, str(rng.randint(1995, 2017))]),
    }
    decision = rng.choice(("yes", "no", "maybe") if kind == "labeled" else ("yes", "no"))
    if kind == "labeled":
        record["reasoning_required_pred"] = rng.choice(("yes", "no", "maybe"))
        record["reasoning_free_pred"] = decision
    if kind != "unlabeled":
        record["final_decision"] = decision
    record["LONG_ANSWER"] = f"Synthetic conclusion: {topic} {'is' if decision == 'yes' else 'may not be'} linked to {outcome}."
    return record


def _hub_row(pmid: str, record: dict[str, Any], kind: str) -> dict[str, Any]:
    context: dict[str, Any] = {"contexts": record["CONTEXTS"], "labels": record["LABELS"], "meshes": record["MESHES"]}
    if kind == "labeled":  # a string in a Sequence feature: stored as its characters
        context["reasoning_required_pred"] = list(record["reasoning_required_pred"])
        context["reasoning_free_pred"] = list(record["reasoning_free_pred"])
    row: dict[str, Any] = {"pubid": int(pmid), "question": record["QUESTION"], "context": context, "long_answer": record["LONG_ANSWER"]}
    if kind != "unlabeled":
        row["final_decision"] = record["final_decision"]
    return row


def _parquet(rows: list[dict[str, Any]], kind: str) -> bytes:
    strings = pa.list_(pa.string())
    context = [pa.field(n, strings) for n in ("contexts", "labels", "meshes")]
    if kind == "labeled":
        context += [pa.field("reasoning_required_pred", strings), pa.field("reasoning_free_pred", strings)]
    fields = [pa.field("pubid", pa.int32()), pa.field("question", pa.string()), pa.field("context", pa.struct(context)),
              pa.field("long_answer", pa.string())]
    if kind != "unlabeled":
        fields.append(pa.field("final_decision", pa.string()))
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows, schema=pa.schema(fields)), buffer)
    return buffer.getvalue()


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=4), encoding="utf-8")


_CARD = """---
license: mit
task_categories:
- question-answering
language:
- en
configs:
- config_name: pqa_artificial
  data_files:
  - split: train
    path: pqa_artificial/train-*
- config_name: pqa_labeled
  data_files:
  - split: train
    path: pqa_labeled/train-*
- config_name: pqa_unlabeled
  data_files:
  - split: train
    path: pqa_unlabeled/train-*
---
# PubMedQA (synthetic medcat replica)

Three sets with the upstream field names; every text here is synthetic.
"""


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write every source under ``root`` and return the replicas of the two main sources."""
    rng = random.Random(f"pubmedqa-{seed}")
    pmids = iter(rng.sample(range(8_000_000, 30_000_000), sum(COUNTS.values()) + 2))
    sets = {kind: {str(next(pmids)): _record(rng, kind) for _ in range(n)} for kind, n in COUNTS.items()}
    labeled = list(sets["labeled"])
    test = {pmid: sets["labeled"][pmid]["final_decision"] for pmid in labeled[::2]}

    bad_json = {**_record(rng, "labeled"), "final_decision": "perhaps"}
    bad_pmid = str(next(pmids))
    _write_json(root / GITHUB_DIR / "ori_pqal.json", {**sets["labeled"], bad_pmid: bad_json})
    _write_json(root / GITHUB_DIR / "test_ground_truth.json", test)
    for file_id, name in DRIVE_FILES.items():
        _write_json(root / "gdrive" / file_id / name, sets["unlabeled" if name == "ori_pqau.json" else "artificial"])

    hub = root / HF_REPO
    for kind, records in sets.items():
        rows = [_hub_row(pmid, record, kind) for pmid, record in records.items()]
        if kind == "labeled":
            rows.insert(3, {**_hub_row(str(next(pmids)), _record(rng, kind), kind), "final_decision": ""})
        target = hub / f"pqa_{kind}/train-00000-of-00001.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(_parquet(rows, kind))
    (hub / "README.md").write_text(_CARD, encoding="utf-8")
    (hub / ".revision").write_text(HF_REVISION + "\n", encoding="ascii")

    labeled_counts = {"train": len(labeled) - len(test), "test": len(test)}
    hf_configs = {"pqa-labeled": labeled_counts, "pqa-unlabeled": {"train": COUNTS["unlabeled"]},
                  "pqa-artificial": {"train": COUNTS["artificial"]}}
    return [
        Replica(dataset_id=DATASET_ID, source="hf", group_columns=(),
                expected={"configs": hf_configs, "errors": [{"path": "pqa_labeled/train-00000-of-00001.parquet#3", "stage": "parse"}]}),
        Replica(dataset_id=DATASET_ID, source="github", group_columns=(),
                expected={"configs": {"pqa-labeled": labeled_counts}, "errors": [{"path": f"data/ori_pqal.json#{bad_pmid}", "stage": "parse"}]}),
    ]
