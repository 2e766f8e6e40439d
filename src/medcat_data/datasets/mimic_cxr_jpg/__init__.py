"""MIMIC-CXR-JPG (PhysioNet, credentialed): the MIMIC-CXR radiographs as JPEGs with study-level
CheXpert and NegBio labels and the official split.

``recipe.py`` normalizes them into ``chexpert``, ``negbio`` and ``test-labeled``
(image-classification); its label, split and metadata readers are shared with the ``mimic-cxr``
kit. ``replica.py`` writes a miniature project from the synthetic cohort in
``mirror.synth.mimic_cohort``.
"""
