"""The 14 CheXpert observations and their four mention states, as MIMIC-CXR and CheXpert write them."""

from __future__ import annotations

from medcat_data.converters.vocab.base import Vocabulary

OBSERVATIONS: tuple[str, ...] = (
    "Atelectasis",
    "Cardiomegaly",
    "Consolidation",
    "Edema",
    "Enlarged Cardiomediastinum",
    "Fracture",
    "Lung Lesion",
    "Lung Opacity",
    "No Finding",
    "Pleural Effusion",
    "Pleural Other",
    "Pneumonia",
    "Pneumothorax",
    "Support Devices",
)
"""Upstream names, alphabetical as in the MIMIC-CXR-JPG label files; select columns by name, never by position."""

COLUMN_ALIASES: dict[str, str] = {"Airspace Opacity": "Lung Opacity", "No Findings": "No Finding"}
"""The 2.1.0 ``test-set-labeled`` file spells Lung Opacity as Airspace Opacity (reference §1.4); its
project page writes "No Findings", so that spelling is read as No Finding too (the header itself is
unconfirmed)."""


def column_name(observation: str) -> str:
    """Return the snake_case output column of an observation (``No Finding`` -> ``no_finding``)."""
    return observation.lower().replace(" ", "_")


MENTION = Vocabulary(
    name="chexpert-mention",
    title="CheXpert mention state",
    labels=("negative", "positive", "uncertain", "unmentioned"),
    description=(
        "Each of the 14 observations is one ClassLabel column. The four states stay distinct: an "
        "uncertain mention is never folded into positive, negative or missing, and a study absent "
        "from a label file is 'unlabelled' (its columns are null), never 'unmentioned'. 'No Finding' "
        "keeps upstream's labeller output; medcat does not recompute it."
    ),
    mappings={
        "mimic-cxr-jpg chexpert/negbio": {"1.0": "positive", "0.0": "negative", "-1.0": "uncertain", "": "unmentioned"},
        "mimic-cxr-jpg test-set-labeled": {
            "1.0": "positive",
            "0.0": "negative",
            "-1.0": "uncertain",
            "": "unmentioned",
            "1": "positive",
            "0": "negative",
            "-1": "uncertain",
        },
    },
    label_notes={
        "positive": "1.0: the observation is mentioned as present",
        "negative": "0.0: mentioned as absent (negated)",
        "uncertain": "-1.0: uncertain or ambiguous mention",
        "unmentioned": "empty cell: not mentioned in the report",
    },
    references=("MIMIC-CXR-JPG 2.1.0 project page, label description",),
)
