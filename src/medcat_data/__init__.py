"""medcat: find, fetch, verify and normalize medical datasets into Hugging Face datasets.

The public API (``docs/python.md``)::

    import medcat_data

    medcat_data.info("vqa-rad")                     # the catalog's facts + what is on this machine
    raw = medcat_data.fetch("mimic-iv-demo")        # the raw cache folder, every file verified
    out = medcat_data.normalize("mimic-iv-demo")    # $MEDCAT_HOME/normalized/mimic-iv-demo
    ds = medcat_data.load("vqa-rad", split="train") # fetched and normalized on first use

The names below load on first use (PEP 562), so that importing a submodule, which every worker
process of ``--jobs N`` does, does not pay for the catalog (pydantic models, the registry YAML).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY: dict[str, str] = {
    "fetch": "medcat_data.api",
    "normalize": "medcat_data.api",
    "load": "medcat_data.api",
    "info": "medcat_data.api",
    "DatasetInfo": "medcat_data.api",
    "NormalizedCopy": "medcat_data.api",
    "RawCopy": "medcat_data.api",
    "DatasetRef": "medcat_data.catalog.refs",
    "ResolvedDataset": "medcat_data.catalog.refs",
    "parse_ref": "medcat_data.catalog.refs",
    "resolve": "medcat_data.catalog.refs",
    "Registry": "medcat_data.catalog.registry",
    "load_registry": "medcat_data.catalog.registry",
    "Entry": "medcat_data.catalog.schema",
    "MedcatError": "medcat_data.errors",
}

__all__ = sorted([*_LAZY, "__version__"])

if TYPE_CHECKING:
    from medcat_data.api import DatasetInfo, NormalizedCopy, RawCopy, fetch, info, load, normalize
    from medcat_data.catalog.refs import DatasetRef, ResolvedDataset, parse_ref, resolve
    from medcat_data.catalog.registry import Registry, load_registry
    from medcat_data.catalog.schema import Entry
    from medcat_data.errors import MedcatError


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'medcat_data' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
