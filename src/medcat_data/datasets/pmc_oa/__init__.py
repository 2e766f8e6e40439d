"""PMC Open Access subset: figures of open-access PubMed Central articles, with captions and citing sentences.

``recipe.py`` normalizes the per-article cloud layout (metadata records, JATS XML, media) into one
image-text ``figures`` config, taking the fetch side's ``articles``/``subset`` options;
``jats.py`` reads figures, licences and inline mentions out of the article XML; ``replica.py``
writes a miniature bucket served by the loopback mirror's S3 listing.
"""
