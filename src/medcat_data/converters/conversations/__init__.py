"""Conversation export of normalized datasets (LLaVA, ShareGPT/PubMedVision, InternVL) for MLLM training.

The names below load on first use (PEP 562): the CLI reads ``FORMAT_NAMES`` to build its options,
and ``medcat --help`` must not pay for the export machinery (pyarrow).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY: dict[str, str] = {
    "CONVERSATIONS_DIR": "medcat_data.converters.conversations.export",
    "ExportOptions": "medcat_data.converters.conversations.export",
    "ExportResult": "medcat_data.converters.conversations.export",
    "SplitCounts": "medcat_data.converters.conversations.export",
    "export_conversations": "medcat_data.converters.conversations.export",
    "FORMAT_NAMES": "medcat_data.converters.conversations.formats",
    "FormatName": "medcat_data.converters.conversations.formats",
    "DEFAULT_TEMPLATE": "medcat_data.converters.conversations.prompt",
    "PromptTemplate": "medcat_data.converters.conversations.prompt",
}

__all__ = sorted(_LAZY)

if TYPE_CHECKING:
    from medcat_data.converters.conversations.export import (
        CONVERSATIONS_DIR,
        ExportOptions,
        ExportResult,
        SplitCounts,
        export_conversations,
    )
    from medcat_data.converters.conversations.formats import FORMAT_NAMES, FormatName
    from medcat_data.converters.conversations.prompt import DEFAULT_TEMPLATE, PromptTemplate


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
