"""PubMedVision (Chen et al. 2024): PubMed figures with GPT-4V-reformatted questions and answers.

About 1.3M image-text conversations in two JSON arrays (alignment and instruction tuning) with
the images in twenty zip parts. ``recipe.py`` normalizes them into two VQA configs, reading the
images in place from the zips (``converters.image_index``); ``replica.py`` writes a miniature
copy of the Hub repository.
"""
