"""The VQA answer type: whether a question is answered by a choice (closed) or by free text (open)."""

from __future__ import annotations

from medcat_data.converters.schemas import ANSWER_TYPES
from medcat_data.converters.vocab.base import Vocabulary

ANSWER_TYPE = Vocabulary(
    name="vqa-answer-type",
    title="VQA answer type",
    labels=ANSWER_TYPES,
    description=(
        "closed: yes/no or a choice among the options; open: free text. Taken from upstream's own "
        "field where it has one (case and stray spaces folded); PathVQA has none and its closed "
        "questions are the yes/no ones (an answer of 'yes' or 'no' is closed, anything else open). "
        "A Hub copy without the field (VQA-RAD's) leaves it null, never guessed."
    ),
    mappings={
        "vqa-rad answer_type": {"CLOSED": "closed", "OPEN": "open"},
        "slake answer_type": {"OPEN": "open", "CLOSED": "closed"},
        "pathvqa answer": {"YES": "closed", "NO": "closed"},
    },
)


def upstream_answer_type(source: str, value: object) -> str | None:
    """Return the label of an upstream answer-type spelling (case and spaces folded), None for any other value."""
    return ANSWER_TYPE.mappings[source].get(value.strip().upper()) if isinstance(value, str) else None
