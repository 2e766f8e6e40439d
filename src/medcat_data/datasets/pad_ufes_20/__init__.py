"""PAD-UFES-20 (Pacheco et al. 2020): smartphone photos of skin lesions with patient metadata.

``recipe.py`` normalizes ``metadata.csv`` and the PNGs (loose or inside the inner
``imgs_part_*.zip``) into the ``diagnosis`` image-classification config; ``replica.py`` writes a
synthetic Mendeley "Download All" zip with the same nested layout.
"""
