"""ROCOv2 (Rückert et al. 2024): radiology figures of PMC Open Access articles with captions and UMLS concepts.

``recipe.py`` normalizes the Zenodo release (per-split caption and concept CSVs, image zips read
in place) or the Hugging Face parquet copy into one image-text ``captions`` config on the official
train/validation/test split; ``replica.py`` writes miniature copies of both, served by the
loopback mirror's plain tree (Zenodo's ``/records/<id>/files/<name>``) and its Hub API.
"""
