"""MedQA (Jin et al. 2021): multiple-choice medical exam questions from the US, Mainland China and
Taiwan, plus the English textbook corpus used for retrieval.

``recipe.py`` normalizes the extracted ``data_clean.zip`` into seven question configs (text-qa)
and ``textbooks-en`` (one row per paragraph); ``replica.py`` writes a miniature ``data_clean.zip``
served by the loopback mirror's Google Drive endpoint.
"""
