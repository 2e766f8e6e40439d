"""VinDr-Mammo (PhysioNet): full-field digital mammograms with breast-level BI-RADS and density and
radiologist-drawn finding boxes.

``recipe.py`` normalizes the two annotation CSVs and the DICOMs into ``birads``
(image-classification) and ``findings`` (object-detection); ``replica.py`` writes a miniature
PhysioNet project of DICOMs (both transfer syntaxes, both photometric interpretations) served by
the loopback mirror.
"""
