"""MedMCQA (Pal et al. 2022): 194k four-option questions from Indian medical entrance exams (AIIMS PG, NEET PG).

``recipe.py`` normalizes the Hugging Face parquet copy or the authors' Google Drive zip of JSON
Lines files into one text-qa config, ``qa``, with subject, topic and explanation; the test split
has no answers upstream and none are invented. ``replica.py`` writes miniature copies of both
sources, served by the loopback mirror's Hub API and Drive endpoints.
"""
