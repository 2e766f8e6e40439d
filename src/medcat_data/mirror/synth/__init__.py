"""Seeded generators of synthetic content: DICOM, NIfTI, PNG/JPEG, text."""
