"""PAD-UFES-20 skin lesion diagnoses."""

from __future__ import annotations

from medcat_data.converters.vocab.base import Vocabulary

CANCERS = frozenset({"BCC", "MEL", "SCC"})
"""The biopsy-proven cancer classes of PAD-UFES-20."""

DIAGNOSIS = Vocabulary(
    name="skin-lesion-diagnosis",
    title="PAD-UFES-20 diagnosis",
    labels=("ACK", "BCC", "MEL", "NEV", "SCC", "SEK"),
    description=(
        "The six 'diagnostic' codes of PAD-UFES-20 (column spelled 'diagnostic'). BCC, MEL and SCC "
        "are cancers (a boolean 'is_cancer' column says so); Bowen's disease is merged into SCC upstream."
    ),
    mappings={"pad-ufes-20 diagnostic": {c: c for c in ("ACK", "BCC", "MEL", "NEV", "SCC", "SEK")}},
    label_notes={
        "ACK": "actinic keratosis",
        "BCC": "basal cell carcinoma (cancer)",
        "MEL": "melanoma (cancer)",
        "NEV": "nevus",
        "SCC": "squamous cell carcinoma, incl. Bowen's disease (cancer)",
        "SEK": "seborrheic keratosis",
    },
)
