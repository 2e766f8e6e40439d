"""MIMIC-IV Clinical Database Demo (PhysioNet, open): the hosp/ and icu/ tables of 100 patients.

``recipe.py`` is the PhysioNet table recipe under this entry's id (a config per table);
``replica.py`` writes a synthetic copy of project ``mimic-iv-demo`` 2.2 with MIMIC-IV's column names.
"""
