"""A synthetic MedQA ``data_clean.zip`` on the Drive mirror at ``root/gdrive/<file id>/data_clean.zip``.

Layout of fact sheet §1 under the top folder ``data_clean/``: ``questions/US/`` (5-option
``{train,dev,test}.jsonl``, ``US_qbank.jsonl``, ``4_options/phrases_no_exclude_*.jsonl`` with
``metamap_phrases``), ``questions/Mainland/`` (5 options, ``chinese_qbank.jsonl``, ``4_options/``),
``questions/Taiwan/`` (4 options, ``taiwanese_qbank.jsonl``, ``tw_translated_jsonl/{en,zh}/
*-2en.jsonl`` / ``*-2zh.jsonl``), ``textbooks/en/`` (the 18 upstream file names, misspellings
kept), ``textbooks/zh_paragraph/all_books.txt`` and ``zh_sentence/all_books.txt``. Records carry
the upstream keys (Mainland puts ``options`` before ``answer``); every text is generated here.
The 4-option files hold the same questions with one distractor removed and the letters
reassigned, as upstream's do.

Planted bad items: a malformed JSON line in ``US/train.jsonl`` and an ``answer_idx`` that is no
option key in ``Mainland/dev.jsonl``. The textbooks are sized so that the zip is above the Drive
mirror's confirmation threshold: a fetch walks through the virus-scan interstitial as the real
(~132 MB) archive does.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from medcat_data.mirror.replicas.base import Replica, zip_bytes

DATASET_ID = "medqa"
FILE_ID = "1ImYUSLk9JbgHXOemfvyiDiirluZHPeQw"
FILENAME = "data_clean.zip"
URL_PATH = f"gdrive/{FILE_ID}/{FILENAME}"
TOP = "data_clean"
BOOKS = (
    "Anatomy_Gray", "Biochemistry_Lippincott", "Cell_Biology_Alberts", "First_Aid_Step1", "First_Aid_Step2",
    "Gynecology_Novak", "Histology_Ross", "Immunology_Janeway", "InternalMed_Harrison", "Neurology_Adams",
    "Obstentrics_Williams", "Pathology_Robbins", "Pathoma_Husain", "Pediatrics_Nelson", "Pharmacology_Katzung",
    "Physiology_Levy", "Psichiatry_DSM-5", "Surgery_Schwartz",
)
"""The 18 English textbook stems with upstream's spellings (the last two from third-party listings)."""

US_COUNTS = {"train": 6, "dev": 3, "test": 3}
MAINLAND_COUNTS = {"train": 5, "dev": 2, "test": 2}
TAIWAN_COUNTS = {"train": 4, "dev": 2, "test": 2}
SPLITS = {"train": "train", "dev": "validation", "test": "test"}
_ZIP_TIME = (2020, 9, 28, 0, 0, 0)

_FINDINGS = ("fever", "fatigue", "a productive cough", "joint pain", "weight loss", "night sweats", "a rash",
             "shortness of breath", "abdominal pain", "headache", "palpitations", "blurred vision")
_ANSWERS = ("Amoxicillin", "Metformin", "Lisinopril", "Prednisone", "Ceftriaxone", "Observation", "Echocardiography",
            "Colonoscopy", "Serum ferritin", "Lumbar puncture", "Vitamin B12 deficiency", "Sarcoidosis", "Hypothyroidism",
            "Iron deficiency anemia", "Tuberculosis", "Migraine", "Atrial fibrillation", "Nephrolithiasis")
_ZH_TERMS = ("发热", "乏力", "咳嗽", "关节痛", "体重下降", "盗汗", "皮疹", "胸闷", "腹痛", "头痛", "心悸", "视物模糊")
_ZH_OPTIONS = ("青霉素", "二甲双胍", "泼尼松", "头孢曲松", "观察", "超声心动图", "结肠镜", "腰椎穿刺", "甲状腺功能减退",
               "缺铁性贫血", "结核病", "偏头痛")
_TW_TERMS = ("發燒", "疲倦", "咳嗽", "關節痛", "體重減輕", "皮疹", "胸悶", "腹痛", "頭痛", "心悸")
_TW_OPTIONS = ("肌肉萎縮", "肌力減退", "血壓上升", "心跳變慢", "骨質流失", "食慾增加", "體溫下降", "睡眠增加")
_WORDS = ("cell", "membrane", "protein", "receptor", "artery", "nerve", "tissue", "enzyme", "signal", "pressure",
          "flow", "renal", "hepatic", "cardiac", "pulmonary", "synthesis", "transport", "gradient", "chronic", "acute",
          "infection", "immune", "response", "dose", "clearance", "lesion", "growth", "factor", "binding", "pathway",
          "the", "of", "and", "in", "is", "by", "with", "to", "a", "which")
