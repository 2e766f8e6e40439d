"""LLaVA-Med's data (Li et al. 2023): GPT-4-generated instruction, alignment and evaluation records
about PubMed Central figures, with the figures rebuilt from PMC's per-article cloud bucket.

Upstream publishes JSON records and a URL list (``pair_id`` -> ``PMC<id>/<figure file>`` inside
the article's legacy package), never the images. The mapping medcat uses, record by record:

1. the record's ``id`` / ``pair_id`` (``<PMID>_<label>``) picks its line of
   ``llava_med_image_urls.jsonl``, whose ``image_file_path`` is ``PMC<id>/<file>``;
2. the article's newest metadata record in the bucket, ``metadata/PMC<id>.<v>.json`` (largest
   ``v``), names its files with their md5 and its ``license_code``;
3. the figure is the bucket file ``PMC<id>.<v>/<file>`` (fetched alone, md5-verified, into
   ``pmc/`` of the dataset folder; the fetch side is the pmc transport's ``figures`` mode).

A record whose article has no metadata record left the Open Access subset; one whose file the
record does not list is a missing figure; both are ``errors.jsonl`` lines named by record file
and index, never dropped silently. ``recipe.py`` normalizes the seven record files (vqa with the
upstream turns kept, image-text for the figure captions); ``replica.py`` writes a miniature host
and bucket.
"""
