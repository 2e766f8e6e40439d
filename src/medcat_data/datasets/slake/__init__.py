"""SLAKE (Liu et al., ISBI 2021): bilingual radiology VQA with semantic labels (masks and boxes).

``recipe.py`` normalizes the authors' Hub copy (``BoKelvin/SLAKE``, images read inside
``imgs.zip``) or the Google Drive archive (``Slake.zip``, extracted to ``Slake1.0/``) into the
``vqa-en`` and ``vqa-zh`` configs and the ``masks-boxes`` config; ``replica.py`` writes miniature
copies of both, served by the loopback mirror's Hub API and Drive routes.
"""
