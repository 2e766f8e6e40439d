"""The synthetic MIMIC-CXR cohort shared by the ``mimic-cxr`` and ``mimic-cxr-jpg`` replicas.

One seeded cohort (patients, studies, images, labels, reports) is drawn once; ``write_jpg_project``
writes MIMIC-CXR-JPG 2.1.0 and ``write_dicom_project`` MIMIC-CXR 2.0.0 from it (fact sheet §1.3,
§1.4, §7). Both replicas call ``write_jpg_project`` with the same seed, so building both into one
root writes identical bytes, and the DICOM project's images are the JPG project's dicom_ids.

Cohort (seed 0 and every other seed alike): 10 patients in groups ``p10``..``p19`` with an official,
patient-level split (6 train, 2 validate, 2 test), 15 studies, 1-3 images each. Planted:

* the JPG ``files/.../<dicom_id>.jpg`` of one labelled train image is an HTML page (no JPEG),
  listed in ``SHA256SUMS.txt`` with its own hash, so fetch and verify pass and normalize reports it;
* the DICOM of one validate image has its pixel data cut short (``DICM`` preamble intact), so the
  magic check passes and normalize reports it;
* one train study is absent from both label files (unlabelled, as the 8 studies without
  findings/impression upstream); its report has neither section;
* one report has an IMPRESSION but no FINDINGS section;
* one labelled train study has an all-empty CheXpert row (CheXpert assigned it no label, as for
  2,414 studies upstream) and a NegBio row with labels.

Label files hold all four states (``1.0``, ``0.0``, ``-1.0``, empty) in alphabetical column order;
``mimic-cxr-2.1.0-test-set-labeled.csv`` lists all test studies but one, with ``study_id`` and the 14
observations in the page's order, spelling ``Airspace Opacity``.
"""

from __future__ import annotations

import io
import random
import zipfile
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from medcat_data.converters.vocab.chexpert import OBSERVATIONS
from medcat_data.mirror.replicas.base import (
    Protection,
    csv_bytes,
    gzip_bytes,
    physionet_env,
    physionet_protection,
    project_dir,
    write_sha256sums,
)
from medcat_data.mirror.synth.dicom import make_dicom, write_truncated

JPG_SLUG, JPG_VERSION = "mimic-cxr-jpg", "2.1.0"
DICOM_SLUG, DICOM_VERSION = "mimic-cxr", "2.0.0"

METADATA_COLUMNS = (
    "dicom_id", "subject_id", "study_id", "PerformedProcedureStepDescription", "ViewPosition", "Rows", "Columns",
    "StudyDate", "StudyTime", "ProcedureCodeSequence_CodeMeaning", "ViewCodeSequence_CodeMeaning",
    "PatientOrientationCodeSequence_CodeMeaning",
)
SPLIT_COLUMNS = ("dicom_id", "study_id", "subject_id", "split")
PAGE_ORDER = (
    "No Finding", "Enlarged Cardiomediastinum", "Cardiomegaly", "Lung Lesion", "Airspace Opacity", "Edema",
    "Consolidation", "Pneumonia", "Atelectasis", "Pneumothorax", "Pleural Effusion", "Pleural Other", "Fracture",
    "Support Devices",
)
"""Column order of the test-set file here: the page's order, not alphabetical (loaders select by name)."""

LICENSE_TEXT = (
    "PhysioNet Credentialed Health Data License 1.5.0 (replica placeholder text).\n"
    "Every file of this replica is synthetic; no person is described.\n"
)
_STATES = ("1.0", "0.0", "-1.0", "")
_VIEWS = {"PA": "postero-anterior", "AP": "antero-posterior", "LATERAL": "lateral", "LL": "left lateral"}


@dataclass(frozen=True)
class CxrImage:
    dicom_id: str
    view: str
    rows: int
    columns: int
    monochrome1: bool


@dataclass(frozen=True)
class CxrStudy:
    subject_id: int
    study_id: int
    split: str
    date: int
    time: str
    images: tuple[CxrImage, ...]
    chexpert: tuple[str, ...] | None
    negbio: tuple[str, ...] | None
    findings: str | None
    impression: str | None

    @property
    def folder(self) -> str:
        """``files/p1X/p<subject>/s<study>`` (relative to a project root)."""
        subject = str(self.subject_id)
        return f"files/p{subject[:2]}/p{subject}/s{self.study_id}"


@dataclass(frozen=True)
class Cohort:
    studies: tuple[CxrStudy, ...]
    test_labeled: dict[int, tuple[str, ...]]
    bad_jpg: str
    bad_dicom: str

    def image_path(self, study: CxrStudy, image: CxrImage, ext: str) -> str:
        return f"{study.folder}/{image.dicom_id}.{ext}"


def _hex_id(rng: random.Random) -> str:
    return "-".join(f"{rng.getrandbits(32):08x}" for _ in range(5))


