"""A synthetic VinDr-Mammo 1.0.0 at ``root/files/vindr-mammo/1.0.0/`` (fact sheet §3).

Layout of §3.3: ``LICENSE.txt``, ``SHA256SUMS.txt`` (§2.4), ``breast-level_annotations.csv``,
``finding_annotations.csv`` (exact headers and value spellings of §3.4: ``training``/``test``,
``BI-RADS n``, ``DENSITY X``, list-literal categories CSV-quoted when they hold several items,
empty boxes and BI-RADS on ``No Finding`` rows, coordinates with up to 10 decimals), an
``metadata.csv`` (21 columns as a third-party merge shows them; the recipe does not read it) and
``images/<study_id>/<image_id>.dicom``, four views per study. DICOMs follow §3.6: 32-hex UIDs
(MD5 digests, as the de-identification script writes them), file-meta class UIDs ``1.2.3.4``,
modality MG, laterality/view tags, no patient name or ID, MONOCHROME1 and MONOCHROME2, window
or VOI LUT, explicit VR little endian mixed with JPEG 2000 lossless (transfer syntax
unconfirmed upstream). Images are small (96-160 px) and CSV ``height``/``width`` equal
Rows/Columns. One study has two series.

Planted bad item: one DICOM whose pixel data is cut short; ``SHA256SUMS.txt`` lists the cut bytes,
so fetch and verify pass and only normalize reports it (once per config).
"""

from __future__ import annotations

import hashlib
import random
import warnings
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import JPEG2000Lossless, ExplicitVRLittleEndian

from medcat_data.mirror.replicas.base import (
    Replica,
    csv_bytes,
    physionet_env,
    physionet_protection,
    project_dir,
    write_sha256sums,
)
from medcat_data.mirror.synth.dicom import make_dicom, write_truncated

DATASET_ID = "vindr-mammo"
SLUG = "vindr-mammo"
VERSION = "1.0.0"
STUDIES = {"training": 7, "test": 3}

BREAST_HEADER = (
    "study_id", "series_id", "image_id", "laterality", "view_position", "height", "width",
    "breast_birads", "breast_density", "split",
)
FINDING_HEADER = (
    "study_id", "series_id", "image_id", "laterality", "view_position", "height", "width",
    "breast_birads", "breast_density", "finding_categories", "finding_birads", "xmin", "ymin", "xmax", "ymax", "split",
)
METADATA_HEADER = (
    "SOP Instance UID", "Series Instance UID", "SOP Instance UID", "Patient's Age", "View Position",
    "Image Laterality", "Photometric Interpretation", "Rows", "Columns", "Imager Pixel Spacing", "Pixel Spacing",
    "Pixel Padding Value", "Pixel Padding Range Limit", "Window Center", "Window Width", "Rescale Intercept",
    "Rescale Slope", "Rescale Type", "Window Center & Width Explanation", "Manufacturer", "Manufacturer's Model Name",
)
"""The 21 columns as a third-party merge of the real file shows them (pandas renamed the repeated
``SOP Instance UID`` to ``SOP Instance UID.1``); order and the repeat are third-party, unconfirmed upstream."""

VIEWS = (("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO"))
DEVICES = (
    # (model, (rows, columns), photometric, transfer syntax, VOI LUT instead of window)
    ("Mammomat Inspiration", (160, 128), "MONOCHROME2", ExplicitVRLittleEndian, False),
    ("Planmed Nuance", (128, 96), "MONOCHROME1", JPEG2000Lossless, False),
    ("Mammomat Inspiration", (144, 112), "MONOCHROME2", JPEG2000Lossless, True),
    ("Planmed Nuance", (120, 100), "MONOCHROME1", ExplicitVRLittleEndian, True),
)
SCORED = ("Mass", "Suspicious Calcification", "Asymmetry", "Focal Asymmetry", "Global Asymmetry", "Architectural Distortion")
UNSCORED = ("Skin Thickening", "Skin Retraction", "Nipple Retraction", "Suspicious Lymph Node")
LICENSE = (
    "PhysioNet Restricted Health Data License 1.5.0 (replica placeholder text).\n"
    "Synthetic replica for medcat tests: every image and value is generated; no person is described.\n"
)


def hex_id(*parts: object) -> str:
    """Return a 32-hex MD5 digest, the form VinDr's de-identification gives every UID."""
    return hashlib.md5("/".join(map(str, parts)).encode()).hexdigest()


def _coord(value: float) -> str:
    return f"{value:.10f}".rstrip("0").rstrip(".")


def _voi_lut(bits: int) -> tuple[int, int, np.ndarray]:
    """A gamma-like VOI LUT over the whole stored range (first mapped value 0, 12-bit output)."""
    ramp = np.linspace(0.0, 1.0, 2**bits)
    return (0, 12, np.rint(ramp**0.8 * 4095).astype(np.uint16))


