"""A synthetic MIMIC-IV Clinical Database Demo 2.2 at ``root/files/mimic-iv-demo/2.2/``.

Layout of fact sheet §2.6: ``README.txt``, ``demo_subject_id.csv``, ``hosp/admissions.csv.gz``,
``hosp/patients.csv.gz``, ``icu/icustays.csv.gz``, ``LICENSE.txt`` and ``SHA256SUMS.txt`` (§2.4).
Column names follow MIMIC-IV; every value is generated (dates shifted into the 2100s as upstream
does). Planted bad item: a ragged row in ``hosp/admissions.csv.gz`` (covered by the checksums).
"""

from __future__ import annotations

import random
from pathlib import Path

from medcat_data.mirror.replicas.base import Replica, csv_bytes, gzip_bytes, project_dir, write_sha256sums

DATASET_ID = "mimic-iv-demo"
SLUG = "mimic-iv-demo"
VERSION = "2.2"

README = (
    "MIMIC-IV Clinical Database Demo (synthetic replica for medcat tests)\n\n"
    "The demo holds the hosp and icu modules for a subset of patients; demo_subject_id.csv lists the\n"
    "subject_id of every patient kept. Every value in this replica is generated.\n"
)
LICENSE = "Open Data Commons Open Database License v1.0 (replica placeholder text).\n"

ADMISSIONS = [
    "subject_id", "hadm_id", "admittime", "dischtime", "deathtime", "admission_type", "admit_provider_id",
    "admission_location", "discharge_location", "insurance", "language", "marital_status", "race",
    "edregtime", "edouttime", "hospital_expire_flag",
]
PATIENTS = ["subject_id", "gender", "anchor_age", "anchor_year", "anchor_year_group", "dod"]
ICUSTAYS = ["subject_id", "hadm_id", "stay_id", "first_careunit", "last_careunit", "intime", "outtime", "los"]


def _time(rng: random.Random, year: int) -> str:
    return f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00"


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write the demo project under ``root`` and return its replica with the expected counts."""
    rng = random.Random(f"mimic-iv-demo-{seed}")
    project = project_dir(root, SLUG, VERSION)
    for sub in ("hosp", "icu"):
        (project / sub).mkdir(parents=True, exist_ok=True)
    (project / "README.txt").write_text(README, encoding="utf-8")
    (project / "LICENSE.txt").write_text(LICENSE, encoding="utf-8")
    subjects = sorted(rng.sample(range(10000000, 10100000), 10))
    (project / "demo_subject_id.csv").write_bytes(csv_bytes(["subject_id"], [[s] for s in subjects]))

    patients, admissions, stays = [], [], []
    hadm, stay = 20000000, 30000000
    for sid in subjects:
        year = rng.randint(2110, 2190)
        dead = rng.random() < 0.2
        patients.append([sid, rng.choice(["F", "M"]), rng.randint(18, 91), year,
                         rng.choice(["2008 - 2010", "2011 - 2013", "2014 - 2016"]), f"{year + 1}-03-04" if dead else None])
        for _ in range(rng.randint(1, 3)):
            hadm += rng.randint(1, 9999)
            admit = _time(rng, year)
            admissions.append([
                sid, hadm, admit, _time(rng, year), None, rng.choice(["EW EMER.", "URGENT", "ELECTIVE"]),
                f"P{rng.randint(10000, 99999)}", rng.choice(["EMERGENCY ROOM", "TRANSFER FROM HOSPITAL", "PHYSICIAN REFERRAL"]),
                rng.choice(["HOME", "SKILLED NURSING FACILITY", None]), rng.choice(["Medicare", "Other"]), "ENGLISH",
                rng.choice(["MARRIED", "SINGLE", "WIDOWED", None]), rng.choice(["WHITE", "BLACK/AFRICAN AMERICAN", "OTHER"]),
                None, None, 0,
            ])
            if rng.random() < 0.6:
                stay += rng.randint(1, 9999)
                unit = rng.choice(["Medical Intensive Care Unit (MICU)", "Surgical Intensive Care Unit (SICU)"])
                stays.append([sid, hadm, stay, unit, unit, admit, _time(rng, year), f"{rng.uniform(0.5, 12):.6f}"])

    text = csv_bytes(ADMISSIONS, admissions).decode("utf-8").splitlines(keepends=True)
    ragged_line = 4  # header + two rows, then the ragged row
    text.insert(ragged_line - 1, f"{subjects[0]},29999999,2150-01-01 00:00:00\n")
    (project / "hosp" / "admissions.csv.gz").write_bytes(gzip_bytes("".join(text).encode("utf-8")))
    (project / "hosp" / "patients.csv.gz").write_bytes(gzip_bytes(csv_bytes(PATIENTS, patients)))
    (project / "icu" / "icustays.csv.gz").write_bytes(gzip_bytes(csv_bytes(ICUSTAYS, stays)))
    write_sha256sums(project)

    expected = {
        "configs": {
            "demo_subject_id": {"train": len(subjects)},
            "hosp_admissions": {"train": len(admissions)},
            "hosp_patients": {"train": len(patients)},
            "icu_icustays": {"train": len(stays)},
        },
        "errors": [{"path": f"hosp/admissions.csv.gz:{ragged_line}", "stage": "parse"}],
    }
    return [Replica(dataset_id=DATASET_ID, source="physionet", expected=expected, group_columns=("subject_id",))]