def _labels(rng: random.Random) -> tuple[str, ...]:
    return tuple(rng.choices(_STATES, weights=(2, 3, 1, 6))[0] for _ in OBSERVATIONS)


_FINDINGS = (
    "The lungs are clear without focal consolidation. No pleural effusion or pneumothorax is seen. "
    "The cardiomediastinal silhouette is within normal limits.",
    "There is mild pulmonary vascular congestion. Small bilateral pleural effusions are present with "
    "adjacent atelectasis.",
    "Right basilar opacity may reflect atelectasis, though pneumonia cannot be excluded. Heart size is "
    "mildly enlarged. A right internal jugular line terminates in the mid SVC.",
)
_IMPRESSIONS = (
    "No acute cardiopulmonary process.",
    "Mild pulmonary edema and small bilateral effusions.",
    "Right basilar opacity, possibly atelectasis; infection not excluded in the appropriate clinical setting.",
)


def make_cohort(seed: int = 0, patients: int = 10) -> Cohort:
    """Draw the cohort of a seed (pure: no files written); ``patients`` > 10 scales it for benchmarks."""
    rng = random.Random(f"mimic-cxr-{seed}")
    splits = ["train"] * 6 + ["validate"] * 2 + ["test"] * 2
    studies: list[CxrStudy] = []
    used: set[int] = set()
    for p in range(patients):
        subject = 10_000_000 + p * 1_000_000 + rng.randrange(1_000_000)
        for s in range(1 + p % 2):
            study = 50_000_000 + rng.randrange(10_000_000)
            while study in used:
                study = 50_000_000 + rng.randrange(10_000_000)
            used.add(study)
            n_images = 3 if (p, s) == (3, 0) else (1 if (p + s) % 4 == 2 else 2)
            views = [rng.choice(["PA", "AP"]), "LATERAL", "LL"][:n_images]
            images = tuple(
                CxrImage(_hex_id(rng), view, rng.randint(80, 128), rng.randint(64, 112), monochrome1=(len(studies) + i) % 5 == 1)
                for i, view in enumerate(views)
            )
            k = len(studies) % 3
            findings: str | None = _FINDINGS[k]
            impression: str | None = _IMPRESSIONS[k]
            labels: tuple[str, ...] | None = _labels(rng)
            negbio: tuple[str, ...] | None = _labels(rng)
            if (p, s) == (1, 1):  # unlabelled: no findings/impression, absent from both label files
                findings = impression = labels = negbio = None
            elif (p, s) == (4, 0):
                findings = None
            studies.append(
                CxrStudy(
                    subject, study, splits[p % len(splits)], 2100_00_00 + rng.randint(80, 199) * 10_000 + rng.randint(1, 12) * 100 + rng.randint(1, 28),
                    f"{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}",
                    images, labels, negbio, findings, impression,
                )
            )
    # Every state in the CheXpert file, whatever the draw.
    first = studies[0]
    assert first.chexpert is not None
    studies[0] = replace(first, chexpert=("1.0", "0.0", "-1.0", "") + first.chexpert[4:])
    # One of the 2,414 studies CheXpert gave no label: its row is present with every cell empty
    # (the page counts 227,827 studies in both files); NegBio labelled it.
    blank = next(i for i, s in enumerate(studies) if i > 0 and s.chexpert is not None and s.split == "train")
    studies[blank] = replace(studies[blank], chexpert=("",) * len(OBSERVATIONS))
    tests = [s for s in studies if s.split == "test"]
    test_labeled = {s.study_id: _labels(rng) for s in tests[:-1]}
    train_labelled = [s for s in studies if s.split == "train" and s.chexpert is not None]
    bad_study = train_labelled[2]
    bad_jpg = f"{bad_study.folder}/{bad_study.images[0].dicom_id}.jpg"
    val = [s for s in studies if s.split == "validate"]
    bad_dicom = f"{val[0].folder}/{val[0].images[-1].dicom_id}.dcm"
    return Cohort(tuple(studies), test_labeled, bad_jpg, bad_dicom)


def _pixels(image: CxrImage, seed: int) -> np.ndarray:
    rng = np.random.default_rng(abs(hash_id(image.dicom_id)) + seed)
    y, x = np.mgrid[0 : image.rows, 0 : image.columns]
    body = np.exp(-(((x - image.columns / 2) / (image.columns / 3)) ** 2) - (((y - image.rows / 2) / (image.rows / 2.5)) ** 2))
    return np.clip(body * 200 + rng.normal(0, 12, body.shape) + 20, 0, 255).astype(np.uint8)


def hash_id(text: str) -> int:
    """A platform-stable integer of a string (``hash()`` is salted per process)."""
    return int(text.replace("-", "")[:12], 16)


