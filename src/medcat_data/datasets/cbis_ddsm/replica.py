"""A synthetic CBIS-DDSM, served as its two sources (fact sheet §4).

``tcia``: the four case-description CSVs at the registry's URL paths
(``root/wp-content/uploads/<name>.csv``) and what the NBIA REST API serves through
``mirror.tcia`` (fact sheet §4.2-4.3): ``root/tcia/CBIS-DDSM/series.json``, the ``getSeries``
answer (one object per series: UIDs, subject id, SeriesDescription ``full mammogram images`` /
``cropped images`` / ``ROI mask images``, SeriesNumber, ``StudyDate``/``StudyDesc``, ``ImageCount``
and ``FileSize`` in DICOM bytes), and ``root/tcia/CBIS-DDSM/<SeriesInstanceUID>.zip``, the
``getImage`` answer, holding ``1-<k>.dcm``. The fetch lays these out as the NBIA Data Retriever
does (``metadata.csv`` + ``CBIS-DDSM/<Subject>/<date>-DDSM-<5>/<n>.000000-<description>-<5>/``).

``kaggle``: ``root/kaggle/awsaf49/cbis-ddsm-breast-cancer-image-dataset.zip`` (§4.5) holding
``csv/`` (the same four CSVs byte for byte, ``dicom_info.csv`` with ``image_path`` values starting
``CBIS-DDSM/jpeg/`` and the three SeriesDescription strings, an approximate ``meta.csv``) and
``jpeg/<SeriesInstanceUID>/<n>-<m>.jpg`` 8-bit JPEGs of the same pixels.

CSVs follow §4.4: the two density spellings (``breast_density`` for masses, ``breast density`` for
calcifications), CRLF record ends, the quoted trailing LF in ``ROI mask file path`` (masses) or
``cropped image file path`` (calcifications), classic
``<Subject>/<StudyUID>/<SeriesUID>/00000k.dcm`` paths. Crop and mask mostly share one series
(which of ``000000``/``000001`` is the mask varies, as upstream); one abnormality has them in two
series. Full mammograms are 16-bit (12 stored), masks 8-bit 0/255 at the mammogram's size, crops
smaller; DICOMs alternate explicit VR little endian and JPEG 2000 lossless. Patients never cross
the official train/test split; a patient can have masses and calcifications.

One calc-test image set has breast density ``0`` (outside 1-4, as two upstream calc-test rows):
a valid row whose density normalizes to null.

Planted bad item (both sources): a mass training row whose crop/mask series is absent from the
NBIA ``getSeries`` listing and zips (hence from the fetched ``metadata.csv`` and tree),
``dicom_info.csv`` and ``jpeg/``. It is the only abnormality of
its mammogram, so ``mass`` and ``mass-roi`` each report it once.
"""

from __future__ import annotations

import csv
import io
import json
import random
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.uid import JPEG2000Lossless, ExplicitVRLittleEndian

from medcat_data.mirror.replicas.base import REPLICA_PASSWORD, Protection, Replica, csv_bytes
from medcat_data.mirror.synth.dicom import make_dicom

DATASET_ID = "cbis-ddsm"
TCIA_PREFIX = "wp-content/uploads"
COLLECTION = "CBIS-DDSM"
TCIA_API_DIR = f"tcia/{COLLECTION}"
"""Where ``mirror.tcia`` finds the collection: ``series.json`` (the getSeries answer) and ``<uid>.zip``."""
KAGGLE_ZIP = "kaggle/awsaf49/cbis-ddsm-breast-cancer-image-dataset.zip"
UID_ROOT = "1.3.6.1.4.1.9590.100.1.2"

