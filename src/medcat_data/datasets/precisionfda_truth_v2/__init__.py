"""precisionFDA Truth Challenge V2: the GIAB HG002 v4.2.1 GRCh38 small-variant truth set, its
benchmark regions and the GIAB v3.6 genome stratifications.

``recipe.py`` normalizes the truth VCF (one row per ALT allele), the benchmark-region BED and, with
``--option candidates=FILE``, a caller's VCF labelled against the truth; ``replica.py`` writes a
miniature GIAB FTP tree (BGZF VCF with tabix index, BEDs, md5 lists) served by the loopback mirror.
"""