def _jpeg(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


_NOT_JPEG = (
    b"<!DOCTYPE html>\n<html><head><title>Login | PhysioNet</title></head>\n"
    b"<body><p>Please log in to access this file.</p></body></html>\n"
)


def _label_rows(cohort: Cohort, which: str) -> list[list[object]]:
    rows: list[list[object]] = []
    for study in sorted(cohort.studies, key=lambda s: (s.subject_id, s.study_id)):
        values = study.chexpert if which == "chexpert" else study.negbio
        if values is not None:
            rows.append([study.subject_id, study.study_id, *values])
    return rows


def write_jpg_project(root: Path, cohort: Cohort, seed: int = 0) -> dict[str, object]:
    """Write MIMIC-CXR-JPG 2.1.0 under ``root/files/mimic-cxr-jpg/2.1.0`` and return its expected counts."""
    project = project_dir(root, JPG_SLUG, JPG_VERSION)
    project.mkdir(parents=True, exist_ok=True)
    ordered = sorted(cohort.studies, key=lambda s: (s.subject_id, s.study_id))
    metadata: list[list[object]] = []
    split_rows: list[list[object]] = []
    names: list[str] = []
    for study in ordered:
        procedure = "CHEST (PA AND LAT)" if any(i.view == "PA" for i in study.images) else "CHEST (PORTABLE AP)"
        for image in study.images:
            rel = cohort.image_path(study, image, "jpg")
            path = project / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_NOT_JPEG if rel == cohort.bad_jpg else _jpeg(_pixels(image, seed)))
            names.append(rel)
            orientation = "Erect" if image.view != "AP" else "Recumbent"
            metadata.append([
                image.dicom_id, study.subject_id, study.study_id, procedure, image.view, image.rows, image.columns,
                study.date, str(float(study.time)), procedure, _VIEWS[image.view], orientation,
            ])
            split_rows.append([image.dicom_id, study.study_id, study.subject_id, study.split])
    labels = ["subject_id", "study_id", *OBSERVATIONS]
    (project / "mimic-cxr-2.0.0-metadata.csv.gz").write_bytes(gzip_bytes(csv_bytes(METADATA_COLUMNS, metadata)))
    (project / "mimic-cxr-2.0.0-split.csv.gz").write_bytes(gzip_bytes(csv_bytes(SPLIT_COLUMNS, split_rows)))
    for which in ("chexpert", "negbio"):
        (project / f"mimic-cxr-2.0.0-{which}.csv.gz").write_bytes(gzip_bytes(csv_bytes(labels, _label_rows(cohort, which))))
    order = [("Lung Opacity" if c == "Airspace Opacity" else c) for c in PAGE_ORDER]
    test_rows = [
        [study_id, *(dict(zip(OBSERVATIONS, values))[c] for c in order)]
        for study_id, values in sorted(cohort.test_labeled.items())
    ]
    (project / "mimic-cxr-2.1.0-test-set-labeled.csv").write_bytes(csv_bytes(["study_id", *PAGE_ORDER], test_rows))
    (project / "IMAGE_FILENAMES").write_text("".join(f"{n}\n" for n in names), encoding="utf-8")
    (project / "LICENSE.txt").write_text(LICENSE_TEXT, encoding="utf-8")
    write_sha256sums(project)

    by_config: dict[str, Counter[str]] = {"chexpert": Counter(), "negbio": Counter(), "test-labeled": Counter()}
    for study in ordered:
        for image in study.images:
            if cohort.image_path(study, image, "jpg") == cohort.bad_jpg:
                continue
            split = _split_name(study.split)
            by_config["chexpert"][split] += 1
            by_config["negbio"][split] += 1
            if study.study_id in cohort.test_labeled:
                by_config["test-labeled"]["test"] += 1
    bad_in = [c for c in ("chexpert", "negbio", "test-labeled") if _config_has(cohort, c, cohort.bad_jpg)]
    return {
        "configs": {c: dict(sorted(n.items())) for c, n in by_config.items()},
        "errors": [{"path": cohort.bad_jpg, "stage": "read", "config": c} for c in bad_in],
    }


def _config_has(cohort: Cohort, config: str, rel: str) -> bool:
    for study in cohort.studies:
        if rel.startswith(study.folder + "/"):
            return config != "test-labeled" or study.study_id in cohort.test_labeled
    return False


def _split_name(upstream: str) -> str:
    return {"validate": "validation"}.get(upstream, upstream)


