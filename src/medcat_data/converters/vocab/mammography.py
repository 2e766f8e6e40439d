"""Mammography vocabularies shared by VinDr-Mammo and CBIS-DDSM: BI-RADS, density, pathology, views."""

from __future__ import annotations

from medcat_data.converters.vocab.base import Vocabulary

BIRADS = Vocabulary(
    name="birads",
    title="BI-RADS assessment",
    labels=tuple(f"BI-RADS {n}" for n in range(7)),
    description=(
        "ACR BI-RADS assessment categories 0-6. VinDr-Mammo writes 'BI-RADS n' (breast level 1-5, "
        "findings 3-5); CBIS-DDSM's 'assessment' column holds the integer 0-5."
    ),
    mappings={
        "vindr-mammo breast_birads": {f"BI-RADS {n}": f"BI-RADS {n}" for n in range(7)},
        "cbis-ddsm assessment": {str(n): f"BI-RADS {n}" for n in range(7)},
    },
    references=("ACR BI-RADS Atlas, 5th edition (2013)",),
)

FINDING_BIRADS = Vocabulary(
    name="finding-birads",
    title="BI-RADS assessment of a finding",
    labels=(*BIRADS.labels, "unassessed"),
    description=(
        "BI-RADS of one annotated finding. VinDr-Mammo leaves it empty for findings without an "
        "assessment (e.g. lymph nodes, skin findings): those are 'unassessed', never a guessed category."
    ),
    mappings={"vindr-mammo finding_birads": {**{f"BI-RADS {n}": f"BI-RADS {n}" for n in range(7)}, "": "unassessed"}},
)

DENSITY = Vocabulary(
    name="breast-density",
    title="Breast density (ACR A-D)",
    labels=("A", "B", "C", "D"),
    description=(
        "ACR breast composition: A almost entirely fatty, B scattered fibroglandular, C heterogeneously "
        "dense, D extremely dense. VinDr-Mammo writes 'DENSITY X'; CBIS-DDSM writes the BI-RADS 4th "
        "edition density 1-4 (in a column spelled 'breast_density' for masses and 'breast density' "
        "for calcifications), which maps in order onto A-D (Lee et al. 2017, Sci Data 4:170177, "
        "describe the density as the ACR BI-RADS category)."
    ),
    mappings={
        "vindr-mammo breast_density": {f"DENSITY {c}": c for c in "ABCD"},
        "cbis-ddsm breast_density": {"1": "A", "2": "B", "3": "C", "4": "D"},
    },
    references=("ACR BI-RADS Atlas 4th/5th edition", "doi:10.1038/sdata.2017.177"),
)

CBIS_PATHOLOGY = Vocabulary(
    name="cbis-pathology",
    title="CBIS-DDSM pathology",
    labels=("benign", "benign-without-callback", "malignant"),
    description="Verified pathology of a CBIS-DDSM abnormality; malignant is the cancer class.",
    mappings={
        "cbis-ddsm pathology": {
            "BENIGN": "benign",
            "BENIGN_WITHOUT_CALLBACK": "benign-without-callback",
            "MALIGNANT": "malignant",
        }
    },
)

VINDR_FINDINGS = Vocabulary(
    name="vindr-finding",
    title="VinDr-Mammo finding category",
    labels=(
        "Mass",
        "Suspicious Calcification",
        "Asymmetry",
        "Focal Asymmetry",
        "Global Asymmetry",
        "Architectural Distortion",
        "Skin Thickening",
        "Skin Retraction",
        "Nipple Retraction",
        "Suspicious Lymph Node",
    ),
    description=(
        "The 10 finding categories of VinDr-Mammo boxes. 'No Finding' is not a category: an image "
        "whose only row is 'No Finding' has no objects. A box with several categories keeps them all."
    ),
    mappings={
        "vindr-mammo finding_categories": {
            name: name
            for name in (
                "Mass",
                "Suspicious Calcification",
                "Asymmetry",
                "Focal Asymmetry",
                "Global Asymmetry",
                "Architectural Distortion",
                "Skin Thickening",
                "Skin Retraction",
                "Nipple Retraction",
                "Suspicious Lymph Node",
            )
        }
    },
)

VIEW = Vocabulary(
    name="mammography-view",
    title="Mammography view",
    labels=("CC", "MLO"),
    description="Craniocaudal or mediolateral oblique.",
    mappings={"vindr-mammo view_position": {"CC": "CC", "MLO": "MLO"}, "cbis-ddsm image view": {"CC": "CC", "MLO": "MLO"}},
)

LATERALITY = Vocabulary(
    name="laterality",
    title="Laterality",
    labels=("L", "R"),
    description="Left or right breast.",
    mappings={
        "vindr-mammo laterality": {"L": "L", "R": "R"},
        "cbis-ddsm left or right breast": {"LEFT": "L", "RIGHT": "R"},
    },
)
