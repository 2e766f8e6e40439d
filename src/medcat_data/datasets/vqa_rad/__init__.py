"""VQA-RAD (Lau et al. 2018): radiology images with clinician-written questions and answers.

``recipe.py`` normalizes the OSF release or the Hub copy into one ``vqa`` config; ``replica.py``
writes miniature copies of both, served by the loopback mirror's OSF API and Hub API.
"""
