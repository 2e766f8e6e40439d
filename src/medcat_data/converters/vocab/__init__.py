"""Label vocabularies shared across datasets, and their mapping tables (rendered as ``docs/labels.md``)."""

from __future__ import annotations

from medcat_data.converters.vocab.base import Vocabulary
from medcat_data.converters.vocab.chexpert import MENTION as CHEXPERT_MENTION
from medcat_data.converters.vocab.genotype import GENOTYPE_CLASS
from medcat_data.converters.vocab.mammography import (
    BIRADS,
    CBIS_PATHOLOGY,
    DENSITY,
    FINDING_BIRADS,
    LATERALITY,
    VIEW,
    VINDR_FINDINGS,
)
from medcat_data.converters.vocab.skin import DIAGNOSIS as SKIN_DIAGNOSIS
from medcat_data.converters.vocab.vqa import ANSWER_TYPE as VQA_ANSWER_TYPE

ALL: tuple[Vocabulary, ...] = (
    CHEXPERT_MENTION,
    BIRADS,
    FINDING_BIRADS,
    DENSITY,
    CBIS_PATHOLOGY,
    VINDR_FINDINGS,
    VIEW,
    LATERALITY,
    SKIN_DIAGNOSIS,
    GENOTYPE_CLASS,
    VQA_ANSWER_TYPE,
)

__all__ = [
    "ALL",
    "BIRADS",
    "CBIS_PATHOLOGY",
    "CHEXPERT_MENTION",
    "DENSITY",
    "FINDING_BIRADS",
    "GENOTYPE_CLASS",
    "LATERALITY",
    "VQA_ANSWER_TYPE",
    "SKIN_DIAGNOSIS",
    "VIEW",
    "VINDR_FINDINGS",
    "Vocabulary",
]
