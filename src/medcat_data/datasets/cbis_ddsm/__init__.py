"""CBIS-DDSM: the curated DDSM mammography subset, mass and calcification abnormalities with their
pathology, BI-RADS assessment and ROI masks.

``recipe.py`` normalizes either source (TCIA's DICOMs through the NBIA API, or the Kaggle JPEG
copy) into the same four configs with the same ``sample_id``s: ``mass`` and ``calc``
(image-classification of the cropped ROIs) and ``mass-roi`` and ``calc-roi`` (object-detection on
the full mammograms, boxes from the masks). ``replica.py`` writes miniature copies of both
sources, served by the loopback mirror's NBIA API and Kaggle endpoints.
"""