MASS_HEADER = (
    "patient_id", "breast_density", "left or right breast", "image view", "abnormality id", "abnormality type",
    "mass shape", "mass margins", "assessment", "pathology", "subtlety", "image file path",
    "cropped image file path", "ROI mask file path",
)
CALC_HEADER = (
    "patient_id", "breast density", "left or right breast", "image view", "abnormality id", "abnormality type",
    "calc type", "calc distribution", "assessment", "pathology", "subtlety", "image file path",
    "cropped image file path", "ROI mask file path",
)
DICOM_INFO_HEADER = (
    "file_path", "image_path", "AccessionNumber", "BitsAllocated", "BitsStored", "BodyPartExamined", "Columns",
    "ContentDate", "ContentTime", "Laterality", "Modality", "PatientBirthDate", "PatientID", "PatientSex",
    "PhotometricInterpretation", "ReferringPhysicianName", "Rows", "SOPClassUID", "SOPInstanceUID",
    "SeriesDescription", "SeriesInstanceUID", "SeriesNumber", "StudyDate", "StudyID", "StudyInstanceUID",
    "StudyTime", "InstanceNumber",
)
META_HEADER = ("SeriesInstanceUID", "StudyInstanceUID", "PatientID", "SeriesDescription", "Number of Images")
"""Approximate: the columns of the Kaggle ``meta.csv`` are unconfirmed; the recipe does not read it."""

SC_CLASS = "1.2.840.10008.5.1.4.1.1.7"
FULL, CROP, MASK = "full mammogram images", "cropped images", "ROI mask images"
MASS_SHAPES = ("IRREGULAR", "LOBULATED", "OVAL", "ROUND", "ARCHITECTURAL_DISTORTION", "IRREGULAR-ARCHITECTURAL_DISTORTION", "LOBULATED-LYMPH_NODE")
MASS_MARGINS = ("CIRCUMSCRIBED", "ILL_DEFINED", "MICROLOBULATED", "OBSCURED", "SPICULATED", "ILL_DEFINED-SPICULATED")
CALC_TYPES = ("AMORPHOUS", "PLEOMORPHIC", "PUNCTATE", "FINE_LINEAR_BRANCHING", "ROUND_AND_REGULAR-LUCENT_CENTER-PUNCTATE", "LUCENT_CENTER")
CALC_DISTRIBUTIONS = ("CLUSTERED", "LINEAR", "REGIONAL", "SEGMENTAL", "CLUSTERED-LINEAR")
PATHOLOGIES = ("MALIGNANT", "BENIGN", "BENIGN_WITHOUT_CALLBACK")
SETS = {("mass", "Training"): 4, ("mass", "Test"): 2, ("calc", "Training"): 4, ("calc", "Test"): 2}
PATIENTS = {"Training": (1, 5, 8, 12), "Test": (20, 23, 27)}


@dataclass
class _Image:
    """One DICOM/JPEG of the replica: its series, pixels and where it goes."""

    subject: str
    study: str
    series: str
    description: str
    pixels: np.ndarray
    instance: int = 1
    series_number: int = 1


@dataclass
class _Tree:
    images: list[_Image] = field(default_factory=list)
    absent_series: set[str] = field(default_factory=set)


def _uid(rng: random.Random) -> str:
    return f"{UID_ROOT}.{rng.randrange(10**9, 10**10)}.{rng.randrange(10**5, 10**6)}.{rng.randrange(10**9, 10**10)}"


