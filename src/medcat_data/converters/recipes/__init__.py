"""One recipe module per registry id."""