_SYLLABLES = ("ar", "ter", "io", "neu", "ro", "car", "di", "hep", "at", "ic", "ly", "mo", "cyte", "gen", "path", "os",
              "ple", "ur", "ine", "vas", "cu", "lar", "pro", "te", "in", "ase", "im", "mu", "no", "se", "ra", "tion")


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False) + "\n"


def _letters(n: int) -> list[str]:
    return [chr(ord("A") + i) for i in range(n)]


def _us_question(rng: random.Random) -> dict[str, Any]:
    age, sex = rng.randint(18, 84), rng.choice(("man", "woman"))
    findings = rng.sample(_FINDINGS, 2)
    texts = rng.sample(_ANSWERS, 5)
    letters = _letters(5)
    right = rng.randrange(5)
    question = (
        f"A {age}-year-old {sex} comes to the clinic because of {findings[0]} and {findings[1]} for "
        f"{rng.randint(2, 14)} days. Vital signs are within normal limits. Which of the following is the most "
        "appropriate next step?"
    )
    return {
        "question": question,
        "answer": texts[right],
        "options": dict(zip(letters, texts)),
        "meta_info": rng.choice(("step1", "step2&3")),
        "answer_idx": letters[right],
    }


def _drop_distractor(record: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    """Remove one wrong option and re-letter the rest, as upstream's 4-option files do."""
    wrong = [k for k in record["options"] if k != record["answer_idx"]]
    removed = rng.choice(wrong)
    texts = [v for k, v in record["options"].items() if k != removed]
    letters = _letters(len(texts))
    options = dict(zip(letters, texts))
    answer_idx = letters[texts.index(record["answer"])]
    out = {k: v for k, v in record.items() if k not in ("options", "answer_idx")}
    out["options"] = options
    out["answer_idx"] = answer_idx
    return out


def _mainland_question(rng: random.Random, n_options: int = 5) -> dict[str, Any]:
    texts = rng.sample(_ZH_OPTIONS, n_options)
    letters = _letters(n_options)
    right = rng.randrange(n_options)
    terms = rng.sample(_ZH_TERMS, 2)
    # Mainland lines put options before answer (fact sheet §1): key order must not matter.
    return {
        "question": f"患者{rng.randint(20, 80)}岁，{terms[0]}伴{terms[1]}{rng.randint(2, 9)}天。最可能的处理是（　　）。",
        "options": dict(zip(letters, texts)),
        "answer": texts[right],
        "meta_info": rng.choice(("第一部分　基础医学综合", "第三部分　精神神经系统疾病", "第五部分　消化系统疾病")),
        "answer_idx": letters[right],
    }


def _taiwan_question(rng: random.Random) -> dict[str, Any]:
    texts = rng.sample(_TW_OPTIONS, 4)
    letters = _letters(4)
    right = rng.randrange(4)
    terms = rng.sample(_TW_TERMS, 2)
    return {
        "question": f"病人{terms[0]}並{terms[1]}，下列何者最可能？",
        "options": dict(zip(letters, texts)),
        "answer": texts[right],
        "meta_info": "taiwanese_test_Q",
        "answer_idx": letters[right],
    }


def _translated(record: dict[str, Any], language: str, rng: random.Random) -> dict[str, Any]:
    """A synthetic "translation": same letters and answer position, new texts."""
    pool = _ANSWERS if language == "en" else _ZH_OPTIONS
    texts = rng.sample(pool, len(record["options"]))
    options = dict(zip(record["options"], texts))
    question = (
        "Which of the following is most likely in a patient with the findings described?"
        if language == "en" else "下列何者最可能？"
    )
    return {**record, "question": question, "options": options, "answer": options[record["answer_idx"]]}


def _metamap(record: dict[str, Any]) -> list[str]:
    words = record["question"].rstrip("?").replace(",", "").split()
    return [" ".join(words[i : i + 3]) for i in range(0, min(len(words), 18), 3)]


def _vocabulary(rng: random.Random) -> list[str]:
    """Common words plus a few hundred pseudo-words, so the text compresses about as prose does."""
    made = {"".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 4))) for _ in range(600)}
    return list(_WORDS) + sorted(made)


def _paragraph(rng: random.Random, vocabulary: Sequence[str]) -> str:
    """A paragraph of wrapped lines (one line break every ~10 words), the look of PDF-extracted text."""
    words = [rng.choice(vocabulary) for _ in range(rng.randint(200, 400))]
    lines = [" ".join(words[i : i + 10]) for i in range(0, len(words), 10)]
    return "\n".join(lines)