def _mammogram(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    breast = np.exp(-(((x / width) ** 2) / 0.5 + (((y - height / 2) / height) ** 2) / 0.3))
    image = 30 + 170 * breast + rng.normal(0, 6, (height, width))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _lesion(rng: random.Random, height: int, width: int) -> tuple[int, int, int, int]:
    h, w = rng.randint(10, height // 3), rng.randint(10, width // 3)
    y0, x0 = rng.randint(2, height - h - 2), rng.randint(2, width - w - 2)
    return y0, x0, y0 + h, x0 + w


def _mask(height: int, width: int, box: tuple[int, int, int, int]) -> np.ndarray:
    y0, x0, y1, x1 = box
    y, x = np.mgrid[0:height, 0:width]
    cy, cx, ry, rx = (y0 + y1 - 1) / 2, (x0 + x1 - 1) / 2, (y1 - y0) / 2, (x1 - x0) / 2
    inside = ((y - cy) / ry) ** 2 + ((x - cx) / rx) ** 2 <= 1.0
    return np.where(inside, 255, 0).astype(np.uint8)


def _crop(full: np.ndarray, box: tuple[int, int, int, int], rng: np.random.Generator) -> np.ndarray:
    y0, x0, y1, x1 = box
    region = full[max(0, y0 - 4) : y1 + 4, max(0, x0 - 4) : x1 + 4].astype(np.float64)
    return np.clip(np.rint(region * 0.8 + 40 + rng.normal(0, 4, region.shape)), 1, 254).astype(np.uint8)


def _case_rows(seed: int) -> tuple[dict[tuple[str, str], list[list[str]]], _Tree, dict[str, object]]:
    """Return the CSV rows per (kind, split), the image tree and the bookkeeping for ``expected``."""
    rng = random.Random(f"cbis-ddsm-{seed}")
    pixels = np.random.default_rng(seed)
    tree = _Tree()
    tables: dict[tuple[str, str], list[list[str]]] = {}
    counts: dict[str, dict[str, int]] = {c: {"train": 0, "test": 0} for c in ("mass", "calc", "mass-roi", "calc-roi")}
    planted: str | None = None
    split_shared_once = False
    for (kind, split), n_sets in SETS.items():
        prefix = f"{'Mass' if kind == 'mass' else 'Calc'}-{split}"
        ours = "train" if split == "Training" else "test"
        used: set[tuple[int, str, str]] = set()
        sets: list[tuple[int, str, str]] = []
        while len(sets) < n_sets:
            key = (rng.choice(PATIENTS[split]), rng.choice(("LEFT", "RIGHT")), rng.choice(("CC", "MLO")))
            if key not in used:
                used.add(key)
                sets.append(key)
        rows: list[list[str]] = []
        for index, (patient_no, side, view) in enumerate(sorted(sets)):
            patient = f"P_{patient_no:05d}"
            subject = f"{prefix}_{patient}_{side}_{view}"
            height, width = rng.choice(((128, 96), (112, 88), (120, 100)))
            full = _mammogram(pixels, height, width)
            study, series = _uid(rng), _uid(rng)
            tree.images.append(_Image(subject, study, series, FULL, full))
            is_planted = planted is None and kind == "mass" and split == "Training" and index == n_sets - 1
            n_abn = 1 if is_planted else (2 if index == 0 else 1)
            density = str(rng.randint(1, 4))
            if kind == "calc" and split == "Test" and index == n_sets - 1:
                density = "0"  # upstream's quirk: two calc-test rows have density 0, outside 1-4
            ok_abn = 0
            for abn in range(1, n_abn + 1):
                box = _lesion(rng, height, width)
                roi_subject = f"{subject}_{abn}"
                roi_study = _uid(rng)
                crop_series = _uid(rng)
                separate = not split_shared_once and kind == "calc" and split == "Training"
                mask_series = _uid(rng) if separate else crop_series
                split_shared_once = split_shared_once or separate
                mask_first = rng.random() < 0.5
                crop_name, mask_name = ("000001.dcm", "000000.dcm") if mask_first and not separate else ("000000.dcm", "000001.dcm" if not separate else "000000.dcm")
                if is_planted:
                    tree.absent_series.add(crop_series)
                    planted = roi_subject
                else:
                    ok_abn += 1
                    crop = _Image(roi_subject, roi_study, crop_series, CROP, _crop(full, box, pixels), series_number=1)
                    mask = _Image(roi_subject, roi_study, mask_series, MASK, _mask(height, width, box), series_number=2 if separate else 1)
                    crop.instance, mask.instance = (2, 1) if mask_first and not separate else (1, 1 if separate else 2)
                    tree.images.extend([crop, mask])
                if kind == "mass":
                    descriptors = [rng.choice(MASS_SHAPES), rng.choice(MASS_MARGINS)]
                else:
                    descriptors = [rng.choice(CALC_TYPES), rng.choice(CALC_DISTRIBUTIONS) if rng.random() < 0.85 else "N/A"]
                pathology = rng.choice(PATHOLOGIES)
                assessment = str(rng.choice((4, 5)) if pathology == "MALIGNANT" else rng.choice((0, 2, 3, 4)))
                crop_path = f"{roi_subject}/{roi_study}/{crop_series}/{crop_name}"
                mask_path = f"{roi_subject}/{roi_study}/{mask_series}/{mask_name}"
                # The quoted LF sits in the mask path of the mass CSVs, in the crop path of the calc CSVs.
                crop_path, mask_path = (crop_path + "\n", mask_path) if kind == "calc" else (crop_path, mask_path + "\n")
                rows.append([
                    patient, density, side, view, str(abn), "mass" if kind == "mass" else "calcification", *descriptors,
                    assessment, pathology, str(rng.randint(1, 5)), f"{subject}/{study}/{series}/000000.dcm",
                    crop_path, mask_path,
                ])
            counts[kind][ours] += ok_abn
            counts[f"{kind}-roi"][ours] += 1 if ok_abn == n_abn else 0
        tables[(kind, split)] = rows
    assert planted is not None
    return tables, tree, {"counts": counts, "planted": planted}


def _case_csv_bytes(header: tuple[str, ...], rows: list[list[str]]) -> bytes:
    """A case CSV as upstream writes it: CRLF between records, the quoted newline inside a field a bare LF."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _csv_name(kind: str, split: str) -> str:
    return f"{kind}_case_description_{'train' if split == 'Training' else 'test'}_set.csv"


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=95)
    return buffer.getvalue()


def _zip(members: list[tuple[str, bytes]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(2021, 5, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, data)
    return buffer.getvalue()


def _write_tcia(root: Path, tree: _Tree, csvs: dict[str, bytes]) -> None:
    """Write the case CSVs (direct downloads) and what the NBIA API serves (``mirror.tcia``)."""
    base = root / TCIA_PREFIX
    base.mkdir(parents=True, exist_ok=True)
    for name, data in csvs.items():
        (base / name).write_bytes(data)
    api = root / TCIA_API_DIR
    api.mkdir(parents=True, exist_ok=True)
    members: dict[str, list[tuple[str, bytes]]] = {}
    listing: dict[str, dict[str, object]] = {}
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as scratch:
        warnings.simplefilter("ignore", UserWarning)
        for n, image in enumerate(tree.images):
            mask = image.description == MASK
            stored = image.pixels if mask else image.pixels.astype(np.uint16) * 16
            path = make_dicom(
                Path(scratch) / f"{n}.dcm",
                bits_stored=8 if mask else 12,
                photometric="MONOCHROME2",
                transfer_syntax=JPEG2000Lossless if n % 2 and min(stored.shape) >= 64 else ExplicitVRLittleEndian,
                modality="OT",
                pixels=stored,
                tags={
                    "Modality": "MG", "PatientID": image.subject, "StudyInstanceUID": image.study,
                    "SeriesInstanceUID": image.series, "SeriesDescription": image.description,
                    "InstanceNumber": image.instance, "BodyPartExamined": "BREAST", "SOPClassUID": SC_CLASS,
                },
                seed=n,
            )
            # Named as getImage?NewFileNames=Yes does: 1-<instance>.dcm (a crop and its mask share a series).
            members.setdefault(image.series, []).append((f"1-{image.instance}.dcm", path.read_bytes()))
            # A series shared by a crop and its mask is described by the first of them, as upstream.
            listing.setdefault(image.series, _series_entry(image))
    for series, files in members.items():
        entry = listing[series]
        entry["ImageCount"] = len(files)
        entry["FileSize"] = sum(len(data) for _, data in files)
        (api / f"{series}.zip").write_bytes(_zip(sorted(files)))
    (api / "series.json").write_text(json.dumps(list(listing.values()), indent=1) + "\n", encoding="utf-8")


def _series_entry(image: _Image) -> dict[str, object]:
    """One object of the NBIA ``getSeries`` answer (field names as the API uses them)."""
    return {
        "SeriesInstanceUID": image.series, "StudyInstanceUID": image.study, "Modality": "MG",
        "StudyDate": "07-20-2016", "StudyDesc": "DDSM", "SeriesDescription": image.description,
        "BodyPartExamined": "BREAST", "SeriesNumber": image.series_number, "Collection": COLLECTION,
        "PatientID": image.subject, "Manufacturer": "", "ImageCount": 0, "FileSize": 0,
        "CollectionURI": "https://doi.org/10.7937/K9/TCIA.2016.7O02S9CY", "LicenseName": "Creative Commons Attribution 3.0 Unported License",
        "ThirdPartyAnalysis": "NO", "DateReleased": "2016-09-14 00:00:00.0",
    }


def _write_kaggle(target: Path, tree: _Tree, csvs: dict[str, bytes], seed: int) -> None:
    rng = random.Random(f"cbis-kaggle-{seed}")
    members: list[tuple[str, bytes]] = [(f"csv/{name}", data) for name, data in csvs.items()]
    info_rows, meta_rows, jpegs = [], [], []
    suffix: dict[str, int] = {}
    for image in tree.images:
        number = suffix.setdefault(image.series, rng.randint(100, 300))
        name = f"{image.instance}-{number}.jpg"
        jpegs.append((f"jpeg/{image.series}/{name}", _jpeg(image.pixels)))
        height, width = image.pixels.shape
        info_rows.append([
            f"CBIS-DDSM/dicom/{image.series}.{image.instance}.dcm", f"CBIS-DDSM/jpeg/{image.series}/{name}", "", 16, 16,
            "BREAST", width, "20160720", "", "", "MG", "", image.subject, "", "MONOCHROME2", "", height, SC_CLASS,
            f"{image.series}.{image.instance}", image.description, image.series, image.series_number, "20160720",
            "DDSM", image.study, "", image.instance,
        ])
        meta_rows.append([image.series, image.study, image.subject, image.description, 1])
    members.append(("csv/dicom_info.csv", csv_bytes(DICOM_INFO_HEADER, info_rows)))
    members.append(("csv/meta.csv", csv_bytes(META_HEADER, meta_rows)))
    members.extend(sorted(jpegs))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(_zip(members))


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write both sources under ``root`` and return their replicas with the expected counts."""
    tables, tree, book = _case_rows(seed)
    csvs = {
        _csv_name(kind, split): _case_csv_bytes(MASS_HEADER if kind == "mass" else CALC_HEADER, rows)
        for (kind, split), rows in sorted(tables.items())
    }
    _write_tcia(root, tree, csvs)
    _write_kaggle(root / KAGGLE_ZIP, tree, csvs, seed)
    counts: dict[str, dict[str, int]] = book["counts"]  # type: ignore[assignment]
    planted = str(book["planted"])
    expected = {
        "configs": counts,
        "errors": [{"path": planted, "stage": "read"}, {"path": planted, "stage": "read"}],
    }
    kaggle = Protection(prefix="/api/v1/", username="replica-user", password=REPLICA_PASSWORD, user_agents=None)
    return [
        Replica(dataset_id=DATASET_ID, source="tcia", expected=expected, group_columns=("patient_id",)),
        Replica(
            dataset_id=DATASET_ID,
            source="kaggle",
            protections=(kaggle,),
            env={"KAGGLE_USERNAME": "replica-user", "KAGGLE_KEY": REPLICA_PASSWORD},
            expected=expected,
            group_columns=("patient_id",),
        ),
    ]
