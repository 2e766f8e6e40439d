"""A synthetic MIMIC-CXR 2.0.0 at ``root/files/mimic-cxr/2.0.0/`` plus its label companion (fact sheet §1, §7).

DICOMs under ``files/p1X/p<subject>/s<study>/<dicom_id>.dcm``, each report next to its study
folder as ``s<study>.txt`` and again inside ``mimic-cxr-reports.zip`` (``files/...`` member names;
the real zip's top folder is unconfirmed), ``cxr-record-list.csv.gz`` (``path`` =
``files/.../<dicom_id>.dcm``), ``cxr-study-list.csv.gz`` and a ``SHA256SUMS.txt`` of the four
top-level files only (§1.7). The companion ``mimic-cxr-jpg-labels`` is MIMIC-CXR-JPG 2.1.0 written
by the same writer and seed as the ``mimic-cxr-jpg`` replica (identical bytes), so its
``mimic-cxr-2.0.0-*.csv.gz`` describe these DICOMs. Planted bad item: one DICOM whose pixel data is
cut short (preamble and ``DICM`` intact, so the fetch's magic check passes); normalize reports it
in ``reports``, ``chexpert`` and ``negbio``, and that study's report row keeps its other images.
"""

from __future__ import annotations

from pathlib import Path

from medcat_data.mirror.synth import mimic_cohort
from medcat_data.mirror.replicas.base import Replica, physionet_env

DATASET_ID = "mimic-cxr"


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write both projects under ``root`` and return the replica with the expected counts."""
    cohort = mimic_cohort.make_cohort(seed)
    mimic_cohort.write_jpg_project(root, cohort, seed)
    expected = mimic_cohort.write_dicom_project(root, cohort, seed)
    return [
        Replica(
            dataset_id=DATASET_ID,
            source="physionet",
            protections=mimic_cohort.protections(),
            env=physionet_env(),
            expected=expected,
        )
    ]