def _book(rng: random.Random, paragraphs: int, vocabulary: Sequence[str]) -> tuple[str, int]:
    parts = [_paragraph(rng, vocabulary) for _ in range(paragraphs)]
    # Separators vary as in extracted text: one blank line, two, or a line of spaces.
    text = ""
    for i, part in enumerate(parts):
        text += part + "\n"
        if i < len(parts) - 1:
            text += rng.choice(("\n", "\n\n", "   \n"))
    return text, len(parts)


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write ``data_clean.zip`` on the Drive mirror and return its replica with the expected counts."""
    rng = random.Random(f"medqa-{seed}")
    files: dict[str, str] = {}
    counts: dict[str, dict[str, int]] = {}

    us = {s: [_us_question(rng) for _ in range(n)] for s, n in US_COUNTS.items()}
    mainland = {s: [_mainland_question(rng) for _ in range(n)] for s, n in MAINLAND_COUNTS.items()}
    taiwan = {s: [_taiwan_question(rng) for _ in range(n)] for s, n in TAIWAN_COUNTS.items()}
    for s in SPLITS:
        four = [_drop_distractor(r, rng) for r in us[s]]
        files[f"questions/US/{s}.jsonl"] = "".join(map(_line, us[s]))
        files[f"questions/US/4_options/phrases_no_exclude_{s}.jsonl"] = "".join(
            _line({**r, "metamap_phrases": _metamap(r)}) for r in four
        )
        files[f"questions/Mainland/{s}.jsonl"] = "".join(map(_line, mainland[s]))
        files[f"questions/Mainland/4_options/{s}.jsonl"] = "".join(_line(_drop_distractor(r, rng)) for r in mainland[s])
        files[f"questions/Taiwan/{s}.jsonl"] = "".join(map(_line, taiwan[s]))
        files[f"questions/Taiwan/tw_translated_jsonl/en/{s}-2en.jsonl"] = "".join(
            _line(_translated(r, "en", rng)) for r in taiwan[s]
        )
        files[f"questions/Taiwan/tw_translated_jsonl/zh/{s}-2zh.jsonl"] = "".join(
            _line(_translated(r, "zh", rng)) for r in taiwan[s]
        )
    files["questions/US/US_qbank.jsonl"] = "".join(_line(r) for s in SPLITS for r in us[s])
    files["questions/Mainland/chinese_qbank.jsonl"] = "".join(_line(r) for s in SPLITS for r in mainland[s])
    files["questions/Mainland/4_options/chinese_qbank.jsonl"] = "".join(
        files[f"questions/Mainland/4_options/{s}.jsonl"] for s in SPLITS
    )
    files["questions/Taiwan/taiwanese_qbank.jsonl"] = "".join(_line(r) for s in SPLITS for r in taiwan[s])

    for config, per_split in (
        ("us", US_COUNTS), ("us-4options", US_COUNTS), ("mainland", MAINLAND_COUNTS),
        ("mainland-4options", MAINLAND_COUNTS), ("taiwan", TAIWAN_COUNTS), ("taiwan-en", TAIWAN_COUNTS),
        ("taiwan-zh", TAIWAN_COUNTS),
    ):
        counts[config] = {SPLITS[s]: n for s, n in per_split.items()}

    # Planted bad items (listed in expected errors, left out of the counts).
    us_train = files["questions/US/train.jsonl"].splitlines(keepends=True)
    us_train.insert(3, '{"question": "A 40-year-old man has a cough", "answer": "Observation", "options": {"A": \n')
    files["questions/US/train.jsonl"] = "".join(us_train)
    bad = {**_mainland_question(rng), "answer_idx": "F"}
    mainland_dev = files["questions/Mainland/dev.jsonl"].splitlines(keepends=True)
    mainland_dev.insert(1, _line(bad))
    files["questions/Mainland/dev.jsonl"] = "".join(mainland_dev)

    paragraphs = 0
    vocabulary = _vocabulary(rng)
    for book in BOOKS:
        text, n = _book(rng, rng.randint(5, 9), vocabulary)
        files[f"textbooks/en/{book}.txt"] = text
        paragraphs += n
    counts["textbooks-en"] = {"train": paragraphs}
    zh_lines = [f"{rng.choice(_ZH_TERMS)}是{rng.choice(_ZH_OPTIONS)}的常见表现。" for _ in range(12)]
    files["textbooks/zh_paragraph/all_books.txt"] = "\n".join(zh_lines) + "\n"
    files["textbooks/zh_sentence/all_books.txt"] = "\n".join(s for line in zh_lines for s in line.split("。") if s) + "\n"

    target = root / URL_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(zip_bytes([(f"{TOP}/{name}", data.encode("utf-8")) for name, data in sorted(files.items())], date_time=_ZIP_TIME))
    expected = {
        "configs": counts,
        "errors": [
            {"path": "questions/US/train.jsonl:4", "stage": "parse"},
            {"path": "questions/Mainland/dev.jsonl:2", "stage": "parse"},
        ],
    }
    return [Replica(dataset_id=DATASET_ID, source="gdrive", expected=expected, group_columns=())]
