"""Conversation export of normalized datasets (LLaVA, ShareGPT/PubMedVision, InternVL) for MLLM training."""

from medcat_data.converters.conversations.export import (
    CONVERSATIONS_DIR,
    ExportOptions,
    ExportResult,
    SplitCounts,
    export_conversations,
)
from medcat_data.converters.conversations.formats import FORMAT_NAMES, FormatName
from medcat_data.converters.conversations.prompt import DEFAULT_TEMPLATE, PromptTemplate

__all__ = [
    "CONVERSATIONS_DIR",
    "DEFAULT_TEMPLATE",
    "FORMAT_NAMES",
    "ExportOptions",
    "ExportResult",
    "FormatName",
    "PromptTemplate",
    "SplitCounts",
    "export_conversations",
]
