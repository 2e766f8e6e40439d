"""M3LLM-PMC (PMC-MI; Chen, Fu et al. 2025): instruction data about PubMed Central compound figures.

Six files of generated questions (text only, bounding-box relations, one or several sub-figures,
four-choice, whole compound figure). ``recipe.py`` normalizes them into six VQA configs, from
either Hub repository (``hf``, ``hf-release``); ``records.py`` reads the annotation files and
their two record forms; ``replica.py`` writes miniature copies of both repositories.
"""
