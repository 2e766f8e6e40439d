"""PathVQA (He et al. 2020): pathology images from two textbooks and PEIR with open and yes/no questions.

``recipe.py`` normalizes the Hugging Face parquet copy (``flaviagiammarino/path-vqa``) or the
authors' ``pvqa.zip`` from Google Drive (pickled question lists, read without running pickle
code) into one ``vqa`` config on the official train / validation / test split; ``replica.py``
writes miniature copies of both, served by the loopback mirror's Hub API and Drive routes.
"""
