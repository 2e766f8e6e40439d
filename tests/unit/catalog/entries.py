"""A minimal valid registry entry, mutated by tests to produce each kind of invalid entry."""

from __future__ import annotations

import copy
from typing import Any

import yaml

_VALID: dict[str, Any] = {
    "id": "my-hospital-cxr",
    "name": "My Hospital CXR",
    "description": "Chest radiographs exported from our PACS with report-derived labels, for internal use.",
    "homepage": "https://data.example.org/cxr",
    "modalities": ["chest-x-ray"],
    "tasks": ["image-classification"],
    "access": "credentialed",
    "access_info": {"steps": ["Ask the data office for an account and sign the internal DUA."]},
    "license": {"name": "Internal use only", "url": "https://data.example.org/license"},
    "citation": "@misc{myhospitalcxr,\n  title = {My Hospital CXR}\n}",
    "versions": [{"version": "1.0.0"}],
    "default_version": "1.0.0",
    "size": {"bytes": 1000, "files": 10, "samples": 10, "approximate": ["bytes"]},
    "sources": [
        {
            "name": "files",
            "kind": "urls",
            "files": [{"url": "https://data.example.org/cxr/images.zip", "path": "images.zip", "extract": True}],
        }
    ],
    "configs": [
        {"name": "labels", "task": "image-classification", "splits": ["train", "test"], "description": "One row per image."}
    ],
}


def valid_entry(**changes: Any) -> dict[str, Any]:
    """Return a fresh copy of the valid entry with top-level fields replaced."""
    entry = copy.deepcopy(_VALID)
    entry.update(changes)
    return entry


def registry_yaml(*entries: dict[str, Any]) -> str:
    """Return the YAML text of a registry file holding ``entries``."""
    return yaml.safe_dump({"datasets": list(entries)}, sort_keys=False)
