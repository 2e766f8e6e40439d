"""A synthetic PAD-UFES-20 "Download All" zip at ``root/public-api/zip/zr7vgbcyr2/download/1``.

Layout of fact sheet §5.2: the outer zip holds ``zr7vgbcyr2-1/metadata.csv`` (the exact 26-column
header of §5.3; ``True``/``False``, empty and ``UNK`` values; many rows without clinical fields)
and ``zr7vgbcyr2-1/images/imgs_part_{1,2,3}.zip``, each holding ``imgs_part_N/PAT_<p>_<l>_<n>.png``
(small RGB PNGs, spread over the parts regardless of class). Three patients per class, so every
class reaches every split. Planted bad item: one ``img_id`` whose PNG is in no part.
"""

from __future__ import annotations

import random
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from medcat_data.converters.codecs.image import encode_png
from medcat_data.converters.splits import DEFAULT_SEED, grouped_split
from medcat_data.converters.vocab.skin import DIAGNOSIS
from medcat_data.mirror.replicas.base import Replica, zip_bytes

DATASET_ID = "pad-ufes-20"
URL_PATH = "public-api/zip/zr7vgbcyr2/download/1"
TOP = "zr7vgbcyr2-1"
HEADER = (
    "patient_id,lesion_id,smoke,drink,background_father,background_mother,age,pesticide,gender,"
    "skin_cancer_history,cancer_history,has_piped_water,has_sewage_system,fitspatrick,region,diameter_1,"
    "diameter_2,diagnostic,itch,grew,hurt,changed,bleed,elevation,img_id,biopsed"
)
PATIENTS_PER_CLASS = 3
_ZIP_TIME = (2020, 7, 7, 0, 0, 0)


def _png(rng: np.random.Generator) -> bytes:
    height, width = int(rng.integers(12, 24)), int(rng.integers(12, 24))
    base = rng.integers(60, 200, size=3)
    pixels = np.clip(base + rng.integers(-30, 30, size=(height, width, 3)), 0, 255).astype(np.uint8)
    return encode_png(pixels)


def _flag(rng: random.Random, unk: bool) -> str:
    return rng.choice(["True", "False", "UNK"] if unk else ["True", "False"])


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write the outer zip under ``root`` and return its replica with the expected counts."""
    rng = random.Random(f"pad-ufes-20-{seed}")
    pixels = np.random.default_rng(seed)
    rows: list[list[str]] = []
    images: list[tuple[str, bytes]] = []
    patient, lesion = 10, 100
    for code in DIAGNOSIS.labels:
        for _ in range(PATIENTS_PER_CLASS):
            patient += rng.randint(1, 40)
            full = rng.random() < 0.6  # many rows lack most clinical fields
            for _ in range(rng.randint(1, 2)):
                lesion += rng.randint(1, 30)
                for _ in range(rng.randint(1, 2)):
                    number = rng.randint(1, 999)
                    img_id = f"PAT_{patient}_{lesion}_{number}.png"
                    if any(r[24] == img_id for r in rows):
                        continue
                    cancer = code in ("BCC", "MEL", "SCC")
                    clinical = [
                        _flag(rng, False), _flag(rng, False), rng.choice(["POMERANIA", "GERMANY", "ITALY", "BRAZIL"]),
                        rng.choice(["POMERANIA", "ITALY", "BRAZIL", "PORTUGAL"]), str(rng.randint(20, 90)),
                        _flag(rng, False), rng.choice(["FEMALE", "MALE"]), _flag(rng, False), _flag(rng, False),
                        _flag(rng, False), _flag(rng, False), f"{float(rng.randint(1, 6)):.1f}",
                    ] if full else ["", "", "", "", str(rng.randint(20, 90)), "", "", "", "", "", "", ""]
                    region = rng.choice(["NECK", "FACE", "CHEST", "BACK", "FOREARM", "NOSE"])
                    d1, d2 = (f"{rng.uniform(3, 25):.1f}", f"{rng.uniform(3, 25):.1f}") if full else ("", "")
                    symptoms = [_flag(rng, True) for _ in range(6)]
                    rows.append(
                        [f"PAT_{patient}", str(lesion), *clinical, region, d1, d2, code, *symptoms, img_id,
                         "True" if cancer or rng.random() < 0.4 else "False"]
                    )
                    images.append((img_id, _png(pixels)))
    # Planted bad item: the last image of the first BCC patient loses its PNG.
    first_bcc = next(r[0] for r in rows if r[17] == "BCC")
    planted = [r[24] for r in rows if r[0] == first_bcc][-1]
    images = [(name, data) for name, data in images if name != planted]
    parts: dict[int, list[tuple[str, bytes]]] = defaultdict(list)
    for i, (name, data) in enumerate(sorted(images, key=lambda kv: rng.random())):
        part = i % 3 + 1
        parts[part].append((f"imgs_part_{part}/{name}", data))

    metadata = (HEADER + "\n" + "".join(",".join(r) + "\n" for r in rows)).encode("utf-8")
    members = [(f"{TOP}/metadata.csv", metadata)]
    for part in (1, 2, 3):
        members.append((f"{TOP}/images/imgs_part_{part}.zip", zip_bytes(sorted(parts[part]), date_time=_ZIP_TIME, compression=zipfile.ZIP_STORED)))
    target = root / URL_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(zip_bytes(members, date_time=_ZIP_TIME, compression=zipfile.ZIP_DEFLATED))

    # Expected counts from the builder's own rows, split as the recipe's default seed does.
    per_patient: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        per_patient[r[0]][r[17]] += 1
    labels = {p: sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[0][0] for p, c in per_patient.items()}
    split = grouped_split(list(per_patient), labels=labels, seed=DEFAULT_SEED)
    counts: Counter[str] = Counter(split.of(r[0]) for r in rows if r[24] != planted)
    expected = {
        "configs": {"diagnosis": {s: counts[s] for s in ("train", "validation", "test")}},
        "errors": [{"path": planted, "stage": "read"}],
    }
    return [Replica(dataset_id=DATASET_ID, source="mendeley", expected=expected, group_columns=("patient_id",))]