def report_text(study: CxrStudy) -> str:
    """The free-text report of a study, in the upstream shape (banner, sections, ``___`` for PHI)."""
    lines = [
        "                                 FINAL REPORT",
        " EXAMINATION:  CHEST (PA AND LAT)",
        " ",
        " INDICATION:  ___ year old woman with cough and fever  // eval for pneumonia",
        " ",
        " TECHNIQUE:  Chest PA and lateral",
        " ",
        " COMPARISON:  ___",
        " ",
    ]
    if study.findings is None and study.impression is None:
        lines += [" WET READ: ___ ___ ___ 10:12 AM", "   Limited study, see final read.", " "]
    if study.findings is not None:
        lines += [" FINDINGS: ", " ", *_wrap(study.findings), " "]
    if study.impression is not None:
        lines += [" IMPRESSION: ", " ", *_wrap(study.impression)]
    return "\n".join(lines) + "\n"


def _wrap(text: str, width: int = 78) -> list[str]:
    out: list[str] = []
    line = ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            out.append(" " + line)
            line = word
        else:
            line = f"{line} {word}".strip()
    if line:
        out.append(" " + line)
    return out


def write_dicom_project(root: Path, cohort: Cohort, seed: int = 0) -> dict[str, object]:
    """Write MIMIC-CXR 2.0.0 under ``root/files/mimic-cxr/2.0.0`` and return its expected counts."""
    project = project_dir(root, DICOM_SLUG, DICOM_VERSION)
    project.mkdir(parents=True, exist_ok=True)
    ordered = sorted(cohort.studies, key=lambda s: (s.subject_id, s.study_id))
    records: list[list[object]] = []
    study_rows: list[list[object]] = []
    reports = io.BytesIO()
    with zipfile.ZipFile(reports, "w", zipfile.ZIP_DEFLATED) as archive:
        for study in ordered:
            for image in study.images:
                rel = cohort.image_path(study, image, "dcm")
                path = project / rel
                raw = _pixels(image, seed).astype(np.uint16) * 16
                if image.monochrome1:
                    raw = 4095 - raw
                make_dicom(
                    path,
                    pixels=raw,
                    bits_stored=12,
                    photometric="MONOCHROME1" if image.monochrome1 else "MONOCHROME2",
                    modality="DX",
                    tags={
                        "ViewPosition": image.view,
                        "StudyDate": str(study.date),
                        "StudyTime": study.time,
                        "ImageType": ["DERIVED", "PRIMARY"],
                        "PatientID": str(study.subject_id),
                        "StudyID": str(study.study_id),
                        "PatientName": "___",
                    },
                    seed=hash_id(image.dicom_id) + seed,
                )
                if rel == cohort.bad_dicom:
                    write_truncated(path, path, keep_fraction=0.7)
                records.append([study.subject_id, study.study_id, image.dicom_id, rel])
            report_rel = f"{study.folder}.txt"
            text = report_text(study)
            (project / report_rel).write_text(text, encoding="utf-8")
            info = zipfile.ZipInfo(report_rel, date_time=(2019, 9, 19, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, text)
            study_rows.append([study.subject_id, study.study_id, report_rel])
    (project / "mimic-cxr-reports.zip").write_bytes(reports.getvalue())
    (project / "cxr-record-list.csv.gz").write_bytes(gzip_bytes(csv_bytes(["subject_id", "study_id", "dicom_id", "path"], records)))
    (project / "cxr-study-list.csv.gz").write_bytes(gzip_bytes(csv_bytes(["subject_id", "study_id", "path"], study_rows)))
    (project / "LICENSE.txt").write_text(LICENSE_TEXT, encoding="utf-8")
    _write_top_level_sums(project, ("LICENSE.txt", "cxr-record-list.csv.gz", "cxr-study-list.csv.gz", "mimic-cxr-reports.zip"))

    per_image: Counter[str] = Counter()
    reports_count: Counter[str] = Counter()
    for study in ordered:
        split = _split_name(study.split)
        good = [i for i in study.images if cohort.image_path(study, i, "dcm") != cohort.bad_dicom]
        per_image[split] += len(good)
        if good:
            reports_count[split] += 1
    counts = dict(sorted(per_image.items()))
    return {
        "configs": {"reports": dict(sorted(reports_count.items())), "chexpert": counts, "negbio": dict(counts)},
        "errors": [{"path": cohort.bad_dicom, "stage": "decode", "config": c} for c in ("reports", "chexpert", "negbio")],
    }


def _write_top_level_sums(project: Path, names: tuple[str, ...]) -> None:
    """SHA256SUMS.txt of §2.4 limited to the top-level files, as MIMIC-CXR 2.0.0's 339-byte one (§1.7)."""
    import hashlib

    lines = sorted((n.encode("utf-8"), f"{hashlib.sha256((project / n).read_bytes()).hexdigest()} {n}\n") for n in names)
    (project / "SHA256SUMS.txt").write_text("".join(line for _, line in lines), encoding="utf-8")


def protections() -> tuple[Protection, ...]:
    return (physionet_protection(JPG_SLUG, JPG_VERSION), physionet_protection(DICOM_SLUG, DICOM_VERSION))


def env() -> dict[str, str]:
    return physionet_env()
