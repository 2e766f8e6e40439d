"""PubMedQA (Jin et al. 2019): yes/no/maybe research questions answered from PubMed abstracts.

``recipe.py`` normalizes the Hugging Face parquet copy, or the authors' JSON files (GitHub for
PQA-L, Google Drive for PQA-U and PQA-A), into three text-qa configs, ``pqa-labeled`` (on the
official 500-PMID test split), ``pqa-unlabeled`` and ``pqa-artificial``; ``json_stream.py`` reads
a large top-level JSON object one member at a time; ``replica.py`` writes miniature copies of
every source, served by the loopback mirror's Hub API, plain file tree and Drive endpoints.
"""
