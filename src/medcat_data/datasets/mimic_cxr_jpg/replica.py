"""A synthetic MIMIC-CXR-JPG 2.1.0 at ``root/files/mimic-cxr-jpg/2.1.0/`` (fact sheet §1, §7).

The cohort and the writer live in ``mirror.synth.mimic_cohort`` and are shared with the
``mimic-cxr`` replica (which writes this very project too, byte for byte, for its label companion).
Planted bad item: a ``.jpg`` that is an HTML page, listed in ``SHA256SUMS.txt`` with its own hash,
so only normalize reports it (once in ``chexpert``, once in ``negbio``).
"""

from __future__ import annotations

from pathlib import Path

from medcat_data.mirror.synth import mimic_cohort
from medcat_data.mirror.replicas.base import Replica, physionet_env, physionet_protection

DATASET_ID = "mimic-cxr-jpg"


def build(root: Path, *, seed: int = 0) -> list[Replica]:
    """Write the project under ``root`` and return its replica with the expected counts."""
    cohort = mimic_cohort.make_cohort(seed)
    expected = mimic_cohort.write_jpg_project(root, cohort, seed)
    return [
        Replica(
            dataset_id=DATASET_ID,
            source="physionet",
            protections=(physionet_protection(mimic_cohort.JPG_SLUG, mimic_cohort.JPG_VERSION),),
            env=physionet_env(),
            expected=expected,
        )
    ]
