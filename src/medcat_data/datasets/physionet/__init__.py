"""Any PhysioNet project (the registry's ``physionet`` template): its CSV tables, a config each.

``recipe.py`` normalizes every ``*.csv``/``*.csv.gz`` of a fetched project into a tabular config
with inferred column types; every entry built from the template (``physionet:SLUG[@VERSION]``,
``template_of: physionet``) uses it. ``replica.py`` writes ``demo-open-project`` 1.0.0, the
synthetic open project the demo and tests fetch as ``physionet:demo-open-project@1.0.0``.
"""
