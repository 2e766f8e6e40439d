"""MIMIC-CXR (PhysioNet, credentialed): chest radiograph DICOMs with their free-text radiology reports.

``recipe.py`` normalizes the DICOMs and reports into ``reports`` (report-generation) and
``chexpert`` / ``negbio`` (image-classification), with labels, views and the official split read
from the companion source ``mimic-cxr-jpg-labels`` through the ``mimic-cxr-jpg`` kit's readers.
``replica.py`` writes a miniature MIMIC-CXR and its companion from the synthetic cohort in
``mirror.synth.mimic_cohort``.
"""
