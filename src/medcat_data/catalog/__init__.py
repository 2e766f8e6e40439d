"""Registry schema and validation, references, queries, docs site and Croissant export."""