def _dicom(path: Path, rng: random.Random, study: str, series: str, image: str, device: tuple, side: str, view: str, seed: int) -> None:
    model, (rows, columns), photometric, syntax, lut = device
    tags = {
        "StudyInstanceUID": study,
        "SeriesInstanceUID": series,
        "SOPInstanceUID": image,
        "Manufacturer": "SIEMENS" if "Mammomat" in model else "Planmed",
        "ManufacturerModelName": model,
        "ImageLaterality": side,
        "Laterality": side,
        "ViewPosition": view,
        "BodyPartExamined": "BREAST",
        "PresentationIntentType": "FOR PRESENTATION",
        "PatientSex": "F",
        "PatientAge": f"{rng.randint(35, 75):03d}Y",
        "PixelSpacing": [0.085, 0.085],
    }
    make_dicom(
        path,
        rows=rows,
        columns=columns,
        bits_stored=12,
        photometric=photometric,  # type: ignore[arg-type]
        transfer_syntax=syntax,
        rescale=(1.0, 0.0),
        window=None if lut else (2048.0, 3500.0),
        voi_lut=_voi_lut(12) if lut else None,
        modality="MG",
        tags=tags,
        file_meta={"MediaStorageSOPInstanceUID": image, "MediaStorageSOPClassUID": "1.2.3.4", "ImplementationClassUID": "1.2.3.4"},
        seed=seed,
    )
    # The de-identification whitelist drops patient name and ID (§3.6).
    ds = pydicom.dcmread(path)
    for keyword in ("PatientName", "PatientID", "InstanceNumber", "SpecificCharacterSet"):
        if keyword in ds:
            del ds[keyword]
    ds.save_as(path, enforce_file_format=True)


Finding = tuple[list[str], str, "tuple[float, float, float, float] | None"]


def _findings(rng: random.Random, width: int, height: int, birads: int) -> list[Finding]:
    """Return ``(categories, finding_birads, box)`` rows for one image; ``No Finding`` when none."""
    count = rng.choice((0, 0, 1, 1, 2)) if birads >= 3 else rng.choice((0, 0, 0, 1))
    boxes: list[Finding] = []
    for _ in range(count):
        if rng.random() < 0.25:
            categories = [rng.choice(UNSCORED)]
            finding_birads = ""
        else:
            categories = rng.sample(SCORED, rng.choice((1, 1, 2)))
            finding_birads = f"BI-RADS {rng.choice((3, 4, 5))}"
        w, h = rng.uniform(8, width / 3), rng.uniform(8, height / 3)
        x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
        x1, y1 = x0 + w, y0 + h
        if rng.random() < 0.2:  # boxes drawn to the image edge (and a hair past it) happen upstream
            x1 = width + rng.uniform(0.0, 0.9)
        boxes.append((categories, finding_birads, (x0, y0, x1, y1)))
    return boxes or [(["No Finding"], "", None)]


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write the project under ``root`` and return its replica with the expected counts."""
    rng = random.Random(f"vindr-mammo-{seed}")
    project = project_dir(root, SLUG, VERSION)
    project.mkdir(parents=True, exist_ok=True)
    (project / "LICENSE.txt").write_text(LICENSE, encoding="utf-8")
    breast_rows: list[list[object]] = []
    finding_rows: list[list[object]] = []
    metadata_rows: list[list[object]] = []
    counts = {"training": 0, "test": 0}
    planted: str | None = None
    n = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # 32-hex UIDs are not valid DICOM UIDs, as upstream
        for split, studies in STUDIES.items():
            for s in range(studies):
                study = hex_id(seed, split, s, "study")
                device = DEVICES[(s + (split == "test")) % len(DEVICES)]
                rows, columns = device[1]
                two_series = split == "training" and s == 2
                density = f"DENSITY {rng.choice('ABCCCD')}"
                sides = {side: rng.choice((1, 1, 2, 2, 3, 4, 5)) for side in "LR"}
                for v, (side, view) in enumerate(VIEWS):
                    series = hex_id(seed, split, s, "series", v // 2 if two_series else 0)
                    image = hex_id(seed, split, s, "image", v)
                    path = project / "images" / study / f"{image}.dicom"
                    _dicom(path, rng, study, series, image, device, side, view, seed * 1000 + n)
                    n += 1
                    birads = f"BI-RADS {sides[side]}"
                    ident = [study, series, image, side, view, rows, columns, birads, density]
                    breast_rows.append([*ident, split])
                    for categories, finding_birads, box in _findings(rng, columns, rows, sides[side]):
                        coords = [_coord(c) for c in box] if box else ["", "", "", ""]
                        finding_rows.append([*ident, repr(categories), finding_birads, *coords, split])
                    siemens = "Mammomat" in device[0]
                    metadata_rows.append([
                        image, series, image, f"{rng.randint(35, 75):03d}Y", view, side, device[2], rows, columns,
                        "[0.0850, 0.0850]", "[0.0850, 0.0850]", 0 if siemens else 10000, "",
                        "2048" if not device[4] else "", "3500" if not device[4] else "", 0, 1, "US",
                        "linear LUT" if siemens else "Default W/L", "SIEMENS" if siemens else "Planmed", device[0],
                    ])
                    if planted is None and split == "training" and s == 0 and device[3] == ExplicitVRLittleEndian:
                        planted = f"images/{study}/{image}.dicom"
                        write_truncated(path, path, keep_fraction=0.6)
                    else:
                        counts[split] += 1
    assert planted is not None, "the planted study must use explicit VR little endian"
    (project / "breast-level_annotations.csv").write_bytes(csv_bytes(BREAST_HEADER, breast_rows))
    (project / "finding_annotations.csv").write_bytes(csv_bytes(FINDING_HEADER, finding_rows))
    (project / "metadata.csv").write_bytes(csv_bytes(METADATA_HEADER, metadata_rows))
    write_sha256sums(project)

    per_split = {"train": counts["training"], "test": counts["test"]}
    expected = {
        "configs": {"birads": dict(per_split), "findings": dict(per_split)},
        "errors": [{"path": planted, "stage": "decode"}, {"path": planted, "stage": "decode"}],
    }
    return [
        Replica(
            dataset_id=DATASET_ID,
            source="physionet",
            protections=(physionet_protection(SLUG, VERSION),),
            env=physionet_env(),
            expected=expected,
            group_columns=("study_id",),
        )
    ]
