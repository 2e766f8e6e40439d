"""A synthetic open PhysioNet project, ``demo-open-project`` 1.0.0, for the generic template.

Served at ``root/files/demo-open-project/1.0.0/`` (the demo resolves
``physionet:demo-open-project@1.0.0``): ``LICENSE.txt``, ``SHA256SUMS.txt`` (fact sheet §2.4),
``RECORDS`` and one WFDB record (``100.hea`` text header + ``100.dat`` format-16 samples, §2.5),
and two tables with a ``subject_id`` column: ``subjects.csv`` at the top and
``labs/measurements.csv.gz`` in a subfolder. Planted bad item: one ragged row in ``subjects.csv``
(listed in the checksum file, so only normalize notices). The PhysioNet layout helpers it uses
(``project_dir``, ``write_sha256sums``) are shared with the other PhysioNet replicas in
``mirror/replicas/base.py``.
"""

from __future__ import annotations

import random
import struct
from pathlib import Path

from medcat_data.mirror.replicas.base import Replica, csv_bytes, gzip_bytes, project_dir, write_sha256sums

DATASET_ID = "physionet"
SLUG = "demo-open-project"
VERSION = "1.0.0"

LICENSE_TEXT = (
    "Synthetic demonstration project for medcat. Every value is generated; no person is described.\n"
    "Open Data Commons Attribution License v1.0 (for the purpose of the demonstration).\n"
)


def _wfdb_record(name: str, rng: random.Random) -> tuple[str, bytes]:
    """Return a two-signal WFDB header and its format-16 signal file (interleaved little-endian)."""
    samples = 360
    data = bytearray()
    for i in range(samples):
        data += struct.pack("<hh", int(200 * ((i % 90) < 6)) + rng.randint(-5, 5), rng.randint(-20, 20))
    checksum = [0, 0]
    for i in range(samples):
        a, b = struct.unpack_from("<hh", data, 4 * i)
        checksum[0] = (checksum[0] + a) & 0xFFFF
        checksum[1] = (checksum[1] + b) & 0xFFFF
    header = (
        f"{name} 2 360 {samples}\n"
        f"{name}.dat 16 200 11 1024 {struct.unpack_from('<h', data, 0)[0]} {checksum[0]} 0 MLII\n"
        f"{name}.dat 16 200 11 1024 {struct.unpack_from('<h', data, 2)[0]} {checksum[1]} 0 V5\n"
        "# synthetic record generated for the medcat demo\n"
    )
    return header, bytes(data)


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write the project under ``root`` and return its replica with the expected counts."""
    rng = random.Random(f"physionet-{seed}")
    project = project_dir(root, SLUG, VERSION)
    (project / "labs").mkdir(parents=True, exist_ok=True)
    (project / "LICENSE.txt").write_text(LICENSE_TEXT, encoding="utf-8")
    (project / "RECORDS").write_text("100\n", encoding="utf-8")
    header, signal = _wfdb_record("100", rng)
    (project / "100.hea").write_text(header, encoding="utf-8")
    (project / "100.dat").write_bytes(signal)

    subjects = [10001 + i for i in range(12)]
    # subjects.csv: int (subject_id, age), float widening from ints (weight_kg), bool (smoker),
    # a column mixing numbers and text (-> string), empty cells (null).
    subject_rows: list[list[object]] = []
    for i, sid in enumerate(subjects):
        weight: object = rng.randint(50, 100) if i % 3 else f"{rng.uniform(50, 100):.1f}"
        score: object = rng.randint(1, 5) if i != 4 else "n/a"
        smoker = None if i == 7 else ("True" if rng.random() < 0.4 else "False")
        subject_rows.append([sid, rng.randint(18, 90), weight, smoker, score, rng.choice(["F", "M"])])
    header_subjects = ["subject_id", "age", "weight_kg", "smoker", "frailty_score", "gender"]
    data = csv_bytes(header_subjects, subject_rows)
    lines = data.decode("utf-8").splitlines(keepends=True)
    ragged_at = 6  # after the header and five rows -> file line 7
    ragged = f"{subjects[-1] + 1},57,70\n"
    lines.insert(ragged_at, ragged)
    (project / "subjects.csv").write_text("".join(lines), encoding="utf-8")

    measurement_rows: list[list[object]] = []
    for sid in subjects:
        for k in range(rng.randint(1, 4)):
            flag = "abnormal" if rng.random() < 0.3 else None
            measurement_rows.append(
                [sid, f"2180-0{1 + k}-1{k} 0{k}:30:00", rng.choice(["50912", "50971", "51221"]), f"{rng.uniform(0.5, 9):.2f}", flag]
            )
    header_meas = ["subject_id", "charttime", "itemid", "valuenum", "flag"]
    (project / "labs" / "measurements.csv.gz").write_bytes(gzip_bytes(csv_bytes(header_meas, measurement_rows)))
    write_sha256sums(project)

    expected = {
        "configs": {
            "subjects": {"train": len(subject_rows)},
            "labs_measurements": {"train": len(measurement_rows)},
        },
        "errors": [{"path": f"subjects.csv:{ragged_at + 1}", "stage": "parse"}],
        "types": {
            "subjects": {"subject_id": "int64", "age": "int64", "weight_kg": "float64", "smoker": "bool",
                         "frailty_score": "string", "gender": "string"},
            "labs_measurements": {"subject_id": "int64", "charttime": "string", "itemid": "int64",
                                  "valuenum": "float64", "flag": "string"},
        },
    }
    return [Replica(dataset_id=DATASET_ID, source="physionet", expected=expected, group_columns=("subject_id",))]
