"""MIMIC-IV Clinical Database Demo: every ``hosp/`` and ``icu/`` table -> a tabular config.

The generic PhysioNet table recipe (``physionet.py``) unchanged: a config per ``*.csv[.gz]``
(``hosp/admissions.csv.gz`` -> ``hosp_admissions``, ``demo_subject_id.csv`` ->
``demo_subject_id``), types inferred in a first pass, ``--split-by subject_id`` splitting every
table that holds the column alike.
"""

from __future__ import annotations

from medcat_data.converters.recipes.physionet import (
    TABLES_CONFIG,
    TableUnit,
    card_notes,
    configs,
    convert_unit,
    features,
    plan,
)

__all__ = ["CONFIGS", "DATASET_ID", "TableUnit", "card_notes", "configs", "convert_unit", "features", "plan"]

DATASET_ID = "mimic-iv-demo"
CONFIGS: tuple[str, ...] = (TABLES_CONFIG,)
