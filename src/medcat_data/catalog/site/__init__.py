"""The catalog site: HTML pages, their Markdown mirror under ``docs/catalog/``, and Croissant files."""
