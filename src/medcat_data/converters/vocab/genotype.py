"""Genotype classes for variant calling: copies of one ALT allele under the true genotype."""

from __future__ import annotations

from medcat_data.converters.vocab.base import Vocabulary

GENOTYPE_CLASS = Vocabulary(
    name="genotype-class",
    title="Genotype class",
    labels=("hom-ref", "het", "hom-alt"),
    description=(
        "Number of copies of the row's ALT allele: 0 hom-ref, 1 het, 2 hom-alt (the DeepVariant "
        "reading). A '1/2' site gives two het rows, one per ALT. Inside the confident BED but absent "
        "from the truth VCF means hom-ref; outside the BED is unknown and dropped."
    ),
    mappings={"vcf GT copies": {"0": "hom-ref", "1": "het", "2": "hom-alt"}},
)
