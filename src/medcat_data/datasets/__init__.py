"""One kit folder per dataset: ``<module>/recipe.py`` (``RECIPE``, on ``converters.recipe.Recipe``),
``<module>/replica.py`` (``build(root, seed)``) and whatever only that dataset uses.

``<module>`` is the registry id with ``-`` as ``_`` (``catalog.schema.module_name``).
``docs/adding-a-dataset.md`` walks through adding one.
"""
