"""MIMIC-IV Clinical Database Demo: every ``hosp/`` and ``icu/`` table -> a tabular config.

The PhysioNet table recipe (``datasets/physionet/recipe.py``) unchanged, under this entry's id: a
config per ``*.csv[.gz]`` (``hosp/admissions.csv.gz`` -> ``hosp_admissions``,
``demo_subject_id.csv`` -> ``demo_subject_id``), types inferred in a first pass,
``--split-by subject_id`` splitting every table that holds the column alike.
"""

from __future__ import annotations

from medcat_data.datasets.physionet.recipe import PhysioNetTables

__all__ = ["RECIPE", "MimicIvDemo"]


class MimicIvDemo(PhysioNetTables):
    """The PhysioNet tables of the MIMIC-IV demo."""

    DATASET_ID = "mimic-iv-demo"


RECIPE = MimicIvDemo()
